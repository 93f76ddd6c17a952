"""BT.601 studio-swing colour conversion (MATLAB ``rgb2ycbcr``/``ycbcr2rgb``): hand values, types,
round trips, numpy == torch, rounding and errors."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch

from superres.errors import InvalidImageError
from superres.imaging.color import rgb2ycbcr, rgb_to_y, ycbcr2rgb

# Primaries by hand from Y = 16 + 65.481 R + 128.553 G + 24.966 B, Cb = 128 - 37.797 R - 74.203 G
# + 112 B, Cr = 128 + 112 R - 93.786 G - 18.214 B (R, G, B in {0, 1}); exact, then rounded.
HAND = {
    # rgb: (exact (Y, Cb, Cr), uint8 result)
    (0, 0, 0): ((16.0, 128.0, 128.0), (16, 128, 128)),
    (255, 255, 255): ((235.0, 240.0 - 112.0, 128.0), (235, 128, 128)),  # Cb = 128 - 112 + 112
    (255, 0, 0): ((81.481, 90.203, 240.0), (81, 90, 240)),
    (0, 255, 0): ((144.553, 53.797, 34.214), (145, 54, 34)),
    (0, 0, 255): ((40.966, 240.0, 109.786), (41, 240, 110)),
}


def _exact_y(r: int, g: int, b: int) -> Fraction:
    """Y of an 8-bit pixel in exact rational arithmetic (coefficients are exact decimals)."""
    c = (Fraction("65.481"), Fraction("128.553"), Fraction("24.966"))
    return 16 + (c[0] * r + c[1] * g + c[2] * b) / 255


@pytest.mark.parametrize(("rgb", "expected"), HAND.items())
def test_primaries_by_hand(rgb: tuple[int, int, int], expected: tuple) -> None:
    exact, rounded = expected
    pixel = np.array(rgb, dtype=np.uint8)[None, None]
    out8 = rgb2ycbcr(pixel)
    assert out8.dtype == np.uint8
    assert tuple(int(v) for v in out8[0, 0]) == rounded
    outf = rgb2ycbcr(pixel.astype(np.float64) / 255)
    assert outf.dtype == np.float64
    np.testing.assert_allclose(outf[0, 0] * 255, exact, rtol=0, atol=1e-10)
    assert int(rgb_to_y(pixel)[0, 0]) == rounded[0]


def test_float_y_range_is_studio_swing() -> None:
    # White -> 235/255 and black -> 16/255: the [0, 1] scale, not 0-255.
    img = np.array([[[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]], dtype=np.float32)
    y = rgb_to_y(img)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [[235 / 255, 16 / 255]], rtol=0, atol=1e-7)


def test_uint8_rounds_half_away_from_zero() -> None:
    # (2, 44, 141): Y = 16 + (65.481*2 + 128.553*44 + 24.966*141)/255 = 16 + 9307.5/255 = 52.5
    # exactly (checked below in rational arithmetic, and float64 also lands on 52.5). MATLAB rounds
    # half away from zero -> 53; numpy's np.round (half to even) would give 52.
    assert _exact_y(2, 44, 141) == Fraction(105, 2)
    y = rgb_to_y(np.array([[[2, 44, 141]]], dtype=np.uint8))
    assert int(y[0, 0]) == 53
    # (0, 204, 68): exactly 125.5 -> 126 (here half-to-even agrees; the floor is odd).
    assert _exact_y(0, 204, 68) == Fraction(251, 2)
    assert int(rgb_to_y(np.array([0, 204, 68], dtype=np.uint8))) == 126


def test_uint8_matches_exact_rounding_on_random_pixels() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(500, 3), dtype=np.uint8)
    got = rgb_to_y(pixels)
    for (r, g, b), y in zip(pixels.tolist(), got.tolist(), strict=True):
        exact = _exact_y(r, g, b)
        assert y == int(exact + Fraction(1, 2))  # floor(v + 1/2): half up for v >= 0


def test_ycbcr2rgb_uint8_saturates() -> None:
    # Studio-range YCbCr (235, 240, 240) is outside the RGB cube; MATLAB saturates to [0, 255].
    rgb = ycbcr2rgb(np.array([[[235, 240, 240]]], dtype=np.uint8))
    assert rgb.dtype == np.uint8
    # By hand with the inverse (255 * inv(T), rows R, G, B): G = 296.918 * 219/255 - 99.899 *
    # 112/255 - 207.307 * 112/255 = 255 - 43.88 - 91.05 = 120.07 -> 120; R = 255 + 178.8 and
    # B = 255 + 225.9 saturate at 255.
    assert rgb[0, 0].tolist() == [255, 120, 255]


def test_uint16_scales_like_matlab() -> None:
    # MATLAB's uint16 path is the [0, 1] formula times 65535: white -> 235 * 257 = 60395.
    white = np.full((1, 1, 3), 65535, dtype=np.uint16)
    out = rgb2ycbcr(white)
    assert out.dtype == np.uint16
    assert out[0, 0].tolist() == [235 * 257, 128 * 257, 128 * 257]


def test_round_trip_float() -> None:
    rng = np.random.default_rng(1)
    rgb = rng.random((16, 17, 3))
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(rgb)), rgb, rtol=0, atol=1e-12)
    t = torch.from_numpy(rgb).permute(2, 0, 1)[None].float()
    np.testing.assert_allclose(ycbcr2rgb(rgb2ycbcr(t)).numpy(), t.numpy(), rtol=0, atol=1e-6)


def test_round_trip_uint8_within_rounding() -> None:
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    back = ycbcr2rgb(rgb2ycbcr(rgb)).astype(int)
    # Rounding YCbCr to integers moves RGB by at most ~1.6 levels (the inverse's row norms).
    assert np.abs(back - rgb.astype(int)).max() <= 2


def test_inverse_is_exact_matrix_inverse() -> None:
    ycc = np.array([16.0, 128.0, 128.0]) / 255
    np.testing.assert_allclose(ycbcr2rgb(ycc), [0.0, 0.0, 0.0], atol=1e-15)
    ycc = np.array([235.0, 128.0, 128.0]) / 255
    np.testing.assert_allclose(ycbcr2rgb(ycc), [1.0, 1.0, 1.0], atol=1e-14)


def test_torch_matches_numpy_and_shapes() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.random((2, 3, 8, 9))
    t = torch.from_numpy(rgb)
    hwc = np.moveaxis(rgb, 1, -1)
    out = rgb2ycbcr(t)
    assert out.shape == (2, 3, 8, 9)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(np.moveaxis(out.numpy(), 1, -1), rgb2ycbcr(hwc), atol=1e-14)
    y = rgb_to_y(t)
    assert y.shape == (2, 1, 8, 9)
    np.testing.assert_allclose(y[:, 0].numpy(), rgb_to_y(hwc), atol=1e-14)
    assert rgb_to_y(t[0]).shape == (1, 8, 9)
    assert rgb_to_y(hwc[0]).shape == (8, 9)
    back = ycbcr2rgb(t)
    np.testing.assert_allclose(np.moveaxis(back.numpy(), 1, -1), ycbcr2rgb(hwc), atol=1e-13)


def test_torch_keeps_dtype_and_is_differentiable() -> None:
    x = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: rgb2ycbcr(t), (x,))
    y = rgb_to_y(x)
    y.sum().backward()
    assert x.grad is not None
    # dY/dR summed over pixels = 65.481/255 per pixel.
    np.testing.assert_allclose(x.grad[0, 0].numpy(), 65.481 / 255, rtol=1e-12)
    assert rgb_to_y(torch.rand(3, 2, 2, dtype=torch.float16)).dtype == torch.float16


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), dtype=np.uint8),  # gray: no channel axis
        np.zeros((4, 4, 4), dtype=np.uint8),  # RGBA
        np.zeros((3, 4, 4), dtype=np.float32),  # channel-first numpy
        np.zeros((4, 4, 3), dtype=np.int32),  # unsupported dtype
        torch.zeros(1, 4, 4, 4),  # 4 channels
        torch.zeros(4, 4, 3),  # channel-last tensor
        torch.zeros(3, 4),  # no spatial dims
        torch.zeros(1, 3, 4, 4, dtype=torch.uint8),  # integer tensor
        [[0, 0, 0]],  # not an array
    ],
)
def test_bad_inputs_raise(bad: object) -> None:
    for fn in (rgb2ycbcr, ycbcr2rgb, rgb_to_y):
        with pytest.raises(InvalidImageError, match="expect"):
            fn(bad)  # type: ignore[arg-type]
