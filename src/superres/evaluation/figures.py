"""Side-by-side crop figures in the style of the SRGAN and ESRGAN papers.

A figure shows the full HR image with a zoom box on one region, then the same region cut from the
HR image and from every method's output, enlarged with nearest-neighbour interpolation (so every
output pixel stays a visible square), each labelled with the method's name and an optional score
line such as ``"PSNR-Y 23.41 dB"``.

The region is chosen reproducibly by :func:`select_crop`: the window with the most gradient energy
(``"texture"``, where GAN and PSNR-oriented models differ most) or a seeded random window.

Figures are drawn with matplotlib's Agg canvas on a private :class:`~matplotlib.figure.Figure`
(no ``pyplot``, so no global state and no display needed) and written atomically as PNG.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import PIL.Image
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from superres.errors import ImageTooSmallError, ImageWriteError, InvalidImageError
from superres.io.files import atomic_write

__all__ = ["ComparisonFigure", "CropMethod", "comparison_figure", "select_crop"]

CropMethod = Literal["texture", "seeded"]

# Layout in output pixels (the figure is drawn at _DPI, so inches = pixels / _DPI).
_DPI = 100
_MARGIN = 10
_GAP = 10
_LABEL = 40  # band above each crop panel: method name + score line
_TITLE = 34
_BOX_COLOR = "#e8112d"


def _check_image(name: str, image: torch.Tensor) -> None:
    if not isinstance(image, torch.Tensor):
        raise InvalidImageError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InvalidImageError(
            f"{name} must be a (C, H, W) tensor with C = 1 or 3, got shape {tuple(image.shape)}; "
            "pass one image, e.g. batch[0]"
        )
    if not image.is_floating_point():
        raise InvalidImageError(
            f"{name} must be floating point in [0, 1], got {image.dtype}; divide 8-bit data by 255"
        )


def select_crop(
    hr: torch.Tensor,
    size: int,
    *,
    method: CropMethod = "texture",
    seed: int = 0,
) -> tuple[int, int]:
    """The ``(top, left)`` corner of a ``size`` x ``size`` window of ``hr``, chosen reproducibly.

    Args:
        hr: float ``(C, H, W)`` image in [0, 1], C = 1 or 3.
        size: window side in pixels.
        method: ``"texture"``: the window with the highest mean gradient energy of luma
            (squared differences of horizontally and vertically adjacent pixels, both inside the
            window), searched on a coarse grid of stride ``max(1, size // 8)``
            with ties broken towards the top-left, so the same image always gives the same window;
            fine texture (fur, foliage, hatching) scores high, flat sky and smooth gradients low.
            ``"seeded"``: a uniformly random window drawn from a ``torch.Generator`` seeded with
            ``seed``.
        seed: seed of the ``"seeded"`` method (ignored by ``"texture"``).

    Raises:
        ImageTooSmallError: ``size`` exceeds the image's height or width.
        InvalidImageError: ``hr`` is not a floating ``(C, H, W)`` tensor.
        ValueError: ``size`` is not a positive integer or ``method`` is unknown.
    """
    _check_image("hr", hr)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"crop size must be a positive integer, got {size!r}")
    height, width = int(hr.shape[-2]), int(hr.shape[-1])
    if size > height or size > width:
        raise ImageTooSmallError(
            f"crop size {size} does not fit in an image of {height}x{width} pixels; "
            f"use a crop size of at most {min(height, width)}"
        )
    if method == "seeded":
        generator = torch.Generator().manual_seed(seed)
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        return top, left
    if method != "texture":
        raise ValueError(f"unknown crop method {method!r}; use 'texture' or 'seeded'")

    image = hr.detach().to(device="cpu", dtype=torch.float64).clamp(0.0, 1.0).numpy()
    if image.shape[0] == 3:  # BT.601 luma weights; the offset does not matter for gradients
        luma = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    else:
        luma = image[0]
    stride = max(1, size // 8)
    tops = np.arange(0, height - size + 1, stride)
    lefts = np.arange(0, width - size + 1, stride)
    # Always consider the last window, so the bottom and right edges are reachable.
    if tops[-1] != height - size:
        tops = np.append(tops, height - size)
    if lefts[-1] != width - size:
        lefts = np.append(lefts, width - size)
    t, lft = np.meshgrid(tops, lefts, indexing="ij")
    # Only differences between two pixels inside the window count, so an edge just outside the
    # window never pulls the choice off the textured region.
    window = _window_sums(np.diff(luma, axis=1) ** 2, t, lft, size, size - 1)
    window += _window_sums(np.diff(luma, axis=0) ** 2, t, lft, size - 1, size)
    # argmax returns the first maximum in row-major order: top-most, then left-most.
    row, col = np.unravel_index(int(np.argmax(window)), window.shape)
    return int(tops[row]), int(lefts[col])


def _window_sums(
    values: np.ndarray, tops: np.ndarray, lefts: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Sums of ``values[t : t + height, l : l + width]`` for each corner (a summed-area table)."""
    table = np.zeros((values.shape[0] + 1, values.shape[1] + 1), dtype=np.float64)
    table[1:, 1:] = values.cumsum(axis=0).cumsum(axis=1)
    return (
        table[tops + height, lefts + width]
        - table[tops, lefts + width]
        - table[tops + height, lefts]
        + table[tops, lefts]
    )


@dataclass(frozen=True)
class ComparisonFigure:
    """What :func:`comparison_figure` wrote.

    Attributes:
        path: the PNG file.
        size: ``(width, height)`` of the PNG in pixels.
        panels: labels of the crop panels, left to right then top to bottom (``"HR"`` first).
        crop: ``(top, left, size)`` of the region in HR pixels.
        zoom: integer nearest-neighbour enlargement of the crop panels.
    """

    path: Path
    size: tuple[int, int]
    panels: tuple[str, ...]
    crop: tuple[int, int, int]
    zoom: int


def _to_display(image: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float tensor in [0, 1] -> ``(H, W, 3)`` uint8 array for ``imshow``.

    Rounded half-up here, as images are written: given floats, matplotlib truncates (``x * 255``
    cast to uint8), so a value off the 8-bit grid would be drawn one level darker.
    """
    array = image.detach().to(device="cpu", dtype=torch.float64).clamp(0.0, 1.0).numpy()
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)
    pixels = np.floor(array * 255.0 + 0.5).astype(np.uint8)
    return np.ascontiguousarray(pixels.transpose(1, 2, 0))


def _axes(fig: Figure, x: float, y: float, w: float, h: float, width: int, height: int) -> Axes:
    """Axes at pixel box ``(x, y, w, h)`` measured from the top-left corner, without decorations."""
    ax = fig.add_axes((x / width, 1.0 - (y + h) / height, w / width, h / height))
    ax.set_axis_off()
    return ax


def comparison_figure(
    hr: torch.Tensor,
    outputs: Mapping[str, torch.Tensor],
    *,
    crop: tuple[int, int, int],
    path: str | os.PathLike[str],
    title: str | None = None,
    scores: Mapping[str, str] | None = None,
    hr_label: str = "HR",
    panel_px: int = 256,
    max_overview_px: int = 720,
) -> ComparisonFigure:
    """Write a paper-style crop comparison of ``outputs`` against ``hr`` as a PNG.

    Layout: the full ``hr`` image on the left with a red box on the crop region; on the right one
    panel per method — ``hr_label`` first, then ``outputs`` in mapping order — each showing the
    same ``size`` x ``size`` region enlarged by an integer factor with nearest-neighbour
    interpolation, titled with the method's name and, when given, its line from ``scores``.
    Up to three panels form one row; more form two rows.

    Args:
        hr: float ``(C, H, W)`` ground truth in [0, 1] (C = 1 or 3; values outside are clipped
            for display only).
        outputs: method name -> float ``(C, H, W)`` output of the same height and width as ``hr``
            (e.g. ``{"bicubic": ..., "srgan-x4": ...}``), already rounded to 8 bit if that is what
            the scores were computed on.
        crop: ``(top, left, size)`` of the region in ``hr`` pixels (see :func:`select_crop`).
        path: output PNG file; its folder must exist. Written atomically (a temporary file
            beside it, renamed over it), so a reader never sees a half-written figure.
        title: optional line above the figure (e.g. ``"Set14 baboon, x4"``).
        scores: method name (``hr_label`` or a key of ``outputs``) -> one short line shown under
            the name, e.g. ``"PSNR-Y 23.41 dB"``.
        hr_label: label of the ground-truth panel.
        panel_px: target side of a crop panel in pixels; the enlargement is the integer
            ``max(1, round(panel_px / size))``.
        max_overview_px: cap on the width of the full-image overview (wide images are shrunk).

    Returns:
        :class:`ComparisonFigure` with the path, pixel size and panel labels.

    Raises:
        InvalidImageError: an image is not a float ``(C, H, W)`` tensor, or an output's size
            differs from ``hr``'s.
        ValueError: the crop does not lie inside the image, ``outputs`` is empty or uses
            ``hr_label`` as a name, or ``scores`` names a method that has no panel.
        ImageWriteError: the folder of ``path`` does not exist.
    """
    labels = _check_figure_inputs(hr, outputs, crop, scores, hr_label)
    scores = dict(scores or {})
    target = Path(path)
    if not target.parent.is_dir():
        raise ImageWriteError(target, f"folder {str(target.parent)!r} does not exist; create it")
    top, left, size = crop
    height, width = int(hr.shape[-2]), int(hr.shape[-1])
    layout = _figure_layout(
        len(labels), size, height, width, titled=bool(title), panel_px=panel_px,
        max_overview_px=max_overview_px,
    )  # fmt: skip

    fig = Figure(figsize=(layout.fig_w / _DPI, layout.fig_h / _DPI), dpi=_DPI, facecolor="white")
    canvas = FigureCanvasAgg(fig)  # attaches itself to fig; no pyplot, no global backend state
    if title:
        y = 1.0 - (_MARGIN + layout.title_h / 2) / layout.fig_h
        fig.text(0.5, y, title, ha="center", va="center", fontsize=13, fontweight="bold")
    _draw_overview(fig, layout, hr, crop, hr_label)
    images = {hr_label: hr, **outputs}
    for index, label in enumerate(labels):
        region = images[label][:, top : top + size, left : left + size]
        text = label if label not in scores else f"{label}\n{scores[label]}"
        _draw_panel(fig, layout, index, region, text)

    png_size = _save_png(canvas, target)
    return ComparisonFigure(
        path=target, size=png_size, panels=labels, crop=(top, left, size), zoom=layout.zoom
    )


def _save_png(canvas: FigureCanvasAgg, target: Path) -> tuple[int, int]:
    """Render ``canvas`` and write it atomically as PNG; returns its ``(width, height)``."""
    canvas.draw()
    # Agg renders RGBA; the figure is opaque, so drop alpha (a quarter of the raw bytes) and let
    # Pillow's optimizer pick the best zlib settings.
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    with atomic_write(target) as f:
        PIL.Image.fromarray(np.ascontiguousarray(rgb)).save(f, format="PNG", optimize=True)
    height_px, width_px = rgb.shape[:2]
    return width_px, height_px


def _check_figure_inputs(
    hr: torch.Tensor,
    outputs: Mapping[str, torch.Tensor],
    crop: tuple[int, int, int],
    scores: Mapping[str, str] | None,
    hr_label: str,
) -> tuple[str, ...]:
    """The panel labels (``hr_label`` first), once every argument of the figure is valid."""
    _check_image("hr", hr)
    if not outputs:
        raise ValueError("outputs is empty; pass at least one method's image, e.g. bicubic")
    if hr_label in outputs:
        raise ValueError(
            f"outputs uses the ground-truth label {hr_label!r} as a method name; rename it or "
            "pass another hr_label"
        )
    height, width = int(hr.shape[-2]), int(hr.shape[-1])
    for name, image in outputs.items():
        _check_image(f"outputs[{name!r}]", image)
        if tuple(image.shape[-2:]) != (height, width):
            raise InvalidImageError(
                f"outputs[{name!r}] is {tuple(image.shape[-2:])} but hr is {(height, width)}; "
                "every output must have the HR image's size (mod-crop the HR to the scale)"
            )
    if len(crop) != 3 or any(isinstance(v, bool) or not isinstance(v, int) for v in crop):
        raise ValueError(f"crop must be three integers (top, left, size), got {crop!r}")
    top, left, size = crop
    if size < 1 or top < 0 or left < 0 or top + size > height or left + size > width:
        raise ValueError(
            f"crop (top={top}, left={left}, size={size}) is not inside the image of height "
            f"{height} and width {width}; need 0 <= top <= height - size, 0 <= left <= width - size"
            " and size >= 1"
        )
    labels = (hr_label, *outputs)
    unknown = sorted(set(scores or {}) - set(labels))
    if unknown:
        raise ValueError(
            f"scores name methods without a panel: {unknown}; panels are {list(labels)}"
        )
    return labels


@dataclass(frozen=True)
class _Layout:
    """Where everything of a comparison figure goes, in output pixels from the top-left."""

    zoom: int
    panel: int  # side of a crop panel
    cols: int
    title_h: int
    grid_h: int
    over_w: int
    over_h: int
    fig_w: int
    fig_h: int


def _figure_layout(
    count: int,
    size: int,
    height: int,
    width: int,
    *,
    titled: bool,
    panel_px: int,
    max_overview_px: int,
) -> _Layout:
    """The layout of ``count`` crop panels of a ``size`` region beside a ``height`` x ``width``
    overview: up to three panels form one row, more form two."""
    zoom = max(1, round(panel_px / size))
    panel = size * zoom
    rows = 1 if count <= 3 else 2
    cols = math.ceil(count / rows)
    grid_h = rows * (_LABEL + panel) + (rows - 1) * _GAP
    title_h = _TITLE if titled else 0
    over_h = grid_h - _LABEL
    over_w = round(over_h * width / height)
    if over_w > max_overview_px:  # a wide image: shrink it and centre it vertically
        over_w = max_overview_px
        over_h = round(over_w * height / width)
    fig_w = _MARGIN + over_w + 2 * _GAP + cols * panel + (cols - 1) * _GAP + _MARGIN
    fig_h = _MARGIN + title_h + grid_h + _MARGIN
    return _Layout(
        zoom=zoom, panel=panel, cols=cols, title_h=title_h, grid_h=grid_h, over_w=over_w,
        over_h=over_h, fig_w=fig_w, fig_h=fig_h,
    )  # fmt: skip


def _draw_overview(
    fig: Figure, layout: _Layout, hr: torch.Tensor, crop: tuple[int, int, int], hr_label: str
) -> None:
    """The full HR image (matplotlib antialiases when it shrinks it) with the zoom box."""
    top, left, size = crop
    over_y = _MARGIN + layout.title_h + _LABEL + (layout.grid_h - _LABEL - layout.over_h) / 2
    ax = _axes(fig, _MARGIN, over_y, layout.over_w, layout.over_h, layout.fig_w, layout.fig_h)
    ax.imshow(_to_display(hr), interpolation="antialiased")
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            size,
            size,
            fill=False,
            edgecolor=_BOX_COLOR,
            linewidth=2.0,
            clip_on=False,
        )
    )
    ax.set_title(f"{hr_label} ({int(hr.shape[-1])}x{int(hr.shape[-2])} px)", fontsize=11, pad=6)


def _draw_panel(fig: Figure, layout: _Layout, index: int, region: torch.Tensor, text: str) -> None:
    """Crop panel number ``index`` (row-major in the grid): ``region`` enlarged, titled ``text``."""
    row, col = divmod(index, layout.cols)
    x = _MARGIN + layout.over_w + 2 * _GAP + col * (layout.panel + _GAP)
    y = _MARGIN + layout.title_h + row * (_LABEL + layout.panel + _GAP) + _LABEL
    # Enlarge by pixel repetition ourselves, so the PNG shows exact nearest-neighbour blocks
    # whatever matplotlib's resampling would do at fractional pixel sizes.
    zoom = layout.zoom
    enlarged = np.repeat(np.repeat(_to_display(region), zoom, axis=0), zoom, axis=1)
    ax = _axes(fig, x, y, layout.panel, layout.panel, layout.fig_w, layout.fig_h)
    ax.imshow(enlarged, interpolation="nearest")
    ax.set_title(text, fontsize=11, pad=4, linespacing=1.3)
