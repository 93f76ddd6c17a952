"""Weight files: our safetensors format, third-party layouts, the catalog, ``eval --weights``.

Third-party checkpoints are synthesised from our tiny models by renaming keys the way each code
base names them, saved with ``torch.save`` and loaded back: the outputs must be *identical* to the
source model's. The leftthomas/SRGAN layout is also checked against an independent functional
forward written from that repository's ``model.py``, and the real checkpoint (data tests) is
scored on Set5.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import superres
import superres.models.weights as weights_module
from helpers import TINY
from superres import assets
from superres.assets import Asset
from superres.cli import main
from superres.errors import (
    AssetNotFoundError,
    ConfigError,
    IncompatibleWeightsError,
    MissingWeightsError,
    SuperresError,
    UnknownModelError,
    UnsupportedScaleError,
    WeightsNotFoundError,
    WeightsReadError,
)
from superres.io.hub import ChecksumMismatchError
from superres.models import EDSR, SRResNet, create_model, get_model_spec, list_models
from superres.models.catalog import PretrainedWeights
from superres.models.convert import convert_state_dict
from superres.models.weights import load_model
from superres.models.weights_file import FORMAT, load_weights, read_metadata, save_weights
from superres.registry import Registry

DIV2K_MEAN = torch.tensor([0.4488, 0.4371, 0.4040])


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _tiny(name: str, scale: int = 2, **extra: object) -> nn.Module:
    """A tiny model with random weights and, for batch norm, non-trivial running statistics."""
    torch.manual_seed(0)
    model = create_model(name, scale=scale, **{**TINY.get(name, {}), **extra})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        channels = int(getattr(model, "in_channels"))  # noqa: B009 - typed Tensor | Module
        model.train()
        for _ in range(2):
            model(torch.rand(2, channels, 8, 8))
    return model.eval()


def _same_output(a: nn.Module, b: nn.Module, channels: int = 3) -> None:
    x = torch.rand(1, channels, 9, 11, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def _channels(model: nn.Module) -> int:
    return int(getattr(model, "in_channels"))  # noqa: B009


# --- our format: every registered model -----------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_save_load_round_trip(name: str, tmp_path: Path) -> None:
    source = _tiny(name)
    path = save_weights(source, tmp_path / f"{name}.safetensors", recipe="configs/x.yaml")
    loaded = load_weights(path)
    assert type(loaded) is type(source)
    assert not loaded.training
    assert vars(loaded)["arch_name"] == name
    assert vars(loaded)["config"] == vars(source)["config"]
    _same_output(source, loaded, _channels(source))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    meta = read_metadata(path)
    assert meta["format"] == FORMAT == "superres/1"
    assert meta["architecture"] == name
    assert json.loads(meta["kwargs"]) == json.loads(json.dumps(vars(source)["config"]))
    assert meta["scale"] == "2"
    assert meta["in_channels"] == str(_channels(source))
    assert meta["recipe"] == "configs/x.yaml"
    assert meta["superres_version"] == superres.__version__
    assert vars(loaded)["weights_metadata"] == meta


@pytest.mark.parametrize("name", [n for n in list_models() if n != "bicubic"])
def test_plain_state_dict_of_our_models_is_recognised(name: str, tmp_path: Path) -> None:
    # torch.save(model.state_dict()) has no metadata: the layout and shapes say what it is.
    # EDSR's residual scaling is not in the weights (1.0 is assumed below 256 features).
    extra: dict[str, Any] = {"res_scale": 1.0} if name == "edsr" else {}
    source = _tiny(name, **extra)
    path = tmp_path / "plain.pth"
    torch.save(source.state_dict(), path)
    loaded = load_weights(path, scale=2)  # SRCNN does not record its scale
    assert type(loaded) is type(source)
    _same_output(source, loaded, _channels(source))


def test_every_model_records_its_constructor_arguments() -> None:
    for name in list_models():
        model = _tiny(name)
        config = vars(model)["config"]
        params = inspect.signature(get_model_spec(name).builder).parameters
        assert set(config) == set(params), name
        rebuilt = create_model(name, **config)
        assert vars(rebuilt)["config"] == config
    # Built directly, without the registry: the same record.
    direct = SRResNet(num_features=8, num_blocks=2, scale=3)
    assert vars(direct)["arch_name"] == "srresnet"
    assert vars(direct)["config"]["scale"] == 3
    assert vars(direct)["config"]["num_blocks"] == 2


def test_directly_built_model_round_trips(tmp_path: Path) -> None:
    model = EDSR(scale=3, num_features=8, num_blocks=1, img_range=255.0).eval()
    loaded = load_weights(save_weights(model, tmp_path / "e.safetensors"))
    assert vars(loaded)["arch_name"] == "edsr"
    assert loaded.img_range == 255.0
    _same_output(model, loaded)


def test_fp16_storage_loads_back_as_float32(tmp_path: Path) -> None:
    source = _tiny("rrdbnet", scale=4)
    full = save_weights(source, tmp_path / "f32.safetensors")
    half = save_weights(source, tmp_path / "f16.safetensors", dtype=torch.float16)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert read_metadata(half)["dtype"] == "float16"
    assert read_metadata(full)["dtype"] == "float32"
    loaded = load_weights(half)
    for key, value in source.state_dict().items():
        got = loaded.state_dict()[key]
        assert got.dtype == value.dtype, key
        assert torch.equal(got, value.half().to(value.dtype)), key
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x), atol=2e-3, rtol=2e-3)


def test_fp16_refuses_values_out_of_range(tmp_path: Path) -> None:
    model = _tiny("srresnet")
    conv_first = model.get_submodule("conv_first")
    assert isinstance(conv_first, nn.Conv2d)
    with torch.no_grad():
        conv_first.weight[0, 0, 0, 0] = 1e6
    with pytest.raises(SuperresError, match=r"conv_first.weight.*float16"):
        save_weights(model, tmp_path / "x.safetensors", dtype=torch.float16)
    assert not list(tmp_path.iterdir())


def test_metadata_extras_and_reserved_keys(tmp_path: Path) -> None:
    model = _tiny("srcnn")
    path = save_weights(
        model,
        tmp_path / "m.safetensors",
        metrics={"set5_psnr_y": 30.5},
        metadata={"trained_on": "T91", "epochs": 3},
    )
    meta = read_metadata(path)
    assert json.loads(meta["metrics"]) == {"set5_psnr_y": 30.5}
    assert meta["trained_on"] == "T91"
    assert meta["epochs"] == "3"
    with pytest.raises(SuperresError, match="'architecture' is reserved"):
        save_weights(model, tmp_path / "n.safetensors", metadata={"architecture": "x"})


def test_resave_keeps_recipe_metrics_and_extras(tmp_path: Path) -> None:
    from superres.models.weights_file import resave_weights

    model = _tiny("srcnn")
    source = save_weights(
        model,
        tmp_path / "m.safetensors",
        recipe="configs/zoo/srcnn_x4.yaml",
        metrics={"set5_psnr_y": 30.5},
        metadata={"trained_on": "T91", "wall_time_s": "10"},
    )
    target = resave_weights(
        source, tmp_path / "h.safetensors", dtype=torch.float16, metadata={"wall_time_s": "99"}
    )
    meta = read_metadata(target)
    assert meta["dtype"] == "float16"
    assert meta["recipe"] == "configs/zoo/srcnn_x4.yaml"
    assert json.loads(meta["metrics"]) == {"set5_psnr_y": 30.5}
    assert (meta["trained_on"], meta["wall_time_s"]) == ("T91", "99")
    torch.testing.assert_close(
        load_weights(target).state_dict(), model.state_dict(), atol=1e-3, rtol=1e-3
    )


def test_save_needs_a_superres_model_and_an_existing_folder(tmp_path: Path) -> None:
    with pytest.raises(SuperresError, match=r"Conv2d.*create_model"):
        save_weights(nn.Conv2d(3, 3, 3), tmp_path / "c.safetensors")
    with pytest.raises(SuperresError, match="does not exist; create it first"):
        save_weights(_tiny("srcnn"), tmp_path / "missing" / "c.safetensors")


def test_save_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(_tiny("srcnn"), path)
    save_weights(_tiny("srresnet"), path)
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temporary files left
    assert vars(load_weights(path))["arch_name"] == "srresnet"


# --- third-party layouts --------------------------------------------------------------------------


def _renamed(
    state: dict[str, torch.Tensor], block: tuple[str, str], rename: dict[str, str]
) -> dict[str, torch.Tensor]:
    """``state`` with the RRDB keys matching ``block[0]`` rewritten as ``block[1]`` (``re``
    template) and every other ``name.kind`` key's name looked up in ``rename`` (kept if absent).
    """
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(block[0], key):
            out[m.expand(block[1])] = value
        else:
            name, kind = key.rsplit(".", 1)
            out[f"{rename.get(name, name)}.{kind}"] = value
    return out


def _to_esrgan_original(state: dict[str, torch.Tensor], num_blocks: int, num_up: int) -> dict:
    """Our (= BasicSR) RRDBNet keys -> the first xinntao/ESRGAN release's ``model.N`` keys."""
    index = {
        "conv_first": 0,
        "conv_body": f"1.sub.{num_blocks}",
        "conv_hr": 2 + 3 * num_up,
        "conv_last": 4 + 3 * num_up,
    } | {f"conv_up{i}": 3 * i for i in range(1, num_up + 1)}
    block = (r"body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)", r"model.1.sub.\1.RDB\2.conv\3.0.\4")
    return _renamed(state, block, {name: f"model.{i}" for name, i in index.items()})


def _to_esrgan_2019(state: dict[str, torch.Tensor]) -> dict:
    """Our RRDBNet keys -> the 2019 xinntao/ESRGAN ``RRDB_trunk`` keys."""
    rename = {"conv_body": "trunk_conv", "conv_hr": "HRconv"}
    rename |= {f"conv_up{i}": f"upconv{i}" for i in range(1, 4)}
    return _renamed(state, (r"body\.(\d+)\.rdb(\d)\.(.*)", r"RRDB_trunk.\1.RDB\2.\3"), rename)


def test_basicsr_checkpoint_prefers_params_ema(tmp_path: Path) -> None:
    source = _tiny("rrdbnet", scale=4)
    ema = source.state_dict()
    other = {k: v + 1 for k, v in ema.items()}
    path = tmp_path / "RealESRGAN_x4plus.pth"
    torch.save({"params": other, "params_ema": ema}, path)
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"]["layout"] == "BasicSR RRDBNet"
    assert vars(loaded)["config"]["num_grow_ch"] == 4
    _same_output(source, loaded)
    torch.save({"params": ema}, path)  # params alone
    _same_output(source, load_weights(path))


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_original_esrgan_layout(scale: int, tmp_path: Path) -> None:
    source = _tiny("rrdbnet", scale=scale, num_blocks=2)
    num_up = {2: 1, 4: 2, 8: 3}[scale]
    path = tmp_path / "RRDB_ESRGAN_x4.pth"
    # The original files predate the zip serialisation.
    state = _to_esrgan_original(source.state_dict(), 2, num_up)
    assert ("model.10.weight" in state) is (scale == 4)
    torch.save(state, path, _use_new_zipfile_serialization=False)
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"]["layout"] == "ESRGAN (original)"
    assert loaded.scale == scale
    _same_output(source, loaded)


def test_esrgan_2019_layout(tmp_path: Path) -> None:
    source = _tiny("rrdbnet", scale=4)
    path = tmp_path / "RRDB_PSNR_x4.pth"
    torch.save(_to_esrgan_2019(source.state_dict()), path)
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"]["layout"] == "ESRGAN (2019)"
    _same_output(source, loaded)


def test_third_party_safetensors_go_through_detection(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = _tiny("rrdbnet", scale=4)
    path = tmp_path / "4x_community.safetensors"
    save_file(source.state_dict(), str(path), metadata={"format": "pt"})  # as Hugging Face does
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"] == {"layout": "BasicSR RRDBNet", "format": "pt"}
    _same_output(source, loaded)


def test_module_prefixes_and_containers_are_unwrapped(tmp_path: Path) -> None:
    source = _tiny("srresnet")
    ddp = {f"module.{k}": v for k, v in source.state_dict().items()}
    path = tmp_path / "ddp.pth"
    torch.save({"epoch": 10, "state_dict": ddp, "optimizer": {"lr": 1e-4}}, path)
    _same_output(source, load_weights(path))
    torch.save({"netG": {"module.module." + k: v for k, v in source.state_dict().items()}}, path)
    _same_output(source, load_weights(path))


def test_pixel_unshuffle_rrdbnet_needs_two_upsampling_stages(tmp_path: Path) -> None:
    # BasicSR's x2/x1 layout (conv_first on 4x or 16x the channels) always has conv_up1, conv_up2;
    # with three stages the file is neither that layout nor ours.
    state = _tiny("rrdbnet", scale=8).state_dict()
    state["conv_first.weight"] = torch.zeros(8, 12, 3, 3)  # 3 channels x 4
    path = tmp_path / "RealESRGAN_x2plus.pth"
    torch.save({"params_ema": state}, path)
    with pytest.raises(IncompatibleWeightsError, match=r"pixel-unshuffled input .* 3 upsampling"):
        load_weights(path)


def _edsr_official(model: nn.Module, rgb_range: float) -> dict[str, torch.Tensor]:
    """Our EDSR's state dict plus EDSR-PyTorch's MeanShift convolutions (rgb_std = 1)."""
    state = dict(model.state_dict())
    eye = torch.eye(3).view(3, 3, 1, 1)
    state["sub_mean.weight"], state["sub_mean.bias"] = eye, -rgb_range * DIV2K_MEAN
    state["add_mean.weight"], state["add_mean.bias"] = eye, rgb_range * DIV2K_MEAN
    return state


def test_official_edsr_layout_with_rgb_range_255(tmp_path: Path) -> None:
    source = _tiny("edsr-baseline", scale=4, img_range=255.0)
    path = tmp_path / "edsr_baseline_x4.pt"
    torch.save(_edsr_official(source, 255.0), path)
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"]["layout"] == "EDSR (official)"
    assert vars(loaded)["arch_name"] == "edsr-baseline"
    assert vars(loaded)["config"]["img_range"] == 255.0
    _same_output(source, loaded)
    bad = _edsr_official(source, 255.0)
    bad["sub_mean.bias"] = torch.tensor([-1.0, -2.0, -3.0])
    torch.save(bad, path)
    with pytest.raises(IncompatibleWeightsError, match="DIV2K mean"):
        load_weights(path)


def test_official_edsr_wide_model_gets_residual_scaling() -> None:
    # Only the shapes matter: zero-stride tensors, no memory.
    with torch.device("meta"):
        model = create_model("edsr", scale=2, num_blocks=1)
    state = {k: torch.zeros(1).expand(v.shape) for k, v in model.state_dict().items()}
    converted = convert_state_dict(state)
    assert converted.architecture == "edsr"
    assert converted.kwargs["res_scale"] == 0.1
    assert converted.kwargs["num_features"] == 256


def _to_basicsr_edsr(state: dict[str, torch.Tensor], num_blocks: int) -> dict:
    out = {}
    for key, value in state.items():
        if m := re.fullmatch(r"body\.(\d+)\.body\.([02])\.(weight|bias)", key):
            out[f"body.{m[1]}.conv{1 if m[2] == '0' else 2}.{m[3]}"] = value
            continue
        key = key.replace("head.0.", "conv_first.").replace("tail.0.", "upsample.")
        key = key.replace("tail.1.", "conv_last.").replace(
            f"body.{num_blocks}.", "conv_after_body."
        )
        out[key] = value
    return out


def test_basicsr_edsr_layout(tmp_path: Path) -> None:
    source = _tiny("edsr-baseline", scale=3, img_range=255.0)  # BasicSR trains with 255
    path = tmp_path / "EDSR_Mx3.pth"
    torch.save({"params": _to_basicsr_edsr(source.state_dict(), 2)}, path)
    loaded = load_weights(path)
    assert vars(loaded)["weights_metadata"]["layout"] == "BasicSR EDSR"
    assert loaded.scale == 3
    _same_output(source, loaded)


def test_msrresnet_is_recognised_and_refused(tmp_path: Path) -> None:
    state = {
        k: torch.zeros(4, 4, 3, 3)
        for k in ("conv_first.weight", "body.0.conv1.weight", "upconv1.weight", "conv_hr.weight")
    }
    path = tmp_path / "MSRResNet_x4.pth"
    torch.save({"params": state}, path)
    with pytest.raises(IncompatibleWeightsError, match=r"MSRResNet.*does not implement"):
        load_weights(path)


# --- leftthomas/SRGAN -----------------------------------------------------------------------------


def _leftthomas_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """leftthomas/SRGAN ``Generator.forward``, written from its model.py with functional ops.

    block7 is conv + PReLU (early versions, as ``netG_epoch_4_100.pth``) or conv + BN (later).
    """

    def conv(h: torch.Tensor, name: str) -> torch.Tensor:
        w = sd[f"{name}.weight"]
        return F.conv2d(h, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    def bn(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.batch_norm(
            h,
            sd[f"{name}.running_mean"],
            sd[f"{name}.running_var"],
            sd[f"{name}.weight"],
            sd[f"{name}.bias"],
            training=False,
            eps=1e-5,
        )

    def prelu(h: torch.Tensor, name: str) -> torch.Tensor:
        return F.prelu(h, sd[f"{name}.weight"])

    block1 = prelu(conv(x, "block1.0"), "block1.1")
    h = block1
    num_blocks = len({k.split(".")[0] for k in sd if ".conv1." in k})
    for i in range(2, 2 + num_blocks):
        r = prelu(bn(conv(h, f"block{i}.conv1"), f"block{i}.bn1"), f"block{i}.prelu")
        h = h + bn(conv(r, f"block{i}.conv2"), f"block{i}.bn2")
    t, u = 2 + num_blocks, 3 + num_blocks
    tail = conv(h, f"block{t}.0")
    if f"block{t}.1.running_mean" in sd:
        block7 = bn(tail, f"block{t}.1")
    else:
        block7 = prelu(tail, f"block{t}.1")
    y = block1 + block7
    stages = len({k for k in sd if re.fullmatch(rf"block{u}\.\d+\.conv\.weight", k)})
    for i in range(stages):
        y = prelu(F.pixel_shuffle(conv(y, f"block{u}.{i}.conv"), 2), f"block{u}.{i}.prelu")
    return (torch.tanh(conv(y, f"block{u}.{stages}")) + 1) / 2


def _leftthomas_state(num_blocks: int, stages: int, *, bn_tail: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    f = 8

    def rnd(*shape: int, scale: float = 0.1) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def bn(name: str) -> dict[str, torch.Tensor]:
        return {
            f"{name}.weight": 1 + rnd(f),
            f"{name}.bias": rnd(f),
            f"{name}.running_mean": rnd(f),
            f"{name}.running_var": 1 + rnd(f).abs(),
        }

    sd = {"block1.0.weight": rnd(f, 3, 9, 9), "block1.0.bias": rnd(f), "block1.1.weight": rnd(1)}
    for i in range(2, 2 + num_blocks):
        for c in ("conv1", "conv2"):
            sd |= {f"block{i}.{c}.weight": rnd(f, f, 3, 3), f"block{i}.{c}.bias": rnd(f)}
        sd |= bn(f"block{i}.bn1") | bn(f"block{i}.bn2") | {f"block{i}.prelu.weight": rnd(1)}
    t, u = 2 + num_blocks, 3 + num_blocks
    sd |= {f"block{t}.0.weight": rnd(f, f, 3, 3), f"block{t}.0.bias": rnd(f)}
    sd |= bn(f"block{t}.1") if bn_tail else {f"block{t}.1.weight": rnd(1)}
    for i in range(stages):
        sd |= {
            f"block{u}.{i}.conv.weight": rnd(4 * f, f, 3, 3),
            f"block{u}.{i}.conv.bias": rnd(4 * f),
        }
        sd[f"block{u}.{i}.prelu.weight"] = rnd(1)
    sd |= {f"block{u}.{stages}.weight": rnd(3, f, 9, 9), f"block{u}.{stages}.bias": rnd(3)}
    return sd


@pytest.mark.parametrize(("num_blocks", "stages", "bn_tail"), [(5, 2, False), (2, 1, True)])
def test_leftthomas_layout_matches_its_forward(
    num_blocks: int, stages: int, bn_tail: bool, tmp_path: Path
) -> None:
    sd = _leftthomas_state(num_blocks, stages, bn_tail=bn_tail)
    path = tmp_path / "netG_epoch_4_100.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    model = load_weights(path)
    config = vars(model)["config"]
    assert config["num_blocks"] == num_blocks
    assert config["scale"] == 2**stages
    assert config["conv_bias"] is True
    assert config["body_tail"] == ("batchnorm" if bn_tail else "prelu")
    assert config["output_activation"] == "tanh"
    x = torch.rand(1, 3, 10, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), _leftthomas_forward(sd, x), atol=1e-5, rtol=1e-5)


def test_leftthomas_stray_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "netG.pth"
    for stray in ("block1.2.weight", "block9.0.weight", "block8.1.relu.weight"):
        sd = _leftthomas_state(5, 2, bn_tail=False) | {stray: torch.zeros(1)}
        torch.save(sd, path)
        with pytest.raises(IncompatibleWeightsError, match=f"unexpected key '{re.escape(stray)}'"):
            load_weights(path)


def test_srresnet_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="body_tail"):
        SRResNet(body_tail="relu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="output_activation"):
        SRResNet(output_activation="sigmoid")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="img_range"):
        EDSR(img_range=0)
    out = SRResNet(num_features=8, num_blocks=1, output_activation="tanh")(torch.randn(1, 3, 4, 4))
    assert out.min() > 0
    assert out.max() < 1


# --- refused and broken files ---------------------------------------------------------------------


class _Payload:
    """Any object beyond tensors and containers needs full unpickling."""


@pytest.mark.parametrize("payload", ["module", "object"])
def test_pickled_objects_are_refused(payload: str, tmp_path: Path) -> None:
    path = tmp_path / "whole_model.pth"
    torch.save(nn.Conv2d(3, 3, 3) if payload == "module" else {"x": _Payload()}, path)
    with pytest.raises(IncompatibleWeightsError) as info:
        load_weights(path)
    message = str(info.value)
    assert str(path) in message
    assert "weights_only=True" in message
    assert "model.state_dict()" in message
    assert ("Conv2d" if payload == "module" else "_Payload") in message


def test_missing_empty_truncated_and_garbage_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsNotFoundError, match=r"nope.pth.*does not exist") as info:
        load_weights(missing)
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(WeightsNotFoundError, match="folder"):
        load_weights(tmp_path)

    empty = tmp_path / "empty.safetensors"
    empty.touch()
    with pytest.raises(WeightsReadError, match=r"empty.safetensors.*empty \(0 bytes\)"):
        load_weights(empty)

    good = save_weights(_tiny("srcnn"), tmp_path / "good.safetensors")
    data = good.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 40])
    with pytest.raises(WeightsReadError, match=r"cut.safetensors.*truncated or corrupt"):
        load_weights(cut)

    torch.save(_tiny("srcnn").state_dict(), tmp_path / "full.pth")
    pth = (tmp_path / "full.pth").read_bytes()
    for name, content in (("cut.pth", pth[: len(pth) // 2]), ("junk.pth", b"not weights" * 9)):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(WeightsReadError, match=re.escape(name)):
            load_weights(tmp_path / name)


def test_an_image_given_as_weights_is_named_as_one(tmp_path: Path) -> None:
    from PIL import Image

    for suffix, kind in ((".png", "PNG"), (".jpg", "JPEG"), (".pth", "PNG")):
        path = tmp_path / f"photo{suffix}"
        Image.new("RGB", (8, 8)).save(path, format="PNG" if kind == "PNG" else "JPEG")
        with pytest.raises(WeightsReadError, match=f"this is a {kind} image, not a weights file"):
            load_weights(path)
    # torch's advice to unpickle with weights_only=False never reaches the user.
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x02" + b"not weights" * 9)
    with pytest.raises(WeightsReadError) as info:
        load_weights(junk)
    assert "weights_only" not in str(info.value)


def test_unknown_layout_lists_keys_and_supported_layouts(tmp_path: Path) -> None:
    path = tmp_path / "imdn.pth"
    torch.save(
        {"fea_conv.weight": torch.zeros(4, 3, 3, 3), "IMDB1.c1.weight": torch.zeros(1)}, path
    )
    with pytest.raises(IncompatibleWeightsError) as info:
        load_weights(path)
    message = str(info.value)
    assert "fea_conv.weight (4, 3, 3, 3)" in message
    assert "imdn.pth" in message
    for layout in ("BasicSR RRDBNet", "ESRGAN (original)", "leftthomas SRGAN", "BasicSR EDSR"):
        assert layout in message


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(IncompatibleWeightsError, match="holds a list"):
        load_weights(path)
    torch.save({"epoch": 3, "weights": {"a": 1}}, path)
    with pytest.raises(IncompatibleWeightsError, match=r"top-level keys are 'epoch', 'weights'"):
        load_weights(path)


def test_shape_mismatch_names_the_key_and_both_shapes(tmp_path: Path) -> None:
    state = _tiny("rrdbnet", scale=4, num_blocks=2).state_dict()
    state["body.1.rdb1.conv2.weight"] = torch.zeros(4, 11, 3, 3)
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(
        IncompatibleWeightsError,
        match=re.escape("'body.1.rdb1.conv2.weight' has shape (4, 11, 3, 3) in the file but "),
    ) as info:
        load_weights(path)
    assert "(4, 12, 3, 3) in the model" in str(info.value)
    del state["body.1.rdb1.conv2.weight"]
    torch.save(state, path)
    missing = re.escape("missing body.1.rdb1.conv2.weight")
    with pytest.raises(IncompatibleWeightsError, match=missing):
        load_weights(path)


def test_srcnn_state_dict_needs_a_scale(tmp_path: Path) -> None:
    path = tmp_path / "srcnn.pth"
    torch.save(_tiny("srcnn", scale=3).state_dict(), path)
    with pytest.raises(IncompatibleWeightsError, match="do not record their scale"):
        load_weights(path)
    assert load_weights(path, scale=3).scale == 3


# --- load_model: names, files, catalog ------------------------------------------------------------


def test_load_model_by_name() -> None:
    model = load_model("bicubic")
    assert model.scale == 4
    assert load_model("Bicubic", scale=3).scale == 3
    with pytest.raises(
        MissingWeightsError, match=r"'srresnet' has no trained weights yet.*--weights"
    ):
        load_model("srresnet", scale=4)
    with pytest.raises(UnknownModelError, match="Did you mean 'srresnet'"):
        load_model("srresnt")
    with pytest.raises(UnsupportedScaleError):
        load_model("bicubic", scale=0)
    with pytest.raises(SuperresError, match="no model given"):
        load_model(None)


def test_load_model_checks_weights_against_name_and_scale(tmp_path: Path) -> None:
    path = save_weights(_tiny("edsr-baseline"), tmp_path / "edsr_x2.safetensors")
    assert vars(load_model(weights=path))["arch_name"] == "edsr-baseline"
    assert load_model("edsr-baseline", weights=path, scale=2).scale == 2
    load_model("edsr", weights=path)  # the same architecture (EDSR) with other defaults
    with pytest.raises(
        IncompatibleWeightsError, match=r"holds a edsr-baseline model, not 'srresnet'"
    ):
        load_model("srresnet", weights=path)
    with pytest.raises(UnsupportedScaleError, match=r"edsr_x2.safetensors.*x2 edsr-baseline"):
        load_model(weights=path, scale=4)


def _asset(file: str, sha256: str | None) -> Asset:
    """A shipped-weights record for a file in the (monkeypatched) package folder."""
    return Asset(
        name=f"zoo/{file}",
        filename=file,
        summary="test weights",
        needed_by="the test",
        licence="-",
        sha256=sha256,
        packaged=file,
    )


def _catalog(monkeypatch: pytest.MonkeyPatch, *entries: PretrainedWeights) -> None:
    registry: Registry[PretrainedWeights] = Registry("pretrained model", UnknownModelError)
    for entry in entries:
        registry.add(entry.name, entry)
    monkeypatch.setattr(weights_module, "WEIGHTS", registry)


def test_catalog_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _tiny("srresnet", scale=2)
    path = save_weights(source, tmp_path / "srresnet_x2.safetensors", dtype=torch.float16)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(assets, "PACKAGE_DIR", tmp_path)
    _catalog(
        monkeypatch,
        PretrainedWeights("srresnet-x2", "srresnet", 2, "test entry", _asset(path.name, sha)),
        PretrainedWeights("wrong-arch", "rrdbnet", 2, "catalog error", _asset(path.name, sha)),
        PretrainedWeights("bad-hash", "srresnet", 2, "corrupt", _asset(path.name, "0" * 64)),
    )
    model = load_model("srresnet-x2")
    assert vars(model)["arch_name"] == "srresnet"
    assert model.scale == 2
    with pytest.raises(UnsupportedScaleError, match="'srresnet-x2' upscales x2, not x4"):
        load_model("srresnet-x2", scale=4)
    with pytest.raises(UnknownModelError, match="Did you mean 'srresnet-x2'"):
        load_model("srresnet-x3")
    with pytest.raises(IncompatibleWeightsError, match="catalog says rrdbnet"):
        load_model("wrong-arch")
    with pytest.raises(ChecksumMismatchError):
        load_model("bad-hash")
    # An architecture without weights points at its pretrained entries.
    with pytest.raises(MissingWeightsError, match="srresnet-x2"):
        load_model("srresnet")
    # A catalog name with a file: the file's architecture must be the entry's.
    load_model("srresnet-x2", weights=path)


def test_catalog_file_shipped_in_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_weights(_tiny("srcnn", scale=3), tmp_path / "srcnn_x3.safetensors")
    monkeypatch.setattr(assets, "PACKAGE_DIR", tmp_path)
    _catalog(
        monkeypatch,
        PretrainedWeights("srcnn-x3", "srcnn", 3, "s", _asset("srcnn_x3.safetensors", None)),
    )
    assert load_model("srcnn-x3").scale == 3
    _catalog(
        monkeypatch, PretrainedWeights("gone", "srcnn", 3, "s", _asset("gone.safetensors", None))
    )
    with pytest.raises(AssetNotFoundError, match="reinstall superres"):
        load_model("gone")


def test_the_shipped_catalog_is_consistent() -> None:
    for name in weights_module.list_pretrained():
        entry = weights_module.get_pretrained(name)
        assert entry.architecture in list_models()
        assert name not in list_models()
        assert entry.asset.sha256 is not None
        assert entry.asset.packaged == f"weights/{name}.safetensors"


# --- superres eval --weights ----------------------------------------------------------------------


def _make_root(tmp_path: Path) -> Path:
    hr_dir = tmp_path / "root" / "Set5" / "HR"
    hr_dir.mkdir(parents=True)
    yy, xx = np.mgrid[0:40, 0:36]
    for i in range(2):
        img = np.stack(
            [np.sin(xx / (5 + i)) * 80 + 120, np.cos(yy / 7) * 60 + 100, (xx + yy) * 1.5 + 20],
            axis=-1,
        )
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(hr_dir / f"im{i}.png")
    return tmp_path / "root"


def _identity_srcnn(scale: int) -> nn.Module:
    """SRCNN whose convolutions pass RGB through: it outputs (ReLU of) its bicubic upscaling."""
    model = create_model("srcnn", scale=scale, in_channels=3, num_features=(4, 3))
    with torch.no_grad():
        for conv in model.modules():
            if not isinstance(conv, nn.Conv2d):
                continue
            conv.weight.zero_()
            assert conv.bias is not None
            conv.bias.zero_()
            k = conv.weight.shape[-1] // 2
            for c in range(3):
                conv.weight[c, c, k, k] = 1.0
    return model.eval()


def test_eval_with_weights_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _make_root(tmp_path)
    (tmp_path / "a").mkdir()
    first = save_weights(_identity_srcnn(2), tmp_path / "a" / "srcnn_identity.safetensors")
    (tmp_path / "b").mkdir()
    second = tmp_path / "b" / "srcnn_identity.pth"
    torch.save({"params": _identity_srcnn(3).state_dict()}, second)
    report = tmp_path / "r.json"
    base = ["eval", "--datasets", "set5", "--data-root", str(root), "-q", "--allow-modified"]
    # Scales default to the file's; bicubic runs at every scale.
    code = main(
        [*base, "--models", "bicubic", "--weights", str(first), "--output-json", str(report)]
    )
    assert code == 0
    rows = {(r["model"], r["scale"]): r for r in json.loads(report.read_text())["results"]}
    assert set(rows) == {("bicubic", 2), ("srcnn_identity", 2)}
    # Float bicubic through identity convolutions ~ MATLAB's uint8 bicubic.
    assert abs(rows["bicubic", 2]["psnr_y"] - rows["srcnn_identity", 2]["psnr_y"]) < 0.5
    assert "| srcnn_identity | x2 |" in capsys.readouterr().out

    # Two files with the same stem: the parent folder tells them apart. An SRCNN state dict does
    # not record its scale, so it is refused; with a scale-recording file it works.
    code = main([*base, "--weights", str(first), str(second), "--scales", "2", "3"])
    assert code == 1
    assert "do not record their scale" in capsys.readouterr().err
    third = save_weights(_identity_srcnn(3), tmp_path / "b" / "srcnn_identity.safetensors")
    code = main([*base, "--weights", str(first), str(third), "--output-json", str(report)])
    assert code == 0
    rows = {(r["model"], r["scale"]) for r in json.loads(report.read_text())["results"]}
    assert rows == {("srcnn_identity", 2), ("b/srcnn_identity", 3)}


def test_eval_weights_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _make_root(tmp_path)
    path = save_weights(_identity_srcnn(2), tmp_path / "x2.safetensors")
    base = ["eval", "--datasets", "set5", "--data-root", str(root), "-q"]
    assert main([*base, "--weights", str(path), "--scales", "4"]) == 2
    assert "upscales x2" in capsys.readouterr().err
    assert main([*base, "--models", "srresnet"]) == 1
    assert "no trained weights yet" in capsys.readouterr().err
    assert main(base) == 1
    assert "nothing to evaluate" in capsys.readouterr().err
    assert main([*base, "--weights", str(tmp_path / "missing.pth")]) == 1
    assert "missing.pth" in capsys.readouterr().err


# --- real checkpoints (../shared/data) ------------------------------------------------------------


@pytest.mark.data
def test_leftthomas_srgan_checkpoint(data_root: Path) -> None:
    from superres.data.datasets import BenchmarkSet
    from superres.evaluation.protocol import evaluate_image

    path = data_root / "weights" / "srgan_leftthomas" / "netG_epoch_4_100.pth"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    model = load_weights(path)
    assert vars(model)["weights_metadata"]["layout"] == "leftthomas SRGAN"
    assert vars(model)["config"] == {
        "scale": 4,
        "in_channels": 3,
        "out_channels": None,
        "num_features": 64,
        "num_blocks": 5,
        "use_batchnorm": True,
        "conv_bias": True,
        "body_tail": "prelu",
        "output_activation": "tanh",
    }
    raw = torch.load(path, map_location="cpu", weights_only=True)
    x = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), _leftthomas_forward(raw, x), atol=1e-5, rtol=1e-5)

    baby = next(p for p in BenchmarkSet("set5", 4, root=data_root) if p.name == "baby")
    scored = evaluate_image(model, baby, 4)
    psnr_model, ssim_model = scored.psnr_y, scored.ssim_y
    psnr_bicubic = evaluate_image(create_model("bicubic", scale=4), baby, 4).psnr_y
    # Measured: 32.51 dB / 0.869 against bicubic's 31.79 dB.
    assert psnr_model > 32.2
    assert psnr_model > psnr_bicubic + 0.4
    assert ssim_model > 0.86


@pytest.mark.data
def test_real_unsupported_checkpoint_is_refused_clearly(data_root: Path) -> None:
    path = data_root / "weights" / "imdn" / "IMDN_x4.pth"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    with pytest.raises(IncompatibleWeightsError, match=r"fea_conv\.weight.*Supported layouts"):
        load_weights(path)
