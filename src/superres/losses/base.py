"""What every loss shares: a ``loss_weight``, a validated ``reduction`` and input checks."""

from __future__ import annotations

import math
from typing import Final, Literal

import torch
from torch import nn

from superres.errors import ConfigError, InvalidImageError

Reduction = Literal["mean", "sum", "none"]

#: The accepted values of every loss's ``reduction`` argument.
REDUCTIONS: Final[tuple[str, ...]] = ("mean", "sum", "none")


def check_reduction(reduction: str, owner: str) -> str:
    """``reduction`` if it is one of :data:`REDUCTIONS`, else a :class:`ConfigError`."""
    if reduction not in REDUCTIONS:
        raise ConfigError(
            f"{owner}: reduction must be one of {', '.join(map(repr, REDUCTIONS))}; got "
            f"{reduction!r}. Use 'mean' for training, 'none' for per-element/per-image values."
        )
    return reduction


def _batch_problem(t: torch.Tensor) -> str | None:
    """Why ``t`` is not a floating-point ``(N, C, H, W)`` batch, with the fix; None if it is."""
    if t.ndim != 4:
        return f"has shape {tuple(t.shape)}; expected (N, C, H, W). Add a batch axis with t[None]."
    if not t.is_floating_point():
        return (
            f"has dtype {t.dtype}; expected floating point in [0, 1]. Convert with t.float() / 255."
        )
    return None


def check_pair(owner: str, sr: torch.Tensor, gt: torch.Tensor) -> None:
    """Both ``(N, C, H, W)`` floating-point tensors of one shape (no data-dependent checks, so no
    host synchronisation)."""
    for label, t in (("sr", sr), ("gt", gt)):
        problem = _batch_problem(t)
        if problem is not None:
            raise InvalidImageError(f"{owner}: {label} {problem}")
    if sr.shape != gt.shape:
        raise InvalidImageError(
            f"{owner}: sr and gt shapes differ: {tuple(sr.shape)} vs {tuple(gt.shape)}; expected "
            "equal shapes. Crop gt to the model output (H * scale, W * scale)."
        )


class BaseLoss(nn.Module):
    """Base class: stores and validates ``loss_weight`` and ``reduction``.

    ``loss_weight`` multiplies the returned value, so a training config can write
    ``loss_pix = l1(sr, gt)`` and ``total = sum(losses)`` with the weights kept beside each loss.

    Args:
        loss_weight: multiplies the reduced value.
        reduction: ``"mean"`` (over every element), ``"sum"`` or ``"none"`` (what each loss
            returns per element or per image; see :mod:`superres.losses`).
    """

    def __init__(self, *, loss_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, int | float):
            raise ConfigError(f"{name}: loss_weight must be a number; got {loss_weight!r}.")
        if not math.isfinite(loss_weight):
            raise ConfigError(f"{name}: loss_weight must be finite; got {loss_weight!r}.")
        self.loss_weight = float(loss_weight)
        self.reduction = check_reduction(reduction, name)

    def _reduce(self, values: torch.Tensor) -> torch.Tensor:
        """``loss_weight`` times ``values`` reduced by ``self.reduction``."""
        if self.reduction == "mean":
            values = values.mean()
        elif self.reduction == "sum":
            values = values.sum()
        return self.loss_weight * values

    def extra_repr(self) -> str:
        return f"loss_weight={self.loss_weight:g}, reduction={self.reduction!r}"


__all__ = ["REDUCTIONS", "BaseLoss", "Reduction", "check_pair", "check_reduction"]
