"""What a run minimises and how it steps: the recipe's loss terms, built with what the run
knows, and each network's optimizer with its per-iteration learning-rate schedule."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler
from torch.optim.optimizer import ParamsT

from superres.errors import ConfigError
from superres.losses import LOSSES, build_loss
from superres.training.config import LossConfig, OptimizerConfig, SchedulerConfig
from superres.training.optim import build_optimizer, build_scheduler

#: Loss names grouped under the log keys of the papers' figures.
_PIXEL_LOSSES = ("mse", "l1", "charbonnier", "ssim", "ms_ssim", "mix", "tv")


def loss_kwargs_for_run(
    name: str, kwargs: dict[str, Any], *, data_root: Path, scale: int, download: bool = False
) -> dict[str, Any]:
    """A recipe's loss arguments with what the run knows filled in: a relative ``weights:`` path
    that is not found from the working folder resolves against ``data_root`` (recipes name files,
    not machines); a loss whose constructor takes ``data_root`` (LPIPS finds its heads and trunk
    there) gets the run's unless the recipe names another, and one that takes ``download`` the
    run's permission to download its pinned files; and a loss that takes ``scale`` (the
    sub-pixel pattern guard) gets the recipe's upscaling factor. A ``scale`` that contradicts the
    recipe's is a mistake, not a choice, and is refused."""
    out = dict(kwargs)
    params = inspect.signature(LOSSES.get(name)).parameters
    if "data_root" in params and out.get("data_root") is None:
        out["data_root"] = str(data_root)
    if "download" in params:
        out["download"] = download
    if "scale" in params:
        given = out.setdefault("scale", scale)
        if given != scale:
            raise ConfigError(
                f"loss {name!r}: scale {given!r} contradicts the recipe's scale {scale}; "
                "drop the loss's scale (it follows the recipe) or make the two agree."
            )
    value = out.get("weights")
    if isinstance(value, str) and "://" not in value and not Path(value).expanduser().exists():
        candidate = data_root / value
        if candidate.exists():
            out["weights"] = str(candidate)
    return out


def _log_key(name: str, taken: Sequence[str]) -> str:
    """The log key of loss ``name`` (the first pixel loss is ``loss_pix``; ``taken``: the keys
    of the terms before it)."""
    if name in _PIXEL_LOSSES:
        return "loss_pix" if "loss_pix" not in taken else f"loss_pix_{name}"
    if name == "perceptual":
        return "loss_percep"
    return f"loss_{name}"


@dataclass(frozen=True)
class Losses:
    """The built loss terms: every ``f(sr, gt)`` term under its log key, in recipe order, and
    the adversarial loss (``None`` without a ``gan`` term; it needs the discriminator)."""

    pixel_terms: list[tuple[str, nn.Module]]
    gan_loss: Any


def build_losses(
    terms: Sequence[LossConfig],
    *,
    data_root: Path,
    scale: int,
    download: bool,
    device: torch.device,
) -> Losses:
    """Every term of ``train.losses`` built (see :func:`loss_kwargs_for_run`) on ``device``."""
    pixel_terms: list[tuple[str, nn.Module]] = []
    gan_loss: Any = None
    for term in terms:
        kwargs = loss_kwargs_for_run(
            term.name, term.kwargs, data_root=data_root, scale=scale, download=download
        )
        loss = build_loss(term.name, **kwargs).to(device)
        if term.name == "gan":
            gan_loss = loss
        else:
            pixel_terms.append((_log_key(term.name, [k for k, _ in pixel_terms]), loss))
    return Losses(pixel_terms, gan_loss)


def build_optimization(
    params: ParamsT,
    optimizer: OptimizerConfig,
    scheduler: SchedulerConfig,
    *,
    total_iters: int,
    fused: bool,
) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """One network's optimizer over ``params`` and its per-iteration schedule."""
    opt = build_optimizer(
        params,
        name=optimizer.name,
        lr=optimizer.lr,
        betas=optimizer.betas,
        weight_decay=optimizer.weight_decay,
        eps=optimizer.eps,
        fused=fused,
    )
    # The recipe's scheduler section holds exactly build_scheduler's keywords.
    schedule = build_scheduler(opt, total_iters=total_iters, **dataclasses.asdict(scheduler))
    return opt, schedule


__all__ = ["Losses", "build_losses", "build_optimization", "loss_kwargs_for_run"]
