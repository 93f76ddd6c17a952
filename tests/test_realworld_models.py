"""Real-ESRGAN's networks from their own checkpoints: SRVGGNetCompact and the x2/x1 RRDBNet.

The checkpoints are built here by hand in Real-ESRGAN's key layout (written from the upstream
definitions: ``realesrgan/archs/srvgg_arch.py`` and BasicSR's ``basicsr/archs/rrdbnet_arch.py``),
saved as ``.pth`` under ``params_ema`` as Real-ESRGAN ships them, loaded through the public path
(``load_model(weights=...)``, what ``superres upscale --weights FILE`` runs) and compared with a
forward pass written below in ``torch.nn.functional``, so a wrong wiring, a misread
hyperparameter or a wrong channel order fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from superres.cli import main
from superres.errors import IncompatibleWeightsError, SuperresError
from superres.models import create_model
from superres.models.descriptor import describe_network
from superres.models.weights import load_model

State = dict[str, torch.Tensor]


def _randn(generator: torch.Generator, *shape: int, std: float) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * std


def _conv(state: State, name: str, c_out: int, c_in: int, g: torch.Generator) -> None:
    # std ~ 1 / sqrt(fan_in): activations stay O(1) through a deep random chain.
    state[f"{name}.weight"] = _randn(g, c_out, c_in, 3, 3, std=(c_in * 9) ** -0.5)
    state[f"{name}.bias"] = _randn(g, c_out, std=0.05)


def _rand_image(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _save(tmp_path: Path, name: str, ema: State, plain: State | None = None) -> Path:
    """A Real-ESRGAN release file: ``params_ema`` (used at inference) and ``params``."""
    path = tmp_path / name
    torch.save({"params_ema": ema, "params": ema if plain is None else plain}, path)
    return path


# --- independent references: pixel (un)shuffle and nearest upsampling by indexing ---------------


def _shuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """Sub-pixel rearrangement: channel ``c r^2 + i r + j`` -> pixel ``(h r + i, w r + j)``."""
    n, c, h, w = x.shape
    out = torch.empty(n, c // (r * r), h * r, w * r)
    for i in range(r):
        for j in range(r):
            out[:, :, i::r, j::r] = x[:, i * r + j :: r * r]
    return out


def _unshuffle(x: torch.Tensor, r: int) -> torch.Tensor:
    """The inverse: pixel ``(h r + i, w r + j)`` of channel ``c`` -> channel ``c r^2 + i r + j``."""
    n, c, h, w = x.shape
    out = torch.empty(n, c * r * r, h // r, w // r)
    for i in range(r):
        for j in range(r):
            out[:, i * r + j :: r * r] = x[:, :, i::r, j::r]
    return out


def _nearest(x: torch.Tensor, r: int) -> torch.Tensor:
    return x.repeat_interleave(r, dim=2).repeat_interleave(r, dim=3)


def _apply(state: State, name: str, x: torch.Tensor) -> torch.Tensor:
    return F.conv2d(x, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)


# --- SRVGGNetCompact ------------------------------------------------------------------------------


def _compact_state(
    *, num_feat: int, num_conv: int, scale: int, channels: int = 3, seed: int = 0
) -> State:
    """Real-ESRGAN's ``SRVGGNetCompact`` keys: ``body`` holds conv, PReLU, conv, PReLU, ..., conv
    (``body.0`` in -> feat, ``body.<2k+1>`` PReLU slopes (feat,), ``body.<2 num_conv + 2>`` feat ->
    out * upscale^2)."""
    g = torch.Generator().manual_seed(seed)
    state: State = {}
    _conv(state, "body.0", num_feat, channels, g)
    for k in range(num_conv + 1):
        state[f"body.{2 * k + 1}.weight"] = torch.rand(num_feat, generator=g) * 0.5
        last = k == num_conv
        c_out = channels * scale * scale if last else num_feat
        _conv(state, f"body.{2 * k + 2}", c_out, num_feat, g)
    return state


def _compact_reference(state: State, x: torch.Tensor, scale: int) -> torch.Tensor:
    last = max(int(k.split(".")[1]) for k in state)
    out = x
    for i in range(0, last + 1, 2):
        out = _apply(state, f"body.{i}", out)
        if i < last:
            slope = state[f"body.{i + 1}.weight"].view(1, -1, 1, 1)
            out = torch.where(out >= 0, out, slope * out)
    return _shuffle(out, scale) + _nearest(x, scale)


@pytest.mark.parametrize(
    ("num_feat", "num_conv", "scale", "channels"),
    [(8, 4, 4, 3), (6, 2, 2, 3), (5, 3, 3, 1)],
)
def test_compact_checkpoint_matches_the_reference(
    tmp_path: Path, num_feat: int, num_conv: int, scale: int, channels: int
) -> None:
    ema = _compact_state(num_feat=num_feat, num_conv=num_conv, scale=scale, channels=channels)
    plain = _compact_state(
        num_feat=num_feat, num_conv=num_conv, scale=scale, channels=channels, seed=9
    )
    model = load_model(weights=_save(tmp_path, "realesr-tiny.pth", ema, plain))
    described = describe_network(model)
    assert described.architecture == "compact"
    assert described.config is not None
    assert dict(described.config) == {
        "scale": scale,
        "in_channels": channels,
        "out_channels": None,
        "num_features": num_feat,
        "num_convs": num_conv,
        "activation": "prelu",
    }
    assert (described.scale, described.size_multiple) == (scale, 1)
    x = _rand_image(2, channels, 7, 9)
    with torch.no_grad():
        got = model(x)
    assert got.shape == (2, channels, 7 * scale, 9 * scale)
    # params_ema, not params: the weights Real-ESRGAN itself runs.
    torch.testing.assert_close(got, _compact_reference(ema, x, scale), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, _compact_reference(plain, x, scale), atol=1e-3)


@pytest.mark.parametrize("activation", ["prelu", "relu", "leakyrelu"])
def test_a_fresh_compact_network_passes_gradient_to_its_first_layer(activation: str) -> None:
    # PyTorch's default init shrank the signal at each of the 34 convolutions: the first ones
    # of a fresh 32-convolution network got gradients near 1e-12 and never trained.
    torch.manual_seed(0)
    net = create_model("compact", scale=4, num_convs=32, activation=activation)
    x = torch.rand(2, 3, 24, 24)
    (net(x) - torch.rand(2, 3, 96, 96)).abs().mean().backward()
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]  # in chain order
    first_grad, last_grad = convs[0].weight.grad, convs[-1].weight.grad
    assert first_grad is not None
    assert last_grad is not None
    first, last = first_grad.abs().mean(), last_grad.abs().mean()
    assert first > 0.05 * last, (float(first), float(last))
    # and it starts close to its nearest-neighbour base (the last convolution is scaled down)
    with torch.no_grad():
        base = F.interpolate(x, scale_factor=4.0, mode="nearest")
        assert float((net(x) - base).abs().mean()) < 0.2


@pytest.mark.parametrize(
    ("release", "num_conv", "params"),
    [
        # conv 3->64 (1,792) + 33 PReLU (64 each) + 32 x conv 64->64 (36,928) + conv 64->48
        # (27,696) = 1,213,296; with 16 convolutions 621,424.
        ("realesr-general-x4v3.pth", 32, 1_213_296),
        ("realesr-animevideov3.pth", 16, 621_424),
    ],
)
def test_published_compact_sizes_load(
    tmp_path: Path, release: str, num_conv: int, params: int
) -> None:
    state = _compact_state(num_feat=64, num_conv=num_conv, scale=4)
    model = load_model(weights=_save(tmp_path, release, state))
    assert sum(p.numel() for p in model.parameters()) == params
    assert describe_network(model).config == {
        "scale": 4,
        "in_channels": 3,
        "out_channels": None,
        "num_features": 64,
        "num_convs": num_conv,
        "activation": "prelu",
    }
    x = _rand_image(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _compact_reference(state, x, 4), rtol=1e-4, atol=1e-4)


def _drop(state: State, key: str) -> State:
    return {k: v for k, v in state.items() if k != key}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        # A PReLU in the middle gone: the file cannot be the network its ends describe.
        (lambda s: _drop(s, "body.3.weight"), r"missing body\.3\.weight"),
        # A middle convolution of the wrong width.
        (lambda s: {**s, "body.4.weight": torch.zeros(8, 7, 3, 3)}, r"'body\.4\.weight' has shape"),
        # The last convolution cut off: the one before it (8 outputs) is no in x scale^2.
        (lambda s: _drop(_drop(s, "body.10.weight"), "body.10.bias"), r"8 outputs"),
        # ReLU/LeakyReLU versions store no slopes: which one cannot be told.
        (lambda s: {k: v for k, v in s.items() if int(k.split(".")[1]) % 2 == 0}, r"without PReLU"),
    ],
    ids=["missing-prelu", "wrong-shape", "no-last-conv", "no-activation-weights"],
)
def test_bad_compact_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, message: str
) -> None:
    state = edit(_compact_state(num_feat=8, num_conv=4, scale=4))  # type: ignore[operator]
    path = _save(tmp_path, "bad.pth", state)
    with pytest.raises(IncompatibleWeightsError, match=message):
        load_model(weights=path)
    _refused_by_the_cli(tmp_path, path, capsys, message)


def test_truncated_compact_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _save(
        tmp_path, "realesr-general-x4v3.pth", _compact_state(num_feat=8, num_conv=4, scale=4)
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download
    with pytest.raises(SuperresError):
        load_model(weights=path)
    _refused_by_the_cli(tmp_path, path, capsys, r"corrupt|truncated|incomplete")


def _refused_by_the_cli(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str], message: str
) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    out = tmp_path / "out.png"
    capsys.readouterr()
    assert main(["upscale", str(src), "--weights", str(weights), "-o", str(out), "-q"]) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(weights) in lines[0]
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists()


def test_models_command_lists_compact(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    compact = [line for line in lines if line.split()[:1] == ["compact"]]
    assert len(compact) == 1
    assert "scales: 2,3,4" in compact[0]
    assert "SRVGGNetCompact" in compact[0]
    rrdbnet = next(line for line in lines if line.split()[:1] == ["rrdbnet"])
    assert "scales: 1,2,4,8" in rrdbnet


def test_upscale_cli_runs_a_compact_checkpoint(tmp_path: Path) -> None:
    state = _compact_state(num_feat=8, num_conv=3, scale=4, seed=3)
    # Small weights: the output stays near the nearest-upscaled input, mostly inside [0, 1].
    state = {k: v * 0.2 if k.endswith("bias") or v.dim() == 4 else v for k, v in state.items()}
    weights = _save(tmp_path, "realesr-general-x4v3.pth", state)
    pixels = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    src = tmp_path / "photo.png"
    Image.fromarray(pixels).save(src)
    out = tmp_path / "photo_x4.png"
    assert main(["upscale", str(src), "--weights", str(weights), "-o", str(out), "-q"]) == 0
    got = np.asarray(Image.open(out)).astype(int)
    assert got.shape == (36, 44, 3)
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        ref = _compact_reference(state, x, 4)[0].permute(1, 2, 0).clamp(0, 1).numpy()
    expected = np.floor(ref * 255.0 + 0.5).astype(int)
    assert np.abs(got - expected).max() <= 1


# --- RRDBNet: BasicSR's layout at x4, and pixel-unshuffled at x2 (RealESRGAN_x2plus) and x1 -------


def _rrdb_state(
    *, in_ch: int, num_feat: int, num_block: int, grow: int, seed: int = 0, channels: int = 3
) -> State:
    """BasicSR's ``RRDBNet`` keys: ``conv_first`` (num_feat, in_ch),
    ``body.<b>.rdb<1..3>.conv<1..5>`` (conv k sees num_feat + (k - 1) * grow channels; conv1-4
    output grow, conv5 num_feat), ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``
    (num_feat -> num_feat), ``conv_last`` (num_feat -> channels). ``in_ch`` is channels x 4 at x2,
    x 16 at x1 (pixel-unshuffled)."""
    g = torch.Generator().manual_seed(seed)
    state: State = {}
    _conv(state, "conv_first", num_feat, in_ch, g)
    for b in range(num_block):
        for r in (1, 2, 3):
            for k in range(1, 6):
                c_out = num_feat if k == 5 else grow
                _conv(state, f"body.{b}.rdb{r}.conv{k}", c_out, num_feat + (k - 1) * grow, g)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        _conv(state, name, num_feat, num_feat, g)
    _conv(state, "conv_last", channels, num_feat, g)
    return state


def _rrdb_reference(state: State, x: torch.Tensor, unshuffle: int) -> torch.Tensor:
    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t >= 0, t, 0.2 * t)

    feat = _apply(state, "conv_first", _unshuffle(x, unshuffle) if unshuffle > 1 else x)
    trunk = feat
    num_block = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    for b in range(num_block):
        block_in = trunk
        for r in (1, 2, 3):
            outs = [trunk]
            for k in range(1, 6):
                y = _apply(state, f"body.{b}.rdb{r}.conv{k}", torch.cat(outs, 1))
                outs.append(lrelu(y) if k < 5 else y)
            trunk = trunk + 0.2 * outs[-1]
        trunk = block_in + 0.2 * trunk
    feat = feat + _apply(state, "conv_body", trunk)
    for up in ("conv_up1", "conv_up2"):
        feat = lrelu(_apply(state, up, _nearest(feat, 2)))
    return _apply(state, "conv_last", lrelu(_apply(state, "conv_hr", feat)))


@pytest.mark.parametrize(
    ("scale", "factor", "release"),
    [(2, 2, "RealESRGAN_x2plus.pth"), (1, 4, "RealESRNet_x1.pth"), (4, 1, "RealESRGAN_x4plus.pth")],
)
def test_rrdbnet_checkpoint_matches_the_reference(
    tmp_path: Path, scale: int, factor: int, release: str
) -> None:
    state = _rrdb_state(in_ch=3 * factor * factor, num_feat=8, num_block=2, grow=4)
    model = load_model(weights=_save(tmp_path, release, state))
    described = describe_network(model)
    assert described.architecture == "rrdbnet"
    assert described.config is not None
    assert described.config["pixel_unshuffle"] is (True if factor > 1 else None)
    assert (described.scale, described.in_channels, described.size_multiple) == (scale, 3, factor)
    x = _rand_image(2, 3, 12, 16, seed=4)
    with torch.no_grad():
        got = model(x)
    assert got.shape == (2, 3, 12 * scale, 16 * scale)
    torch.testing.assert_close(got, _rrdb_reference(state, x, factor), rtol=1e-4, atol=1e-5)


def test_rrdbnet_x4_keeps_basicsr_key_names_and_shapes() -> None:
    expected = _rrdb_state(in_ch=3, num_feat=8, num_block=2, grow=4)
    model = create_model("rrdbnet", scale=4, num_features=8, num_blocks=2, num_grow_ch=4)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {
        k: tuple(v.shape) for k, v in expected.items()
    }
    assert describe_network(model).size_multiple == 1


def test_rrdbnet_x2_unshuffled_is_built_directly() -> None:
    model = create_model(
        "rrdbnet", scale=2, pixel_unshuffle=True, num_features=8, num_blocks=1, num_grow_ch=4
    ).eval()
    state = _rrdb_state(in_ch=12, num_feat=8, num_block=1, grow=4, seed=5)
    model.load_state_dict(state)
    x = _rand_image(1, 3, 6, 10, seed=6)
    with torch.no_grad():
        got = model(x)
    assert got.shape == (1, 3, 12, 20)
    torch.testing.assert_close(got, _rrdb_reference(state, x, 2), rtol=1e-4, atol=1e-5)
    # The default x2 is still ESRGAN's one upsampling stage, not this layout.
    default = create_model("rrdbnet", scale=2, num_features=8, num_blocks=1, num_grow_ch=4)
    assert not hasattr(default, "conv_up2")
    assert default.state_dict()["conv_first.weight"].shape[1] == 3


@pytest.mark.parametrize(
    ("scale", "kwargs", "message"),
    [
        (4, {"pixel_unshuffle": True}, "scale 1 or 2, not 4"),
        (1, {"pixel_unshuffle": False}, "needs pixel_unshuffle=True"),
    ],
)
def test_rrdbnet_refuses_impossible_unshuffle_scales(
    scale: int, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(SuperresError, match=message):
        create_model("rrdbnet", scale=scale, num_features=8, num_blocks=1, num_grow_ch=4, **kwargs)


def test_upscale_cli_pads_an_odd_image_for_the_x2_layout(tmp_path: Path) -> None:
    state = _rrdb_state(in_ch=12, num_feat=8, num_block=1, grow=4, seed=7)
    state = {k: v * 0.5 for k, v in state.items()}
    weights = _save(tmp_path, "RealESRGAN_x2plus.pth", state)
    src = tmp_path / "odd.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (11, 13, 3), dtype=np.uint8)).save(
        src
    )
    out = tmp_path / "odd_x2.png"
    assert main(["upscale", str(src), "--weights", str(weights), "-o", str(out), "-q"]) == 0
    assert np.asarray(Image.open(out)).shape == (22, 26, 3)
