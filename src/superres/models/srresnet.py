"""SRResNet: the generator of SRGAN, trained alone with MSE it is a strong PSNR model.

Ledig, Theis, Huszár, Caballero, Cunningham, Acosta, Aitken, Tejani, Totz, Wang, Shi,
"Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network", CVPR 2017
(arXiv:1609.04802).

Reproduced hyperparameters (Figure 4 of the paper): a 9x9 convolution to 64 features + PReLU;
``num_blocks`` = 16 residual blocks ``conv3x3 -> BN -> PReLU -> conv3x3 -> BN`` + identity; a
``conv3x3 -> BN`` after the blocks with a long skip from the head's output; two sub-pixel stages
``conv3x3(64 -> 256) -> PixelShuffle(2) -> PReLU`` for x4; a 9x9 convolution to the output
channels. 1,547,350 parameters at x4 with RGB in/out: the convolutions followed by batch norm have
no bias (BN's shift makes it redundant), as in the common PyTorch ports. Each PReLU has a single
learned slope (``nn.PReLU()``); the paper does not say, and one slope per layer is what most ports
use.

Beyond the paper: scales 2 and 8 use one or three x2 stages, scale 3 a single x3 stage
(``conv3x3(64 -> 576) -> PixelShuffle(3) -> PReLU``); ``use_batchnorm=False`` removes every BN
(the variant EDSR and BasicSR's MSRResNet later showed trains better for PSNR).
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.blocks import (
    PixelShuffleUpsampler,
    check_positive,
    check_scale_supported,
    conv,
)

SUPPORTED_SCALES = (2, 3, 4, 8)


class ResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))``; shapes ``(N, F, H, W) -> (N, F, H, W)``."""

    def __init__(self, *, num_features: int, use_batchnorm: bool = True) -> None:
        super().__init__()
        # A bias before batch norm is redundant (BN subtracts the mean), so those convs have none.
        self.conv1 = conv(num_features, num_features, 3, bias=not use_batchnorm)
        self.bn1 = nn.BatchNorm2d(num_features) if use_batchnorm else nn.Identity()
        self.prelu = nn.PReLU()
        self.conv2 = conv(num_features, num_features, 3, bias=not use_batchnorm)
        self.bn2 = nn.BatchNorm2d(num_features) if use_batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class SRResNet(nn.Module):
    """Super-Resolution Residual Network (Ledig et al., CVPR 2017).

    Args:
        scale: 4 (the paper's), 2, 3 or 8.
        in_channels: 3 (RGB, the paper's) or 1 (Y/gray).
        out_channels: output channels; defaults to ``in_channels``.
        num_features: width of the trunk (64 in the paper).
        num_blocks: residual blocks (16 in the paper; any count, e.g. 8 or 32 for ablations).
        use_batchnorm: keep the paper's batch normalisation (``False`` drops every BN layer).

    Shapes: ``(N, in_channels, H, W)`` float in [0, 1] ->
    ``(N, out_channels, H * scale, W * scale)``, not clamped. Batch norm makes the output depend
    on ``.train()``/``.eval()``: call ``.eval()`` for inference.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int | None = None,
        num_features: int = 64,
        num_blocks: int = 16,
        use_batchnorm: bool = True,
    ) -> None:
        super().__init__()
        self.scale = check_scale_supported("SRResNet", scale, SUPPORTED_SCALES)
        self.in_channels = check_positive("in_channels", in_channels)
        self.out_channels = check_positive(
            "out_channels", in_channels if out_channels is None else out_channels
        )
        self.size_multiple = 1
        num_features = check_positive("num_features", num_features)
        num_blocks = check_positive("num_blocks", num_blocks)

        # The large 9x9 kernels at both ends give the network a wide receptive field in the image
        # domain; the paper's head has no batch norm.
        self.conv_first = conv(self.in_channels, num_features, 9)
        self.prelu_first = nn.PReLU()
        self.body = nn.Sequential(
            *(
                ResidualBlock(num_features=num_features, use_batchnorm=use_batchnorm)
                for _ in range(num_blocks)
            )
        )
        self.conv_body = conv(num_features, num_features, 3, bias=not use_batchnorm)
        self.bn_body = nn.BatchNorm2d(num_features) if use_batchnorm else nn.Identity()
        self.upsample = PixelShuffleUpsampler(
            scale=scale, num_features=num_features, activation=nn.PReLU
        )
        self.conv_last = conv(num_features, self.out_channels, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.prelu_first(self.conv_first(x))
        # Long skip: the blocks learn a residual on top of the head's features.
        feat = feat + self.bn_body(self.conv_body(self.body(feat)))
        return self.conv_last(self.upsample(feat))

    def extra_repr(self) -> str:
        return f"scale={self.scale}, in_channels={self.in_channels}"


__all__ = ["ResidualBlock", "SRResNet"]
