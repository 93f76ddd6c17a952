"""MSE, RMSE, PSNR, SSIM and MS-SSIM: hand-computed golden values, skimage and an independent
loop-based reference, numpy == torch, gradients, and every bad input."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import structural_similarity

from superres.errors import ImageTooSmallError, InvalidImageError
from superres.losses.structural import MSSSIMLoss
from superres.metrics import MS_SSIM_WEIGHTS, ms_ssim, mse, psnr, rmse, ssim

C1_255 = (0.01 * 255) ** 2  # 6.5025
C2_255 = (0.03 * 255) ** 2  # 58.5225


def _t(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """numpy (H, W[, C]) of 0-255 values -> tensor (1, C, H, W) in [0, 1]."""
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(np.moveaxis(a, -1, 0).astype(np.float64) / 255).to(dtype)[None]


def _smooth(seed: int, shape: tuple[int, ...], sigma: float = 3.0) -> np.ndarray:
    """A smooth uint8 image: blurred noise stretched to 0-255 (natural-image-like statistics)."""
    rng = np.random.default_rng(seed)
    blur = ndimage.gaussian_filter(rng.random(shape), sigma=(sigma, sigma, 0)[: len(shape)])
    blur = (blur - blur.min()) / (blur.max() - blur.min())
    return np.round(blur * 255).astype(np.uint8)


def _noisy(img: np.ndarray, std: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, std, img.shape), 0, 255).round().astype(np.uint8)


# --- MSE / RMSE / PSNR ----------------------------------------------------------------------------


def test_psnr_by_hand() -> None:
    # Two 4x4 uint8 images differing by 10 in 4 of 16 pixels: MSE = 4 * 100 / 16 = 25,
    # RMSE = 5, PSNR = 10 log10(255^2 / 25) = 34.1514 dB.
    gt = np.full((4, 4), 100, dtype=np.uint8)
    sr = gt.copy()
    sr[0, 0] = sr[1, 2] = sr[3, 3] = sr[2, 1] = 110
    assert mse(sr, gt) == 25.0
    assert rmse(sr, gt) == 5.0
    assert psnr(sr, gt) == pytest.approx(34.1514, abs=5e-5)
    assert psnr(sr, gt) == pytest.approx(10 * math.log10(255**2 / 25), rel=1e-15)
    # The same images as tensors in [0, 1] (data range 1): same PSNR, MSE scaled by 1/255^2.
    ts, tg = _t(sr), _t(gt)
    assert mse(ts, tg).item() == pytest.approx(25 / 255**2, rel=1e-12)
    assert psnr(ts, tg).item() == pytest.approx(34.151403, abs=1e-6)
    # A float array with explicit data_range=255 agrees with the uint8 path.
    assert psnr(sr.astype(np.float64), gt.astype(np.float64), data_range=255) == psnr(sr, gt)


def test_uint16_default_range() -> None:
    gt = np.zeros((4, 4), dtype=np.uint16)
    sr = np.full((4, 4), 257, dtype=np.uint16)  # 1/255 of the range everywhere
    assert psnr(sr, gt) == pytest.approx(20 * math.log10(255), rel=1e-12)  # 48.1308 dB


def test_identical_images_give_infinite_psnr() -> None:
    img = _smooth(0, (8, 8, 3))
    assert psnr(img, img) == math.inf
    out = psnr(_t(img), _t(img))
    assert out.shape == (1,)
    assert torch.isinf(out).all()
    assert mse(img, img) == 0.0


def test_crop_border() -> None:
    # Differences only on the outer ring: crop_border=1 removes them all; crop 0 keeps them.
    gt = np.full((6, 6), 50, dtype=np.uint8)
    sr = gt.copy()
    sr[0, :] = 60
    sr[:, 5] = 70  # (0, 5) is 70
    assert psnr(sr, gt, crop_border=1) == math.inf
    # Ring: row 0 has 5 pixels at +10 and one at +20; column 5 has 5 more at +20.
    expected = (5 * 100 + 6 * 400) / 36
    assert mse(sr, gt) == pytest.approx(expected, rel=1e-15)
    # A centre difference survives the crop: one pixel +8 in the 4x4 interior -> MSE 64/16 = 4.
    sr[2, 3] = 58
    assert mse(sr, gt, crop_border=1) == 4.0
    assert mse(_t(sr), _t(gt), crop_border=1).item() == pytest.approx(4 / 255**2, rel=1e-12)


def test_y_channel_by_hand() -> None:
    # gt black (Y = 16) and sr with one of 4 pixels pure red (Y = 16 + 65.481 = 81.481, not
    # rounded): Y differs by 65.481 in one pixel -> MSE = 65.481^2 / 4 = 1071.940...,
    # PSNR = 10 log10(65025 / 1071.94) = 17.8291 dB on the 0-255 scale.
    gt = np.zeros((2, 2, 3), dtype=np.uint8)
    sr = gt.copy()
    sr[1, 0] = (255, 0, 0)
    expected_mse = 65.481**2 / 4
    expected_psnr = 10 * math.log10(255**2 / expected_mse)
    assert expected_psnr == pytest.approx(17.8291, abs=5e-5)
    assert mse(sr, gt, y_channel=True) == pytest.approx(expected_mse, rel=1e-12)
    assert psnr(sr, gt, y_channel=True) == pytest.approx(expected_psnr, rel=1e-12)
    # Float [0, 1] arrays and tensors: Y still on 0-255 with data range 255.
    srf, gtf = sr / 255.0, gt / 255.0
    assert psnr(srf, gtf, y_channel=True) == pytest.approx(expected_psnr, rel=1e-12)
    assert psnr(_t(sr), _t(gt), y_channel=True).item() == pytest.approx(expected_psnr, rel=1e-12)
    # A Y value of 81.481 is not rounded to 81 (which would give 65^2 / 4).
    assert mse(sr, gt, y_channel=True) != pytest.approx(65**2 / 4)


def test_y_channel_two_pixels_by_hand() -> None:
    # sr pixel (10, 20, 30) vs gt (0, 0, 0): dY = (65.481*10 + 128.553*20 + 24.966*30)/255
    # = 3974.85/255 = 15.5876...; the other pixel equal. MSE = dY^2 / 2.
    gt = np.zeros((1, 2, 3), dtype=np.uint8)
    sr = gt.copy()
    sr[0, 1] = (10, 20, 30)
    dy = (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255
    assert mse(sr, gt, y_channel=True) == pytest.approx(dy**2 / 2, rel=1e-12)


def test_tensor_batch_gives_one_value_per_image() -> None:
    imgs = [_smooth(s, (16, 16, 3)) for s in range(3)]
    noisy = [_noisy(i, 10, s) for s, i in enumerate(imgs)]
    sr = torch.cat([_t(i) for i in noisy])
    gt = torch.cat([_t(i) for i in imgs])
    for fn in (mse, rmse, psnr, ssim):
        out = fn(sr, gt, crop_border=2)
        assert out.shape == (3,)
        for k in range(3):
            ref = fn(noisy[k], imgs[k], crop_border=2)
            if fn is mse:
                ref /= 255**2  # tensors are on [0, 1]
            elif fn is rmse:
                ref /= 255
            assert out[k].item() == pytest.approx(ref, rel=1e-10)
        # Unbatched (C, H, W) -> 0-d tensor.
        assert fn(sr[0], gt[0], crop_border=2).shape == ()


# --- SSIM -----------------------------------------------------------------------------------------


def test_ssim_identical_is_one() -> None:
    img = _smooth(1, (24, 20, 3))
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-15)
    assert ssim(_t(img), _t(img)).item() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(("a", "b"), [(100, 120), (0, 255), (16, 17), (200, 30)])
def test_ssim_of_constant_images_is_the_luminance_term(a: int, b: int) -> None:
    # Zero variances: the contrast-structure term is C2 / C2 = 1, every window's luminance term is
    # (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 255)^2, so the mean is exactly that.
    x = np.full((13, 15), a, dtype=np.uint8)
    y = np.full((13, 15), b, dtype=np.uint8)
    expected = (2 * a * b + C1_255) / (a * a + b * b + C1_255)
    assert ssim(x, y) == pytest.approx(expected, rel=1e-12)
    assert ssim(_t(x), _t(y)).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("kind", ["random", "smooth", "smooth_rgb"])
def test_ssim_matches_skimage(kind: str) -> None:
    # skimage with a Gaussian window (truncate 3.5 -> radius 5 -> 11x11 at sigma 1.5), population
    # covariance and its filter-border crop computes the same valid-region mean as ssim_index.m.
    if kind == "random":
        rng = np.random.default_rng(5)
        gt = rng.integers(0, 256, (40, 37), dtype=np.uint8)
    elif kind == "smooth":
        gt = _smooth(6, (48, 52))
    else:
        gt = _smooth(7, (33, 45, 3))
    sr = _noisy(gt, 12, seed=8)
    ref = structural_similarity(
        sr,
        gt,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1 if sr.ndim == 3 else None,
    )
    assert ssim(sr, gt) == pytest.approx(ref, abs=1e-7)
    assert ssim(_t(sr), _t(gt)).item() == pytest.approx(ref, abs=1e-7)


def test_ssim_y_channel_matches_skimage_on_float_y() -> None:
    gt = _smooth(9, (30, 30, 3))
    sr = _noisy(gt, 8, seed=10)

    def y(a: np.ndarray) -> np.ndarray:  # float, unrounded Y on 0-255
        f = a.astype(np.float64) / 255
        return 16 + 65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]

    ref = structural_similarity(
        y(sr)[4:-4, 4:-4],
        y(gt)[4:-4, 4:-4],
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
    )
    assert ssim(sr, gt, y_channel=True, crop_border=4) == pytest.approx(ref, abs=1e-7)
    got = ssim(_t(sr), _t(gt), y_channel=True, crop_border=4).item()
    assert got == pytest.approx(ref, abs=1e-7)


def test_ssim_symmetry_and_border_asymmetry() -> None:
    gt = _smooth(11, (32, 32))
    sr = _noisy(gt, 15, seed=12)
    # SSIM is symmetric in its arguments...
    assert ssim(sr, gt) == pytest.approx(ssim(gt, sr), abs=1e-15)
    # ...but not in space: with valid filtering a corner pixel lies in exactly one 11x11 window
    # (weight g[0]^2, tiny), a centre pixel in 121 windows. The same error at the corner must
    # therefore cost far less than at the centre (a padded 'same' filter would blur this).
    corner, centre = gt.copy(), gt.copy()
    corner[0, 0] = 255 - corner[0, 0]
    centre[16, 16] = 255 - centre[16, 16]
    loss_corner = 1 - ssim(corner, gt)
    loss_centre = 1 - ssim(centre, gt)
    assert 0 < loss_corner < loss_centre / 50
    # A flip of both images gives the same score (the Gaussian window is symmetric).
    assert ssim(sr[::-1, ::-1], gt[::-1, ::-1]) == pytest.approx(ssim(sr, gt), abs=1e-14)


def test_ssim_numpy_matches_torch() -> None:
    gt = _smooth(13, (40, 44, 3))
    sr = _noisy(gt, 20, seed=14)
    ref = ssim(sr, gt, crop_border=3)
    assert ssim(_t(sr), _t(gt), crop_border=3).item() == pytest.approx(ref, abs=1e-10)
    got32 = ssim(_t(sr, torch.float32), _t(gt, torch.float32), crop_border=3)
    assert got32.dtype == torch.float32
    assert got32.item() == pytest.approx(ref, rel=1e-5)
    refy = ssim(sr, gt, y_channel=True)
    assert ssim(_t(sr), _t(gt), y_channel=True).item() == pytest.approx(refy, abs=1e-10)
    got32 = ssim(_t(sr, torch.float32), _t(gt, torch.float32), y_channel=True).item()
    assert got32 == pytest.approx(refy, rel=1e-5)


def test_ssim_gradcheck() -> None:
    rng = np.random.default_rng(15)
    gt = torch.from_numpy(rng.random((1, 2, 12, 13)))
    sr = (gt + 0.1 * torch.from_numpy(rng.standard_normal((1, 2, 12, 13)))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ssim(x, gt), (sr,))
    assert torch.autograd.gradcheck(lambda x: ssim(x, gt, y_channel=False, crop_border=0), (sr,))


def test_ssim_gradcheck_y_channel() -> None:
    rng = np.random.default_rng(16)
    gt = torch.from_numpy(rng.random((1, 3, 11, 12)))
    sr = (gt + 0.05 * torch.from_numpy(rng.standard_normal((1, 3, 11, 12)))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: ssim(x, gt, y_channel=True), (sr,))


def test_ssim_too_small() -> None:
    img = np.zeros((10, 30), dtype=np.uint8)
    with pytest.raises(ImageTooSmallError, match=r"at least 11x11 .* got 10x30"):
        ssim(img, img)
    big = np.zeros((15, 15), dtype=np.uint8)
    assert ssim(big, big, crop_border=2) == 1.0  # 11x11 left: one window
    with pytest.raises(ImageTooSmallError, match=r"crop_border=3; got 9x9"):
        ssim(big, big, crop_border=3)
    with pytest.raises(ImageTooSmallError):
        ssim(torch.zeros(1, 1, 11, 10), torch.zeros(1, 1, 11, 10))


# --- MS-SSIM --------------------------------------------------------------------------------------


def _reference_ms_ssim(
    sr: np.ndarray, gt: np.ndarray, weights: tuple[float, ...], L: float = 255.0
) -> float:
    """Independent reference: per channel, 2-D 11x11 window (fspecial-style), scipy correlate then
    slice to the valid region, explicit 2x2 block means; nothing shared with the library."""
    r = np.arange(-5, 6)
    xx, yy = np.meshgrid(r, r)
    win = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))
    win /= win.sum()
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2

    def local_mean(a: np.ndarray) -> np.ndarray:
        return ndimage.correlate(a, win, mode="constant")[5:-5, 5:-5]

    def halve(a: np.ndarray) -> np.ndarray:
        # an odd side gets one zero at each end (counted in the means), as pytorch-msssim
        ph, pw = a.shape[0] % 2, a.shape[1] % 2
        a = np.pad(a, ((ph, ph), (pw, pw)))
        h, w = (a.shape[0] // 2) * 2, (a.shape[1] // 2) * 2
        a = a[:h, :w]
        return (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4

    sr3 = sr[..., None] if sr.ndim == 2 else sr
    gt3 = gt[..., None] if gt.ndim == 2 else gt
    per_channel = []
    for c in range(sr3.shape[-1]):
        x = sr3[..., c].astype(np.float64)
        y = gt3[..., c].astype(np.float64)
        value = 1.0
        for j, w in enumerate(weights):
            mx, my = local_mean(x), local_mean(y)
            vx = local_mean(x * x) - mx**2
            vy = local_mean(y * y) - my**2
            cxy = local_mean(x * y) - mx * my
            cs = np.mean((2 * cxy + c2) / (vx + vy + c2))
            full = np.mean(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
            term = full if j == len(weights) - 1 else cs
            value *= max(term, 0.0) ** w
            x, y = halve(x), halve(y)
        per_channel.append(value)
    return float(np.mean(per_channel))


def test_ms_ssim_identical_is_one() -> None:
    img = _smooth(20, (180, 177, 3))
    assert ms_ssim(img, img) == pytest.approx(1.0, abs=1e-14)
    assert ms_ssim(_t(img), _t(img)).item() == pytest.approx(1.0, abs=1e-14)


def test_ms_ssim_matches_independent_reference() -> None:
    # Odd sizes (181x179) exercise the dropped last row/column of the 2x2 pooling.
    gt = _smooth(21, (181, 179, 3), sigma=2.0)
    sr = _noisy(gt, 25, seed=22)
    ref = _reference_ms_ssim(sr, gt, MS_SSIM_WEIGHTS)
    assert ms_ssim(sr, gt) == pytest.approx(ref, abs=1e-10)
    assert ms_ssim(_t(sr), _t(gt)).item() == pytest.approx(ref, abs=1e-10)
    # Fewer scales, a gray image.
    w3 = MS_SSIM_WEIGHTS[:3]
    ref3 = _reference_ms_ssim(sr[..., 1], gt[..., 1], w3)
    assert ms_ssim(sr[..., 1], gt[..., 1], weights=w3) == pytest.approx(ref3, abs=1e-10)


def test_ms_ssim_clamps_negative_terms_at_zero() -> None:
    # An inverted image anti-correlates with the original: cs < 0 at the fine scales, so the
    # ReLU-clamped product is exactly 0 (not NaN, not a complex number).
    gt = _smooth(23, (176, 176))
    inverted = 255 - gt
    assert ssim(inverted, gt) < 0
    assert ms_ssim(inverted, gt) == 0.0
    assert _reference_ms_ssim(inverted, gt, MS_SSIM_WEIGHTS) == 0.0
    # And the tensor path still has a finite (zero) gradient there.
    x = _t(inverted).requires_grad_(True)
    out = ms_ssim(x, _t(gt))
    out.sum().backward()
    assert out.item() == 0.0
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()


def test_ms_ssim_decreases_with_noise() -> None:
    gt = _smooth(24, (192, 200, 3))
    scores = [ms_ssim(_noisy(gt, std, seed=25), gt) for std in (2, 5, 10, 20, 40)]
    assert all(a > b for a, b in itertools.pairwise(scores))
    assert 0 < scores[-1] < scores[0] < 1


def test_ms_ssim_numpy_matches_torch() -> None:
    gt = _smooth(26, (184, 190, 3))
    sr = _noisy(gt, 15, seed=27)
    ref = ms_ssim(sr, gt, crop_border=4, y_channel=True)
    got = ms_ssim(_t(sr), _t(gt), crop_border=4, y_channel=True)
    assert got.item() == pytest.approx(ref, abs=1e-10)
    got32 = ms_ssim(_t(sr, torch.float32), _t(gt, torch.float32), crop_border=4, y_channel=True)
    assert got32.item() == pytest.approx(ref, rel=1e-5)
    ref_rgb = ms_ssim(sr, gt)
    got32 = ms_ssim(_t(sr, torch.float32), _t(gt, torch.float32))
    assert got32.item() == pytest.approx(ref_rgb, rel=1e-5)


def test_ms_ssim_gradcheck_two_scales() -> None:
    # Two scales keep the smallest legal image at 22 px, small enough for a numerical Jacobian.
    rng = np.random.default_rng(28)
    gt = torch.from_numpy(rng.random((1, 1, 22, 23)))
    sr = (gt + 0.1 * torch.from_numpy(rng.standard_normal((1, 1, 22, 23)))).requires_grad_(True)
    w2 = MS_SSIM_WEIGHTS[:2]
    assert torch.autograd.gradcheck(lambda x: ms_ssim(x, gt, weights=w2), (sr,))


def test_ms_ssim_minimum_size() -> None:
    # Four ceil-halvings: ceil(s / 16) >= 11  <=>  s >= 161 (pytorch-msssim's bound).
    ok = _smooth(29, (161, 200))
    assert ms_ssim(ok, ok) == pytest.approx(1.0)
    small = ok[:160]
    with pytest.raises(ImageTooSmallError) as info:
        ms_ssim(small, small)
    message = str(info.value)
    assert "at least 161x161" in message
    assert "got 160x200" in message
    assert "(11 - 1) * 2**4 + 1 = 161" in message
    assert "weights=MS_SSIM_WEIGHTS[:4]" in message  # 160 px holds 4 scales (ceil(160/8) = 20)
    # The crop counts: 165 - 2 * 2 = 161 fits, 165 - 2 * 3 = 159 does not.
    img = _smooth(30, (165, 165))
    assert ms_ssim(img, img, crop_border=2) == pytest.approx(1.0)
    with pytest.raises(ImageTooSmallError, match=r"crop_border=3; got 159x159"):
        ms_ssim(img, img, crop_border=3)
    with pytest.raises(ImageTooSmallError, match="161"):
        ms_ssim(torch.zeros(1, 1, 160, 300), torch.zeros(1, 1, 160, 300))
    # With three weights the bound is 10 * 4 + 1 = 41.
    assert ms_ssim(ok[:41, :41], ok[:41, :41], weights=MS_SSIM_WEIGHTS[:3]) == pytest.approx(1.0)
    with pytest.raises(ImageTooSmallError, match="= 41"):
        ms_ssim(ok[:40], ok[:40], weights=MS_SSIM_WEIGHTS[:3])


@pytest.mark.parametrize("shape", [(161, 161), (163, 170), (177, 201), (192, 200), (255, 171)])
def test_ms_ssim_equals_pytorch_msssim_odd_sizes_included(shape: tuple[int, int]) -> None:
    """The named reference (pytorch-msssim 1.0, ``ms_ssim(X, Y, data_range)``) within 1e-6 on
    sizes whose scales are odd (each pooling pads them), in float64. (What remains, 1e-7 to 4e-7,
    is its Gaussian window, built in float32.)"""
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    gt = _smooth(31, (*shape, 3))
    sr = _noisy(gt, 12, seed=32)
    x, y = _t(sr), _t(gt)  # [0, 1]
    theirs = pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False)
    ours = ms_ssim(x, y)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    assert ms_ssim(sr, gt) == pytest.approx(float(theirs[0]), abs=1e-6)  # uint8, 0-255
    loss = MSSSIMLoss(reduction="none")(x, y)
    torch.testing.assert_close(1 - loss, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights", [(), (0.5, math.nan), (0.5, -0.1)])
def test_ms_ssim_bad_weights(weights: tuple[float, ...]) -> None:
    img = np.zeros((200, 200), dtype=np.uint8)
    with pytest.raises(ValueError, match="weights"):
        ms_ssim(img, img, weights=weights)


# --- bad inputs -----------------------------------------------------------------------------------

Metric = Callable[..., Any]
ALL: list[Metric] = [mse, rmse, psnr, ssim, ms_ssim]
GOOD = np.zeros((16, 16, 3), dtype=np.uint8)


def _nan_image() -> np.ndarray:
    a = np.zeros((16, 16, 3))
    a[3, 4, 1] = np.nan
    return a


BAD_NUMPY_PAIRS = {
    "shape mismatch": (GOOD, np.zeros((16, 15, 3), dtype=np.uint8)),
    "nan": (_nan_image(), np.zeros((16, 16, 3))),
    "inf": (np.full((16, 16, 3), np.inf), np.zeros((16, 16, 3))),
    "int32": (GOOD.astype(np.int32), GOOD.astype(np.int32)),
    "bool": (GOOD.astype(bool), GOOD.astype(bool)),
    "complex": (GOOD.astype(np.complex128), GOOD.astype(np.complex128)),
    "mixed dtypes": (GOOD, GOOD.astype(np.float64)),
    "1-d": (np.zeros(16, dtype=np.uint8), np.zeros(16, dtype=np.uint8)),
    "batch of arrays": (np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 16, 3))),
    "numpy and torch": (GOOD, torch.zeros(1, 3, 16, 16)),
}


BAD_TENSOR_PAIRS = {
    "shape mismatch": (torch.zeros(1, 3, 16, 16), torch.zeros(2, 3, 16, 16)),
    "nan": (torch.full((1, 3, 16, 16), math.nan), torch.zeros(1, 3, 16, 16)),
    "integer": (torch.zeros(1, 3, 16, 16, dtype=torch.uint8),) * 2,
    "2-d": (torch.zeros(16, 16), torch.zeros(16, 16)),
    "5-d": (torch.zeros(1, 1, 3, 16, 16), torch.zeros(1, 1, 3, 16, 16)),
}


BAD_PAIRS = {
    **{f"numpy {case}": pair for case, pair in BAD_NUMPY_PAIRS.items()},
    **{f"tensor {case}": pair for case, pair in BAD_TENSOR_PAIRS.items()},
}


@pytest.mark.parametrize("case", BAD_PAIRS)
@pytest.mark.parametrize("fn", ALL)
def test_bad_inputs_raise(fn: Metric, case: str) -> None:
    sr, gt = BAD_PAIRS[case]
    with pytest.raises(InvalidImageError, match="expected"):
        fn(sr, gt)


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("image", [GOOD, torch.zeros(1, 3, 16, 16)])
def test_bad_options_raise(fn: Metric, image: np.ndarray | torch.Tensor) -> None:
    with pytest.raises(InvalidImageError, match="removes the whole 16x16 image"):
        fn(image, image, crop_border=8)
    with pytest.raises(InvalidImageError, match="crop_border must be >= 0"):
        fn(image, image, crop_border=-1)
    with pytest.raises(InvalidImageError, match="crop_border must be a non-negative int"):
        fn(image, image, crop_border=1.5)
    for bad_range in (0, -1.0, math.inf, math.nan, True):
        with pytest.raises(InvalidImageError, match="data_range"):
            fn(image, image, data_range=bad_range)


@pytest.mark.parametrize("fn", ALL)
def test_y_channel_needs_rgb(fn: Metric) -> None:
    gray = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="y_channel=True needs RGB"):
        fn(gray, gray, y_channel=True)
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)
    with pytest.raises(InvalidImageError, match="y_channel=True needs RGB"):
        fn(rgba, rgba, y_channel=True)
    t = torch.zeros(1, 1, 16, 16)
    with pytest.raises(InvalidImageError, match="y_channel=True needs RGB"):
        fn(t, t, y_channel=True)


def test_low_precision_tensors_are_computed_in_float32() -> None:
    gt = _smooth(31, (24, 24, 3))
    sr = _noisy(gt, 10, seed=32)
    ref = ssim(sr, gt)
    got = ssim(_t(sr, torch.bfloat16), _t(gt, torch.bfloat16))
    assert got.dtype == torch.bfloat16
    assert got.item() == pytest.approx(ref, abs=1e-2)  # bfloat16 inputs hold ~3 digits


@pytest.mark.parametrize("metric", [mse, rmse, psnr, ssim, ms_ssim], ids=lambda m: m.__name__)
def test_a_misspelt_option_is_an_error_naming_the_metric(metric: Callable[..., Any]) -> None:
    a = np.zeros((16, 16), dtype=np.uint8)
    with pytest.raises(TypeError, match=rf"{metric.__name__}\(\) got an unexpected keyword "):
        metric(a, a, crop_boder=2)


def test_arrays_give_floats_and_tensors_give_one_value_per_image() -> None:
    a = np.random.default_rng(0).random((12, 12, 3))
    t = torch.from_numpy(a).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    value: float = psnr(a, a * 0.5, y_channel=True)
    per_image: torch.Tensor = psnr(t, t * 0.5, y_channel=True)
    assert isinstance(value, float)
    assert per_image.shape == (2,)
    assert per_image[0].item() == pytest.approx(value, abs=1e-9)
