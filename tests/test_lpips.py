"""LPIPS (superres.metrics.lpips) and its trunks (superres.models.alexnet, .vgg, .squeezenet).

Golden-test design. Only the SqueezeNet trunk has real ImageNet weights offline (the data root's
features-only copy of torchvision's ``squeezenet1_1``), so LPIPS-squeeze v0.1 is checked end to
end twice, independently:

* against the published-package values on the README triplet (``lpips`` 0.1.4 with this backbone,
  as SOURCES.md records them): d(ref, p0) = 0.711048, d(ref, p1) = 0.147902;
* against a third-party ONNX export of ``lpips.LPIPS(net='squeeze')`` run in onnxruntime (another
  runtime, another implementation of every convolution), on the triplet and on real Set5 pairs
  (HR vs the official bicubic x4 LR upscaled back, HR vs a seeded noisy copy).

AlexNet and VGG16 weights are 233 MiB and 528 MiB, not available offline; their trunks are
checked against torchvision's documented ``features`` state-dict layouts (keys and shapes written
out below by hand, not derived from our code), and the whole metric runs on synthetic
torchvision-keyed files. Missing trunk weights must raise a named error, never fall back to
random weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from superres import assets
from superres.errors import (
    AssetNotFoundError,
    ConfigError,
    ImageTooSmallError,
    IncompatibleWeightsError,
    InvalidImageError,
    SuperresError,
)
from superres.imaging.resize import imresize
from superres.io.hub import ChecksumMismatchError
from superres.io.image import read_image
from superres.losses import LPIPSLoss, build_loss
from superres.metrics import LPIPS, lpips
from superres.metrics.lpips import LPIPS_TRUNKS
from superres.models.alexnet import LPIPS_ALEX_LAYERS, AlexNetFeatures
from superres.models.squeezenet import SqueezeNet11Features
from superres.models.vgg import LPIPS_VGG16_LAYERS, VGG16Features

lpips_module = importlib.import_module("superres.metrics.lpips")  # the name lpips is the function

# torchvision ``alexnet().features.state_dict()``: Conv2d(3,64,11,4,2), ReLU, MaxPool,
# Conv2d(64,192,5,p2), ReLU, MaxPool, Conv2d(192,384,3,p1), ReLU, Conv2d(384,256,3,p1), ReLU,
# Conv2d(256,256,3,p1), ReLU, MaxPool.
ALEXNET_FEATURES: dict[str, tuple[int, ...]] = {
    "features.0.weight": (64, 3, 11, 11),
    "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5),
    "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3),
    "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3),
    "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3),
    "features.10.bias": (256,),
}

# torchvision ``vgg16().features.state_dict()`` (configuration D, no batch norm): 13 convolutions
# at these indices, pools at 4, 9, 16, 23, 30.
VGG16_FEATURES: dict[str, tuple[int, ...]] = {}
for _index, (_cin, _cout) in {
    0: (3, 64), 2: (64, 64),
    5: (64, 128), 7: (128, 128),
    10: (128, 256), 12: (256, 256), 14: (256, 256),
    17: (256, 512), 19: (512, 512), 21: (512, 512),
    24: (512, 512), 26: (512, 512), 28: (512, 512),
}.items():  # fmt: skip
    VGG16_FEATURES[f"features.{_index}.weight"] = (_cout, _cin, 3, 3)
    VGG16_FEATURES[f"features.{_index}.bias"] = (_cout,)

HEAD_CHANNELS = {
    "alex": (64, 192, 384, 256, 256),
    "vgg": (64, 128, 256, 512, 512),
    "squeeze": (64, 128, 256, 384, 384, 512, 512),
}

GOLDEN_P0 = 0.711048
GOLDEN_P1 = 0.147902


# --- helpers --------------------------------------------------------------------------------------


def _load(path: Path) -> torch.Tensor:
    """A PNG as float32 (1, 3, H, W) RGB in [0, 1] (Pillow RGB / 255)."""
    return read_image(path).rgb.unsqueeze(0)


def _synthetic_state(
    layout: dict[str, tuple[int, ...]], *, seed: int = 0, classifier: bool = True
) -> dict[str, torch.Tensor]:
    """Random tensors with torchvision's keys and shapes (plus small ``classifier.*`` entries)."""
    g = torch.Generator().manual_seed(seed)
    state = {key: 0.05 * torch.randn(shape, generator=g) for key, shape in layout.items()}
    if classifier:  # real ones are (4096, 9216) etc.; they must be ignored whatever their shape
        state["classifier.1.weight"] = torch.zeros(4, 4)
        state["classifier.6.bias"] = torch.zeros(4)
    return state


def _synthetic_heads(path: Path, net: str) -> Path:
    """A heads file keyed like the authors' release: ``linK.model.1.weight``, non-negative."""
    g = torch.Generator().manual_seed(1)
    state = {
        f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1
        for k, c in enumerate(HEAD_CHANNELS[net])
    }
    torch.save(state, path)
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network, empty superres and torch caches, an empty data root (returned)."""
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SUPERRES_DATA", raising=False)
    lpips_module._cached.cache_clear()
    root = tmp_path / "data"
    root.mkdir()
    return root


@pytest.fixture
def squeeze(data_root: Path) -> LPIPS:
    return LPIPS(net="squeeze", data_root=data_root)


# --- golden values (real weights) -----------------------------------------------------------------


@pytest.mark.data
def test_squeeze_v01_matches_the_published_values(data_root: Path, squeeze: LPIPS) -> None:
    folder = data_root / "lpips_examples"
    ref, p0, p1 = (_load(folder / f"{n}.png") for n in ("ex_ref", "ex_p0", "ex_p1"))
    assert squeeze(ref, p0).item() == pytest.approx(GOLDEN_P0, abs=1e-5)
    assert squeeze(ref, p1).item() == pytest.approx(GOLDEN_P1, abs=1e-5)
    # The pure function, batched: N pairs -> N scores, same values.
    scores = lpips(torch.cat([ref, ref]), torch.cat([p0, p1]), net="squeeze", data_root=data_root)
    assert scores.shape == (2,)
    assert scores.tolist() == pytest.approx([GOLDEN_P0, GOLDEN_P1], abs=1e-5)
    # (3, H, W) is one image.
    assert lpips(ref[0], p1[0], net="squeeze", data_root=data_root).shape == (1,)


@pytest.mark.data
def test_squeeze_agrees_with_the_onnx_export(data_root: Path, squeeze: LPIPS) -> None:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        str(data_root / "weights" / "lpips" / "onnx" / "lpips_sq.onnx"),
        providers=["CPUExecutionProvider"],
    )
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def onnx_score(a: torch.Tensor, b: torch.Tensor) -> float:
        # The graph takes ImageNet-normalised RGB and maps it back to [-1, 1] itself.
        feeds = {"ref": ((a - mean) / std).numpy(), "dist": ((b - mean) / std).numpy()}
        return float(np.asarray(session.run(["score"], feeds)[0]).reshape(-1)[0])

    folder = data_root / "lpips_examples"
    ref, p0, p1 = (_load(folder / f"{n}.png") for n in ("ex_ref", "ex_p0", "ex_p1"))
    pairs = [(ref, p0), (ref, p1)]
    hr = _load(data_root / "Set5" / "HR" / "bird.png")  # 288x288, a multiple of 4
    bicubic = imresize(_load(data_root / "Set5" / "LR_bicubic_x4" / "bird.png"), 4).clamp(0, 1)
    pairs.append((hr, bicubic))
    hr = _load(data_root / "Set5" / "HR" / "butterfly.png")
    g = torch.Generator().manual_seed(0)
    pairs.append((hr, (hr + 0.05 * torch.randn(hr.shape, generator=g)).clamp(0, 1)))

    for a, b in pairs:
        ours = squeeze(a, b).item()
        assert ours == pytest.approx(onnx_score(a, b), abs=1e-5)
        assert 0.05 < ours < 1.0  # a real, non-trivial distance


@pytest.mark.data
def test_squeeze_v00_heads_and_explicit_paths(data_root: Path, squeeze: LPIPS) -> None:
    weights = data_root / "weights"
    explicit = LPIPS(
        net="squeeze",
        heads=weights / "lpips" / "v0.1" / "squeeze.pth",
        trunk_weights=weights / "squeezenet1_1_imagenet_features.safetensors",
        data_root=Path("/nonexistent"),
    )
    folder = data_root / "lpips_examples"
    ref, p0 = _load(folder / "ex_ref.png"), _load(folder / "ex_p0.png")
    assert explicit(ref, p0).item() == squeeze(ref, p0).item()
    v00 = LPIPS(net="squeeze", version="0.0", data_root=data_root)
    assert v00(ref, p0).item() != pytest.approx(GOLDEN_P0, abs=1e-3)  # other heads, no scaling
    assert v00(ref, p0).item() > 0


@pytest.mark.data
def test_squeeze_is_a_usable_loss(data_root: Path, squeeze: LPIPS) -> None:
    gt = _load(data_root / "lpips_examples" / "ex_ref.png")
    sr = _load(data_root / "lpips_examples" / "ex_p0.png").requires_grad_(True)
    assert squeeze(gt, gt.clone()).tolist() == [0.0]
    loss = squeeze(sr, gt).sum()
    loss.backward()
    assert sr.grad is not None
    assert torch.isfinite(sr.grad).all()
    assert sr.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in squeeze.parameters())
    # A gradient step towards gt lowers the distance.
    with torch.no_grad():
        stepped = sr - 0.5 * sr.grad / sr.grad.abs().max()
        assert squeeze(stepped, gt).item() < loss.item()
    parent = nn.Sequential(squeeze)
    parent.train()
    assert not squeeze.training


@pytest.mark.data
def test_lpips_training_loss_is_the_metric(data_root: Path, squeeze: LPIPS) -> None:
    gt = _load(data_root / "lpips_examples" / "ex_ref.png")
    sr = _load(data_root / "lpips_examples" / "ex_p0.png").requires_grad_(True)
    loss = build_loss("lpips", net="squeeze", data_root=data_root, loss_weight=2.0)
    assert isinstance(loss, LPIPSLoss)
    value = loss(sr, gt)
    assert value.item() == pytest.approx(2.0 * squeeze(sr, gt).item(), abs=1e-7)
    value.backward()
    assert sr.grad is not None
    assert sr.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    per_image = build_loss("lpips", data_root=data_root, reduction="none")(
        sr.expand(2, -1, -1, -1), gt.expand(2, -1, -1, -1)
    )
    assert per_image.shape == (2,)
    with pytest.raises(ConfigError, match="reduction"):
        build_loss("lpips", data_root=data_root, reduction="avg")


def test_lpips_training_loss_names_missing_weights(offline: Path) -> None:
    with pytest.raises(AssetNotFoundError, match=r"superres assets get lpips/v0\.1/squeeze"):
        build_loss("lpips", net="squeeze", data_root=offline)


# --- trunks: torchvision's layouts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "layout"), [(AlexNetFeatures, ALEXNET_FEATURES), (VGG16Features, VGG16_FEATURES)]
)
def test_trunks_load_torchvision_state_dicts_strictly(
    cls: type[AlexNetFeatures] | type[VGG16Features],
    layout: dict[str, tuple[int, ...]],
    tmp_path: Path,
) -> None:
    trunk = cls()
    assert {k: tuple(v.shape) for k, v in trunk.state_dict().items()} == layout
    state = _synthetic_state(layout)
    trunk.load_state_dict(state)  # strict; classifier.* ignored
    for key, value in trunk.state_dict().items():
        assert torch.equal(value, state[key])
    path = tmp_path / "trunk.pth"
    torch.save(state, path)
    loaded = cls(weights=path)
    assert loaded.pretrained
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    # A missing key or a wrong shape is a named error, not a silent partial load.
    with pytest.raises(IncompatibleWeightsError, match=r"features\.0\.weight"):
        cls().load_state_dict({k: v for k, v in state.items() if k != "features.0.weight"})
    bad = dict(state)
    bad["features.0.weight"] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(IncompatibleWeightsError, match=cls.layout.arch):
        cls().load_state_dict(bad)


def test_trunk_layers_and_shapes() -> None:
    x = torch.rand(2, 3, 64, 48)
    alex = AlexNetFeatures()(x)
    assert list(alex) == list(LPIPS_ALEX_LAYERS)
    assert [tuple(v.shape) for v in alex.values()] == [
        (2, 64, 15, 11),
        (2, 192, 7, 5),
        (2, 384, 3, 2),
        (2, 256, 3, 2),
        (2, 256, 3, 2),
    ]
    vgg = VGG16Features()(x)
    assert list(vgg) == list(LPIPS_VGG16_LAYERS)
    assert [tuple(v.shape[1:]) for v in vgg.values()] == [
        (64, 64, 48),
        (128, 32, 24),
        (256, 16, 12),
        (512, 8, 6),
        (512, 4, 3),
    ]
    assert len(VGG16Features(layers=["relu2_2"]).features) == 9  # truncated
    with pytest.raises(ConfigError, match="relu5_4"):
        VGG16Features(layers=["relu5_4"])  # a VGG19 layer
    with pytest.raises(ConfigError, match="non-empty list"):
        AlexNetFeatures(layers="relu1")


# --- the metric on synthetic torchvision-keyed files ----------------------------------------------


@pytest.mark.parametrize(("net", "layout"), [("alex", ALEXNET_FEATURES), ("vgg", VGG16_FEATURES)])
def test_alex_and_vgg_run_end_to_end_on_synthetic_files(
    net: str, layout: dict[str, tuple[int, ...]], tmp_path: Path, offline: Path
) -> None:
    trunk_path = tmp_path / "trunk.pth"
    torch.save(_synthetic_state(layout), trunk_path)
    heads = _synthetic_heads(tmp_path / "heads.pth", net)
    model = LPIPS(net=net, heads=heads, trunk_weights=trunk_path, data_root=offline)
    g = torch.Generator().manual_seed(0)
    size = model.min_size
    a = torch.rand(3, 3, size, size + 5, generator=g)
    b = torch.rand(3, 3, size, size + 5, generator=g)
    scores = model(a, b)
    assert scores.shape == (3,)
    assert (scores > 0).all()
    assert model(a, a).tolist() == [0.0, 0.0, 0.0]
    # The pure function gives the same numbers (its cached module, the same files).
    same = lpips(a, b, net=net, heads=heads, trunk_weights=trunk_path, data_root=offline)
    torch.testing.assert_close(same, scores)
    a.requires_grad_(True)
    model(a, b).sum().backward()
    assert a.grad is not None
    assert torch.isfinite(a.grad).all()
    assert a.grad.abs().sum() > 0
    with pytest.raises(ImageTooSmallError, match=str(size)):
        model(a[..., : size - 1, :], b[..., : size - 1, :])


def test_lpips_follows_the_reference_formula(tmp_path: Path, offline: Path) -> None:
    """A hand-written LPIPS v0.1 (the authors' forward, line by line) on the same modules."""
    trunk_path = tmp_path / "alex.pth"
    torch.save(_synthetic_state(ALEXNET_FEATURES, seed=3), trunk_path)
    heads_path = _synthetic_heads(tmp_path / "alex_heads.pth", "alex")
    model = LPIPS(net="alex", heads=heads_path, trunk_weights=trunk_path, data_root=offline)
    trunk = AlexNetFeatures(normalize_input=False, weights=trunk_path)
    heads = torch.load(heads_path, weights_only=True)
    g = torch.Generator().manual_seed(5)
    in0, in1 = torch.rand(2, 3, 40, 36, generator=g), torch.rand(2, 3, 40, 36, generator=g)

    shift = torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None]
    scale = torch.tensor([0.458, 0.448, 0.450])[None, :, None, None]
    outs0 = trunk((2 * in0 - 1 - shift) / scale)
    outs1 = trunk((2 * in1 - 1 - shift) / scale)
    val = torch.zeros(2, 1, 1, 1)
    for kk, name in enumerate(LPIPS_ALEX_LAYERS):
        f0, f1 = outs0[name], outs1[name]
        f0 = f0 / (torch.sqrt(torch.sum(f0**2, dim=1, keepdim=True)) + 1e-10)
        f1 = f1 / (torch.sqrt(torch.sum(f1**2, dim=1, keepdim=True)) + 1e-10)
        diff = (f0 - f1) ** 2
        lin = torch.nn.functional.conv2d(diff, heads[f"lin{kk}.model.1.weight"])
        val = val + lin.mean([2, 3], keepdim=True)
    torch.testing.assert_close(model(in0, in1), val.view(2), rtol=1e-5, atol=1e-7)


# --- weights: never random, always named ----------------------------------------------------------


@pytest.mark.parametrize("net", ["alex", "vgg", "squeeze"])
def test_missing_trunk_weights_raise_a_named_error(net: str, tmp_path: Path, offline: Path) -> None:
    heads = _synthetic_heads(tmp_path / "heads.pth", net)
    trunk = assets.get_asset(LPIPS_TRUNKS[net][-1])
    with pytest.raises(AssetNotFoundError, match=trunk.filename) as info:
        LPIPS(net=net, heads=heads, data_root=offline)
    message = str(info.value)
    assert "--lpips-trunk" in message
    assert f"superres assets get {trunk.name}" in message
    assert str(Path(offline.parent, "cache", "hub", trunk.filename)) in message
    assert str(Path(offline.parent, "torch", "hub", "checkpoints", trunk.filename)) in message
    if net == "squeeze":
        assert "squeezenet1_1_imagenet_features.safetensors" in message
    assert isinstance(info.value, SuperresError)
    with pytest.raises(AssetNotFoundError):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), net=net, heads=heads)
    with pytest.raises(AssetNotFoundError, match="does not exist"):
        LPIPS(net=net, heads=heads, trunk_weights=tmp_path / "nope.pth", data_root=offline)


def test_missing_heads_raise_a_named_error(offline: Path) -> None:
    with pytest.raises(AssetNotFoundError, match=r"lpips-v0\.1-vgg\.pth") as info:
        LPIPS(net="vgg", data_root=offline)
    assert str(assets.get_asset("lpips/v0.1/vgg").sha256) in str(info.value)
    assert str(offline / "weights" / "lpips" / "v0.1" / "vgg.pth") in str(info.value)


def test_wrong_files_are_rejected(tmp_path: Path, offline: Path) -> None:
    alex_heads = _synthetic_heads(tmp_path / "alex.pth", "alex")
    trunk = tmp_path / "squeeze.pth"
    torch.save(SqueezeNet11Features().state_dict(), trunk)
    with pytest.raises(IncompatibleWeightsError, match="net='squeeze'"):
        LPIPS(net="squeeze", heads=alex_heads, trunk_weights=trunk, data_root=offline)
    squeeze_heads = _synthetic_heads(tmp_path / "sq.pth", "squeeze")
    with pytest.raises(IncompatibleWeightsError, match="AlexNet"):
        LPIPS(net="alex", heads=alex_heads, trunk_weights=trunk, data_root=offline)
    # A cached file that is not the published one is refused and left alone.
    for net in ("squeeze", "alex"):
        spec = assets.get_asset(LPIPS_TRUNKS[net][-1])
        cached = offline.parent / "cache" / "hub" / spec.filename
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(b"not a trunk")
        heads = squeeze_heads if net == "squeeze" else alex_heads
        with pytest.raises(ChecksumMismatchError, match=f"expected {spec.sha256}"):
            LPIPS(net=net, heads=heads, data_root=offline)
        assert cached.is_file()
    with pytest.raises(ConfigError, match="'alex', 'vgg', 'squeeze'"):
        LPIPS(net="alexnet")
    with pytest.raises(ConfigError, match="version"):
        lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), version="0.2")


def test_trunk_found_in_the_torch_hub_cache(
    tmp_path: Path, offline: Path, replace_asset: Callable[[assets.Asset], None]
) -> None:
    """A torchvision user's ``$TORCH_HOME/hub/checkpoints`` copy is used, its sha256 checked."""
    source = tmp_path / "alex.pth"
    torch.save(_synthetic_state(ALEXNET_FEATURES), source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    real = assets.get_asset("imagenet/alexnet")
    replace_asset(dataclasses.replace(real, sha256=digest, size=source.stat().st_size))
    checkpoints = offline.parent / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / real.filename).write_bytes(source.read_bytes())
    heads = _synthetic_heads(tmp_path / "heads.pth", "alex")
    model = LPIPS(net="alex", heads=heads, data_root=offline)
    assert model.trunk.pretrained


def test_bad_inputs(tmp_path: Path, offline: Path) -> None:
    trunk = tmp_path / "squeeze.pth"
    torch.save(SqueezeNet11Features().state_dict(), trunk)
    heads = _synthetic_heads(tmp_path / "heads.pth", "squeeze")
    model = LPIPS(net="squeeze", heads=heads, trunk_weights=trunk, data_root=offline)
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(InvalidImageError, match="differ in shape"):
        model(x, torch.rand(1, 3, 32, 31))
    with pytest.raises(InvalidImageError, match=r"\(N, 3, H, W\)"):
        model(x[:, :1], x[:, :1])
    with pytest.raises(InvalidImageError, match="dtype or device"):
        model(x, x.double())
    with pytest.raises(InvalidImageError, match="float"):
        model((x * 255).to(torch.uint8), (x * 255).to(torch.uint8))
    with pytest.raises(ImageTooSmallError, match="17"):
        model(x[..., :16, :], x[..., :16, :])
    assert model(x[..., :17, :17], x[..., :17, :17]).tolist() == [0.0]
