"""MATLAB-exact ``imresize``: the downsampler behind the field's benchmark LR images.

Every published SR table scores models on LR images made by MATLAB's
``imresize(HR, 1/s, 'bicubic')`` of the mod-``s``-cropped HR. PIL, OpenCV and ``F.interpolate``
bicubic differ from it (no antialiasing, another cubic, other border rules) and shift PSNR by
0.5-5 dB, so this module reimplements MATLAB's ``contributions``/``resizeAlongDim`` exactly, in
the version that generated the benchmark sets (SelfExSR, A+, SRCNN):

* Keys cubic (a = -0.5) and MATLAB's other kernels, stretched by ``1/scale`` when shrinking with
  antialiasing;
* sample position ``u = x/scale + 0.5*(1 - 1/scale)`` (1-based), ``ceil(width) + 2`` taps,
  weights normalised to sum 1;
* out-of-range taps **clamped** to the edge pixel (edge replication). Newer MATLAB and BasicSR's
  Python port mirror instead, which is off by up to 10 grey levels on the first and last rows;
* one 1-D pass per dimension, in ascending order of scale (rows first on ties);
* integer images rounded half-up and clipped after **each** pass, as MATLAB's ``imresizemex``
  writes every pass back into the integer class.

It reproduces all 119 Set5/Set14/BSD100 ``LR_bicubic_x4`` images bit-exactly
(``tests/test_resize.py``).

Weights are computed once per (length, scale, kernel) in float64 numpy and cached; each pass is a
gather over the few kernel taps (6 at bicubic x2 up, 18 at x4 down), never a dense matrix, so
memory stays linear in the image size. The torch path runs on the tensor's device and dtype and is
differentiable (resizing is linear).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal, TypeVar

import numpy as np
import torch

from superres.errors import InvalidImageError, UnknownNameError

__all__ = ["EDGES", "KERNELS", "Edge", "UnknownKernelError", "imresize"]


class UnknownKernelError(UnknownNameError, ValueError):
    """``imresize`` was given a kernel name it does not know (see ``KERNELS``)."""

    kind = "kernel"


# --- kernels: verbatim from MATLAB's imresize.m ---------------------------------------------------

# MATLAB adds its `eps` to the Lanczos numerator and denominator to make x = 0 finite (-> 1).
_MATLAB_EPS = float(np.finfo(np.float64).eps)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution with a = -0.5; support [-2, 2]."""
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def _triangle(x: np.ndarray) -> np.ndarray:
    """Linear interpolation kernel; support [-1, 1]."""
    return (x + 1.0) * ((x >= -1) & (x < 0)) + (1.0 - x) * ((x >= 0) & (x <= 1))


def _box(x: np.ndarray) -> np.ndarray:
    """Nearest neighbour; half-open [-0.5, 0.5) so ties go to the right-hand pixel, as MATLAB."""
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def _lanczos2(x: np.ndarray) -> np.ndarray:
    """Lanczos window a = 2; support (-2, 2)."""
    num = np.sin(np.pi * x) * np.sin(np.pi * x / 2) + _MATLAB_EPS
    return num / (np.pi**2 * x * x / 2 + _MATLAB_EPS) * (np.abs(x) < 2)


def _lanczos3(x: np.ndarray) -> np.ndarray:
    """Lanczos window a = 3; support (-3, 3)."""
    num = np.sin(np.pi * x) * np.sin(np.pi * x / 3) + _MATLAB_EPS
    return num / (np.pi**2 * x * x / 3 + _MATLAB_EPS) * (np.abs(x) < 3)


# name -> (kernel, width in input pixels at scale 1). "bicubic"/"bilinear"/"nearest" are MATLAB's
# method names; "cubic"/"triangle"/"box" its kernel names for the same functions.
KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float]] = {
    "bicubic": (_cubic, 4.0),
    "cubic": (_cubic, 4.0),
    "bilinear": (_triangle, 2.0),
    "triangle": (_triangle, 2.0),
    "nearest": (_box, 1.0),
    "box": (_box, 1.0),
    "lanczos2": (_lanczos2, 4.0),
    "lanczos3": (_lanczos3, 6.0),
}


#: How :func:`imresize` reads beyond the image border.
Edge = Literal["replicate", "mirror"]
EDGES: tuple[str, ...] = ("replicate", "mirror")

#: An image as :func:`imresize` takes it and gives it back: a numpy array or a torch tensor.
ImageT = TypeVar("ImageT", np.ndarray, torch.Tensor)


@functools.lru_cache(maxsize=256)
def _contributions(
    in_len: int, out_len: int, scale: float, kernel: str, antialiasing: bool, edge: str
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices of one 1-D pass, as MATLAB's ``contributions``.

    Returns ``(weights, indices)``, both ``(out_len, taps)``: output ``i`` is
    ``sum_t weights[i, t] * input[indices[i, t]]``. float64 / int64, read-only (they are cached).
    """
    func, width = KERNELS[kernel]
    stretch = scale < 1 and antialiasing
    if stretch:
        # Stretch the kernel by 1/scale (a low-pass filter at the new Nyquist rate) and scale its
        # height so it still integrates to 1.
        width = width / scale
    x = np.arange(1, out_len + 1, dtype=np.float64)  # MATLAB's 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)  # where output x samples the input, 1-based
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2  # MATLAB's P: generous, zero columns are dropped below
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    offsets = u[:, None] - indices
    weights = scale * func(scale * offsets) if stretch else func(offsets)
    weights = weights / weights.sum(axis=1, keepdims=True)
    if edge == "mirror":
        # Newer MATLAB: indices reflect about the edges, the edge pixel repeated
        # (aux = [1:in_len, in_len:-1:1]; indices = aux(mod(indices - 1, 2 * in_len) + 1)).
        folded = np.mod(indices - 1, 2 * in_len)
        indices = np.where(folded < in_len, folded, 2 * in_len - 1 - folded).astype(np.int64)
    else:
        # Edge replication: the pre-R2017 rule that made the benchmark LR images.
        indices = np.clip(indices, 1, in_len).astype(np.int64) - 1
    keep = np.any(weights != 0, axis=0)  # taps that are zero for every output pixel
    weights = np.ascontiguousarray(weights[:, keep])
    indices = np.ascontiguousarray(indices[:, keep])
    weights.setflags(write=False)
    indices.setflags(write=False)
    return weights, indices


# --- argument checking ----------------------------------------------------------------------------


def _check_kernel(kernel: object) -> str:
    if not isinstance(kernel, str) or kernel.lower() not in KERNELS:
        raise UnknownKernelError(str(kernel), KERNELS)
    return kernel.lower()


def _positive_finite(value: object) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
        and float(value) > 0
    )


def _plan(
    in_shape: tuple[int, int],
    scale: float | tuple[float, float] | None,
    output_shape: tuple[int, int] | None,
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Per-dimension ``(scale_h, scale_w)`` and ``(out_h, out_w)``, following MATLAB's rules."""
    if (scale is None) == (output_shape is None):
        got = "both" if scale is not None else "neither"
        raise InvalidImageError(
            f"imresize needs exactly one of `scale` and `output_shape`; got {got}. "
            "Pass e.g. scale=1/4 or output_shape=(out_h, out_w)."
        )
    if scale is not None:
        pair = tuple(scale) if isinstance(scale, tuple | list) else (scale, scale)
        if len(pair) != 2 or not all(_positive_finite(s) for s in pair):
            raise InvalidImageError(
                f"imresize scale must be a positive finite number or a (scale_h, scale_w) pair; "
                f"got {scale!r}. Use e.g. scale=0.25 to shrink by 4 or scale=2 to enlarge by 2."
            )
        scales = (float(pair[0]), float(pair[1]))
        # MATLAB: ceil(scale .* input_size). Keep its float arithmetic: 1/3 * 300 -> 100, not 101.
        out = (math.ceil(in_shape[0] * scales[0]), math.ceil(in_shape[1] * scales[1]))
        return scales, out
    assert output_shape is not None  # narrowed by the check above
    ok = (
        isinstance(output_shape, tuple | list)
        and len(output_shape) == 2
        and all(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n > 0
            for n in output_shape
        )
    )
    if not ok:
        raise InvalidImageError(
            f"imresize output_shape must be a pair of positive ints (out_h, out_w); got "
            f"{output_shape!r}. Pass e.g. output_shape=(128, 96)."
        )
    out = (int(output_shape[0]), int(output_shape[1]))
    # MATLAB derives the scale from the sizes; it is what stretches the kernel.
    return (out[0] / in_shape[0], out[1] / in_shape[1]), out


_NUMPY_DTYPES = (
    np.dtype(np.uint8),
    np.dtype(np.uint16),
    np.dtype(np.float32),
    np.dtype(np.float64),
)


def _check_numpy(image: np.ndarray) -> np.ndarray:
    dtype = image.dtype.newbyteorder("=") if image.dtype.byteorder != "|" else image.dtype
    if dtype not in _NUMPY_DTYPES:
        raise InvalidImageError(
            f"imresize got a numpy array of dtype {image.dtype}; expected uint8, uint16, float32 "
            "or float64. Convert first, e.g. image.astype(np.float64)."
        )
    if image.ndim not in (2, 3):
        raise InvalidImageError(
            f"imresize got a numpy array of shape {image.shape}; expected (H, W) or (H, W, C). "
            "For a batch, loop over it or pass a torch tensor (..., H, W)."
        )
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] > 4:
        raise InvalidImageError(
            f"imresize got a numpy array of shape {image.shape}, which looks channel-first; numpy "
            "images are (H, W, C). Use image.transpose(1, 2, 0), or pass a torch tensor (C, H, W)."
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InvalidImageError(
            f"imresize got an empty image of shape {image.shape}; expected H >= 1 and W >= 1."
        )
    return image.astype(dtype, copy=False)


def _check_tensor(image: torch.Tensor) -> None:
    if not (image.dtype.is_floating_point or image.dtype == torch.uint8):
        raise InvalidImageError(
            f"imresize got a tensor of dtype {image.dtype}; expected a floating dtype or uint8. "
            "Convert first, e.g. image.float() / 255."
        )
    if image.ndim < 2:
        raise InvalidImageError(
            f"imresize got a tensor of shape {tuple(image.shape)}; expected (..., H, W), e.g. "
            "(C, H, W) or (N, C, H, W)."
        )
    if image.shape[-2] == 0 or image.shape[-1] == 0:
        raise InvalidImageError(
            f"imresize got an empty tensor of shape {tuple(image.shape)}; expected H >= 1, W >= 1."
        )


# --- the 1-D passes -------------------------------------------------------------------------------


# Rows of output computed at a time by the numpy pass: keeps the per-tap scratch buffer in cache and
# avoids allocating (and page-faulting) a second output-sized temporary for every tap.
_BLOCK_VALUES = 1 << 18


def _pass_numpy(
    x: np.ndarray, axis: int, weights: np.ndarray, indices: np.ndarray, peak: float | None
) -> np.ndarray:
    """Resize float64 ``x`` along ``axis`` (0 or 1); round half-up, clip to [0, peak] unless None.

    Works in blocks along axis 0 (contiguous): blocks of output rows for the axis-0 pass, blocks
    of input rows for the axis-1 pass. Within a block, one vectorised gather-multiply-add per tap.
    """
    shape = list(x.shape)
    shape[axis] = weights.shape[0]
    out = np.empty(shape, dtype=np.float64)
    row_values = max(1, math.prod(shape[1:]))
    step = max(1, _BLOCK_VALUES // row_values)
    view = [1] * x.ndim
    view[axis] = -1
    for r0 in range(0, shape[0], step):
        r1 = min(r0 + step, shape[0])
        if axis == 0:
            src, w, idx = x, weights[r0:r1], indices[r0:r1]
        else:
            src, w, idx = x[r0:r1], weights, indices
        dst = out[r0:r1]
        tap = np.empty_like(dst)
        for t in range(w.shape[1]):  # a few taps; every pixel of the block at once per tap
            wt = w[:, t].reshape(view)
            if t == 0:
                np.take(src, idx[:, t], axis=axis, out=dst)
                dst *= wt
            else:
                np.take(src, idx[:, t], axis=axis, out=tap)
                tap *= wt
                dst += tap
        if peak is not None:
            # MATLAB stores each pass in the integer class: uint8(v) == floor(v + 0.5) clipped.
            np.floor(dst + 0.5, out=dst)
            np.clip(dst, 0.0, peak, out=dst)
    return out


def _pass_torch(
    x: torch.Tensor, dim: int, weights: np.ndarray, indices: np.ndarray, peak: float | None
) -> torch.Tensor:
    """Resize ``x`` along ``dim`` (-2 or -1) in its own dtype and device; autograd-friendly."""
    # torch.tensor copies: the cached arrays are read-only and must stay unshared.
    w = torch.tensor(weights, dtype=x.dtype, device=x.device)
    idx = torch.tensor(indices, device=x.device)
    view = (-1, 1) if dim == -2 else (-1,)
    out = x.index_select(dim, idx[:, 0]) * w[:, 0].reshape(view)
    for t in range(1, w.shape[1]):
        # In place: no extra output-sized temporary per tap (and 2x faster than a broadcast
        # addcmul_ on CPU). Autograd allows it: the weights need no grad, so mul_ saves nothing
        # it overwrites, and the sum's backward never needs `out`.
        out += x.index_select(dim, idx[:, t]).mul_(w[:, t].reshape(view))
    if peak is not None:
        out = torch.floor(out + 0.5).clamp_(0.0, peak)
    return out


def _order(scales: tuple[float, float]) -> list[int]:
    """MATLAB's ``[~, order] = sort(scale)``: ascending and stable, so rows go first on ties."""
    return sorted(range(2), key=lambda d: scales[d])


# --- public ---------------------------------------------------------------------------------------


def imresize(
    image: ImageT,
    scale: float | tuple[float, float] | None = None,
    output_shape: tuple[int, int] | None = None,
    kernel: str = "bicubic",
    *,
    antialiasing: bool = True,
    edge: Edge = "replicate",
) -> ImageT:
    """Resize like MATLAB's ``imresize`` (pre-R2017 edge handling), bit-exact for 8-bit images.

    Args:
        image: numpy ``(H, W)`` or ``(H, W, C)`` (the file layout), dtype uint8, uint16, float32
            or float64, any range; or a torch tensor ``(..., H, W)`` (e.g. ``(C, H, W)``,
            ``(N, C, H, W)``), floating or uint8.
        scale: factor for both dimensions, or ``(scale_h, scale_w)``; the output is
            ``ceil(H * scale_h) x ceil(W * scale_w)``. ``1/4`` makes the x4 benchmark LR.
        output_shape: ``(out_h, out_w)`` instead of ``scale``; the kernel is then stretched by
            ``out/in`` per dimension, as MATLAB does.
        kernel: ``"bicubic"``/``"cubic"`` (Keys, a = -0.5), ``"bilinear"``/``"triangle"``,
            ``"nearest"``/``"box"``, ``"lanczos2"`` or ``"lanczos3"``.
        antialiasing: widen the kernel by ``1/scale`` when shrinking (MATLAB's default). Always off
            for ``"nearest"``, as in MATLAB; ``"box"`` honours it (area averaging when shrinking).
        edge: taps beyond the border read the edge pixel (``"replicate"``: the MATLAB that made
            the benchmark LR images) or the image mirrored about its edge (``"mirror"``: newer
            MATLAB, which the current NIQE reference uses).

    Returns:
        The same type, layout and dtype. Integer inputs are computed in float64, rounded half-up
        and clipped to the dtype's range after each 1-D pass (MATLAB semantics, needed for
        bit-exact benchmark LR images). Float numpy inputs are computed in float64 and neither
        rounded nor clipped (bicubic overshoots [0, 1] near edges, as in MATLAB). Float tensors
        are computed in their own dtype (float16/bfloat16 in float32) on their device, and are
        differentiable.

    Raises:
        InvalidImageError: bad shape, dtype or size, or a bad ``scale``/``output_shape``.
        UnknownKernelError: an unknown ``kernel`` name (a ``ValueError``; suggests close names).
    """
    kernel = _check_kernel(kernel)
    if edge not in EDGES:
        raise InvalidImageError(f"imresize edge must be one of {', '.join(EDGES)}; got {edge!r}")
    if kernel == "nearest":
        antialiasing = False  # MATLAB's default for 'nearest': pick pixels, never average
    if isinstance(image, torch.Tensor):
        _check_tensor(image)
        in_shape = (int(image.shape[-2]), int(image.shape[-1]))
    elif isinstance(image, np.ndarray):
        image = _check_numpy(image)
        in_shape = (image.shape[0], image.shape[1])
    else:
        raise InvalidImageError(
            f"imresize got a {type(image).__name__}; expected a numpy array (H, W[, C]) or a "
            "torch tensor (..., H, W). Convert first, e.g. np.asarray(pil_image)."
        )
    scales, out_shape = _plan(in_shape, scale, output_shape)

    if isinstance(image, torch.Tensor):
        if image.dtype == torch.uint8:
            peak: float | None = 255.0
            t = image.to(torch.float64)  # the exact path; matches the numpy result bit for bit
        else:
            peak = None
            low_precision = image.dtype in (torch.float16, torch.bfloat16)
            t = image.float() if low_precision else image
        for d in _order(scales):
            w, idx = _contributions(
                in_shape[d], out_shape[d], scales[d], kernel, antialiasing, edge
            )
            t = _pass_torch(t, d - 2, w, idx, peak)
        return t.to(image.dtype)

    integer = image.dtype.kind == "u"
    peak = float(np.iinfo(image.dtype).max) if integer else None
    x = image.astype(np.float64)
    for d in _order(scales):
        w, idx = _contributions(in_shape[d], out_shape[d], scales[d], kernel, antialiasing, edge)
        x = _pass_numpy(x, d, w, idx, peak)
    return x.astype(image.dtype)
