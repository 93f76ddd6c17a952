"""superres.losses: golden values, agreement with the metrics and the papers' formulas, reductions,
gradients, bad arguments; the VGG19/SqueezeNet feature extractors and the no-weights error."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from superres.errors import AssetNotFoundError, ConfigError, ImageTooSmallError, InvalidImageError
from superres.io.hub import ChecksumMismatchError
from superres.losses import (
    LOSSES,
    SRGAN_FEATURE_SCALE,
    CharbonnierLoss,
    FeatureMatchingLoss,
    GANLoss,
    L1Loss,
    MixLoss,
    MSELoss,
    MSSSIMLoss,
    PerceptualLoss,
    SSIMLoss,
    SubpixelPatternLoss,
    TotalVariationLoss,
    UnknownLossError,
    VGG19Features,
    build_loss,
    list_losses,
)
from superres.metrics import MS_SSIM_WEIGHTS, ms_ssim, ssim
from superres.models.squeezenet import LPIPS_LAYERS, SqueezeNet11Features
from superres.models.vgg import VGG19FeatureExtractor


def _pair(
    shape: tuple[int, ...], seed: int = 0, noise: float = 0.1, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth-ish ``gt`` in [0, 1] and a noisy ``sr`` near it."""
    g = torch.Generator().manual_seed(seed)
    gt = F.avg_pool2d(torch.rand(shape, generator=g, dtype=torch.float64), 3, 1, 1)
    sr = (gt + noise * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return sr.to(dtype), gt.to(dtype)


# Every registered loss, built small and fast, with an input size it accepts.
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "mse": ({}, 16),
    "l1": ({}, 16),
    "charbonnier": ({}, 16),
    "ssim": ({}, 16),
    "ms_ssim": ({"num_scales": 2}, 24),
    "mix": ({"sigmas": (0.5, 1.0, 2.0)}, 16),
    "perceptual": ({"pretrained": False, "layer_weights": {"relu1_2": 1.0}}, 16),
    "tv": ({}, 16),
}
PER_IMAGE = {"ssim", "ms_ssim", "mix", "perceptual", "tv"}


def _build(name: str, **extra: Any) -> torch.nn.Module:
    kwargs, _ = CASES[name]
    torch.manual_seed(0)  # the same random VGG for every perceptual build
    return build_loss(name, **kwargs, **extra)


# --- registry -------------------------------------------------------------------------------------


def test_registry_names_and_suggestions() -> None:
    assert list_losses() == [
        "mse", "l1", "charbonnier", "ssim", "ms_ssim", "mix", "perceptual", "lpips", "gan", "tv",
        "subpixel_pattern",
    ]  # fmt: skip
    # gan needs a discriminator; lpips needs its released weights (tests/test_lpips.py);
    # subpixel_pattern is one number per batch (its own tests below).
    assert set(CASES) | {"gan", "lpips", "subpixel_pattern"} == set(LOSSES)
    assert isinstance(build_loss("Charbonnier"), CharbonnierLoss)  # case-insensitive
    with pytest.raises(UnknownLossError, match=r"unknown loss 'perceptul'.*'perceptual'") as info:
        build_loss("perceptul")
    assert "Known losses: charbonnier," in str(info.value)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) weight; valid arguments: "):
        build_loss("l1", weight=2.0)


# --- shared behaviour of every loss ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_zero_or_minimum_for_identical_inputs(name: str) -> None:
    _, size = CASES[name]
    _, gt = _pair((2, 3, size, size))
    value = _build(name)(gt, gt)
    if name == "charbonnier":
        assert torch.isclose(value, torch.tensor(1e-3))  # sqrt(0 + eps^2)
    elif name == "tv":
        assert value > 0  # TV scores the image alone
        assert _build(name)(torch.full((1, 3, 8, 8), 0.3), None) == 0
    else:
        assert value.abs() < 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_flows_to_sr_only(name: str) -> None:
    _, size = CASES[name]
    sr, gt = _pair((2, 3, size, size))
    sr.requires_grad_(True)
    loss = _build(name)(sr, gt)
    assert loss.ndim == 0
    assert torch.isfinite(loss)
    loss.backward()
    assert sr.grad is not None
    assert torch.isfinite(sr.grad).all()
    assert sr.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_reduction_modes_and_weight(name: str) -> None:
    _, size = CASES[name]
    sr, gt = _pair((3, 3, size, size))
    none = _build(name, reduction="none")(sr, gt)
    expected_shape = (3,) if name in PER_IMAGE else (3, 3, size, size)
    assert none.shape == expected_shape
    mean = _build(name, reduction="mean", loss_weight=2.5)(sr, gt)
    total = _build(name, reduction="sum", loss_weight=2.5)(sr, gt)
    torch.testing.assert_close(mean, 2.5 * none.mean())
    torch.testing.assert_close(total, 2.5 * none.sum())


@pytest.mark.parametrize("name", [*sorted(CASES), "gan"])
@pytest.mark.parametrize("reduction", ["avg", "Mean", None])
def test_bad_reduction_names_the_allowed_values(name: str, reduction: Any) -> None:
    kwargs = CASES.get(name, ({}, 0))[0]
    with pytest.raises(ValueError, match=r"reduction must be one of 'mean', 'sum', 'none'"):
        build_loss(name, **kwargs, reduction=reduction)


@pytest.mark.parametrize("name", sorted(CASES))
def test_mismatched_or_unbatched_inputs_raise(name: str) -> None:
    loss = _build(name)
    _, size = CASES[name]
    a = torch.rand(1, 3, size, size)
    with pytest.raises(InvalidImageError, match="shapes differ"):
        loss(a, torch.rand(1, 3, size + 2, size))
    with pytest.raises(InvalidImageError, match=r"expected \(N, C, H, W\)"):
        loss(a[0], a[0])


def test_bad_loss_weight() -> None:
    with pytest.raises(ConfigError, match="finite"):
        L1Loss(loss_weight=math.nan)
    with pytest.raises(ConfigError, match="number"):
        L1Loss(loss_weight="1")  # type: ignore[arg-type]


# --- pixel losses ---------------------------------------------------------------------------------


def test_pixel_losses_golden_values() -> None:
    gt = torch.zeros(1, 1, 1, 3)
    sr = torch.tensor([0.0, 0.3, -0.3]).view(1, 1, 1, 3)
    torch.testing.assert_close(MSELoss(reduction="none")(sr, gt), sr.square())
    torch.testing.assert_close(L1Loss()(sr, gt), torch.tensor(0.2))
    torch.testing.assert_close(MSELoss(reduction="sum")(sr, gt), torch.tensor(0.18))
    # A 3-4-5 triangle: sqrt(0.3^2 + 0.4^2) = 0.5, and sqrt(0 + 0.4^2) = 0.4.
    charb = CharbonnierLoss(eps=0.4, reduction="none")(sr, gt)
    torch.testing.assert_close(charb.flatten(), torch.tensor([0.4, 0.5, 0.5]))
    # The default eps (LapSRN's 1e-3): ~|d| for |d| >> eps.
    big = CharbonnierLoss()(torch.full((1, 1, 1, 1), 0.5), torch.zeros(1, 1, 1, 1))
    torch.testing.assert_close(big, torch.tensor(math.sqrt(0.25 + 1e-6)))
    with pytest.raises(ConfigError, match="eps"):
        CharbonnierLoss(eps=0.0)


# --- total variation ------------------------------------------------------------------------------


def test_total_variation_golden_values() -> None:
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]).view(1, 1, 2, 3)
    # Vertical differences (2, 1, -1), horizontal (1, 2) and (0, 0).
    torch.testing.assert_close(TotalVariationLoss()(x), torch.tensor(4 / 3 + 3 / 4))
    torch.testing.assert_close(TotalVariationLoss(criterion="l2")(x), torch.tensor(2.0 + 5 / 4))
    torch.testing.assert_close(TotalVariationLoss()(x[:, :, :1]), torch.tensor(1.5))  # one row
    with pytest.raises(ConfigError, match="criterion must be one of 'l1', 'l2'"):
        TotalVariationLoss(criterion="l3")


# --- SSIM and MS-SSIM -----------------------------------------------------------------------------


def test_ssim_loss_equals_one_minus_the_metric() -> None:
    sr, gt = _pair((2, 3, 40, 33), dtype=torch.float64)
    torch.testing.assert_close(SSIMLoss(reduction="none")(sr, gt), 1 - ssim(sr, gt))
    sr32, gt32 = sr.float(), gt.float()
    torch.testing.assert_close(
        SSIMLoss(reduction="none")(sr32, gt32), 1 - ssim(sr32, gt32), atol=1e-6, rtol=0
    )


def test_ssim_padding_options() -> None:
    sr, gt = _pair((1, 3, 8, 8))
    with pytest.raises(ImageTooSmallError, match=r"at least 11x11 px; got 8x8"):
        SSIMLoss()(sr, gt)
    same = SSIMLoss(padding="same")(sr, gt)  # reflect padding: every pixel is a window centre
    assert 0 < same < 2
    assert SSIMLoss(padding="same")(gt, gt).abs() < 1e-6
    assert SSIMLoss(window_size=7).sigma == pytest.approx(1.5 * 7 / 11)
    with pytest.raises(ConfigError, match="padding must be one of 'valid', 'same'"):
        SSIMLoss(padding="reflect")
    with pytest.raises(ConfigError, match="odd"):
        SSIMLoss(window_size=10)


def test_ms_ssim_loss_equals_one_minus_the_metric() -> None:
    sr, gt = _pair((1, 3, 176, 180), dtype=torch.float64)
    torch.testing.assert_close(MSSSIMLoss(reduction="none")(sr, gt), 1 - ms_ssim(sr, gt))
    sr, gt = sr[..., :48, :50], gt[..., :48, :50]
    torch.testing.assert_close(
        MSSSIMLoss(num_scales=3, reduction="none")(sr, gt),
        1 - ms_ssim(sr, gt, weights=MS_SSIM_WEIGHTS[:3]),
    )


def test_ms_ssim_loss_too_small_names_what_fits() -> None:
    sr, gt = _pair((1, 3, 96, 96))
    with pytest.raises(ImageTooSmallError) as info:
        MSSSIMLoss()(sr, gt)
    message = str(info.value)
    assert ">= (11 - 1) * 2**4 + 1 = 161 px; got 96x96" in message
    assert "num_scales=4 (needs 81 px)" in message
    assert "window_size=6" not in message  # windows are odd
    assert "window_size=5 with num_scales=5 (needs 65 px)" in message
    assert MSSSIMLoss().min_side == 161
    # Both suggested settings accept 96-px patches.
    assert 0 < MSSSIMLoss(num_scales=4)(sr, gt) < 1
    assert 0 < MSSSIMLoss(window_size=5)(sr, gt) < 1
    with pytest.raises(ConfigError, match="num_scales"):
        MSSSIMLoss(num_scales=6)


# --- Mix (Zhao et al. 2017) -----------------------------------------------------------------------


def _mix_at_patch_centre(x: np.ndarray, y: np.ndarray, alpha: float, sigmas: tuple) -> float:
    """Zhao et al.'s loss at the centre pixel of one odd ``(C, P, P)`` patch, written as in their
    reference Caffe layer (NVlabs/PL4NN ``MSSSIML1``): full-patch Gaussians, l_M * prod cs_j, and
    the Gaussian-weighted L1 of the last scale; averaged over channels."""
    c1, c2 = 0.01**2, 0.03**2
    width = x.shape[-1]
    r = np.arange(width) - width // 2
    ls, css, ws = [], [], []
    for sigma in sigmas:
        w = np.exp(-(r**2) / (2 * sigma**2))
        w = np.outer(w, w)
        w = w / w.sum()
        mux, muy = (w * x).sum(axis=(1, 2)), (w * y).sum(axis=(1, 2))
        sx2 = (w * x * x).sum(axis=(1, 2)) - mux**2
        sy2 = (w * y * y).sum(axis=(1, 2)) - muy**2
        sxy = (w * x * y).sum(axis=(1, 2)) - mux * muy
        ls.append((2 * mux * muy + c1) / (mux**2 + muy**2 + c1))
        css.append((2 * sxy + c2) / (sx2 + sy2 + c2))
        ws.append(w)
    ms_ssim_value = ls[-1] * np.prod(css, axis=0)
    l1 = (np.abs(x - y) * ws[-1]).sum(axis=(1, 2))
    return float(np.mean(alpha * (1 - ms_ssim_value) + (1 - alpha) * l1))


def test_mix_loss_equals_the_papers_formula_on_one_patch() -> None:
    # A 49-px patch with 'valid' padding leaves exactly one centre pixel: the paper's setting.
    sr, gt = _pair((1, 3, 49, 49), seed=3, dtype=torch.float64)
    expected = _mix_at_patch_centre(sr[0].numpy(), gt[0].numpy(), 0.84, (0.5, 1, 2, 4, 8))
    assert MixLoss().window_size == 49
    assert MixLoss()(sr, gt).item() == pytest.approx(expected, rel=1e-10)


def test_mix_loss_is_the_mean_of_per_pixel_terms() -> None:
    sr, gt = _pair((2, 3, 20, 22), seed=4, dtype=torch.float64)
    sigmas, alpha = (0.5, 1.0, 2.0), 0.7
    loss = MixLoss(sigmas=sigmas, alpha=alpha, reduction="none")(sr, gt)
    # Every 13x13 patch (2 * ceil(3 * 2) + 1) contributes its centre pixel's value.
    for n in range(2):
        values = [
            _mix_at_patch_centre(
                sr[n, :, i : i + 13, j : j + 13].numpy(),
                gt[n, :, i : i + 13, j : j + 13].numpy(),
                alpha,
                sigmas,
            )
            for i in range(20 - 12)
            for j in range(22 - 12)
        ]
        assert loss[n].item() == pytest.approx(float(np.mean(values)), rel=1e-10)
    # alpha = 0 is the Gaussian-weighted L1 alone; ~ mean |d| for a constant error.
    torch.testing.assert_close(
        MixLoss(alpha=0.0, sigmas=sigmas)(gt + 0.1, gt), torch.tensor(0.1, dtype=torch.float64)
    )


def test_mix_loss_padding_and_arguments() -> None:
    sr, gt = _pair((1, 3, 32, 32))
    with pytest.raises(ImageTooSmallError, match="at least 49x49"):
        MixLoss()(sr, gt)
    assert 0 < MixLoss(padding="same")(sr, gt) < 1
    with pytest.raises(ConfigError, match="alpha"):
        MixLoss(alpha=1.5)
    with pytest.raises(ConfigError, match="sigmas"):
        MixLoss(sigmas=())


def test_structural_losses_survive_autocast() -> None:
    sr, gt = _pair((1, 3, 24, 24))
    expected = SSIMLoss()(sr, gt)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = SSIMLoss()(sr, gt)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value, expected)


# --- adversarial ----------------------------------------------------------------------------------


def test_vanilla_gan_golden_values() -> None:
    gan = GANLoss(gan_type="vanilla", loss_weight=1e-3)
    fake = torch.tensor([[0.0], [math.log(3)]])
    # -log sigmoid(0) = log 2; -log sigmoid(log 3) = -log(3/4).
    expected = (math.log(2) + math.log(4 / 3)) / 2
    torch.testing.assert_close(gan.generator_loss(fake), torch.tensor(1e-3 * expected))
    real, fake = torch.tensor([math.log(3)]), torch.tensor([-math.log(3)])
    torch.testing.assert_close(gan.discriminator_loss(real, fake), torch.tensor(math.log(4 / 3)))
    # One-sided label smoothing: BCE against 0.9 for the real images only.
    smooth = GANLoss(real_label=0.9).discriminator_loss(real, fake)
    p = 0.75
    real_term = -(0.9 * math.log(p) + 0.1 * math.log(1 - p))
    torch.testing.assert_close(smooth, torch.tensor((real_term + math.log(4 / 3)) / 2))


def test_lsgan_and_hinge_golden_values() -> None:
    ls = GANLoss(gan_type="lsgan")
    torch.testing.assert_close(ls.generator_loss(torch.tensor([0.5])), torch.tensor(0.25))
    torch.testing.assert_close(
        ls.discriminator_loss(torch.tensor([1.0]), torch.tensor([0.5])), torch.tensor(0.125)
    )
    hinge = GANLoss(gan_type="hinge")
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    torch.testing.assert_close(hinge.discriminator_loss(real, fake), torch.tensor(0.5))
    torch.testing.assert_close(hinge.generator_loss(fake), torch.tensor(-(-2.0 + 0.5) / 2))
    with pytest.raises(ConfigError, match="no labels"):
        GANLoss(gan_type="hinge", real_label=0.9)


def test_ragan_matches_the_esrgan_formulas() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(5, 1, generator=g)
    fake = torch.randn(5, 1, generator=g, requires_grad=True)
    gan = GANLoss(gan_type="ragan", loss_weight=5e-3)

    def d_ra(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(a - b.mean())  # D_Ra(x_a, x_b) = sigmoid(C(x_a) - E[C(x_b)])

    d_expected = -(torch.log(d_ra(real, fake)).mean() + torch.log(1 - d_ra(fake, real)).mean()) / 2
    g_expected = -(torch.log(1 - d_ra(real, fake)).mean() + torch.log(d_ra(fake, real)).mean()) / 2
    torch.testing.assert_close(gan.discriminator_loss(real, fake), d_expected)
    torch.testing.assert_close(gan.generator_loss(fake, real), 5e-3 * g_expected)
    torch.testing.assert_close(gan(fake, real), 5e-3 * g_expected)  # forward = generator_loss

    # The generator step does not reach the real logits.
    real_d = real.clone().requires_grad_(True)
    gan.generator_loss(fake, real_d).backward()
    assert real_d.grad is None
    assert fake.grad is not None
    with pytest.raises(ConfigError, match="needs real_logits"):
        gan.generator_loss(fake)


@pytest.mark.parametrize("gan_type", ["vanilla", "lsgan", "hinge", "ragan"])
def test_gan_reductions(gan_type: str) -> None:
    real, fake = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)  # a patch discriminator
    gan = GANLoss(gan_type=gan_type, reduction="none")
    total = GANLoss(gan_type=gan_type, reduction="sum")
    g_none = gan.generator_loss(fake, real)
    assert g_none.shape == ((8, 1, 3, 3) if gan_type == "ragan" else (4, 1, 3, 3))
    torch.testing.assert_close(g_none.sum(), total.generator_loss(fake, real))
    d_none = gan.discriminator_loss(real, fake)
    assert d_none.shape == (8, 1, 3, 3)
    torch.testing.assert_close(d_none.sum(), total.discriminator_loss(real, fake))
    with pytest.raises(ConfigError, match="gan_type must be one of 'vanilla', 'lsgan'"):
        GANLoss(gan_type="wgan")


# --- perceptual -----------------------------------------------------------------------------------


def test_vgg19_features_match_the_single_layer_extractor() -> None:
    torch.manual_seed(0)
    multi = VGG19Features(layers=["conv3_1", "relu1_2", "RELU2_2"])
    assert multi.layers == ("relu1_2", "relu2_2", "conv3_1")
    x = torch.rand(1, 3, 16, 16)
    out = multi(x)
    assert list(out) == ["relu1_2", "relu2_2", "conv3_1"]
    for layer in ("relu1_2", "relu2_2", "conv3_1"):
        single = VGG19FeatureExtractor(layer=layer)
        single.load_state_dict(multi.state_dict())
        torch.testing.assert_close(out[layer], single(x))


def test_perceptual_loss_formula_and_srgan_scale() -> None:
    torch.manual_seed(0)
    layer_weights = {"relu2_2": 0.5, "conv5_4": 2.0}
    loss = PerceptualLoss(layer_weights=layer_weights, criterion="mse", pretrained=False)
    assert not loss.pretrained
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training  # stays frozen in eval mode
    sr, gt = _pair((2, 3, 32, 32))
    fs, fg = loss.extractor(sr), loss.extractor(gt)
    expected = sum(w * F.mse_loss(fs[k], fg[k]) for k, w in layer_weights.items())
    torch.testing.assert_close(loss(sr, gt), expected)
    scaled = PerceptualLoss(
        layer_weights=layer_weights,
        criterion="l2",
        pretrained=False,
        feature_scale=SRGAN_FEATURE_SCALE,
    )
    scaled.load_state_dict(loss.state_dict())
    torch.testing.assert_close(scaled(sr, gt), expected / 12.75**2)


def test_feature_matching_loss_is_generic() -> None:
    class Toy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"a": x, "b": 2 * x}

    loss = FeatureMatchingLoss(extractor=Toy(), layer_weights={"a": 1.0, "b": 0.25})
    sr, gt = torch.full((1, 3, 4, 4), 0.5), torch.zeros(1, 3, 4, 4)
    torch.testing.assert_close(loss(sr, gt), torch.tensor(0.5 + 0.25 * 1.0))
    with pytest.raises(ConfigError, match="returned layers"):
        FeatureMatchingLoss(extractor=Toy(), layer_weights={"c": 1.0})(sr, gt)


def test_perceptual_without_weights_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SUPERRES_DATA", raising=False)
    with pytest.raises(AssetNotFoundError) as info:
        PerceptualLoss()
    message = str(info.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path / "hub" / "vgg19-dcbb9e9d.pth") in message
    assert "superres assets get imagenet/vgg19" in message
    with pytest.raises(AssetNotFoundError, match="does not exist"):
        PerceptualLoss(weights=tmp_path / "nowhere.pth")
    # A corrupt file in the cache is caught by the pinned sha256.
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "vgg19-dcbb9e9d.pth").write_bytes(b"not weights")
    with pytest.raises(ChecksumMismatchError, match="sha256 mismatch"):
        PerceptualLoss()
    with pytest.raises(AssetNotFoundError, match=r"squeezenet1_1-b8a52dc0\.pth"):
        PerceptualLoss(network="squeezenet1_1")
    with pytest.raises(ConfigError, match="pretrained=False but weights="):
        PerceptualLoss(pretrained=False, weights=tmp_path / "x.pth")


def test_perceptual_loads_a_local_torchvision_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = VGG19Features(layers=["relu1_2"])
    path = tmp_path / "vgg19_head.safetensors"
    save_file(source.state_dict(), str(path))  # torchvision keys: features.0.weight, ...
    loss = PerceptualLoss(layer_weights={"relu1_2": 1.0}, weights=path)
    assert loss.pretrained
    torch.testing.assert_close(
        loss.extractor.state_dict()["features.2.weight"], source.features[2].weight
    )


def test_perceptual_argument_errors() -> None:
    with pytest.raises(ConfigError, match="unknown VGG19 layer"):
        PerceptualLoss(layer_weights={"relu6_1": 1.0}, pretrained=False)
    with pytest.raises(ConfigError, match="criterion must be one of 'l1', 'l2', 'mse'"):
        PerceptualLoss(criterion="fro", pretrained=False)
    with pytest.raises(ConfigError, match="network must be one of 'vgg19', 'squeezenet1_1'"):
        PerceptualLoss(network="alexnet", pretrained=False)
    with pytest.raises(ConfigError, match="non-empty mapping"):
        PerceptualLoss(layer_weights={}, pretrained=False)


def test_squeezenet_trunk_shapes_random() -> None:
    trunk = SqueezeNet11Features()
    out = trunk(torch.rand(1, 3, 64, 64))
    assert list(out) == list(LPIPS_LAYERS)
    assert [f.shape[1] for f in out.values()] == [64, 128, 256, 384, 384, 512, 512]
    assert len(trunk.features) == 13
    assert len(SqueezeNet11Features(layers=["fire3"]).features) == 5  # truncated
    with pytest.raises(ConfigError, match=r"unknown SqueezeNet 1\.1 layer"):
        SqueezeNet11Features(layers=["fire10"])
    loss = PerceptualLoss(network="squeezenet1_1", pretrained=False)
    assert loss.layer_weights == dict.fromkeys(LPIPS_LAYERS, 1 / 7)
    sr, gt = _pair((1, 3, 32, 32))
    assert loss(sr, gt) > 0
    assert loss(gt, gt) == 0


@pytest.mark.data
def test_squeezenet_real_trunk_loads_strictly(data_root: Path) -> None:
    from safetensors.torch import load_file

    from superres.io import read_image

    path = data_root / "weights" / "squeezenet1_1_imagenet_features.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    trunk = SqueezeNet11Features(weights=path)
    assert trunk.pretrained
    assert set(trunk.state_dict()) == set(load_file(str(path)))  # strict: every key, both ways
    # Trained features are sparse: SOURCES.md measured ~92 % zeros after fire9 on Set5 HR.
    image = read_image(data_root / "Set5" / "HR" / "baby.png").rgb[None, :, :256, :256]
    fire9 = trunk(image)["fire9"]
    assert (fire9 == 0).float().mean() > 0.8
    loss = PerceptualLoss(network="squeezenet1_1", weights=path)
    noisy = (image + 0.05 * torch.randn_like(image)).clamp(0, 1)
    assert loss(noisy, image) > loss(image, image) == 0


# --- the static sub-pixel pattern -----------------------------------------------------------------


def test_subpixel_pattern_loss_is_the_amplitude_of_a_static_tile() -> None:
    torch.manual_seed(0)
    gt = torch.rand(8, 3, 64, 64)
    tile = torch.randn(3, 4, 4) * 0.02
    tile -= tile.mean(dim=(1, 2), keepdim=True)
    sr = gt + tile.repeat(1, 16, 16) + 0.1  # the same tile on every image, plus a colour shift
    loss = build_loss("subpixel_pattern", scale=4, loss_weight=2.0)
    assert isinstance(loss, SubpixelPatternLoss)
    assert torch.isclose(loss(sr, gt), 2.0 * tile.abs().mean(), atol=1e-6)
    # A colour shift alone, or errors that differ from image to image, are not a pattern.
    assert loss(gt + 0.1, gt) < 1e-6
    noisy = gt + 0.05 * torch.randn_like(gt)
    assert loss(noisy, gt) < 0.1 * loss(sr, gt)


def test_subpixel_pattern_loss_gradient_removes_the_tile() -> None:
    gt = torch.rand(2, 3, 16, 16)
    tile = torch.zeros(3, 4, 4)
    tile[:, 0, 0], tile[:, 2, 1] = 0.05, -0.05
    sr = (gt + tile.repeat(1, 4, 4)).requires_grad_(True)
    loss = SubpixelPatternLoss(scale=4)
    before = loss(sr, gt)
    before.backward()
    assert sr.grad is not None
    assert float(loss(sr.detach() - 10.0 * sr.grad, gt)) < float(before.detach())


def test_subpixel_pattern_loss_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="scale must be an integer >= 2"):
        SubpixelPatternLoss(scale=1)
    with pytest.raises(ConfigError, match="reduction 'mean'"):
        SubpixelPatternLoss(scale=4, reduction="none")
    with pytest.raises(InvalidImageError, match="not a multiple of the scale 4"):
        SubpixelPatternLoss(scale=4)(torch.rand(1, 3, 18, 16), torch.rand(1, 3, 18, 16))
