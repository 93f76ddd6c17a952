"""Iterative back-projection: make a super-resolved image consistent with its low-resolution input.

Irani & Peleg, "Improving resolution by image registration", CVGIP: Graphical Models and Image
Processing 53(3), 1991. The super-resolved estimate ``x`` should reproduce the observed image
``lq`` when degraded by the imaging model ``down``; the reconstruction error ``lq - down(x)`` is
projected back onto the high-resolution grid and added::

    x_{k+1} = x_k + step * up(lq - down(x_k))

Here ``down`` is the field's degradation model, MATLAB-exact antialiased bicubic downscaling
(:func:`superres.imaging.imresize`, the operator that made the benchmark LR images), and ``up``
(the back-projection kernel) is MATLAB-exact bicubic upscaling. The residual evolves as
``r_{k+1} = (I - step * down∘up) r_k``; ``down∘up`` is a low-pass operator with eigenvalues in
(0, 1], so with ``0 < step <= 1`` every iteration shrinks the low-resolution error
``||down(x) - lq||`` (fast for smooth components, slowly for the finest ones) while adding only
band-limited corrections to ``x``. It cannot add detail; it removes colour shifts and blur/ringing
that a network or a post-resize introduced against the input. One to three iterations are typical.

Pure functions on tensors ``(..., H, W)`` (any float dtype, any device); differentiable.
This module imports only ``superres.errors`` and the resize in this package.
"""

from __future__ import annotations

import math

import torch

from superres.errors import InvalidImageError
from superres.imaging.resize import imresize

__all__ = ["backproject", "reconstruction_error"]


def _check(sr: object, lq: object) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(sr, torch.Tensor) or not isinstance(lq, torch.Tensor):
        raise InvalidImageError(
            f"back-projection needs torch tensors (..., H, W), got {type(sr).__name__} and "
            f"{type(lq).__name__}"
        )
    if not sr.is_floating_point() or not lq.is_floating_point():
        raise InvalidImageError(
            f"back-projection needs float tensors in [0, 1], got {sr.dtype} and {lq.dtype}; "
            "divide integer images by 255 first"
        )
    if sr.dim() < 2 or sr.shape[:-2] != lq.shape[:-2]:
        raise InvalidImageError(
            f"back-projection needs sr (..., H, W) and lq (..., h, w) with the same leading "
            f"dimensions, got {tuple(sr.shape)} and {tuple(lq.shape)}"
        )
    if sr.shape[-2] < lq.shape[-2] or sr.shape[-1] < lq.shape[-1]:
        raise InvalidImageError(
            f"back-projection needs sr at least as large as lq, got {tuple(sr.shape[-2:])} "
            f"and {tuple(lq.shape[-2:])}"
        )
    return sr, lq


def reconstruction_error(sr: torch.Tensor, lq: torch.Tensor) -> float:
    """Root-mean-square of ``down(sr) - lq``: how far ``sr`` is from reproducing ``lq``.

    ``down`` is MATLAB-exact antialiased bicubic to ``lq``'s size. Same range as the inputs.
    """
    sr, lq = _check(sr, lq)
    down = imresize(sr, output_shape=(int(lq.shape[-2]), int(lq.shape[-1])))
    return float(torch.sqrt(torch.mean((down.double() - lq.double()) ** 2)))


def backproject(
    sr: torch.Tensor, lq: torch.Tensor, *, iterations: int = 1, step: float = 1.0
) -> torch.Tensor:
    """Refine ``sr`` by ``iterations`` rounds of iterative back-projection against ``lq``.

    Args:
        sr: ``(..., H, W)`` float, the super-resolved estimate (any size >= ``lq``'s; the scale
            need not be an integer).
        lq: ``(..., h, w)`` float, the low-resolution observation, same leading dimensions.
        iterations: rounds (0 returns ``sr`` unchanged).
        step: step size in (0, 1]; 1 is Irani & Peleg's; smaller steps are more conservative.

    Returns:
        A new tensor shaped like ``sr`` (same dtype and device), not clamped.

    Raises:
        InvalidImageError: wrong types, shapes, ``iterations`` or ``step``.
    """
    sr, lq = _check(sr, lq)
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
        raise InvalidImageError(f"iterations must be an integer >= 0, got {iterations!r}")
    if not (isinstance(step, int | float) and math.isfinite(step) and 0 < step <= 1):
        raise InvalidImageError(f"step must be in (0, 1], got {step!r}")
    low = (int(lq.shape[-2]), int(lq.shape[-1]))
    high = (int(sr.shape[-2]), int(sr.shape[-1]))
    x = sr.clone()
    target = lq.to(sr.dtype)
    for _ in range(iterations):
        residual = target - imresize(x, output_shape=low)
        # In place: no second full-size estimate besides the correction itself.
        x = x.add_(imresize(residual, output_shape=high), alpha=float(step))
    return x
