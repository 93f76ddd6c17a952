"""SqueezeNet 1.1 feature trunk for perceptual losses and LPIPS; own code, torchvision's key names.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size", arXiv:1602.07360 (2016); version 1.1 from the authors' repository (DeepScale/SqueezeNet):
a 3x3/64 stride-2 first convolution and the max-pools moved earlier, 2.4x cheaper than 1.0 at the
same accuracy.

The trunk is a ``features`` ``nn.Sequential`` indexed like torchvision's
``squeezenet1_1().features``, so a torchvision state dict (``squeezenet1_1-b8a52dc0.pth``, or a
features-only ``.safetensors`` such as ``squeezenet1_1_imagenet_features.safetensors``) loads with
strict key matching; ``classifier.*`` keys are ignored. torchvision is not imported.

====  =========  ===============================================
index name       layer
====  =========  ===============================================
0     conv1      Conv2d(3, 64, 3, stride=2), no padding
1     relu1      ReLU
2     pool1      MaxPool2d(3, stride=2, ceil_mode=True)
3     fire2      Fire(64 -> 16 -> 64 + 64)
4     fire3      Fire(128 -> 16 -> 64 + 64)
5     pool3      MaxPool2d(3, stride=2, ceil_mode=True)
6     fire4      Fire(128 -> 32 -> 128 + 128)
7     fire5      Fire(256 -> 32 -> 128 + 128)
8     pool5      MaxPool2d(3, stride=2, ceil_mode=True)
9     fire6      Fire(256 -> 48 -> 192 + 192)
10    fire7      Fire(384 -> 48 -> 192 + 192)
11    fire8      Fire(384 -> 64 -> 256 + 256)
12    fire9      Fire(512 -> 64 -> 256 + 256)
====  =========  ===============================================

LPIPS (Zhang et al., CVPR 2018, ``lpips/pretrained_networks.py``) cuts this trunk into seven slices
``features[0:2], [2:5], [5:8], [8:10], [10:11], [11:12], [12:13]``; their outputs are the layers
:data:`LPIPS_LAYERS` = ``relu1, fire3, fire5, fire6, fire7, fire8, fire9`` (64, 128, 256, 384,
384, 512, 512 channels), the default here.

Input: ``(N, 3, H, W)`` RGB in [0, 1]; with ``normalize_input`` the torchvision ImageNet
normalisation is applied first (LPIPS instead feeds [-1, 1] through its own scaling layer: pass
``normalize_input=False`` and scale yourself). Every ReLU is out-of-place, so a returned feature
is never overwritten by a later layer.
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.feature_trunk import FeatureTrunk, TrunkLayout

__all__ = ["LPIPS_LAYERS", "SQUEEZENET1_1_LAYERS", "Fire", "SqueezeNet11Features"]

#: Layer names of ``features[i]``, in order.
SQUEEZENET1_1_LAYERS: tuple[str, ...] = (
    "conv1", "relu1", "pool1",
    "fire2", "fire3", "pool3",
    "fire4", "fire5", "pool5",
    "fire6", "fire7", "fire8", "fire9",
)  # fmt: skip

#: The outputs of LPIPS's seven SqueezeNet slices.
LPIPS_LAYERS: tuple[str, ...] = ("relu1", "fire3", "fire5", "fire6", "fire7", "fire8", "fire9")

# (in_channels, squeeze, expand1x1, expand3x3) of fire2 ... fire9, torchvision's squeezenet1_1.
_FIRES: dict[str, tuple[int, int, int, int]] = {
    "fire2": (64, 16, 64, 64),
    "fire3": (128, 16, 64, 64),
    "fire4": (128, 32, 128, 128),
    "fire5": (256, 32, 128, 128),
    "fire6": (256, 48, 192, 192),
    "fire7": (384, 48, 192, 192),
    "fire8": (384, 64, 256, 256),
    "fire9": (512, 64, 256, 256),
}


class Fire(nn.Module):
    """A Fire module: 1x1 squeeze + ReLU, then 1x1 and 3x3 expands + ReLU, concatenated.

    Attribute names (``squeeze``, ``expand1x1``, ``expand3x3``) are torchvision's, so its state
    dict keys match. ``(N, in_channels, H, W) -> (N, expand1x1 + expand3x3, H, W)``.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, kernel_size=1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze, expand1x1, kernel_size=1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze, expand3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(s)),
                self.expand3x3_activation(self.expand3x3(s)),
            ],
            dim=1,
        )


def _layer(name: str) -> nn.Module:
    if name == "conv1":
        return nn.Conv2d(3, 64, kernel_size=3, stride=2)
    if name == "relu1":
        return nn.ReLU()
    if name.startswith("pool"):
        return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
    return Fire(*_FIRES[name])


class SqueezeNet11Features(FeatureTrunk):
    """Frozen SqueezeNet 1.1 ``features`` returning a dict of named intermediate outputs.

    Args (see :class:`~superres.models.feature_trunk.FrozenTrunk`):
        layers: names from :data:`SQUEEZENET1_1_LAYERS` to return; the trunk is truncated after
            the deepest one. Default :data:`LPIPS_LAYERS`.
        normalize_input: apply the ImageNet normalisation to the [0, 1] RGB input.
        weights: a local torchvision-format state dict (``.pth`` read with ``weights_only=True``,
            or ``.safetensors``), loaded with strict key matching; ``None`` leaves random weights
            and logs a warning.

    ``forward(x)`` with ``x`` of shape ``(N, 3, H, W)`` (H, W >= 3) returns ``{name: (N, C,
    h, w)}`` for the requested layers, in trunk order.
    """

    layout = TrunkLayout(
        arch="SqueezeNet 1.1",
        layer_names=SQUEEZENET1_1_LAYERS,
        default_layers=LPIPS_LAYERS,
        build=lambda count: [_layer(name) for name in SQUEEZENET1_1_LAYERS[:count]],
        key_hint="features.0.weight, features.3.squeeze.weight, ..., features.12.expand3x3.bias "
        "(squeezenet1_1, not squeezenet1_0)",
        # The features-only copy (bit-exact, no classifier) first, then torchvision's file.
        assets=("imagenet/squeezenet1_1-features", "imagenet/squeezenet1_1"),
    )
