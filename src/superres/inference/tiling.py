"""Overlapping tiles with feathered blending: run a network on an image of any size, without seams.

A convolutional network's output near a tile's edge differs from its output on the whole image
(the convolutions see zero padding instead of the neighbouring pixels). This module hides that
completely when the tiles overlap by enough, and smoothly when they do not:

1. **Plan** (:func:`plan_tiles`): along each axis, ``n`` tiles of the same size ``tile`` (the
   image's size when it is smaller), the first flush with the start, the last flush with the end,
   the rest evenly spaced, so that neighbours share at least ``overlap`` pixels. Equal sizes let
   tiles be batched and keep the per-tile memory constant. On a strip (narrower than the tile
   along one axis) the tile grows along the other to as many pixels as the square
   (:func:`strip_tile`), so the number of network calls follows the pixel count.
2. **Weights** (:func:`axis_weights`): between two neighbours, the cut is the middle of their shared
   strip; the left tile's weight falls from 1 to 0 over a ramp of ``ramp`` pixels centred on the
   cut (linear or raised cosine) and the right tile's rises by the complement, so the weights of all
   tiles sum to 1 everywhere. The image's own borders get no ramp. A tile's non-zero weights start
   ``(shared - ramp) / 2 >= (overlap - ramp) / 2`` pixels inside its edge: the outermost pixels,
   where padding artefacts live, are discarded. With ``ramp = overlap / 2`` (the default) that
   margin is ``overlap / 4``, so **tiled output equals untiled output (to float rounding) when
   ``overlap / 4`` is at least the network's receptive-field radius**; with a smaller overlap the
   residual differences are cross-faded rather than cut into visible seams.
3. **Accumulate** (:func:`blend_into`): each tile's output, times the outer product of its two 1-D
   weight vectors, is added into the output canvas. The weights are separable, so the "weight
   canvas" is the outer product of two 1-D sums; it is normalised away in 1-D (each axis's weights
   are divided by their sum), and no 2-D weight canvas is ever allocated.
4. **Pad** (:func:`pad_to_multiple`): networks that need ``H, W`` divisible by ``size_multiple``
   get the tile padded on the bottom/right by reflection (replication when the tile is too small to
   reflect), and the output cropped back by ``scale`` times the original size.

:func:`run_tiled` puts the four together around any callable ``(B, C, h, w) -> (B, C', h*s, w*s)``.
Everything here is a pure function of its arguments (shapes in, numbers out, or a tensor updated in
place where documented); devices and precision belong to the caller (see
:class:`superres.inference.Upscaler`). Overlap-tile arithmetic as in Real-ESRGAN's ``tile_process``,
plus blending, which Real-ESRGAN leaves out.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from superres.errors import SuperresError

__all__ = [
    "InvalidTilingError",
    "Tile",
    "TilePlan",
    "axis_weights",
    "balanced_tile",
    "blend_into",
    "pad_to_multiple",
    "plan_tiles",
    "run_tiled",
    "strip_tile",
    "tile_starts",
]

Window = Literal["cosine", "linear"]


class InvalidTilingError(SuperresError, ValueError):
    """Tile size, overlap or ramp are inconsistent (e.g. a tile not larger than the overlap)."""


@dataclass(frozen=True)
class Tile:
    """One tile of a :class:`TilePlan`: input rows ``[y0, y1)`` and columns ``[x0, x1)``.

    ``row`` and ``col`` index the tile's weight vectors in :meth:`TilePlan.weights`.
    """

    y0: int
    y1: int
    x0: int
    x1: int
    row: int
    col: int


@dataclass(frozen=True)
class TilePlan:
    """Where the tiles of an ``height x width`` image lie (input pixels).

    Attributes:
        height, width: the image size.
        tile_h, tile_w: the size of every tile, ``min(tile, height)`` and ``min(tile, width)``.
        ys, xs: the tiles' first row / first column along each axis, increasing.
        overlap: the requested minimum overlap; neighbours share at least this many pixels.
    """

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    overlap: int

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def tiles(self) -> list[Tile]:
        """All tiles in raster order (row by row)."""
        return [
            Tile(y, y + self.tile_h, x, x + self.tile_w, row, col)
            for row, y in enumerate(self.ys)
            for col, x in enumerate(self.xs)
        ]

    def weights(
        self, *, scale: int = 1, ramp: float | None = None, window: Window = "cosine"
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-row and per-column 1-D blending weights at output resolution (see
        :func:`axis_weights`); ``ramp`` defaults to ``overlap / 2``."""
        r = self.overlap / 2 if ramp is None else ramp
        wy = axis_weights(self.ys, self.tile_h, scale=scale, ramp=r, window=window)
        wx = axis_weights(self.xs, self.tile_w, scale=scale, ramp=r, window=window)
        return wy, wx


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidTilingError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def tile_starts(length: int, tile: int, overlap: int) -> tuple[int, ...]:
    """First indices of equally sized tiles covering ``[0, length)`` with at least ``overlap``
    shared pixels between neighbours.

    ``(0,)`` when ``tile >= length``. Otherwise ``n = 1 + ceil((length - tile) / (tile - overlap))``
    tiles, the first at 0, the last at ``length - tile``, the others evenly spaced (rounded), so
    every step is at most ``tile - overlap``.

    Raises:
        InvalidTilingError: ``length < 1``, ``tile < 1``, ``overlap < 0`` or ``tile <= overlap``
            while more than one tile is needed.
    """
    _check_int("length", length, 1)
    _check_int("tile", tile, 1)
    _check_int("overlap", overlap, 0)
    if tile >= length:
        return (0,)
    if tile <= overlap:
        raise InvalidTilingError(
            f"tile ({tile} px) must be larger than the overlap ({overlap} px); use a larger "
            "tile or a smaller overlap"
        )
    span = length - tile
    steps = math.ceil(span / (tile - overlap))
    # Integer rounding of i * span / steps: no float drift, and the last start is exactly span.
    return tuple((i * span + steps // 2) // steps for i in range(steps + 1))


def balanced_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile, a multiple of ``multiple``, that covers ``length`` in as many tiles as
    ``tile`` does.

    A fixed tile over-covers: 384 pixels in 256-pixel tiles (overlap 32) take two tiles that share
    128 pixels, where two 208-pixel tiles share the 32 the overlap asks for, 19% less work per axis
    (34% per image) for the same number of network calls. ``length`` when one tile covers it.

    Raises:
        InvalidTilingError: see :func:`tile_starts`.
    """
    _check_int("multiple", multiple, 1)
    count = len(tile_starts(length, tile, overlap))
    if count == 1:
        return length
    need = math.ceil((length + (count - 1) * overlap) / count)
    return min(tile, math.ceil(need / multiple) * multiple)


def strip_tile(height: int, width: int, tile: int, multiple: int = 1) -> tuple[int, int]:
    """``(tile_h, tile_w)``: the square ``tile``, or on an image narrower than ``tile`` along one
    axis (a strip), a tile that takes the narrow side whole and grows along the other to hold
    about as many pixels, ``tile * tile`` (the narrow side counted padded to ``multiple``).

    Tile memory and network calls then follow the pixel count: a 1 x 65535 strip in 256 px tiles
    is one tile of 65535 pixels, not 293 tiles of 256 (each sharing ``overlap`` with the next).
    The long side stays a multiple of ``multiple`` and at least ``tile``.

    Raises:
        InvalidTilingError: a size, ``tile`` or ``multiple`` below 1.
    """
    _check_int("height", height, 1)
    _check_int("width", width, 1)
    _check_int("tile", tile, 1)
    _check_int("multiple", multiple, 1)

    def along(narrow: int) -> int:
        seen = math.ceil(narrow / multiple) * multiple  # what the network gets after padding
        return max(tile, tile * tile // seen // multiple * multiple)

    if width < tile < height:
        return along(width), width
    if height < tile < width:
        return height, along(height)
    return tile, tile


def plan_tiles(
    height: int,
    width: int,
    tile: int | tuple[int, int] | None,
    overlap: int,
    *,
    balance: bool = False,
    multiple: int = 1,
    stretch: bool = False,
) -> TilePlan:
    """Plan tiles of ``tile`` (or ``(tile_h, tile_w)``) pixels over an ``height x width`` image.

    ``tile=None`` gives a single tile covering the image. Tiles larger than the image shrink to it.
    ``stretch``: an integer ``tile`` on a strip becomes :func:`strip_tile` (as many pixels per
    tile as the square, so the work follows the pixel count). ``balance``: shrink each axis's
    tile to :func:`balanced_tile` (same tile count, less work), keeping it a multiple of
    ``multiple``.

    Raises:
        InvalidTilingError: see :func:`tile_starts`.
    """
    _check_int("height", height, 1)
    _check_int("width", width, 1)
    if tile is None:
        th, tw = height, width
    elif isinstance(tile, tuple):
        th, tw = tile
    elif stretch:
        th, tw = strip_tile(height, width, tile, multiple)
    else:
        th = tw = tile
    th = _check_int("tile", th, 1)
    tw = _check_int("tile", tw, 1)
    if balance:
        th = balanced_tile(height, th, overlap, multiple)
        tw = balanced_tile(width, tw, overlap, multiple)
    ys = tile_starts(height, th, overlap)
    xs = tile_starts(width, tw, overlap)
    return TilePlan(height, width, min(th, height), min(tw, width), ys, xs, overlap)


def axis_weights(
    starts: Sequence[int],
    tile: int,
    *,
    scale: int = 1,
    ramp: float,
    window: Window = "cosine",
) -> list[torch.Tensor]:
    """1-D blending weights, one float32 vector of ``tile * scale`` values per tile.

    Computed at output resolution (all positions times ``scale``) so the ramps are smooth there.
    The cut between tiles ``i`` and ``i + 1`` is the middle of their shared strip; the ramp is
    ``ramp`` input pixels wide, centred on the cut, shortened where needed to fit within the
    shared strip and between consecutive cuts. No ramp at the first tile's start or the last
    tile's end. The vectors are normalised so that, placed at their tiles, they sum to 1 at every
    position (exactly 1 up to float rounding).

    Args:
        starts: increasing tile starts (input pixels), e.g. :attr:`TilePlan.xs`.
        tile: tile length (input pixels).
        scale: output pixels per input pixel.
        ramp: cross-fade width in input pixels (0: a hard cut at the middle of the overlap).
        window: ``"cosine"`` (raised cosine, smooth at both ends) or ``"linear"``.

    Raises:
        InvalidTilingError: bad ``window``/``ramp``, or tiles with a gap between them.
    """
    if window not in ("cosine", "linear"):
        raise InvalidTilingError(f"window must be 'cosine' or 'linear', got {window!r}")
    if not (isinstance(ramp, int | float) and ramp >= 0 and math.isfinite(ramp)):
        raise InvalidTilingError(f"ramp must be a finite number >= 0, got {ramp!r}")
    _check_int("scale", scale, 1)
    n = len(starts)
    size = tile * scale
    if n == 1:
        return [torch.ones(size, dtype=torch.float32)]
    steps = [b - a for a, b in itertools.pairwise(starts)]
    if min(steps) <= 0 or max(steps) > tile:
        raise InvalidTilingError(
            f"tile starts {tuple(starts)} must increase and neighbours must touch or overlap "
            f"(tile {tile})"
        )
    # Keep every ramp inside the shared strip (shared = tile - step >= 0; tiles that abut, as
    # overlap 0 plans them, get a hard cut at their common edge) and let consecutive ramps not
    # intersect (cuts are (step_i + step_{i+1}) / 2 apart, which is >= the smaller step).
    r = min(float(ramp), tile - max(steps), min(steps)) * scale
    cuts = [(a + b + tile) / 2 * scale for a, b in itertools.pairwise(starts)]

    def rising(pos: torch.Tensor, cut: float) -> torch.Tensor:
        if r == 0:
            return (pos >= cut).to(torch.float64)
        t = ((pos - (cut - r / 2)) / r).clamp(0.0, 1.0)
        return t if window == "linear" else 0.5 - 0.5 * torch.cos(math.pi * t)

    total = torch.zeros((starts[-1] + tile) * scale, dtype=torch.float64)
    raw = []
    for i, start in enumerate(starts):
        # pixel centres, in output pixels
        pos = torch.arange(size, dtype=torch.float64) + start * scale + 0.5
        w = torch.ones(size, dtype=torch.float64)
        if i > 0:
            w = w * rising(pos, cuts[i - 1])
        if i < n - 1:
            w = w * (1.0 - rising(pos, cuts[i]))
        raw.append(w)
        total[start * scale : start * scale + size] += w
    if not bool((total > 0).all()):  # cannot happen for touching tiles; guards the invariant
        raise InvalidTilingError(f"tiles at {tuple(starts)} leave positions with zero weight")
    return [
        (w / total[s * scale : s * scale + size]).to(torch.float32)
        for w, s in zip(raw, starts, strict=True)
    ]


def blend_into(
    canvas: torch.Tensor,
    output: torch.Tensor,
    tile: Tile,
    weight_y: torch.Tensor,
    weight_x: torch.Tensor,
    scale: int,
) -> None:
    """Add ``output * (weight_y ⊗ weight_x)`` into ``canvas`` at the tile's place, in place.

    Args:
        canvas: ``(C, H * scale, W * scale)`` accumulator (float32, zeros to begin with).
        output: ``(C, (y1 - y0) * scale, (x1 - x0) * scale)``, the network's output for the tile,
            on ``canvas``'s device and dtype.
        tile: where the tile lies (input pixels).
        weight_y, weight_x: the tile's 1-D weights from :func:`axis_weights`.
        scale: output pixels per input pixel.
    """
    region = canvas[:, tile.y0 * scale : tile.y1 * scale, tile.x0 * scale : tile.x1 * scale]
    region.addcmul_(output, weight_y[:, None] * weight_x[None, :])


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(C, H, W)`` or ``(N, C, H, W)`` bottom and right to multiples of ``multiple``.

    Reflection padding (no artificial edge for the network to sharpen); replication where the
    image is too small to reflect (a pad of ``p`` needs ``p < H``). Returns the padded tensor and
    the original ``(H, W)``: crop the network's output to ``(H * scale, W * scale)``.
    """
    _check_int("multiple", multiple, 1)
    if x.dim() not in (3, 4):
        raise InvalidTilingError(
            f"pad_to_multiple expects (C, H, W) or (N, C, H, W), got {tuple(x.shape)}"
        )
    h, w = int(x.shape[-2]), int(x.shape[-1])
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    scale: int,
    tile: int | None,
    overlap: int,
    size_multiple: int = 1,
    batch_size: int = 1,
    ramp: float | None = None,
    window: Window = "cosine",
    on_tile: Callable[[int], None] | None = None,
    balance: bool = True,
    stretch: bool = True,
) -> torch.Tensor:
    """Apply ``fn`` tile by tile and blend the results into one float32 CPU canvas.

    Args:
        fn: ``(B, C, h, w) -> (B, C_out, h * scale, w * scale)``; called with CPU float32 tiles
            (already padded to ``size_multiple``) and expected to return tensors on any device
            (they are moved to the CPU in float32 here).
        image: ``(C, H, W)`` float, the input.
        scale: the network's integer scale.
        tile: tile size in input pixels, or ``None`` for one tile covering the image.
        overlap: minimum shared pixels between neighbouring tiles.
        size_multiple: ``fn`` needs ``h`` and ``w`` divisible by this.
        batch_size: tiles per call of ``fn`` (all tiles have the same size).
        ramp: cross-fade width (input pixels); default ``overlap / 2``.
        window: ramp shape, ``"cosine"`` or ``"linear"``.
        on_tile: called with the number of tiles finished after each call of ``fn``.
        balance: shrink the tiles to the smallest size that needs no more of them
            (:func:`balanced_tile`, a multiple of ``size_multiple``); ``tile`` is then a maximum.
        stretch: on a strip (an image narrower than ``tile`` along one axis) use tiles of about
            ``tile * tile`` pixels along it (:func:`strip_tile`), so the work follows the pixels.

    Returns:
        ``(C_out, H * scale, W * scale)`` float32 on the CPU, not clamped.

    Raises:
        InvalidTilingError: bad tiling arguments, or ``fn`` returned the wrong shape.
    """
    if image.dim() != 3:
        raise InvalidTilingError(f"run_tiled expects a (C, H, W) image, got {tuple(image.shape)}")
    _check_int("batch_size", batch_size, 1)
    _check_int("scale", scale, 1)
    height, width = int(image.shape[-2]), int(image.shape[-1])
    plan = plan_tiles(
        height, width, tile, overlap, balance=balance, multiple=size_multiple, stretch=stretch
    )
    weight_y, weight_x = plan.weights(scale=scale, ramp=ramp, window=window)
    tiles = plan.tiles()
    canvas: torch.Tensor | None = None
    done = 0
    for first in range(0, len(tiles), batch_size):
        group = tiles[first : first + batch_size]
        batch = torch.stack([image[:, t.y0 : t.y1, t.x0 : t.x1] for t in group])
        batch, (h, w) = pad_to_multiple(batch.float(), size_multiple)
        out = fn(batch)
        expected = (len(group), h * scale, w * scale)
        padded = (len(group), batch.shape[-2] * scale, batch.shape[-1] * scale)
        if out.dim() != 4 or (out.shape[0], *out.shape[-2:]) != padded:
            raise InvalidTilingError(
                f"the network turned tiles of shape {tuple(batch.shape)} into "
                f"{tuple(out.shape)}; expected (B, C, H*{scale}, W*{scale}) = "
                f"({padded[0]}, C, {padded[1]}, {padded[2]}). Is the model's scale {scale}?"
            )
        out = out[..., : expected[1], : expected[2]].to("cpu", torch.float32)
        if canvas is None:
            canvas = torch.zeros(out.shape[1], height * scale, width * scale, dtype=torch.float32)
        for t, o in zip(group, out, strict=True):
            blend_into(canvas, o, t, weight_y[t.row], weight_x[t.col], scale)
        done += len(group)
        if on_tile is not None:
            on_tile(done)
    assert canvas is not None  # a plan has at least one tile
    return canvas
