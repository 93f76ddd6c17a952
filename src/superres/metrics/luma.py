"""The input of the no-reference metrics (NIQE, Ma, PI): the 8-bit BT.601 luma of an image.

One rule for every metric of this package (the full-reference ones score ``y_channel=True`` the
same way): an image in [0, 1] is clamped and quantised to 8 bit (``floor(255 x + 0.5)``), as a
benchmark image file would be; a gray image (one channel) is three equal channels; the luma is
MATLAB's ``rgb2ycbcr`` on ``uint8`` (``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``,
rounded to an integer in [16, 235]), as the SR field scores (PIRM 2018's
``convert_shave_image.m``, BasicSR's ``convert_to='y'``). It is returned as a float64 ``(H, W)``
image on the 0-255 scale with ``crop_border`` pixels removed from every side (PIRM's shave).

A numpy array without a channel axis, ``(H, W)``, is a luma plane already: it is quantised but
not converted, as MATLAB's ``computequality``/``feature_all`` and BasicSR's ``input_order='HW'``
take it (the PIRM protocol hands them the Y channel).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from superres.errors import InvalidImageError
from superres.imaging.color import rgb2ycbcr

__all__ = ["SizeCheck", "as_output", "check_crop_border", "checked_lumas", "luma_255", "lumas_255"]

#: ``check(luma, crop_border, name)``: raises ``ImageTooSmallError`` (naming ``name``) when a
#: metric cannot score the shaved luma plane.
SizeCheck = Callable[[np.ndarray, int, str], None]


def check_crop_border(crop_border: object, name: str) -> int:
    """``crop_border`` as a non-negative int, or a ``ValueError`` naming ``name``."""
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(
            f"{name}: crop_border must be a non-negative integer; got {crop_border!r}. The SR "
            "protocol crops the scale factor (e.g. crop_border=4 for x4)."
        )
    return crop_border


def luma_255(image: np.ndarray, crop_border: int, name: str) -> np.ndarray:
    """A luma plane ``(H, W)``, a gray ``(H, W, 1)`` or an RGB ``(H, W, 3)`` image, in [0, 1]
    (or uint8) -> luma 0-255 (see the module docstring).

    Raises:
        InvalidImageError: a wrong shape or dtype, or NaN values (the message names ``name``).
    """
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise InvalidImageError(
            f"{name} expects a numpy image (H, W), (H, W, 1) or (H, W, 3); got shape "
            f"{tuple(image.shape)}. Channel-first arrays need np.moveaxis(image, 0, -1); "
            "RGBA images need their alpha removed (image[..., :3])."
        )
    if image.dtype == np.uint8:
        q = image
    elif image.dtype.kind == "f":
        if np.isnan(image).any():
            raise InvalidImageError(
                f"{name} got an image containing NaN; expected values in [0, 1]"
            )
        q = np.floor(np.clip(image.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    else:
        raise InvalidImageError(
            f"{name} expects a float image in [0, 1] or a uint8 image; got dtype {image.dtype}. "
            "Convert first, e.g. image.astype(np.float32) / 65535 for 16-bit values."
        )
    if q.ndim == 2:  # a luma plane, as given
        luma = q.astype(np.float64)
    else:  # gray: three equal channels
        rgb = np.repeat(q, 3, axis=2) if q.shape[2] == 1 else q
        luma = np.asarray(rgb2ycbcr(rgb, y_only=True), dtype=np.float64).reshape(q.shape[:2])
    if crop_border:
        luma = luma[crop_border:-crop_border, crop_border:-crop_border]
    return luma


def lumas_255(image: np.ndarray | torch.Tensor, crop_border: int, name: str) -> list[np.ndarray]:
    """:func:`luma_255` of a numpy image, or of each image of a tensor ``(N, C, H, W)`` /
    ``(C, H, W)`` (floating, RGB or gray, in [0, 1]).

    Raises:
        InvalidImageError: not an image of one of those kinds (the message names ``name``).
    """
    if isinstance(image, torch.Tensor):
        if image.ndim not in (3, 4) or image.shape[-3] not in (1, 3):
            raise InvalidImageError(
                f"{name} expects a torch tensor (N, C, H, W) or (C, H, W) with C = 3 (RGB) or 1; "
                f"got shape {tuple(image.shape)}. Channel-last tensors need "
                "image.permute(0, 3, 1, 2) first."
            )
        if not image.is_floating_point():
            raise InvalidImageError(
                f"{name} expects a floating-point tensor in [0, 1]; got dtype {image.dtype}. "
                "Convert first, e.g. image.float() / 255."
            )
        batch = image.detach().to("cpu", torch.float64).reshape(-1, *image.shape[-3:])
        return [luma_255(x.permute(1, 2, 0).numpy(), crop_border, name) for x in batch]
    if isinstance(image, np.ndarray):
        return [luma_255(image, crop_border, name)]
    raise InvalidImageError(
        f"{name} got a {type(image).__name__}; expected a numpy array (H, W[, C]) or a torch "
        "tensor (N, C, H, W). Convert first, e.g. np.asarray(pil_image) / 255."
    )


def checked_lumas(
    image: np.ndarray | torch.Tensor, crop_border: int, name: str, *checks: SizeCheck
) -> list[np.ndarray]:
    """What every no-reference metric starts with: ``crop_border`` checked, the shaved 8-bit
    lumas of :func:`lumas_255`, each one passing every size check, before any model file is
    read or any feature computed.

    Raises:
        ValueError: a bad ``crop_border``.
        InvalidImageError, ImageTooSmallError: as :func:`lumas_255` and the checks.
    """
    check_crop_border(crop_border, name)
    lumas = lumas_255(image, crop_border, name)
    for luma in lumas:
        for check in checks:
            check(luma, crop_border, name)
    return lumas


def as_output(values: list[float], image: np.ndarray | torch.Tensor) -> float | torch.Tensor:
    """Per-image scores shaped as the input asked: a float for numpy; a tensor ``(N,)`` (0-d for
    ``(C, H, W)``) on the input's device, in its dtype (float32 for half precisions)."""
    if not isinstance(image, torch.Tensor):
        return values[0]
    dtype = image.dtype if image.dtype in (torch.float32, torch.float64) else torch.float32
    out = torch.tensor(values, dtype=torch.float64).to(device=image.device, dtype=dtype)
    return out[0] if image.ndim == 3 else out
