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

Options that exist to run third-party SRGAN generators exactly (see :mod:`superres.models.convert`),
all off by default: ``conv_bias=True`` gives the convolutions before batch norm a bias too;
``body_tail="prelu"`` replaces the batch norm after the trunk's closing convolution by a PReLU;
``output_activation="tanh"`` maps the output through ``(tanh(y) + 1) / 2``. leftthomas/SRGAN's
early generator (``netG_epoch_4_100.pth``: 5 residual blocks, biased convolutions, ``block7`` =
conv + PReLU, tanh output) is ``SRResNet(num_blocks=5, conv_bias=True, body_tail="prelu",
output_activation="tanh")``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from superres.errors import check_choice, check_positive
from superres.models.blocks import (
    PixelShuffleUpsampler,
    SRNetwork,
    conv,
    records_config,
)

SUPPORTED_SCALES = (2, 3, 4, 8)
BODY_TAILS = ("batchnorm", "prelu")
OUTPUT_ACTIVATIONS = ("none", "tanh")


class ResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))``; shapes ``(N, F, H, W) -> (N, F, H, W)``."""

    def __init__(
        self, *, num_features: int, use_batchnorm: bool = True, conv_bias: bool = False
    ) -> None:
        super().__init__()
        # A bias before batch norm is redundant (BN subtracts the mean), so those convs have none
        # unless ``conv_bias`` asks for it (ports that kept them, to load their weights).
        bias = conv_bias or not use_batchnorm
        self.conv1 = conv(num_features, num_features, 3, bias=bias)
        self.bn1 = nn.BatchNorm2d(num_features) if use_batchnorm else nn.Identity()
        self.prelu = nn.PReLU()
        self.conv2 = conv(num_features, num_features, 3, bias=bias)
        self.bn2 = nn.BatchNorm2d(num_features) if use_batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


@records_config("srresnet")
class SRResNet(SRNetwork):
    """Super-Resolution Residual Network (Ledig et al., CVPR 2017).

    Args:
        scale: 4 (the paper's), 2, 3 or 8.
        in_channels: 3 (RGB, the paper's) or 1 (Y/gray).
        out_channels: output channels; defaults to ``in_channels``.
        num_features: width of the trunk (64 in the paper).
        num_blocks: residual blocks (16 in the paper; any count, e.g. 8 or 32 for ablations).
        use_batchnorm: keep the paper's batch normalisation (``False`` drops every BN layer).
        conv_bias: give the convolutions followed by batch norm a bias as well (redundant, but
            leftthomas/SRGAN's generator has them); without batch norm every conv has one anyway.
        body_tail: what follows the 3x3 convolution that closes the trunk, before the long skip:
            ``"batchnorm"`` (the paper's; nothing when ``use_batchnorm=False``) or ``"prelu"``
            (a PReLU instead, as leftthomas/SRGAN's early ``block7``).
        output_activation: ``"none"`` (the paper's linear output) or ``"tanh"``, which returns
            ``(tanh(y) + 1) / 2`` in (0, 1) (leftthomas/SRGAN's generator).

    Input and output as every :class:`~superres.models.blocks.SRNetwork`. Batch norm makes the
    output depend on ``.train()``/``.eval()``: call ``.eval()`` for inference.
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
        conv_bias: bool = False,
        body_tail: Literal["batchnorm", "prelu"] = "batchnorm",
        output_activation: Literal["none", "tanh"] = "none",
    ) -> None:
        super().__init__(
            name="SRResNet", scales=SUPPORTED_SCALES, io=(scale, in_channels, out_channels)
        )
        num_features = check_positive("num_features", num_features)
        num_blocks = check_positive("num_blocks", num_blocks)
        check_choice(body_tail, BODY_TAILS, "body_tail", "SRResNet")
        check_choice(output_activation, OUTPUT_ACTIVATIONS, "output_activation", "SRResNet")
        self.output_activation = output_activation

        # The large 9x9 kernels at both ends give the network a wide receptive field in the image
        # domain; the paper's head has no batch norm.
        self.conv_first = conv(self.in_channels, num_features, 9)
        self.prelu_first = nn.PReLU()
        self.body = nn.Sequential(
            *(
                ResidualBlock(
                    num_features=num_features, use_batchnorm=use_batchnorm, conv_bias=conv_bias
                )
                for _ in range(num_blocks)
            )
        )
        tail_bn = use_batchnorm and body_tail == "batchnorm"
        self.conv_body = conv(num_features, num_features, 3, bias=conv_bias or not tail_bn)
        self.bn_body = nn.BatchNorm2d(num_features) if tail_bn else nn.Identity()
        self.act_body = nn.PReLU() if body_tail == "prelu" else nn.Identity()
        self.upsample = PixelShuffleUpsampler(
            scale=scale, num_features=num_features, activation=nn.PReLU
        )
        self.conv_last = conv(num_features, self.out_channels, 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.prelu_first(self.conv_first(x))
        # Long skip: the blocks learn a residual on top of the head's features.
        feat = feat + self.act_body(self.bn_body(self.conv_body(self.body(feat))))
        out = self.conv_last(self.upsample(feat))
        if self.output_activation == "tanh":
            return (torch.tanh(out) + 1) / 2
        return out


__all__ = ["ResidualBlock", "SRResNet"]
