"""MATLAB's ``rgb2ycbcr``/``ycbcr2rgb``: ITU-R BT.601 YCbCr in "studio swing".

Every SR paper scores PSNR/SSIM on the luma of this transform (Y in [16, 235] and Cb, Cr in
[16, 240] on the 0-255 scale), so its coefficients must be exactly MATLAB's:

    Y  =  16 + 65.481 R + 128.553 G +  24.966 B
    Cb = 128 - 37.797 R -  74.203 G + 112.000 B        (R, G, B in [0, 1]; Y, Cb, Cr in 0-255)
    Cr = 128 + 112.000 R -  93.786 G -  18.214 B

``ycbcr2rgb`` is the exact matrix inverse (computed in float64), not a rounded published inverse.

Types follow MATLAB: a ``uint8`` (``uint16``) array in gives a ``uint8`` (``uint16``) array out,
computed in float64 and rounded half away from zero with saturation, as MATLAB's integer
conversion does; a float array in [0, 1] gives a float array on the same [0, 1] scale (so Y lies in
[16/255, 235/255]), neither rounded nor clipped. numpy arrays are channel-last ``(..., 3)`` (the
file layout); torch tensors are channel-first ``(3, H, W)`` or ``(N, 3, H, W)`` (the model layout),
must be floating point, and are converted on their own device and dtype, differentiably.

This module imports nothing of ours but ``superres.errors``.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch

from superres.errors import InvalidImageError

__all__ = ["rgb2ycbcr", "rgb_to_y", "ycbcr2rgb"]

# MATLAB's rgb2ycbcr.m: rows Y, Cb, Cr; columns R, G, B; output on 0-255 for input on [0, 1].
_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ],
    dtype=np.float64,
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)

# Both transforms on the [0, 1] <-> [0, 1] scale: ycc = A @ rgb + b and rgb = A^-1 @ (ycc - b).
_A = _RGB_TO_YCBCR / 255.0
_B = _OFFSET / 255.0
_A_INV = np.linalg.inv(_A)

# Integer classes MATLAB's conversion supports, with their peak value (the [0, 1] scale maps there).
_INTEGER_PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def _check_numpy(image: np.ndarray, name: str, what: str) -> float | None:
    """Validate a channel-last array; return the integer peak (None for float inputs)."""
    if image.ndim < 1 or image.shape[-1] != 3:
        raise InvalidImageError(
            f"{name} expects a numpy {what} image with 3 channels last, shape (..., 3) such as "
            f"(H, W, 3); got shape {tuple(image.shape)}. Gray images have no {what} to convert; "
            "a channel-first array needs np.moveaxis(image, 0, -1) first."
        )
    if image.dtype in _INTEGER_PEAKS:
        return _INTEGER_PEAKS[image.dtype]
    if image.dtype.kind == "f":
        return None
    raise InvalidImageError(
        f"{name} expects a uint8, uint16 or floating-point array; got dtype {image.dtype}. "
        "Convert first, e.g. image.astype(np.float64) / peak for values in [0, 1]."
    )


def _check_tensor(image: torch.Tensor, name: str, what: str) -> None:
    if image.ndim not in (3, 4) or image.shape[-3] != 3:
        raise InvalidImageError(
            f"{name} expects a torch {what} tensor with 3 channels first, shape (3, H, W) or "
            f"(N, 3, H, W); got shape {tuple(image.shape)}. A channel-last tensor needs "
            "image.permute(0, 3, 1, 2) (or (2, 0, 1) unbatched) first."
        )
    if not image.is_floating_point():
        raise InvalidImageError(
            f"{name} expects a floating-point tensor with values in [0, 1]; got dtype "
            f"{image.dtype}. Convert first, e.g. image.float() / 255 for 8-bit values."
        )


def _apply_numpy(
    image: np.ndarray, matrix: np.ndarray, pre: np.ndarray, post: np.ndarray, peak: float | None
) -> np.ndarray:
    """``(matrix @ (x/peak - pre) + post) * peak`` on the last axis, in float64, MATLAB-typed."""
    x = image.astype(np.float64)
    if peak is not None:
        x = x / peak
    x = x - pre
    # Explicit sums in a fixed order rather than `@`: BLAS may reorder the 3-term dot product, and
    # integer outputs must round identically (ties included) on every machine.
    out = np.stack(
        [
            x[..., 0] * m[0] + x[..., 1] * m[1] + x[..., 2] * m[2] + b
            for m, b in zip(matrix, post, strict=True)
        ],
        axis=-1,
    )
    if peak is None:
        return out.astype(image.dtype)
    # MATLAB's conversion to an integer class saturates, then rounds half away from zero; after
    # the clip every value is >= 0, where that rounding is floor(v + 0.5).
    out = np.floor(np.clip(out * peak, 0.0, peak) + 0.5)
    return out.astype(image.dtype)


def _apply_tensor(
    image: torch.Tensor, matrix: np.ndarray, pre: np.ndarray, post: np.ndarray
) -> torch.Tensor:
    """``matrix @ (x - pre) + post`` over the channel axis (-3), on the tensor's device/dtype."""
    # float16/bfloat16 lose ~3 significant digits in the 3-term dot product; compute in float32.
    low_precision = image.dtype in (torch.float16, torch.bfloat16)
    x = image.float() if low_precision else image
    m = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    pre_t = torch.as_tensor(pre, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    post_t = torch.as_tensor(post, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    if pre.any():
        x = x - pre_t
    out = torch.einsum("dc,...chw->...dhw", m, x) + post_t
    return out.to(image.dtype)


_NO_SHIFT = np.zeros(3, dtype=np.float64)


def _convert(
    image: np.ndarray | torch.Tensor,
    name: str,
    what: str,
    matrix: np.ndarray,
    pre: np.ndarray,
    post: np.ndarray,
) -> np.ndarray | torch.Tensor:
    """``matrix @ (x - pre) + post`` on a numpy array or a tensor, checked as ``name`` does."""
    if isinstance(image, torch.Tensor):
        _check_tensor(image, name, what)
        return _apply_tensor(image, matrix, pre, post)
    if isinstance(image, np.ndarray):
        peak = _check_numpy(image, name, what)
        return _apply_numpy(image, matrix, pre, post, peak)
    raise InvalidImageError(
        f"{name} got a {type(image).__name__}; expected a numpy array (..., 3) or a torch "
        "tensor (N, 3, H, W). Convert first, e.g. np.asarray(pil_image)."
    )


@overload
def rgb2ycbcr(image: np.ndarray, *, y_only: bool = False) -> np.ndarray: ...


@overload
def rgb2ycbcr(image: torch.Tensor, *, y_only: bool = False) -> torch.Tensor: ...


def rgb2ycbcr(
    image: np.ndarray | torch.Tensor, *, y_only: bool = False
) -> np.ndarray | torch.Tensor:
    """RGB -> BT.601 studio-swing YCbCr, exactly as MATLAB's ``rgb2ycbcr``.

    Args:
        image: numpy ``(..., 3)`` (e.g. ``(H, W, 3)``) of dtype uint8, uint16 or float (RGB in
            [0, 1]); or a float torch tensor ``(3, H, W)`` / ``(N, 3, H, W)`` with RGB in [0, 1].
        y_only: return only the luma Y.

    Returns:
        The same type. numpy: ``(..., 3)`` YCbCr, or ``(...)`` (e.g. ``(H, W)``) when ``y_only``.
        torch: ``(..., 3, H, W)``, or ``(..., 1, H, W)`` when ``y_only``. Integer arrays stay in
        their class (Y in [16, 235] for uint8; values rounded half away from zero, as MATLAB);
        float inputs give floats on the [0, 1] scale (Y in [16/255, 235/255]), unrounded.
        Tensors keep their device and dtype and are differentiable.

    Raises:
        InvalidImageError: not 3 channels, an unsupported dtype, or not an array/tensor.
    """
    rows = slice(0, 1) if y_only else slice(0, 3)
    out = _convert(image, "rgb2ycbcr", "RGB", _A[rows], _NO_SHIFT, _B[rows])
    # numpy keeps the channel axis last; Y alone drops it, as MATLAB's (H, W) luma.
    return out[..., 0] if y_only and isinstance(out, np.ndarray) else out


@overload
def ycbcr2rgb(image: np.ndarray) -> np.ndarray: ...


@overload
def ycbcr2rgb(image: torch.Tensor) -> torch.Tensor: ...


def ycbcr2rgb(image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """BT.601 studio-swing YCbCr -> RGB: the exact inverse of :func:`rgb2ycbcr` (MATLAB's
    ``ycbcr2rgb``).

    Args:
        image: numpy ``(..., 3)`` of dtype uint8, uint16 or float (YCbCr on the [0, 1] scale); or
            a float torch tensor ``(3, H, W)`` / ``(N, 3, H, W)``.

    Returns:
        RGB of the same type and shape. Integer arrays are saturated to the class range and rounded
        half away from zero (MATLAB); float results are not clipped (YCbCr outside the studio
        range maps outside [0, 1], and clipping would break the exact round trip and gradients).

    Raises:
        InvalidImageError: not 3 channels, an unsupported dtype, or not an array/tensor.
    """
    return _convert(image, "ycbcr2rgb", "YCbCr", _A_INV, _B, _NO_SHIFT)


@overload
def rgb_to_y(image: np.ndarray) -> np.ndarray: ...


@overload
def rgb_to_y(image: torch.Tensor) -> torch.Tensor: ...


def rgb_to_y(image: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """The BT.601 luma the field scores on: ``rgb2ycbcr(image, y_only=True)``.

    numpy ``(..., 3)`` -> ``(...)`` (``(H, W, 3)`` -> ``(H, W)``), uint8 stays uint8 (rounded);
    torch ``(N, 3, H, W)`` -> ``(N, 1, H, W)`` and ``(3, H, W)`` -> ``(1, H, W)``. Float inputs
    in [0, 1] give Y on the [0, 1] scale, i.e. in [16/255, 235/255]; multiply by 255 for the
    0-255 luma of the papers' formula.
    """
    return rgb2ycbcr(image, y_only=True)
