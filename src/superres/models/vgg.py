"""VGG19 and VGG16 feature extractors (perceptual losses, LPIPS); our own code, torchvision's keys.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015
(arXiv:1409.1556), configuration E (19 layers), without batch norm.

Perceptual losses compare feature maps of a pretrained VGG19:

* SRGAN (Ledig et al., CVPR 2017, arXiv:1609.04802) uses phi_{5,4}, "the feature map obtained by
  the 4th convolution (after activation) before the 5th max-pooling" -> ``layer="relu5_4"``.
* ESRGAN (Wang et al., ECCVW 2018, arXiv:1809.00219) uses the features *before* activation, which
  are denser and keep brightness consistent -> ``layer="conv5_4"``.

The trunk is a ``features`` ``nn.Sequential`` with the indices of torchvision's ``vgg19().features``
(``conv1_1`` = 0, ``relu1_1`` = 1, ..., ``conv5_4`` = 34, ``relu5_4`` = 35, ``pool5`` = 36),
truncated after the requested layer, so a torchvision ``vgg19`` state dict loads with strict key
matching (``classifier.*`` and layers past the cut are ignored). torchvision is not imported.

No weights ship with superres: pass ``weights=`` a local torchvision-format ``.pth`` or
``.safetensors`` file. Without it the network is randomly initialised, which makes a perceptual loss
meaningless for training; :attr:`VGG19FeatureExtractor.pretrained` is ``False`` and a warning is
logged.

:class:`VGG19Features` returns several VGG19 layers in one pass (the perceptual losses' extractor).
:class:`VGG16Features` is configuration D (16 layers, no batch norm) with the indices of
torchvision's ``vgg16().features`` (``conv1_1`` = 0, ..., ``relu5_3`` = 29, ``pool5`` = 30),
returning several named layers in one pass; its default layers are LPIPS's five VGG slices
(Zhang et al., CVPR 2018, ``lpips/pretrained_networks.py``: ``features[0:4], [4:9], [9:16],
[16:23], [23:30]``), :data:`LPIPS_VGG16_LAYERS` = ``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3``
(64, 128, 256, 512, 512 channels). A torchvision ``vgg16-397923af.pth`` loads with strict keys.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from superres.models.feature_trunk import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FeatureTrunk,
    FrozenTrunk,
    TrunkLayout,
)

# torchvision's cfgs["E"] (VGG19) and cfgs["D"] (VGG16): widths of the 3x3 convolutions, "M" for a
# 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, 256, "M",
    512, 512, 512, 512, "M",
    512, 512, 512, 512, "M",
)  # fmt: skip
_VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M",
    128, 128, "M",
    256, 256, 256, "M",
    512, 512, 512, "M",
    512, 512, 512, "M",
)  # fmt: skip


def _layer_names(cfg: tuple[int | str, ...]) -> list[str]:
    """Names of ``features[i]`` in order: ``conv1_1, relu1_1, conv1_2, relu1_2, pool1, ...``."""
    names: list[str] = []
    block, index = 1, 1
    for item in cfg:
        if item == "M":
            names.append(f"pool{block}")
            block, index = block + 1, 1
        else:
            names += [f"conv{block}_{index}", f"relu{block}_{index}"]
            index += 1
    return names


def _make_layers(cfg: tuple[int | str, ...]) -> list[nn.Module]:
    """The whole ``features`` trunk of ``cfg``: 3x3 convolutions (padding 1), ReLUs, 2x2 pools."""
    layers: list[nn.Module] = []
    channels = 3
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            assert isinstance(item, int)
            layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU()]
            channels = item
    return layers


VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names(_VGG19_CFG))
"""Layer names of the VGG19 ``features`` trunk, indexed like torchvision's ``vgg19().features``."""

VGG16_LAYERS: tuple[str, ...] = tuple(_layer_names(_VGG16_CFG))
"""Layer names of the VGG16 ``features`` trunk, indexed like torchvision's ``vgg16().features``."""

#: The outputs of LPIPS's five VGG16 slices.
LPIPS_VGG16_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

VGG19_LAYOUT = TrunkLayout(
    arch="VGG19",
    layer_names=VGG19_LAYERS,
    default_layers=("conv5_4",),  # ESRGAN's perceptual layer
    build=lambda count: _make_layers(_VGG19_CFG)[:count],
    key_hint="features.0.weight ... features.34.bias (vgg19, not vgg19_bn)",
    assets=("imagenet/vgg19",),
    layer_hint="convX_Y or reluX_Y (X 1-5, Y 1-2 for X <= 2, 1-4 otherwise) or poolX, e.g. "
    "'relu5_4' (SRGAN) or 'conv5_4' (ESRGAN)",
)

VGG16_LAYOUT = TrunkLayout(
    arch="VGG16",
    layer_names=VGG16_LAYERS,
    default_layers=LPIPS_VGG16_LAYERS,
    build=lambda count: _make_layers(_VGG16_CFG)[:count],
    key_hint="features.0.weight (64, 3, 3, 3), features.2.*, features.5.*, ..., features.28.bias "
    "(512,) (torchvision vgg16, not vgg16_bn)",
    assets=("imagenet/vgg16",),
)


def vgg19_layer_index(layer: str) -> int:
    """Index in ``features`` of a layer name such as ``"relu5_4"`` (35) or ``"conv2_2"`` (7)."""
    return VGG19_LAYOUT.index(layer)


class VGG19FeatureExtractor(FrozenTrunk):
    """Frozen VGG19 features up to and including ``layer``.

    Args:
        layer: the last layer kept: ``"convX_Y"`` (before ReLU), ``"reluX_Y"`` (after ReLU) or
            ``"poolX"``, any case.
        normalize_input: apply ImageNet normalisation (mean (0.485, 0.456, 0.406), std (0.229,
            0.224, 0.225)) to the [0, 1] RGB input, as the pretrained weights expect.
        weights: a local torchvision-format VGG19 state dict (``.pth``/``.pt`` read with
            ``weights_only=True``, or ``.safetensors``); ``None`` leaves random weights and warns.

    Shapes: ``(N, 3, H, W)`` float RGB in [0, 1] -> ``(N, C, H / 2**k, W / 2**k)``, where ``k`` is
    the number of pools before ``layer`` and ``C`` its width (512 for ``relu5_4``).

    The parameters never require grad and the module stays in eval mode when a parent calls
    ``.train()``; gradients still flow to the input, which is what a perceptual loss needs.
    """

    layout = VGG19_LAYOUT

    def __init__(
        self,
        *,
        layer: str = "conv5_4",
        normalize_input: bool = True,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__(layers=(layer,), normalize_input=normalize_input, weights=weights)
        self.layer = self.layers[0]
        self.layer_index = self.last_index
        self.in_channels = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tap(x)[self.layer]

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, pretrained={self.pretrained}"


class VGG19Features(FeatureTrunk):
    """Frozen VGG19 returning ``{layer: features}`` for several layers in one pass.

    Args:
        layers: VGG19 layer names (``"conv5_4"``, ``"relu2_2"``, ``"pool3"``, any case; returned
            lower-cased); the trunk is truncated after the deepest one. Default ``conv5_4``.
        normalize_input: apply the ImageNet normalisation to the [0, 1] RGB input.
        weights: a local torchvision-format ``vgg19`` state dict, or ``None`` for random weights
            (logged as a warning).
    """

    layout = VGG19_LAYOUT


class VGG16Features(FeatureTrunk):
    """Frozen VGG16 ``features`` (torchvision's layout) returning named intermediate outputs.

    Args:
        layers: names from :data:`VGG16_LAYERS` (``convX_Y``, ``reluX_Y``, ``poolX``) to return;
            the trunk is truncated after the deepest one. Default :data:`LPIPS_VGG16_LAYERS`.
        normalize_input: apply the ImageNet normalisation to the [0, 1] RGB input.
        weights: a local torchvision ``vgg16`` state dict (``vgg16-397923af.pth``, read with
            ``weights_only=True``, or a ``.safetensors`` copy), loaded with strict key
            matching; ``None`` leaves random weights and logs a warning.

    ``forward(x)``: ``(N, 3, H, W)`` -> ``{name: (N, C, H / 2**k, W / 2**k)}`` with ``k`` the
    pools before the layer (``relu5_3``: 512 channels at 1/16, so H, W >= 16).
    """

    layout = VGG16_LAYOUT


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LPIPS_VGG16_LAYERS",
    "VGG16_LAYERS",
    "VGG16_LAYOUT",
    "VGG19_LAYERS",
    "VGG19_LAYOUT",
    "VGG16Features",
    "VGG19FeatureExtractor",
    "VGG19Features",
    "vgg19_layer_index",
]
