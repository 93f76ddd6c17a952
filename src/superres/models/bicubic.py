"""Bicubic interpolation as a model, so the baseline benchmarks like any network.

Keys (1981), "Cubic convolution interpolation for digital image processing", with a = -0.5 and the
MATLAB ``imresize`` conventions (see :func:`superres.imaging.imresize`). The field's "Bicubic" rows
are this operator applied to the LR image.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.errors import UnsupportedScaleError
from superres.imaging.resize import imresize
from superres.models.blocks import records_config


@records_config("bicubic")
class Bicubic(nn.Module):
    """Parameter-free MATLAB-exact bicubic upscaling.

    Args:
        scale: integer upscaling factor (>= 1); the output is exactly ``(H * scale, W * scale)``.
        in_channels: channels of the images it is meant for (1 for Y/gray, 3 for RGB). The operator
            itself works per channel on any count; the value only describes the model.

    Shapes: ``(N, C, H, W)`` float in [0, 1] -> ``(N, C, H * scale, W * scale)``, same dtype and
    device, not clamped (cubic overshoot is kept; round and clamp at the edge).
    """

    def __init__(self, *, scale: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise UnsupportedScaleError(
                f"bicubic scale must be a positive integer, got {scale!r}; use e.g. scale=4"
            )
        self.scale = scale
        self.in_channels = in_channels
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1:
            return x
        return imresize(x, scale=float(self.scale))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, in_channels={self.in_channels}"
