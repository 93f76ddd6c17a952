"""The checks and preparation every fidelity metric applies to its inputs before scoring.

One place decides what ``crop_border``, ``data_range`` and ``y_channel`` mean for arrays and
tensors (:mod:`superres.metrics.fidelity` states the conventions), so every metric accepts and
refuses the same inputs with the same messages.
"""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np
import torch

from superres.errors import InvalidImageError
from superres.imaging.color import rgb_to_y

__all__ = ["FidelityOptions", "check_options", "prepare_numpy", "prepare_tensor", "read_options"]

# uint8/uint16 arrays default to their full integer range; floats to [0, 1].
_INTEGER_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class FidelityOptions(TypedDict, total=False):
    """The keyword arguments every fidelity metric takes, and their defaults."""

    crop_border: int  # pixels removed from every side before anything else; 0
    y_channel: bool  # score the BT.601 luma of RGB inputs instead of every channel; False
    data_range: float | None  # the inputs' value span; None: by dtype (255, 65535, 1.0)


def read_options(name: str, options: FidelityOptions) -> tuple[int, bool, float | None]:
    """``(crop_border, y_channel, data_range)`` of a metric's keyword arguments, checked.

    Raises:
        TypeError: a keyword no fidelity metric takes (as Python's own for a misspelt one).
        InvalidImageError: a bad ``crop_border`` or ``data_range``.
    """
    for key in options:
        if key not in FidelityOptions.__optional_keys__:
            raise TypeError(
                f"{name}() got an unexpected keyword argument {key!r}; it takes crop_border, "
                "y_channel and data_range"
            )
    crop_border = options.get("crop_border", 0)
    data_range = options.get("data_range")
    check_options(name, crop_border, data_range)
    return crop_border, options.get("y_channel", False), data_range


def check_options(name: str, crop_border: int, data_range: float | None) -> None:
    if isinstance(crop_border, bool) or not isinstance(crop_border, int | np.integer):
        raise InvalidImageError(
            f"{name}: crop_border must be a non-negative int; got {crop_border!r}. "
            "Pass the number of border pixels to drop, e.g. crop_border=scale."
        )
    if crop_border < 0:
        raise InvalidImageError(
            f"{name}: crop_border must be >= 0; got {crop_border}. Use 0 to keep the whole image."
        )
    if data_range is not None and (
        isinstance(data_range, bool)
        or not isinstance(data_range, int | float | np.integer | np.floating)
        or not math.isfinite(float(data_range))
        or float(data_range) <= 0
    ):
        raise InvalidImageError(
            f"{name}: data_range must be a positive finite number; got {data_range!r}. Use the "
            "value span of the images (255 for 8-bit values, 1.0 for [0, 1]) or None for the "
            "dtype's default."
        )


#: How far float images with the default range may stray outside [0, 1] and still be scored as
#: given: unclamped network outputs overshoot a little; values past it are on another scale (0-255,
#: BasicSR's habit), refused instead of scored as [0, 1].
_RANGE_SLACK = 0.5


def _check_unit_range(name: str, label: str, low: float, high: float) -> None:
    """Float images without ``data_range`` must lie in [0, 1] (checked from their min and max)."""
    if low < -_RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
        raise InvalidImageError(
            f"{name}: {label} holds values in [{low:g}, {high:g}], far outside [0, 1], the range "
            "of float images; divide by 255 (8-bit values), or pass data_range=255 (or the images' "
            "own span) to score them on their own scale."
        )


def _crop_bounds(name: str, shape: tuple[int, int], crop_border: int) -> None:
    h, w = shape
    if h - 2 * crop_border < 1 or w - 2 * crop_border < 1:
        raise InvalidImageError(
            f"{name}: crop_border={crop_border} removes the whole {h}x{w} image (2 x "
            f"{crop_border} >= a side). Use crop_border < {(min(h, w) + 1) // 2}."
        )


def _y_channel_error(name: str, shape: tuple[int, ...], layout: str) -> InvalidImageError:
    return InvalidImageError(
        f"{name}: y_channel=True needs RGB images {layout}; got shape {shape}. Pass "
        "y_channel=False for gray or multi-channel images (the metric then covers every channel)."
    )


def prepare_numpy(
    name: str,
    sr: np.ndarray,
    gt: np.ndarray,
    crop_border: int,
    y_channel: bool,
    data_range: float | None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate two arrays; return float64 ``(C, H, W)`` copies and the metric's data range."""
    for label, a in (("sr", sr), ("gt", gt)):
        if a.ndim not in (2, 3):
            raise InvalidImageError(
                f"{name}: {label} has shape {tuple(a.shape)}; expected a numpy image (H, W) or "
                "(H, W, C). Score a batch one image at a time, e.g. batch[i]."
            )
        if a.dtype not in _INTEGER_RANGES and a.dtype.kind != "f":
            raise InvalidImageError(
                f"{name}: {label} has dtype {a.dtype}; expected uint8, uint16 or floating point. "
                "Convert first, e.g. image.astype(np.float64) with data_range set."
            )
    if sr.shape != gt.shape:
        raise InvalidImageError(
            f"{name}: sr and gt shapes differ: {tuple(sr.shape)} vs {tuple(gt.shape)}; expected "
            "identical shapes. Mod-crop the HR image to a multiple of the scale so the SR output "
            "matches it."
        )
    kinds = {a.dtype if a.dtype in _INTEGER_RANGES else "float" for a in (sr, gt)}
    if len(kinds) != 1:
        raise InvalidImageError(
            f"{name}: sr is {sr.dtype} but gt is {gt.dtype}; expected the same integer class or "
            "both floating point, so that one data range applies. Convert one of them first."
        )
    for label, a in (("sr", sr), ("gt", gt)):
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InvalidImageError(
                f"{name}: {label} contains NaN or infinite values; expected finite pixels. "
                "Check the model output (e.g. a diverged network) before scoring."
            )
    if data_range is None and sr.dtype.kind == "f":
        for label, a in (("sr", sr), ("gt", gt)):
            if a.size:
                _check_unit_range(name, label, float(a.min()), float(a.max()))
    in_range = float(data_range) if data_range is not None else _INTEGER_RANGES.get(sr.dtype, 1.0)
    _crop_bounds(name, (sr.shape[0], sr.shape[1]), crop_border)

    def prep(a: np.ndarray) -> np.ndarray:
        h, w = a.shape[0], a.shape[1]
        a = a[crop_border : h - crop_border, crop_border : w - crop_border].astype(np.float64)
        if y_channel:
            # Float, unrounded Y on the 0-255 scale (rgb_to_y keeps the [0, 1] scale for floats).
            return (255.0 * rgb_to_y(a / in_range))[None]
        return a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)

    if y_channel and (sr.ndim != 3 or sr.shape[-1] != 3):
        raise _y_channel_error(name, tuple(sr.shape), "(H, W, 3)")
    return prep(sr), prep(gt), 255.0 if y_channel else in_range


def prepare_tensor(
    name: str,
    sr: torch.Tensor,
    gt: torch.Tensor,
    crop_border: int,
    y_channel: bool,
    data_range: float | None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Validate two tensors; return cropped ``(N, C, H, W)`` tensors and the metric's data range.

    Unbatched ``(C, H, W)`` inputs come back with ``N = 1``; the caller squeezes the result.
    """
    for label, t in (("sr", sr), ("gt", gt)):
        if t.ndim not in (3, 4):
            raise InvalidImageError(
                f"{name}: {label} has shape {tuple(t.shape)}; expected a tensor (N, C, H, W) or "
                "(C, H, W). Add a batch axis with t[None] or a channel axis with t[:, None]."
            )
        if not t.is_floating_point():
            raise InvalidImageError(
                f"{name}: {label} has dtype {t.dtype}; expected a floating-point tensor. Convert "
                "first, e.g. t.float() / 255 for 8-bit values (data range 1.0)."
            )
    if sr.shape != gt.shape:
        raise InvalidImageError(
            f"{name}: sr and gt shapes differ: {tuple(sr.shape)} vs {tuple(gt.shape)}; expected "
            "identical shapes. Mod-crop the HR image to a multiple of the scale so the SR output "
            "matches it."
        )
    if sr.device != gt.device:
        raise InvalidImageError(
            f"{name}: sr is on {sr.device} but gt is on {gt.device}; expected one device. Move "
            "one of them with .to(other.device)."
        )
    for label, t in (("sr", sr), ("gt", gt)):
        # One host sync per call; a NaN score would otherwise be silently averaged into a table.
        if not bool(torch.isfinite(t).all()):
            raise InvalidImageError(
                f"{name}: {label} contains NaN or infinite values; expected finite pixels. "
                "Check the model output (e.g. a diverged network) before scoring."
            )
        if data_range is None and t.numel():
            low, high = torch.aminmax(t.detach())
            _check_unit_range(name, label, float(low), float(high))
    dtype = torch.promote_types(sr.dtype, gt.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        # Variances on [0, 1] are ~1e-3 wide, below half precision's resolution near 1.
        dtype = torch.float32
    x = sr.to(dtype)
    y = gt.to(dtype)
    if x.ndim == 3:
        x, y = x[None], y[None]
    h, w = int(x.shape[-2]), int(x.shape[-1])
    _crop_bounds(name, (h, w), crop_border)
    x = x[..., crop_border : h - crop_border, crop_border : w - crop_border]
    y = y[..., crop_border : h - crop_border, crop_border : w - crop_border]
    in_range = float(data_range) if data_range is not None else 1.0
    if y_channel:
        if x.shape[1] != 3:
            raise _y_channel_error(name, tuple(sr.shape), "(N, 3, H, W)")
        x = 255.0 * rgb_to_y(x / in_range)
        y = 255.0 * rgb_to_y(y / in_range)
        return x, y, 255.0
    return x, y, in_range
