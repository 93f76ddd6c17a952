"""RRDBNet: the generator of ESRGAN (and, trained with L1 alone, its PSNR-oriented model).

Wang, Yu, Wu, Gu, Liu, Dong, Qiao, Loy, "ESRGAN: Enhanced Super-Resolution Generative Adversarial
Networks", ECCV Workshops (PIRM) 2018 (arXiv:1809.00219).

Reproduced hyperparameters: 64 features, 23 Residual-in-Residual Dense Blocks (RRDB), growth
channels 32. Each RRDB chains three residual dense blocks (five 3x3 convolutions with dense
connections and LeakyReLU(0.2), output scaled by 0.2 plus identity) and scales its own output by
0.2 plus identity; no batch norm anywhere. After the trunk, ``conv_body`` + a long skip; upsampling
by nearest-neighbour x2 followed by ``conv3x3 + LeakyReLU`` per stage (the paper's choice over pixel
shuffle); then ``conv_hr + LeakyReLU`` and ``conv_last``. Residual-branch convolutions are
initialised with Kaiming normal scaled by 0.1, as the paper's section 3.1 ("smaller
initialization"). 16,697,987 parameters at x4 with RGB in/out.

Parameter names are BasicSR's / Real-ESRGAN's (``conv_first``, ``body.N.rdb1.conv1``, ``conv_body``,
``conv_up1``, ``conv_up2``, ``conv_hr``, ``conv_last``), so their checkpoints load key for key;
the original ESRGAN repository's names (``RRDB_trunk``, ``trunk_conv``, ``upconv1``, ``HRconv``)
are converted by :mod:`superres.models.convert`.

Scales: 4 (the paper's), 2 (one upsampling stage) and 8 (three stages, ``conv_up3``). With
``pixel_unshuffle=True``, BasicSR's and Real-ESRGAN's x2 and x1 layout (``RealESRGAN_x2plus.pth``):
the input is first pixel-unshuffled by ``4 // scale`` (``conv_first`` takes ``in_channels * 4`` at
x2, ``* 16`` at x1) and both x2 upsampling stages are kept, so the trunk runs on a quarter of the
pixels (or a sixteenth) and the input sides must be multiples of 2 (or 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import ConfigError, UnsupportedScaleError, check_positive
from superres.models.blocks import (
    SRNetwork,
    conv,
    default_init_weights,
    records_config,
)

SUPPORTED_SCALES = (1, 2, 4, 8)
#: Scales of the pixel-unshuffled layout -> the unshuffle factor (two x2 stages always follow).
UNSHUFFLE_FACTORS = {1: 4, 2: 2}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions; ``x + 0.2 * conv5(...)``.

    Each convolution sees the block input and every earlier output (concatenated), and adds
    ``num_grow_ch`` channels; the last maps back to ``num_features``.

    Shapes: ``(N, F, H, W) -> (N, F, H, W)``.
    """

    def __init__(self, *, num_features: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        f, g = num_features, num_grow_ch
        self.conv1 = conv(f, g, 3)
        self.conv2 = conv(f + g, g, 3)
        self.conv3 = conv(f + 2 * g, g, 3)
        self.conv4 = conv(f + 3 * g, g, 3)
        self.conv5 = conv(f + 4 * g, f, 3)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)
        # Small init: every residual branch starts near zero, so 69 stacked blocks start near
        # the identity and train without batch norm.
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Residual scaling by 0.2 (paper, section 3.1) keeps the deep stack stable.
        return x + x5 * 0.2


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three dense blocks, ``x + 0.2 * rdb3(rdb2(rdb1(x)))``.

    Shapes: ``(N, F, H, W) -> (N, F, H, W)``.
    """

    def __init__(self, *, num_features: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_features=num_features, num_grow_ch=num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_features=num_features, num_grow_ch=num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_features=num_features, num_grow_ch=num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.rdb3(self.rdb2(self.rdb1(x))) * 0.2


@records_config("rrdbnet")
class RRDBNet(SRNetwork):
    """ESRGAN's generator (Wang et al., ECCVW 2018).

    Args:
        scale: 2, 4 (the paper's) or 8: one nearest+conv upsampling stage per factor of two; 1
            or 2 with ``pixel_unshuffle``.
        in_channels: 3 (RGB) or 1 (Y/gray).
        out_channels: output channels; defaults to ``in_channels``.
        num_features: trunk width (64).
        num_blocks: number of RRDBs (23).
        num_grow_ch: channels each dense convolution adds (32).
        pixel_unshuffle: BasicSR's x2/x1 layout (see the module docstring); ``None``: only at
            scale 1, which has no other layout.

    Input and output as every :class:`~superres.models.blocks.SRNetwork`; with
    ``pixel_unshuffle``, ``H`` and ``W`` must be multiples of ``size_multiple`` (``4 // scale``).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int | None = None,
        num_features: int = 64,
        num_blocks: int = 23,
        num_grow_ch: int = 32,
        pixel_unshuffle: bool | None = None,
    ) -> None:
        super().__init__(
            name="RRDBNet", scales=SUPPORTED_SCALES, io=(scale, in_channels, out_channels)
        )
        num_features = check_positive("num_features", num_features)
        num_blocks = check_positive("num_blocks", num_blocks)
        num_grow_ch = check_positive("num_grow_ch", num_grow_ch)
        self.unshuffle = _unshuffle_factor(self.scale, pixel_unshuffle)
        self.size_multiple = self.unshuffle

        self.conv_first = conv(self.in_channels * self.unshuffle**2, num_features, 3)
        self.body = nn.Sequential(
            *(RRDB(num_features=num_features, num_grow_ch=num_grow_ch) for _ in range(num_blocks))
        )
        self.conv_body = conv(num_features, num_features, 3)
        # conv_up1, conv_up2 (, conv_up3): attribute names, not a list, to keep BasicSR's keys.
        self.num_up = 2 if self.unshuffle > 1 else {2: 1, 4: 2, 8: 3}[self.scale]
        for i in range(1, self.num_up + 1):
            self.add_module(f"conv_up{i}", conv(num_features, num_features, 3))
        self.conv_hr = conv(num_features, num_features, 3)
        self.conv_last = conv(num_features, self.out_channels, 3)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.unshuffle > 1:  # space to channels: the trunk runs on the smaller grid
            x = F.pixel_unshuffle(x, self.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for i in range(1, self.num_up + 1):
            # Nearest-neighbour then conv avoids the checkerboard artefacts of pixel shuffle.
            up = F.interpolate(feat, scale_factor=2.0, mode="nearest")
            feat = self.lrelu(self.get_submodule(f"conv_up{i}")(up))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def _unshuffle_factor(scale: int, pixel_unshuffle: bool | None) -> int:
    """The input's pixel-unshuffle factor (1: none) for ``scale``; refuses impossible pairs."""
    if pixel_unshuffle is None:
        pixel_unshuffle = scale == 1
    if not isinstance(pixel_unshuffle, bool):
        raise ConfigError(
            f"RRDBNet pixel_unshuffle must be True, False or None, got {pixel_unshuffle!r}"
        )
    if pixel_unshuffle and scale not in UNSHUFFLE_FACTORS:
        raise UnsupportedScaleError(
            f"RRDBNet with pixel_unshuffle supports scale 1 or 2, not {scale}; drop "
            "pixel_unshuffle for x4 and x8"
        )
    if not pixel_unshuffle and scale == 1:
        raise UnsupportedScaleError(
            "RRDBNet at scale 1 needs pixel_unshuffle=True (the input is unshuffled by 4 and "
            "upscaled x4 back), its only layout; supported scales without it: 2, 4, 8"
        )
    return UNSHUFFLE_FACTORS[scale] if pixel_unshuffle else 1


__all__ = ["RRDB", "RRDBNet", "ResidualDenseBlock"]
