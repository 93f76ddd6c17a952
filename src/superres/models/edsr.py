"""EDSR: SRResNet without batch norm, wider and deeper, with scaled residuals.

Lim, Son, Kim, Nah, Lee, "Enhanced Deep Residual Networks for Single Image Super-Resolution",
CVPR Workshops (NTIRE) 2017 (arXiv:1707.02921).

Reproduced hyperparameters (section 3.2 of the paper and the official code, ``EDSR-PyTorch``):

* EDSR (``EDSR()`` defaults, registry name ``edsr``): 32 residual blocks of 256 features, residual
  scaling 0.1; 43,089,923 parameters at x4.
* EDSR baseline (:func:`edsr_baseline`, ``edsr-baseline``): 16 blocks of 64 features, no residual
  scaling; 1,517,571 parameters at x4.

Layout: ``MeanShift(-) -> head conv3x3 -> body [ResBlock x B, conv3x3] + long skip -> tail
[pixel-shuffle upsampler without activation, conv3x3] -> MeanShift(+)``. ResBlocks are
``conv3x3 -> ReLU -> conv3x3``, multiplied by ``res_scale``, plus identity; no batch norm (it
removes range flexibility and costs memory). The module names ``head``/``body``/``tail`` and
their indices follow the official code, so its checkpoints map key for key (its ``sub_mean`` /
``add_mean`` are fixed constants here, not weights).

The DIV2K RGB mean (0.4488, 0.4371, 0.4040) is subtracted at the input and added back at the output,
as the official code with ``rgb_range=1``; for one-channel (Y/gray) input the mean of those three.
``img_range=255`` multiplies the mean-subtracted input by 255 and divides the output by 255 before
adding the mean back: the convolutions then see the official code's default ``rgb_range=255`` (and
BasicSR's ``img_range=255``), which their published checkpoints were trained with.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from superres.errors import ConfigError, check_positive
from superres.models.blocks import (
    PixelShuffleUpsampler,
    SRNetwork,
    conv,
    records_config,
)

SUPPORTED_SCALES = (2, 3, 4)
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class MeanShift(nn.Module):
    """Add ``sign * mean`` per channel; the mean is a constant buffer, not saved in the state dict.

    Shapes: ``(N, C, H, W) -> (N, C, H, W)`` with ``C = len(mean)``.
    """

    mean: torch.Tensor

    def __init__(self, mean: tuple[float, ...], *, sign: float) -> None:
        super().__init__()
        self.sign = sign
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sign * self.mean.to(dtype=x.dtype)


class ResBlock(nn.Module):
    """``x + res_scale * conv(ReLU(conv(x)))``; shapes ``(N, F, H, W) -> (N, F, H, W)``.

    The inner ``body`` (``0`` conv, ``1`` ReLU, ``2`` conv) mirrors the official code.
    """

    def __init__(self, *, num_features: int, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(num_features, num_features, 3),
            nn.ReLU(inplace=True),
            conv(num_features, num_features, 3),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


@records_config("edsr")
class EDSR(SRNetwork):
    """Enhanced Deep Super-Resolution network (Lim et al., CVPRW 2017); defaults are full EDSR.

    Args:
        scale: 2, 3 or 4 (x4 = two x2 pixel-shuffle stages, as the paper).
        in_channels: 3 (RGB) or 1 (Y/gray).
        out_channels: output channels; defaults to ``in_channels``.
        num_features: trunk width (256 for EDSR, 64 for the baseline).
        num_blocks: residual blocks (32 for EDSR, 16 for the baseline).
        res_scale: multiplier of each residual branch (0.1 for EDSR, which the paper needs to train
            the 256-wide model stably; 1.0 for the baseline).
        img_range: the pixel range the convolutions work in: 1.0 (the input's own [0, 1]) or 255.0
            (the official EDSR code's and BasicSR's default, needed by their checkpoints).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int | None = None,
        num_features: int = 256,
        num_blocks: int = 32,
        res_scale: float = 0.1,
        img_range: float = 1.0,
    ) -> None:
        super().__init__(
            name="EDSR",
            scales=SUPPORTED_SCALES,
            io=(scale, in_channels, out_channels),
            check_channels=_rgb_or_gray,
        )
        num_features = check_positive("num_features", num_features)
        num_blocks = check_positive("num_blocks", num_blocks)
        if isinstance(img_range, bool) or not isinstance(img_range, int | float) or img_range <= 0:
            raise ConfigError(f"EDSR img_range must be a positive number, got {img_range!r}")
        self.img_range = float(img_range)

        self.sub_mean = MeanShift(_mean_for(self.in_channels), sign=-1.0)
        self.head = nn.Sequential(conv(self.in_channels, num_features, 3))
        self.body = nn.Sequential(
            *(ResBlock(num_features=num_features, res_scale=res_scale) for _ in range(num_blocks)),
            conv(num_features, num_features, 3),
        )
        # No activation in the upsampler: the official EDSR Upsampler is conv -> shuffle only.
        self.tail = nn.Sequential(
            PixelShuffleUpsampler(scale=scale, num_features=num_features),
            conv(num_features, self.out_channels, 3),
        )
        self.add_mean = MeanShift(_mean_for(self.out_channels), sign=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sub_mean(x)
        if self.img_range != 1.0:
            x = x * self.img_range
        x = self.head(x)
        x = x + self.body(x)
        x = self.tail(x)
        if self.img_range != 1.0:
            x = x / self.img_range
        return self.add_mean(x)


#: The EDSR baseline: 16 blocks x 64 features, no residual scaling (1,517,571 params at x4). It is
#: :class:`EDSR` with the baseline's defaults, so its signature (``inspect.signature``, which the
#: registry binds recipe arguments against) is EDSR's with those defaults and cannot drift from it.
edsr_baseline = functools.partial(EDSR, num_features=64, num_blocks=16, res_scale=1.0)


def _rgb_or_gray(name: str, value: object) -> int:
    # The mean shift is defined for RGB (the DIV2K mean) and for one channel (its average) only.
    if isinstance(value, bool) or value not in (1, 3):
        raise ConfigError(f"EDSR {name} must be 1 (Y/gray) or 3 (RGB), got {value!r}")
    return 3 if value == 3 else 1


def _mean_for(channels: int) -> tuple[float, ...]:
    if channels == 3:
        return DIV2K_RGB_MEAN
    return (sum(DIV2K_RGB_MEAN) / 3,)


__all__ = ["EDSR", "MeanShift", "ResBlock", "edsr_baseline"]
