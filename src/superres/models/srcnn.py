"""SRCNN: the first convolutional network for single-image super-resolution.

Dong, Loy, He, Tang, "Learning a Deep Convolutional Network for Image Super-Resolution", ECCV 2014,
and "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016 (arXiv:1501.00092).

Reproduced hyperparameters: three convolutions f1-n1-f2-n2-f3 with ReLU after the first two; the
default is the TPAMI paper's 9-5-5 network with n1 = 64, n2 = 32, on the luminance channel
(``in_channels=1``): 57,281 parameters. ``kernel_sizes=(9, 1, 5)`` gives the ECCV base network
(8,129 parameters).

The network restores a bicubic-upscaled image, so :meth:`SRCNN.forward` takes the *low-resolution*
image and first upscales it with MATLAB-exact bicubic (as the paper's data preparation did).

Deviation: the paper used valid convolutions (the output shrinks by ``f1 + f2 + f3 - 3`` pixels and
the loss was computed on the centre). Like most modern re-implementations we pad each convolution
("same" padding) so the output has exactly the upscaled size; the weights are interchangeable.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.errors import ConfigError, check_positive
from superres.imaging.resize import imresize
from superres.models.blocks import SRNetwork, conv, records_config

SUPPORTED_SCALES = (2, 3, 4)


@records_config("srcnn")
class SRCNN(SRNetwork):
    """Super-Resolution Convolutional Neural Network (Dong et al., 2014/2016).

    Args:
        scale: 2, 3 or 4 (the paper's trained factors).
        in_channels: 1 (the paper's Y-channel model) or 3 (RGB).
        out_channels: output channels; defaults to ``in_channels``.
        kernel_sizes: ``(f1, f2, f3)``, odd; ``(9, 5, 5)`` (TPAMI) or ``(9, 1, 5)`` (ECCV).
        num_features: ``(n1, n2)``, the widths of the first two layers.
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 1,
        out_channels: int | None = None,
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
        num_features: tuple[int, int] = (64, 32),
    ) -> None:
        super().__init__(
            name="SRCNN", scales=SUPPORTED_SCALES, io=(scale, in_channels, out_channels)
        )
        if len(kernel_sizes) != 3:
            raise ConfigError(
                f"SRCNN kernel_sizes needs 3 values (f1, f2, f3), got {kernel_sizes!r}"
            )
        if len(num_features) != 2:
            raise ConfigError(f"SRCNN num_features needs 2 values (n1, n2), got {num_features!r}")
        f1, f2, f3 = kernel_sizes
        n1, n2 = (check_positive("num_features", n) for n in num_features)
        self.kernel_sizes = (f1, f2, f3)
        # Patch extraction and representation -> non-linear mapping -> reconstruction.
        self.conv1 = conv(self.in_channels, n1, f1)
        self.conv2 = conv(n1, n2, f2)
        self.conv3 = conv(n2, self.out_channels, f3)
        self.relu = nn.ReLU(inplace=True)
        # The paper draws initial weights from N(0, 0.001^2) and trains with SGD; PyTorch's default
        # (Kaiming-uniform) init trains faster with Adam and is what re-implementations use.

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = imresize(x, scale=float(self.scale))
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


__all__ = ["SRCNN"]
