"""MATLAB-exact imresize: benchmark LR bit-exactness, shapes, numpy/torch agreement, properties."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.errors import InvalidImageError, SuperresError
from superres.imaging import UnknownKernelError, imresize
from superres.imaging.resize import KERNELS

RNG = np.random.default_rng(20240601)


def _rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# --- 1. the benchmark LR images, bit for bit ------------------------------------------------------


@pytest.mark.data
def test_reproduces_official_lr_x4_bit_exactly(data_root: Path) -> None:
    """``imresize(HR_mod4, 1/4)`` == SelfExSR's LR_bicubic_x4 for all Set5/Set14/BSD100 images."""
    checked = 0
    mismatches: list[str] = []
    for dataset in ("Set5", "Set14", "BSD100"):
        for hr_path in sorted((data_root / dataset / "HR").glob("*.png")):
            with Image.open(hr_path) as im:
                hr = np.asarray(im)  # mode L (Set14 bridge) stays 2-D, RGB is (H, W, 3)
            H, W = hr.shape[:2]
            hr = hr[: H - H % 4, : W - W % 4]
            with Image.open(data_root / dataset / "LR_bicubic_x4" / hr_path.name) as im:
                lr = np.asarray(im)
            # The LR file has the HR's mode (bridge: L and L), so shapes compare as they are.
            sr = imresize(hr, 1 / 4)
            assert sr.dtype == np.uint8
            assert sr.shape == lr.shape, f"{dataset}/{hr_path.name}: {sr.shape} vs {lr.shape}"
            differing = int(np.count_nonzero(sr != lr))
            if differing:
                mismatches.append(f"{dataset}/{hr_path.name}: {differing} pixels differ")
            checked += 1
    assert checked == 119, f"expected 5 + 14 + 100 HR images, found {checked}"
    assert not mismatches, "\n".join(mismatches)


# --- 2. shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_hw", "scale", "out_hw"),
    [
        ((10, 13), 0.5, (5, 7)),  # ceil(6.5) = 7
        ((10, 13), 1 / 3, (4, 5)),  # ceil(3.33), ceil(4.33)
        ((300, 299), 1 / 3, (100, 100)),  # 300 * (1/3) is exactly 100.0 in float64, as in MATLAB
        ((7, 5), 2.5, (18, 13)),  # ceil(17.5), ceil(12.5)
        ((8, 8), (0.5, 2.0), (4, 16)),  # per-dimension scale
    ],
)
def test_output_shape_follows_matlab_ceil_rule(
    in_hw: tuple[int, int], scale: float | tuple[float, float], out_hw: tuple[int, int]
) -> None:
    assert imresize(np.zeros(in_hw), scale).shape == out_hw
    assert imresize(np.zeros((*in_hw, 3), np.uint8), scale).shape == (*out_hw, 3)
    assert imresize(torch.zeros(3, *in_hw), scale).shape == (3, *out_hw)
    assert imresize(torch.zeros(2, 3, *in_hw), scale).shape == (2, 3, *out_hw)


def test_output_shape_form_uses_out_over_in_as_scale() -> None:
    img = RNG.random((12, 20))
    out = imresize(img, output_shape=(5, 9))
    assert out.shape == (5, 9)
    # Where out/in equals a scale exactly, both forms compute the same weights.
    np.testing.assert_array_equal(imresize(img, output_shape=(6, 5)), imresize(img, (0.5, 0.25)))
    assert imresize(torch.rand(1, 3, 12, 20), output_shape=(24, 7)).shape == (1, 3, 24, 7)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_numpy_dtype_is_preserved(dtype: type[np.generic]) -> None:
    img = RNG.integers(0, 200, size=(9, 11, 3)).astype(dtype)
    assert imresize(img, 0.5).dtype == dtype
    assert imresize(img[..., 0], 2).dtype == dtype


def test_integer_output_is_clipped_but_float_output_is_not() -> None:
    # A step edge: bicubic overshoots on both sides (negative lobes of the kernel).
    step = np.zeros((4, 16))
    step[:, 8:] = 1.0
    up = imresize(step, 2.0)
    assert up.min() < 0.0  # MATLAB does not clip doubles
    assert up.max() > 1.0
    up8 = imresize((step * 255).astype(np.uint8), 2.0)
    assert up8.min() == 0
    assert up8.max() == 255
    up16 = imresize((step * 65535).astype(np.uint16), 2.0)
    assert up16.dtype == np.uint16
    assert up16.max() == 65535


# --- 3. numpy and torch agree ---------------------------------------------------------------------


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 1.0, 2.0, 3.0, (0.5, 2.0)])
def test_torch_matches_numpy(kernel: str, scale: float | tuple[float, float]) -> None:
    img = RNG.random((17, 23, 3))
    ref = imresize(img, scale, kernel=kernel)
    chw = torch.from_numpy(img).permute(2, 0, 1)
    out64 = imresize(chw[None], scale, kernel=kernel)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out64, ref, rtol=0, atol=1e-10)
    out32 = imresize(chw.float(), scale, kernel=kernel)
    assert out32.dtype == torch.float32
    np.testing.assert_allclose(out32.permute(1, 2, 0).numpy(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0, (1 / 3, 1.5)])
def test_uint8_tensor_equals_uint8_numpy_exactly(scale: float | tuple[float, float]) -> None:
    img = _rgb(37, 29)
    ref = imresize(img, scale)
    out = imresize(torch.from_numpy(img).permute(2, 0, 1).contiguous(), scale)
    assert out.dtype == torch.uint8
    np.testing.assert_array_equal(out.permute(1, 2, 0).numpy(), ref)


def test_gradient_flows_through_torch_path() -> None:
    x = torch.rand(2, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, (0.5, 1.5)), (x,))
    assert torch.autograd.gradcheck(lambda t: imresize(t, output_shape=(9, 3)), (x,))
    y = torch.rand(1, 3, 16, 16, requires_grad=True)
    imresize(y, 0.25).sum().backward()
    assert y.grad is not None
    # Each output pixel's weights sum to 1, so d(sum out)/d(in) sums to the number of outputs.
    assert float(y.grad.sum()) == pytest.approx(3 * 4 * 4, rel=1e-5)


# --- 4. properties one can derive by hand ---------------------------------------------------------


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("scale", [0.25, 0.3, 0.5, 1.0, 1.7, 2.0, 4.0])
def test_constant_image_stays_constant(kernel: str, scale: float) -> None:
    # Weights are normalised to sum 1 and edge taps replicate the border: no darkening at edges.
    out = imresize(np.full((13, 10), 0.7), scale, kernel=kernel)
    np.testing.assert_allclose(out, 0.7, rtol=0, atol=1e-12)
    out8 = imresize(np.full((13, 10, 3), 123, np.uint8), scale, kernel=kernel)
    assert np.all(out8 == 123)


def test_nearest_x2_upscale_repeats_pixels() -> None:
    img = _rgb(5, 7)
    expected = np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(imresize(img, 2.0, kernel="nearest"), expected)
    # "nearest" ignores antialiasing (MATLAB's rule): shrinking picks pixels, never averages them.
    small = imresize(img.astype(np.float64), 0.5, kernel="nearest")
    assert np.isin(small, img).all()


def test_bilinear_keeps_a_ramp_linear_away_from_borders() -> None:
    # f(j) = 3 j + 5 over 1-based column j; x3 upscale samples it at u = x/3 + 1/3 (1-based).
    W = 12
    ramp = np.tile(3.0 * np.arange(1, W + 1) + 5.0, (4, 1))
    out = imresize(ramp, 3.0, kernel="bilinear")
    x = np.arange(1, 3 * W + 1)
    u = x / 3 + 0.5 * (1 - 1 / 3)
    inside = (u >= 1) & (u <= W)  # both triangle taps inside the image: exact linear interpolation
    np.testing.assert_allclose(
        out[:, inside], np.broadcast_to(3 * u[inside] + 5, (12, inside.sum()))
    )
    assert not np.allclose(out[:, ~inside], 3 * u[~inside] + 5)  # clamped borders flatten the ramp


def test_scale_one_is_identity_but_down_up_is_not() -> None:
    img = _rgb(16, 12)
    np.testing.assert_array_equal(imresize(img, 1.0), img)
    f = RNG.random((16, 12))
    np.testing.assert_array_equal(imresize(f, 1.0), f)
    round_trip = imresize(imresize(f, 0.5), 2.0)
    assert round_trip.shape == f.shape
    assert np.abs(round_trip - f).max() > 0.05  # information is lost, not just rounding


def test_hand_computed_bicubic_x2_weights() -> None:
    # Scale 2 upsampling: u = x/2 + 0.5*(1 - 1/2) = x/2 + 0.25 (1-based).
    # For output x = 5: u = 2.75, left = floor(2.75 - 4/2) = 0, taps j = 0..5 (P = 4 + 2),
    # offsets u - j = 2.75 1.75 0.75 -0.25 -1.25 -2.25.
    # Keys a = -0.5:  k(t) = 1.5|t|^3 - 2.5|t|^2 + 1 for |t| <= 1,
    #                 k(t) = -0.5|t|^3 + 2.5|t|^2 - 4|t| + 2 for 1 < |t| <= 2, else 0.
    #   k(1.75) = -0.5*5.359375 + 2.5*3.0625 - 7 + 2 = -0.0234375
    #   k(0.75) = 1.5*0.421875 - 2.5*0.5625 + 1   =  0.2265625
    #   k(0.25) = 1.5*0.015625 - 2.5*0.0625 + 1   =  0.8671875
    #   k(1.25) = -0.5*1.953125 + 2.5*1.5625 - 5 + 2 = -0.0703125
    # They sum to 1, so normalisation changes nothing; taps 0 and 5 have weight 0.
    weights = [-0.0234375, 0.2265625, 0.8671875, -0.0703125]
    assert sum(weights) == 1.0
    row = np.array([10.0, 20.0, 40.0, 80.0, 160.0, 50.0, 30.0, 0.0])
    img = np.tile(row, (3, 1))  # rows identical, so the height pass leaves values unchanged
    out = imresize(img, 2.0)
    # Output x = 5 (0-based column 4) reads 1-based pixels 1..4 = 0-based row[0:4].
    expected = float(np.dot(weights, row[0:4]))  # -0.234375 + 4.53125 + 34.6875 - 5.625
    assert expected == 33.359375
    np.testing.assert_allclose(out[:, 4], expected, rtol=0, atol=1e-12)


def test_edges_are_replicated_not_mirrored() -> None:
    # A single bright first column: clamping counts it for every out-of-range tap on the left,
    # where a mirror would read pixels 1, 2, 3, ... (mostly 0) instead.
    img = np.zeros((1, 16))
    img[0, 0] = 1.0
    out = imresize(img, (1.0, 0.25))
    # 1-based output x = 1: u = 1/0.25 + 0.5*(1 - 4) = 2.5; width 4/0.25 = 16; taps j from
    # floor(2.5 - 8) = -6 to 11; j <= 1 all clamp to pixel 1, so its weight is the sum of h(2.5 - j)
    # over j = -6..1 with h(t) = k(t/4)/4, normalised by the sum over all 18 taps.
    j = np.arange(-6, 12)
    t = np.abs(2.5 - j) / 4
    k = np.where(
        t <= 1,
        1.5 * t**3 - 2.5 * t**2 + 1,
        np.where(t <= 2, -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2, 0),
    )
    expected = k[j <= 1].sum() / k.sum()
    assert out[0, 0] == pytest.approx(expected, abs=1e-12)


def test_dimension_order_rows_first_on_equal_scales() -> None:
    # With uint8 rounding after each pass, the order of passes is observable: check against
    # doing the passes by hand (rows, i.e. H, first).
    img = _rgb(20, 20)
    both = imresize(img, 0.5)
    by_hand = imresize(imresize(img, (0.5, 1.0)), (1.0, 0.5))
    np.testing.assert_array_equal(both, by_hand)
    other_order = imresize(imresize(img, (1.0, 0.5)), (0.5, 1.0))
    assert not np.array_equal(both, other_order)  # this image happens to tell the orders apart


def test_large_image_shape() -> None:
    img = _rgb(1024, 768)
    out = imresize(img, 0.25)
    assert out.shape == (256, 192, 3)
    assert out.dtype == np.uint8


# --- 5. bad input ---------------------------------------------------------------------------------


def test_unknown_kernel_suggests_close_name() -> None:
    with pytest.raises(
        UnknownKernelError, match=r"unknown kernel 'bicubc'.*Did you mean 'bicubic'"
    ):
        imresize(np.zeros((4, 4)), 0.5, kernel="bicubc")
    with pytest.raises(ValueError, match=r"Known kernels:.*lanczos3"):
        imresize(np.zeros((4, 4)), 0.5, kernel="gaussian")
    assert issubclass(UnknownKernelError, SuperresError)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of `scale` and `output_shape`; got neither"),
        ({"scale": 0.5, "output_shape": (2, 2)}, "got both"),
        ({"scale": 0}, r"positive finite.*got 0"),
        ({"scale": -0.5}, r"got -0.5"),
        ({"scale": math.nan}, r"got nan"),
        ({"scale": math.inf}, r"got inf"),
        ({"scale": (0.5, 0.5, 0.5)}, r"\(scale_h, scale_w\) pair"),
        ({"scale": (0.5, 0.0)}, r"got \(0.5, 0.0\)"),
        ({"output_shape": (0, 5)}, r"positive ints.*got \(0, 5\)"),
        ({"output_shape": (4.5, 5)}, r"got \(4.5, 5\)"),
        ({"output_shape": (5,)}, r"\(out_h, out_w\)"),
    ],
)
def test_bad_scale_or_output_shape(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        imresize(np.zeros((8, 8)), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros(8), r"shape \(8,\); expected \(H, W\) or \(H, W, C\)"),
        (np.zeros((2, 8, 8, 3)), r"shape \(2, 8, 8, 3\)"),
        (np.zeros((3, 32, 32)), r"looks channel-first.*transpose\(1, 2, 0\)"),
        (np.zeros((0, 8)), "empty image"),
        (np.zeros((8, 8), np.int32), r"dtype int32; expected uint8, uint16, float32 or float64"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (torch.zeros(8), r"shape \(8,\); expected \(\.\.\., H, W\)"),
        (torch.zeros(3, 0, 4), "empty tensor"),
        (torch.zeros(3, 4, 4, dtype=torch.int64), r"dtype torch.int64; expected a floating"),
        ([[0.0, 1.0], [1.0, 0.0]], r"got a list; expected a numpy array"),
    ],
)
def test_bad_image(image: object, match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        imresize(image, 0.5)  # type: ignore[call-overload]


def test_big_endian_input_is_accepted() -> None:
    # PIL's I;16B and some TIFF readers hand out non-native byte order.
    img = RNG.integers(0, 65536, size=(8, 8)).astype(">u2")
    np.testing.assert_array_equal(imresize(img, 0.5), imresize(img.astype(np.uint16), 0.5))


def test_mirror_edges_follow_matlab_contributions_when_shrinking() -> None:
    """edge="mirror" (newer MATLAB, NIQE's reference) against MATLAB's contributions() written
    out per output pixel for an antialiased x0.5 bicubic, whose taps reach past both borders."""
    rng = np.random.default_rng(3)
    x = rng.random((11, 6)) * 255

    def cubic(t: float) -> float:
        t = abs(t)
        if t <= 1:
            return 1.5 * t**3 - 2.5 * t**2 + 1
        return -0.5 * t**3 + 2.5 * t**2 - 4 * t + 2 if t <= 2 else 0.0

    def axis_matrix(n_in: int, n_out: int, s: float) -> np.ndarray:
        aux = [*range(1, n_in + 1), *range(n_in, 0, -1)]
        m = np.zeros((n_out, n_in))
        width = 4 / s
        for i in range(1, n_out + 1):
            u = i / s + 0.5 * (1 - 1 / s)
            taps = [math.floor(u - width / 2) + k for k in range(math.ceil(width) + 2)]
            wts = [s * cubic(s * (u - j)) for j in taps]
            for j, wj in zip(taps, wts, strict=True):
                m[i - 1, aux[(j - 1) % len(aux)] - 1] += wj / sum(wts)
        return m

    want = axis_matrix(11, 6, 0.5) @ x @ axis_matrix(6, 3, 0.5).T
    got = imresize(x, scale=0.5, edge="mirror")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)
    replicate = imresize(x, scale=0.5)
    assert not np.allclose(replicate[0], got[0])  # the border rows differ between the rules
    with pytest.raises(InvalidImageError, match="edge must be one of"):
        imresize(x, scale=0.5, edge="wrap")  # type: ignore[arg-type]
