"""Discriminators for adversarial training (SRGAN, ESRGAN). They are not SR models: no ``scale``.

* :class:`VGGStyleDiscriminator` — Ledig et al., "Photo-Realistic Single Image Super-Resolution
  Using a Generative Adversarial Network", CVPR 2017 (arXiv:1609.04802), Figure 4: eight 3x3
  convolution blocks with LeakyReLU(0.2), features 64 -> 512 doubling every second block, strided
  (stride 2) every second block, batch norm in all but the first; then dense 1024, LeakyReLU,
  dense 1.
  ESRGAN (arXiv:1809.00219) trains its relativistic discriminator on the same network.
* :class:`PatchDiscriminator` — the PatchGAN of Isola, Zhu, Zhou, Efros, "Image-to-Image
  Translation with Conditional Adversarial Networks", CVPR 2017 (arXiv:1611.07004): a fully
  convolutional critic that scores overlapping patches and returns a logit map; optional spectral
  normalisation (Miyato et al., ICLR 2018, arXiv:1802.05957) in place of batch norm.

Both return logits (no sigmoid): the adversarial loss applies it (``BCEWithLogits`` is numerically
stable; the relativistic loss needs the raw logits).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from superres.errors import ConfigError, check_positive
from superres.models.blocks import conv


class VGGStyleDiscriminator(nn.Module):
    """SRGAN's discriminator, with adaptive pooling so any input size works.

    Block ``i`` (0-based) has ``num_features * 2 ** (i // 2)`` channels and stride 1 for even ``i``,
    2 for odd ``i``: with ``num_blocks=8`` the widths are 64, 64, 128, 128, 256, 256, 512, 512; with
    ``num_blocks=4`` they are 64, 64, 128, 128.

    Deviation: the paper fed 96x96 crops and flattened the 6x6x512 map into the dense layer. We
    first average-pool adaptively to ``pool_size x pool_size`` so the network accepts any input
    size; at 96x96 with 8 blocks the map is already 6x6 and the network is exactly the paper's.

    Args:
        in_channels: image channels (3 RGB, 1 Y/gray).
        num_features: width of the first block (64).
        num_blocks: convolution blocks including the first; an even number from 2 to 10 (8 in the
            paper, 4 for a lighter critic).
        pool_size: spatial size of the pooled map fed to the dense layer (6, the paper's at 96x96).

    Shapes: ``(N, in_channels, H, W)`` float in [0, 1], any ``H, W >= 1`` -> ``(N, 1)`` logits.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_features: int = 64,
        num_blocks: int = 8,
        pool_size: int = 6,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive("in_channels", in_channels)
        num_features = check_positive("num_features", num_features)
        pool_size = check_positive("pool_size", pool_size)
        if isinstance(num_blocks, bool) or num_blocks not in (2, 4, 6, 8, 10):
            raise ConfigError(
                f"VGGStyleDiscriminator num_blocks must be an even number from 2 to 10, got "
                f"{num_blocks!r}; the paper uses 8"
            )
        layers: list[nn.Module] = []
        channels = self.in_channels
        for i in range(num_blocks):
            width = num_features * 2 ** (i // 2)
            stride = 1 if i % 2 == 0 else 2
            layers.append(conv(channels, width, 3, stride=stride, bias=i == 0))
            # The paper's first block has no batch norm (normalising raw pixels discards contrast);
            # the convolutions before a BN need no bias.
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(negative_slope=0.2, inplace=True))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * pool_size * pool_size, 1024),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: a logit per overlapping patch (70x70 receptive field with the defaults).

    ``conv4x4/2 -> LReLU``, then ``num_layers`` blocks ``conv4x4 -> norm -> LReLU`` (stride 2 except
    the last, width doubling up to ``8 * num_features``), then ``conv4x4/1`` to one channel.

    Args:
        in_channels: image channels (3 RGB, 1 Y/gray).
        num_features: width of the first convolution (64).
        num_layers: intermediate blocks (3 in pix2pix: 70x70 patches).
        use_spectral_norm: spectral-normalise every convolution and drop batch norm (the usual
            choice for GAN stability in SR, e.g. Real-ESRGAN); ``False`` uses batch norm as pix2pix.

    Shapes: ``(N, in_channels, H, W)`` float in [0, 1] -> ``(N, 1, H', W')`` logits, with
    ``H' ~ H / 2 ** num_layers - 2`` (``H >= 2 ** (num_layers + 2)`` gives a non-empty map).
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_features: int = 64,
        num_layers: int = 3,
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels = check_positive("in_channels", in_channels)
        num_features = check_positive("num_features", num_features)
        num_layers = check_positive("num_layers", num_layers)
        self.use_spectral_norm = use_spectral_norm

        def conv4(cin: int, cout: int, stride: int, bias: bool) -> nn.Module:
            c = nn.Conv2d(cin, cout, 4, stride=stride, padding=1, bias=bias)
            return _spectral_norm(c) if use_spectral_norm else c

        layers: list[nn.Module] = [
            conv4(self.in_channels, num_features, 2, True),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
        ]
        channels = num_features
        for i in range(1, num_layers + 1):
            width = num_features * min(2**i, 8)
            stride = 2 if i < num_layers else 1
            layers.append(conv4(channels, width, stride, use_spectral_norm))
            if not use_spectral_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(negative_slope=0.2, inplace=True))
            channels = width
        layers.append(conv4(channels, 1, 1, True))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


__all__ = ["PatchDiscriminator", "VGGStyleDiscriminator"]
