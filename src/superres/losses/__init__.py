"""Training losses, each an ``nn.Module`` called as ``loss(sr, gt)`` on ``(N, C, H, W)`` float RGB
in [0, 1], with keyword-only hyperparameters, a ``loss_weight`` that multiplies the result and a
validated ``reduction`` (``"mean"``, ``"sum"`` or ``"none"``).

What ``"none"`` returns: the per-element map ``(N, C, H, W)`` for the pixel losses, the per-element
terms for :class:`GANLoss`, and one value per image ``(N,)`` for the others (SSIM-type,
perceptual, total variation); ``"mean"``/``"sum"`` reduce exactly that.

YAML configs name losses through :data:`LOSSES` / :func:`build_loss`::

    build_loss("l1", loss_weight=1.0)
    build_loss("perceptual", layer_weights={"conv5_4": 1.0}, criterion="l1")
    build_loss("gan", gan_type="ragan", loss_weight=5e-3)

================  ======================================================================
name              class
================  ======================================================================
mse               :class:`MSELoss`
l1                :class:`L1Loss`
charbonnier       :class:`CharbonnierLoss` (LapSRN)
ssim              :class:`SSIMLoss` (1 - SSIM)
ms_ssim           :class:`MSSSIMLoss` (1 - MS-SSIM)
mix               :class:`MixLoss` (MS-SSIM + Gaussian-weighted L1, Zhao et al. 2017)
perceptual        :class:`PerceptualLoss` (VGG19 or SqueezeNet 1.1 features)
lpips             :class:`LPIPSLoss` (LPIPS distance as a training loss)
gan               :class:`GANLoss` (vanilla, lsgan, hinge, ragan)
tv                :class:`TotalVariationLoss`
subpixel_pattern  :class:`SubpixelPatternLoss` (static sub-pixel tile of the error)
================  ======================================================================
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from torch import nn

from superres.errors import ConfigError, UnknownNameError, did_you_mean
from superres.losses.adversarial import GAN_TYPES, GANLoss
from superres.losses.base import REDUCTIONS, BaseLoss
from superres.losses.perceptual import (
    SRGAN_FEATURE_SCALE,
    FeatureMatchingLoss,
    LPIPSLoss,
    PerceptualLoss,
    VGG19Features,
)
from superres.losses.pixel import CharbonnierLoss, L1Loss, MSELoss, SubpixelPatternLoss
from superres.losses.structural import MixLoss, MSSSIMLoss, SSIMLoss
from superres.losses.tv import TotalVariationLoss
from superres.registry import Registry

__all__ = [
    "GAN_TYPES",
    "LOSSES",
    "REDUCTIONS",
    "SRGAN_FEATURE_SCALE",
    "BaseLoss",
    "CharbonnierLoss",
    "FeatureMatchingLoss",
    "GANLoss",
    "L1Loss",
    "LPIPSLoss",
    "MSELoss",
    "MSSSIMLoss",
    "MixLoss",
    "PerceptualLoss",
    "SSIMLoss",
    "SubpixelPatternLoss",
    "TotalVariationLoss",
    "UnknownLossError",
    "VGG19Features",
    "build_loss",
    "list_losses",
]


class UnknownLossError(UnknownNameError):
    """The loss name is not registered (see :func:`list_losses`)."""

    kind = "loss"

    def __init__(self, name: str, choices: Iterable[str]) -> None:
        super().__init__(name, choices)
        # The base class pluralises by appending "s"; "losss" would read as a typo.
        self.args = (
            f"unknown loss {name!r}.{did_you_mean(name, self.choices)} Known losses: "
            f"{', '.join(self.choices)}.",
        )


#: Loss name -> class; the one place losses are registered.
LOSSES: Registry[type[nn.Module]] = Registry("loss", UnknownLossError)
for _name, _cls in (
    ("mse", MSELoss),
    ("l1", L1Loss),
    ("charbonnier", CharbonnierLoss),
    ("ssim", SSIMLoss),
    ("ms_ssim", MSSSIMLoss),
    ("mix", MixLoss),
    ("perceptual", PerceptualLoss),
    ("lpips", LPIPSLoss),
    ("gan", GANLoss),
    ("tv", TotalVariationLoss),
    ("subpixel_pattern", SubpixelPatternLoss),
):
    LOSSES.add(_name, _cls)


def list_losses() -> list[str]:
    """Registered loss names, in registration order."""
    return LOSSES.names()


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered as ``name`` (case-insensitive) with keyword arguments.

    Raises:
        UnknownLossError: ``name`` is not registered; close names are suggested.
        ConfigError: a keyword the loss does not take (the valid ones are listed), or a bad value.
    """
    cls = LOSSES.get(name)
    params = inspect.signature(cls).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise ConfigError(
            f"loss {name!r} ({cls.__name__}) got unknown argument(s) {', '.join(unknown)}; valid "
            f"arguments: {', '.join(params)}."
        )
    return cls(**kwargs)
