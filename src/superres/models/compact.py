"""SRVGGNetCompact: Real-ESRGAN's small VGG-style network for fast real-world super-resolution.

Wang, Xie, Dong, Shan, "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure
Synthetic Data", ICCV Workshops 2021 (arXiv:2107.10833); the compact network is the one of
Real-ESRGAN's later releases (``realesr-animevideov3``: 16 convolutions, ``realesr-general-x4v3``
and ``realesr-general-wdn-x4v3``: 32 convolutions; all 64 features, PReLU, x4).

A plain chain on the low-resolution grid: ``conv3x3(in -> F)``, activation, then ``num_convs`` x
(``conv3x3(F -> F)``, activation), then ``conv3x3(F -> out * scale^2)`` and a pixel shuffle; the
nearest-neighbour upscaled input is added, so the network learns the residual over it. No
convolution runs at high resolution, which is what makes it fast (1,213,296 parameters at 32
convolutions, 621,424 at 16, RGB x4).

Parameter names are Real-ESRGAN's: one ``body`` list holding convolutions at even indices and
activations at odd ones (``body.0.weight``, ``body.1.weight`` for a PReLU, ...,
``body.<2 * num_convs + 2>.weight`` the last convolution), so its ``.pth`` files load key for key
(:mod:`superres.models.convert` reads the hyperparameters off the shapes).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import ConfigError, check_choice, check_positive
from superres.models.blocks import SRNetwork, conv, records_config

SUPPORTED_SCALES = (2, 3, 4)

CompactActivation = Literal["prelu", "relu", "leakyrelu"]
#: The activations the compact network takes (Real-ESRGAN's ``act_type``).
ACTIVATIONS: tuple[str, ...] = ("prelu", "relu", "leakyrelu")


#: The negative slope of each activation (PReLU's is learned and starts here; leaky ReLU's is
#: Real-ESRGAN's); the initialisation scales the weights for it.
_SLOPES = {"prelu": 0.25, "relu": 0.0, "leakyrelu": 0.1}


def _activation(kind: str, num_features: int) -> nn.Module:
    if kind == "prelu":  # one slope per channel, learned
        return nn.PReLU(num_parameters=num_features, init=_SLOPES["prelu"])
    if kind == "relu":
        return nn.ReLU(inplace=True)
    return nn.LeakyReLU(negative_slope=_SLOPES["leakyrelu"], inplace=True)


@torch.no_grad()
def _init_weights(body: nn.ModuleList, *, slope: float) -> None:
    """He-normal weights for the activation's slope and zero biases, so the signal keeps its size
    through the chain; the last convolution scaled by 0.1, so a fresh network starts close to its
    nearest-neighbour base. PyTorch's default initialisation shrinks the signal at each layer:
    at 32 convolutions the first ones of a fresh network got no gradient (2000 Adam steps of the
    real-compact recipe moved them by 1e-13). Loaded weights replace all of it."""
    convs = [m for m in body if isinstance(m, nn.Conv2d)]
    for m in convs:
        nn.init.kaiming_normal_(m.weight, a=slope, mode="fan_in", nonlinearity="leaky_relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    convs[-1].weight.mul_(0.1)


@records_config("compact")
class SRVGGNetCompact(SRNetwork):
    """Real-ESRGAN's compact VGG-style network (Wang et al., ICCVW 2021, later releases).

    Args:
        scale: 2, 3 or 4 (the published models are x4).
        in_channels: 3 (RGB) or 1 (gray).
        out_channels: must equal ``in_channels`` (the input is added back); ``None``: the same.
        num_features: width of every convolution (64).
        num_convs: convolutions between the first and the last (16; 32 for the general models).
        activation: ``"prelu"`` (per channel, the published models), ``"relu"`` or
            ``"leakyrelu"`` (slope 0.1).
    """

    def __init__(
        self,
        *,
        scale: int = 4,
        in_channels: int = 3,
        out_channels: int | None = None,
        num_features: int = 64,
        num_convs: int = 16,
        activation: CompactActivation = "prelu",
    ) -> None:
        super().__init__(
            name="SRVGGNetCompact", scales=SUPPORTED_SCALES, io=(scale, in_channels, out_channels)
        )
        num_features = check_positive("num_features", num_features)
        num_convs = check_positive("num_convs", num_convs)
        check_choice(activation, ACTIVATIONS, "activation", "SRVGGNetCompact")
        if self.out_channels != self.in_channels:
            raise ConfigError(
                f"SRVGGNetCompact adds its input to its output, so out_channels "
                f"({self.out_channels}) must equal in_channels ({self.in_channels}); leave "
                "out_channels unset"
            )
        layers: list[nn.Module] = [conv(self.in_channels, num_features, 3)]
        layers.append(_activation(activation, num_features))
        for _ in range(num_convs):
            layers.append(conv(num_features, num_features, 3))
            layers.append(_activation(activation, num_features))
        layers.append(conv(num_features, self.out_channels * self.scale**2, 3))
        # A ModuleList named ``body``: Real-ESRGAN's keys (body.0, body.1, ...), not a Sequential
        # subclass, so the loop in forward stays traceable by torch.fx.
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(self.scale)
        _init_weights(self.body, slope=_SLOPES[activation])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        base = F.interpolate(x, scale_factor=float(self.scale), mode="nearest")
        return self.upsampler(out) + base


__all__ = ["ACTIVATIONS", "CompactActivation", "SRVGGNetCompact"]
