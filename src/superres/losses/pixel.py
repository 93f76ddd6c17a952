"""Pixel losses: MSE (L2), L1 and Charbonnier, on ``(N, C, H, W)`` float RGB in [0, 1].

With ``reduction="none"`` each returns the per-element map ``(N, C, H, W)``; ``"mean"`` and
``"sum"`` reduce over every element (as ``torch.nn.functional.l1_loss``), and the result is then
multiplied by ``loss_weight``.
"""

from __future__ import annotations

import math

import torch

from superres.errors import ConfigError, InvalidImageError
from superres.losses.base import BaseLoss, check_pair

__all__ = ["CharbonnierLoss", "L1Loss", "MSELoss", "SubpixelPatternLoss"]


class _ErrorLoss(BaseLoss):
    """A penalty of the error ``sr - gt`` at every element, reduced by ``reduction``."""

    def _penalty(self, error: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        check_pair(type(self).__name__, sr, gt)
        return self._reduce(self._penalty(sr - gt))


class MSELoss(_ErrorLoss):
    """Mean squared error ``(sr - gt)^2``: the PSNR-oriented loss of SRCNN and SRResNet.

    Takes ``loss_weight`` and ``reduction`` only, as :class:`~superres.losses.base.BaseLoss`.
    """

    def _penalty(self, error: torch.Tensor) -> torch.Tensor:
        return error.square()


class L1Loss(_ErrorLoss):
    """Mean absolute error ``|sr - gt|``: EDSR's and ESRGAN's pixel loss (sharper than L2).

    Takes ``loss_weight`` and ``reduction`` only, as :class:`~superres.losses.base.BaseLoss`.
    """

    def _penalty(self, error: torch.Tensor) -> torch.Tensor:
        return error.abs()


class CharbonnierLoss(_ErrorLoss):
    """Charbonnier penalty ``sqrt((sr - gt)^2 + eps^2)``, a differentiable L1.

    Lai et al., "Deep Laplacian Pyramid Networks for Fast and Accurate Super-Resolution" (LapSRN),
    CVPR 2017, arXiv:1704.03915, eq. (2) with ``eps = 1e-3``. It behaves as L2 for ``|d| << eps``
    and as L1 beyond, so it is smooth at 0 yet robust to outliers. Its minimum, at ``sr == gt``,
    is ``eps`` per element, not 0 (the constant has no effect on training).

    Note: BasicSR's ``CharbonnierLoss`` adds ``eps`` *unsquared* (``sqrt(d^2 + eps)``, with
    ``eps = 1e-12``); here ``eps`` is the paper's, in pixel units (1e-3 of the [0, 1] range).

    Args:
        eps: the transition scale, > 0, in the units of the images.
        loss_weight: multiplies the reduced value.
        reduction: ``"mean"`` (over every element), ``"sum"`` or ``"none"`` (``(N, C, H, W)``).
    """

    def __init__(
        self, *, eps: float = 1e-3, loss_weight: float = 1.0, reduction: str = "mean"
    ) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        if not (isinstance(eps, int | float) and math.isfinite(eps) and eps > 0):
            raise ConfigError(f"CharbonnierLoss: eps must be a positive number; got {eps!r}.")
        self.eps = float(eps)

    def _penalty(self, error: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(error.square() + self.eps**2)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}, {super().extra_repr()}"


class SubpixelPatternLoss(BaseLoss):
    """L1 of the static sub-pixel pattern of the error ``sr - gt``: a guard for GAN stages.

    A network that upsamples by ``scale`` (pixel shuffle) can add one fixed ``scale x scale`` tile
    to every output, a checkerboard that no image content explains. Perceptual terms push towards
    it from the first steps (BENCHMARKS.md, "The srgan-x4 checkerboard"), because a constant tile
    is the cheapest way to add high-frequency energy. This loss averages the error over the whole
    batch at each phase ``(row mod scale, column mod scale)``, removes the mean over phases (a
    colour shift is the pixel loss's business) and returns the mean absolute value of what is
    left: about zero for textures, which differ from image to image, and exactly the tile's
    amplitude for a static pattern. Crops must start on the LR grid (every ``scale``-th HR pixel),
    as the training crops do, so that a phase is the same output sub-pixel in every image.

    Args:
        scale: the upscaling factor (the pattern's period), >= 2.
        loss_weight: multiplies the value.
        reduction: only ``"mean"``; the value is one number per batch by construction.
    """

    def __init__(self, *, scale: int, loss_weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        if not (isinstance(scale, int) and scale >= 2):
            raise ConfigError(f"SubpixelPatternLoss: scale must be an integer >= 2; got {scale!r}.")
        if reduction != "mean":
            raise ConfigError(
                "SubpixelPatternLoss: the pattern is a statistic of the whole batch; use "
                f"reduction 'mean', not {reduction!r}."
            )
        self.scale = scale

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        check_pair(type(self).__name__, sr, gt)
        s = self.scale
        n, c, h, w = sr.shape
        if h % s or w % s:
            raise InvalidImageError(
                f"SubpixelPatternLoss: {h}x{w} is not a multiple of the scale {s}; crop HR patches "
                "to whole LR pixels."
            )
        error = (sr - gt).reshape(n, c, h // s, s, w // s, s)
        tile = error.mean(dim=(0, 2, 4))  # (C, s, s): the mean error at each phase
        tile = tile - tile.mean(dim=(1, 2), keepdim=True)
        return tile.abs().mean() * self.loss_weight

    def extra_repr(self) -> str:
        return f"scale={self.scale}, {super().extra_repr()}"
