"""Tiling: the plan, the blending weights, padding, and tiled == untiled for a real network."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from superres.inference.tiling import (
    InvalidTilingError,
    axis_weights,
    balanced_tile,
    blend_into,
    pad_to_multiple,
    plan_tiles,
    run_tiled,
    strip_tile,
    tile_starts,
)
from superres.models import create_model


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [(100, 100, 16), (50, 64, 16), (65, 64, 16), (113, 64, 16), (200, 64, 16), (1000, 96, 32)],
)
def test_tile_starts_cover_with_equal_tiles_and_enough_overlap(
    length: int, tile: int, overlap: int
) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    size = min(tile, length)
    assert starts[-1] + size == length  # flush with the end: every tile has the same size
    for a, b in itertools.pairwise(starts):
        assert 0 < b - a <= tile - overlap  # neighbours share at least `overlap` pixels
    # no more tiles than needed
    assert len(starts) == 1 or len(starts) - 1 == -(-(length - tile) // (tile - overlap))


def test_tile_not_larger_than_overlap_is_an_error() -> None:
    with pytest.raises(InvalidTilingError, match="larger than the overlap"):
        tile_starts(100, 16, 16)
    assert tile_starts(10, 16, 16) == (0,)  # one tile needs no overlap


@pytest.mark.parametrize("window", ["cosine", "linear"])
@pytest.mark.parametrize(
    ("height", "width", "tile", "overlap", "scale"),
    [
        (40, 100, 32, 8, 1),
        (37, 113, 24, 12, 2),  # uneven steps and a wide shared strip
        (65, 65, 64, 16, 3),  # two tiles one pixel apart: the ramp shrinks to fit
        (20, 20, 64, 16, 4),  # one tile
    ],
)
def test_weights_sum_to_one_so_constant_images_have_no_seams(
    height: int, width: int, tile: int, overlap: int, scale: int, window: str
) -> None:
    plan = plan_tiles(height, width, tile, overlap)
    wy, wx = plan.weights(scale=scale, window=window)  # type: ignore[arg-type]
    canvas = torch.zeros(1, height * scale, width * scale)
    for t in plan.tiles():
        ones = torch.ones(1, (t.y1 - t.y0) * scale, (t.x1 - t.x0) * scale)
        blend_into(canvas, ones, t, wy[t.row], wx[t.col], scale)
    assert torch.allclose(canvas, torch.ones_like(canvas), atol=1e-6)

    # A constant image through a real resampler stays constant: no seam anywhere.
    value = 0.7
    x = torch.full((3, height, width), value)
    out = run_tiled(
        lambda b: b.repeat_interleave(scale, -2).repeat_interleave(scale, -1),
        x,
        scale=scale,
        tile=tile,
        overlap=overlap,
        window=window,  # type: ignore[arg-type]
    )
    assert float((out - value).abs().max()) < 1e-6


def test_weights_ignore_the_outer_quarter_of_the_overlap_and_not_the_image_border() -> None:
    starts = tile_starts(200, 64, 32)  # steps <= 32
    weights = axis_weights(starts, 64, scale=2, ramp=16)
    for i, w in enumerate(weights):
        if i > 0:  # at least overlap/4 = 8 input px (16 output px) discarded at a shared edge
            assert float(w[:16].abs().max()) == 0.0
        else:  # the image border keeps full weight
            assert float(w[0]) == 1.0
        if i < len(weights) - 1:
            assert float(w[-16:].abs().max()) == 0.0
        else:
            assert float(w[-1]) == 1.0
        assert float(w.max()) == pytest.approx(1.0)


def _srresnet_and_radius() -> tuple[nn.Module, int]:
    """A small random SRResNet x4 and its receptive-field radius in input pixels.

    conv_first 9x9 (4) + 2 blocks x 2 conv3x3 (4) + conv_body (1) + upsampling conv3x3 at x1 (1)
    and at x2 (0.5) + conv_last 9x9 at x4 (4 / 4 = 1) = 11.5 -> 12 input pixels.
    """
    torch.manual_seed(0)
    model = create_model("srresnet", scale=4, num_features=16, num_blocks=2).eval()
    last = model.get_submodule("conv_last")
    assert isinstance(last, nn.Conv2d)
    with torch.no_grad():
        last.weight.mul_(10)  # outputs of order 1, so differences are visible
    return model, 12


def test_tiled_equals_untiled_when_the_overlap_covers_the_receptive_field() -> None:
    model, radius = _srresnet_and_radius()
    x = torch.rand(3, 40, 160, generator=torch.Generator().manual_seed(1))
    tile = 64
    with torch.inference_mode():
        whole = model(x[None])[0]
        assert float(whole.std()) > 0.1
        # overlap / 4 >= radius: every pixel with non-zero weight sees no tile edge
        tiled = run_tiled(model, x, scale=4, tile=tile, overlap=4 * radius)
        assert len(plan_tiles(40, 160, tile, 4 * radius).xs) >= 3
        assert float((tiled - whole).abs().max()) <= 1 / 255
        assert float((tiled - whole).abs().max()) < 1e-4
        # The test has teeth: a small overlap lets padding artefacts through.
        rough = run_tiled(model, x, scale=4, tile=tile, overlap=8)
        assert float((rough - whole).abs().max()) > 1 / 255
        # Batching tiles changes nothing.
        batched = run_tiled(model, x, scale=4, tile=tile, overlap=4 * radius, batch_size=3)
        assert torch.allclose(batched, tiled, atol=1e-6)


class _NeedsMultipleOf4(nn.Module):
    """x2 nearest neighbour that refuses sizes not divisible by 4 (like a U-Net would)."""

    scale = 2
    in_channels = 3
    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise RuntimeError(f"size {tuple(x.shape)} not a multiple of 4")
        return x.repeat_interleave(2, -2).repeat_interleave(2, -1)


@pytest.mark.parametrize(("height", "width", "tile"), [(13, 10, None), (13, 30, 8), (3, 2, 8)])
def test_padding_to_the_size_multiple_is_cropped_away(
    height: int, width: int, tile: int | None
) -> None:
    x = torch.rand(3, height, width)
    out = run_tiled(_NeedsMultipleOf4(), x, scale=2, tile=tile, overlap=4, size_multiple=4)
    expected = x.repeat_interleave(2, -2).repeat_interleave(2, -1)
    assert out.shape == expected.shape
    assert torch.allclose(out, expected, atol=1e-6)


def test_pad_to_multiple_reflects_and_falls_back_to_replicate() -> None:
    x = torch.arange(12.0).reshape(1, 3, 4)
    padded, size = pad_to_multiple(x, 4)
    assert size == (3, 4)
    assert padded.shape == (1, 4, 4)
    assert torch.equal(padded[0, 3], x[0, 1])  # reflection: row 3 mirrors row 1
    tiny = torch.arange(2.0).reshape(1, 1, 2)
    padded, _ = pad_to_multiple(tiny, 4)
    assert padded.shape == (1, 4, 4)
    assert torch.equal(padded[0, :, 3], torch.full((4,), 1.0))  # replicated edge
    same, _ = pad_to_multiple(x, 1)
    assert same is x


def test_wrong_network_output_shape_is_reported() -> None:
    with pytest.raises(InvalidTilingError, match="scale"):
        run_tiled(lambda b: b, torch.rand(3, 8, 8), scale=2, tile=None, overlap=0)


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "multiple", "expected"),
    [
        (384, 256, 32, 1, 208),  # two tiles sharing exactly the overlap, not 128 pixels
        (384, 256, 32, 16, 208),
        (385, 256, 32, 16, 224),  # rounded up to the multiple
        (1000, 256, 32, 1, 226),  # five tiles: ceil((1000 + 4 * 32) / 5)
        (200, 256, 32, 1, 200),  # one tile: the image
        (256, 256, 32, 8, 256),
    ],
)
def test_balanced_tile_keeps_the_tile_count_and_shrinks_the_tiles(
    length: int, tile: int, overlap: int, multiple: int, expected: int
) -> None:
    balanced = balanced_tile(length, tile, overlap, multiple)
    assert balanced == expected
    assert balanced % multiple == 0 or balanced == length
    assert len(tile_starts(length, balanced, overlap)) == len(tile_starts(length, tile, overlap))
    starts = tile_starts(length, balanced, overlap)
    shared = [starts[i] + balanced - starts[i + 1] for i in range(len(starts) - 1)]
    assert all(s >= overlap for s in shared)


def test_balanced_tiles_give_the_same_output_with_less_work() -> None:
    torch.manual_seed(0)
    x = torch.rand(3, 96, 150)
    sizes: dict[bool, list[tuple[int, int]]] = {True: [], False: []}

    def upscale(balance: bool) -> torch.Tensor:
        def fn(b: torch.Tensor) -> torch.Tensor:
            sizes[balance].append((b.shape[-2], b.shape[-1]))
            return F.interpolate(b, scale_factor=2, mode="nearest")

        return run_tiled(fn, x, scale=2, tile=64, overlap=8, balance=balance)

    plain, balanced = upscale(False), upscale(True)
    assert torch.allclose(plain, balanced, atol=1e-6)
    assert len(sizes[True]) == len(sizes[False])
    assert sum(h * w for h, w in sizes[True]) < sum(h * w for h, w in sizes[False])
    plan = plan_tiles(96, 150, 64, 8, balance=True)
    assert (plan.tile_h, plan.tile_w) == (52, 56)


def test_balanced_tile_rejects_a_bad_multiple() -> None:
    with pytest.raises(InvalidTilingError, match="multiple must be an integer >= 1"):
        balanced_tile(384, 256, 32, 0)


@pytest.mark.parametrize(
    ("height", "width", "multiple", "expected"),
    [
        (1, 65535, 1, (1, 65536)),  # a one-pixel row: one tile of as many pixels as 256 x 256
        (65535, 3, 4, (16384, 3)),  # the narrow side counts as padded to the multiple (4)
        (200, 1000, 1, (200, 327)),
        (1000, 1000, 1, (256, 256)),  # not a strip: the square
        (100, 100, 1, (256, 256)),  # smaller than the tile both ways: plan_tiles shrinks it
    ],
)
def test_strip_tile_holds_as_many_pixels_as_the_square(
    height: int, width: int, multiple: int, expected: tuple[int, int]
) -> None:
    th, tw = strip_tile(height, width, 256, multiple)
    assert (th, tw) == expected
    padded = (-(-min(height, th) // multiple) * multiple) * (
        -(-min(width, tw) // multiple) * multiple
    )
    assert padded <= 256 * 256
    assert plan_tiles(height, width, 256, 32) == plan_tiles(height, width, (256, 256), 32)


@pytest.mark.parametrize(("height", "width"), [(1, 65535), (65535, 1), (3, 40000), (256, 256)])
def test_strip_costs_network_calls_in_proportion_to_its_pixels(height: int, width: int) -> None:
    # The 65535 x 1 strip took 293 calls of 256 pixels (plus overlap) where 256 x 256 takes one.
    pixels: list[int] = []

    def fn(b: torch.Tensor) -> torch.Tensor:
        pixels.append(b.shape[-2] * b.shape[-1])
        return b.repeat_interleave(2, -2).repeat_interleave(2, -1)

    x = torch.rand(3, height, width, generator=torch.Generator().manual_seed(0))
    out = run_tiled(fn, x, scale=2, tile=256, overlap=32)
    assert torch.allclose(out, x.repeat_interleave(2, -2).repeat_interleave(2, -1), atol=1e-6)
    assert len(pixels) <= -(-height * width // 256**2) + 1
    assert sum(pixels) <= 1.01 * height * width
    assert max(pixels) <= 256 * 256
