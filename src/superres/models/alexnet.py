"""AlexNet feature trunk for LPIPS; our own code, torchvision's key names.

Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012, in the single-tower variant of Krizhevsky, "One weird trick for parallelizing
convolutional neural networks", arXiv:1404.5997 (2014) -- the ``owt`` in torchvision's
``alexnet-owt-7be5be79.pth``: 64, 192, 384, 256, 256 filters instead of the paper's 96, 256, 384,
384, 256, and no local response normalisation.

The trunk is a ``features`` ``nn.Sequential`` indexed like torchvision's ``alexnet().features``,
so a torchvision state dict loads with strict key matching; ``classifier.*`` keys are ignored.
torchvision is not imported.

====  =====  ==========================================  ================================
index name   layer                                       state-dict keys
====  =====  ==========================================  ================================
0     conv1  Conv2d(3, 64, 11, stride=4, padding=2)      ``features.0.weight/bias``
1     relu1  ReLU
2     pool1  MaxPool2d(3, stride=2)
3     conv2  Conv2d(64, 192, 5, padding=2)               ``features.3.weight/bias``
4     relu2  ReLU
5     pool2  MaxPool2d(3, stride=2)
6     conv3  Conv2d(192, 384, 3, padding=1)              ``features.6.weight/bias``
7     relu3  ReLU
8     conv4  Conv2d(384, 256, 3, padding=1)              ``features.8.weight/bias``
9     relu4  ReLU
10    conv5  Conv2d(256, 256, 3, padding=1)              ``features.10.weight/bias``
11    relu5  ReLU
12    pool5  MaxPool2d(3, stride=2)
====  =====  ==========================================  ================================

LPIPS (Zhang et al., CVPR 2018, ``lpips/pretrained_networks.py``) cuts this trunk into five slices
``features[0:2], [2:5], [5:8], [8:10], [10:12]``; their outputs are :data:`LPIPS_ALEX_LAYERS` =
``relu1 ... relu5`` (64, 192, 384, 256, 256 channels), the default here.

Input: ``(N, 3, H, W)`` RGB, H and W >= 31 for ``relu5``; with ``normalize_input`` a [0, 1] image
gets the torchvision ImageNet normalisation first (LPIPS passes ``False`` and feeds its own
scaling of [-1, 1] input).
"""

from __future__ import annotations

from torch import nn

from superres.models.feature_trunk import FeatureTrunk, TrunkLayout

__all__ = ["ALEXNET_LAYERS", "LPIPS_ALEX_LAYERS", "AlexNetFeatures"]

#: Layer names of ``features[i]``, in order (torchvision's ``alexnet().features``).
ALEXNET_LAYERS: tuple[str, ...] = (
    "conv1", "relu1", "pool1",
    "conv2", "relu2", "pool2",
    "conv3", "relu3",
    "conv4", "relu4",
    "conv5", "relu5", "pool5",
)  # fmt: skip

#: The outputs of LPIPS's five AlexNet slices.
LPIPS_ALEX_LAYERS: tuple[str, ...] = ("relu1", "relu2", "relu3", "relu4", "relu5")

# (in, out, kernel, stride, padding) of conv1 ... conv5, torchvision's alexnet.
_CONVS: dict[str, tuple[int, int, int, int, int]] = {
    "conv1": (3, 64, 11, 4, 2),
    "conv2": (64, 192, 5, 1, 2),
    "conv3": (192, 384, 3, 1, 1),
    "conv4": (384, 256, 3, 1, 1),
    "conv5": (256, 256, 3, 1, 1),
}


def _layer(name: str) -> nn.Module:
    if name.startswith("conv"):
        cin, cout, kernel, stride, padding = _CONVS[name]
        return nn.Conv2d(cin, cout, kernel_size=kernel, stride=stride, padding=padding)
    if name.startswith("relu"):
        return nn.ReLU()
    return nn.MaxPool2d(kernel_size=3, stride=2)


class AlexNetFeatures(FeatureTrunk):
    """Frozen AlexNet ``features`` (torchvision's layout) returning named intermediate outputs.

    Args (see :class:`~superres.models.feature_trunk.FrozenTrunk`):
        layers: names from :data:`ALEXNET_LAYERS` to return; the trunk is truncated after the
            deepest one. Default :data:`LPIPS_ALEX_LAYERS`.
        normalize_input: apply the ImageNet normalisation to the [0, 1] RGB input.
        weights: a local torchvision ``alexnet`` state dict (``alexnet-owt-7be5be79.pth``, read
            with ``weights_only=True``, or a ``.safetensors`` copy), loaded with strict key
            matching; ``None`` leaves random weights and logs a warning.

    ``forward(x)``: ``(N, 3, H, W)`` -> ``{name: (N, C, h, w)}``, e.g. ``relu1`` is
    ``(N, 64, (H - 7) // 4 + 1, ...)``.
    """

    layout = TrunkLayout(
        arch="AlexNet",
        layer_names=ALEXNET_LAYERS,
        default_layers=LPIPS_ALEX_LAYERS,
        build=lambda count: [_layer(name) for name in ALEXNET_LAYERS[:count]],
        key_hint="features.0.weight (64, 3, 11, 11), features.3.*, features.6.*, features.8.*, "
        "features.10.bias (256,) (torchvision alexnet)",
        assets=("imagenet/alexnet",),
    )
