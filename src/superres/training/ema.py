"""Exponential moving average (EMA) of a network's weights, evaluated instead of the raw weights.

After each optimizer step, ``ema = d * ema + (1 - d) * weights`` for every floating-point
parameter; buffers (BatchNorm running statistics, counters) and non-floating parameters are copied.
With ``warmup`` the decay used by the update that follows ``n`` earlier updates is
``min(decay, (1 + n) / (10 + n))`` (TensorFlow's ``ExponentialMovingAverage`` with
``num_updates``), so the average is not dominated by the random initial weights early on.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DataParallel, DistributedDataParallel

from superres.errors import ConfigError, IncompatibleWeightsError

__all__ = ["ModelEMA", "unwrap_model"]


def _is_pure_wrapper(model: nn.Module, inner: nn.Module) -> bool:
    """True when ``inner`` is ``model``'s only child and ``model`` holds no tensors of its own."""
    children = list(model.children())
    return (
        len(children) == 1
        and children[0] is inner
        and next(model.parameters(recurse=False), None) is None
        and next(model.buffers(recurse=False), None) is None
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The bare network inside DistributedDataParallel, DataParallel or ``torch.compile`` wrappers.

    Also unwraps any module whose only content is a child named ``module`` (a wrapper in the
    DDP style); a network that merely has a submodule called ``module`` beside others is returned
    unchanged.
    """
    while True:
        if isinstance(model, DistributedDataParallel | DataParallel):
            model = model.module
            continue
        original = getattr(model, "_orig_mod", None)  # torch.compile's OptimizedModule
        if isinstance(original, nn.Module):
            model = original
            continue
        inner = getattr(model, "module", None)
        if isinstance(inner, nn.Module) and _is_pure_wrapper(model, inner):
            model = inner
            continue
        return model


class ModelEMA:
    """A frozen copy of a network whose weights follow the exponential moving average of its own.

    Create it after the network has been moved to its device (the copy lives where the network
    was); call :meth:`update` after every optimizer step; validate, save and export ``.module``.

    Args:
        model: the network being trained, bare or wrapped (DDP, DataParallel, ``torch.compile``).
        decay: the EMA decay ``d`` in ``[0, 1)``; 0.999 averages over about 1000 steps.
        warmup: use ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (see module docstring).

    Attributes:
        module: the averaged network, in eval mode, with ``requires_grad=False`` everywhere.
        num_updates: how many times :meth:`update` has run (saved and restored with the state).
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.999, warmup: bool = True) -> None:
        if not (
            isinstance(decay, int | float)
            and not isinstance(decay, bool)
            and math.isfinite(decay)
            and 0.0 <= decay < 1.0
        ):
            raise ConfigError(
                f"ModelEMA: decay must be a number in [0, 1), e.g. 0.999; got {decay!r}."
            )
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.num_updates = 0
        self.module: nn.Module = copy.deepcopy(unwrap_model(model))
        self.module.eval()
        self.module.requires_grad_(False)

    def effective_decay(self, num_updates: int | None = None) -> float:
        """The decay the update after ``num_updates`` earlier ones uses (default: the next one)."""
        n = self.num_updates if num_updates is None else num_updates
        if not self.warmup:
            return self.decay
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold ``model``'s current weights into the average (call after each optimizer step)."""
        source = unwrap_model(model)
        decay = self.effective_decay()
        ema_params = dict(self.module.named_parameters())
        src_params = dict(source.named_parameters())
        ema_buffers = dict(self.module.named_buffers())
        src_buffers = dict(source.named_buffers())
        if ema_params.keys() != src_params.keys() or ema_buffers.keys() != src_buffers.keys():
            mismatched = sorted(
                (ema_params.keys() ^ src_params.keys()) | (ema_buffers.keys() ^ src_buffers.keys())
            )
            raise ValueError(
                "ModelEMA.update: the network's parameters/buffers differ from the averaged copy "
                f"(mismatched names: {mismatched[:5]}); pass the architecture the EMA was built "
                "from."
            )
        averaged: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        for name, ema_p in ema_params.items():
            src = src_params[name].detach().to(device=ema_p.device, dtype=ema_p.dtype)
            if ema_p.is_floating_point() or ema_p.is_complex():
                averaged.append(ema_p)
                targets.append(src)
            else:
                ema_p.copy_(src)
        if averaged:
            # ema + (1 - d) * (w - ema) == d * ema + (1 - d) * w, for all tensors in one call
            # (a few kernels instead of one per parameter; no host synchronisation)
            torch._foreach_lerp_(averaged, targets, 1.0 - decay)  # pyright: ignore[reportPrivateImportUsage]
        for name, ema_b in ema_buffers.items():
            ema_b.copy_(src_buffers[name].detach())
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"module": averaged weights, "num_updates": int, "decay": float, "warmup": bool}``."""
        return {
            "module": self.module.state_dict(),
            "num_updates": self.num_updates,
            "decay": self.decay,
            "warmup": self.warmup,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the averaged weights and the update count saved by :meth:`state_dict`.

        ``decay`` and ``warmup`` stay as constructed (the run's config decides them).

        Raises:
            IncompatibleWeightsError: the state is not an EMA state of this architecture.
        """
        if "module" not in state or "num_updates" not in state:
            raise IncompatibleWeightsError(
                f"ModelEMA.load_state_dict: expected keys 'module' and 'num_updates'; got "
                f"{sorted(state)}. Pass the dictionary ModelEMA.state_dict() returned."
            )
        try:
            self.module.load_state_dict(state["module"])
        except RuntimeError as exc:
            raise IncompatibleWeightsError(
                f"ModelEMA.load_state_dict: the saved EMA weights do not fit this network: {exc}"
            ) from exc
        self.num_updates = int(state["num_updates"])
