"""In-memory images of other libraries <-> :class:`~superres.io.image.ImageData`.

PIL images and numpy ``(H, W[, C])`` arrays are converted here, so HWC layouts and integer pixels
stay inside ``io``. Each ``*_from_*`` function returns the image and a small description of the
source's layout; the matching ``*_to_*`` function turns a result back into that layout:

* PIL: the same mode family. ``1``/``L`` -> ``L``; ``LA``/``La`` (or ``L`` with a transparent
  value) -> ``LA``; ``I;16*`` -> ``I;16``; ``I`` -> ``I``; ``RGB``/``CMYK``/``YCbCr``/``P`` ->
  ``RGB``; anything with alpha or a transparent colour -> ``RGBA``.
* numpy: the same shape kind (``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` gray + alpha, ``(H, W, 3)``,
  ``(H, W, 4)`` RGBA) and dtype: uint8 (``v / 255``), uint16 (``v / 65535``), or float32/float64
  with values in [0, 1] (returned unquantised, clamped to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from superres.errors import ImageReadError, InvalidImageError
from superres.io.image_read import ImageData, _from_pillow, _to_float_chw
from superres.io.image_write import quantize_image

__all__ = [
    "ArrayLayout",
    "image_from_numpy",
    "image_from_pil",
    "image_to_numpy",
    "image_to_pil",
]

_NUMPY_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


@dataclass(frozen=True)
class ArrayLayout:
    """How a numpy image was laid out: ``dtype`` and the shape's kind.

    Attributes:
        dtype: the array's dtype.
        channels: 1, 2, 3 or 4; ``squeeze`` marks a 2-D ``(H, W)`` array.
        squeeze: the source was ``(H, W)`` rather than ``(H, W, 1)``.
    """

    dtype: np.dtype
    channels: int
    squeeze: bool


def image_from_pil(im: Image.Image) -> ImageData:
    """A PIL image -> :class:`ImageData` (pixels as they are: no EXIF rotation in memory).

    Raises:
        InvalidImageError: a mode we cannot represent (e.g. ``F``, 32-bit ``I`` outside 0..65535).
    """
    if not isinstance(im, Image.Image):
        raise InvalidImageError(f"expected a PIL.Image.Image, got {type(im).__name__}")
    try:
        return _from_pillow(Path("<PIL image>"), im, im.format)
    except ImageReadError as exc:
        raise InvalidImageError(f"cannot use this PIL image: {exc.reason}") from None


def image_to_pil(image: ImageData, source_mode: str) -> Image.Image:
    """An upscaled :class:`ImageData` -> a PIL image of ``source_mode``'s family (see above)."""
    arr = quantize_image(
        image.rgb,
        alpha=image.alpha,
        bit_depth=image.bit_depth if image.alpha is None else 8,
        grayscale=image.grayscale,
    )
    if arr.dtype == np.uint16:  # 16-bit gray (Pillow has no 16-bit colour or gray+alpha modes)
        plane = arr[..., 0]
        return Image.fromarray(plane.astype(np.int32) if source_mode == "I" else plane)
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)


def image_from_numpy(array: np.ndarray) -> tuple[ImageData, ArrayLayout]:
    """A numpy ``(H, W)`` or ``(H, W, C)`` image -> :class:`ImageData` and its layout.

    Raises:
        InvalidImageError: wrong dimensions, channel count or dtype, or non-finite floats.
    """
    if not isinstance(array, np.ndarray):
        raise InvalidImageError(f"expected a numpy array, got {type(array).__name__}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise InvalidImageError(
            f"a numpy image must be (H, W) or (H, W, C) with C in 1..4 (gray, gray + alpha, RGB, "
            f"RGBA), got shape {array.shape}; a channel-first array needs "
            "np.moveaxis(array, 0, -1)"
        )
    if 0 in array.shape:
        raise InvalidImageError(f"the numpy image is empty: shape {array.shape}")
    if array.dtype not in _NUMPY_DTYPES:
        raise InvalidImageError(
            f"a numpy image must be uint8, uint16, float32 or float64 (floats in [0, 1]), got "
            f"{array.dtype}; convert it first, e.g. array.astype(np.float32) / peak"
        )
    hwc = array[..., None] if array.ndim == 2 else array
    channels = hwc.shape[2]
    if array.dtype.kind == "f":
        if not np.isfinite(hwc).all():
            raise InvalidImageError("the numpy image contains NaN or infinite values")
        chw = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1))).to(torch.float32)
        bit_depth = 16  # high precision; only used if the result is written to a file
    else:
        bit_depth = 8 if array.dtype == np.uint8 else 16
        chw = _to_float_chw(hwc, bit_depth)
    gray = channels <= 2
    colour = chw[:1].expand(3, -1, -1).contiguous() if gray else chw[:3]
    alpha = chw[channels - 1 :] if channels in (2, 4) else None
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    image = ImageData(
        rgb=colour,
        alpha=alpha,
        bit_depth=bit_depth,
        grayscale=gray,
        mode=mode if bit_depth == 8 else f"{mode};16",
        format=None,
    )
    return image, ArrayLayout(array.dtype, channels, array.ndim == 2)


def image_to_numpy(image: ImageData, layout: ArrayLayout) -> np.ndarray:
    """An upscaled :class:`ImageData` -> a numpy array laid out like the source."""
    has_alpha = layout.channels in (2, 4)
    gray = layout.channels <= 2
    alpha = image.alpha if has_alpha else None
    if layout.dtype.kind == "f":
        planes = [_gray_plane(image.rgb) if gray else image.rgb]
        if alpha is not None:
            planes.append(alpha)
        chw = torch.cat(planes).clamp(0.0, 1.0)
        out = chw.permute(1, 2, 0).numpy().astype(layout.dtype)
    else:
        out = quantize_image(
            image.rgb, alpha=alpha, bit_depth=8 if layout.dtype == np.uint8 else 16, grayscale=gray
        )
    return out[..., 0] if layout.squeeze else out


def _gray_plane(rgb: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` -> ``(1, H, W)``: the channel when all are equal, else Pillow's "L" luma."""
    if torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2]):
        return rgb[:1]
    r, g, b = rgb.unbind(0)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(0)
