"""Perceptual (feature-matching) losses: distances between a frozen network's feature maps.

:class:`FeatureMatchingLoss` is generic: any ``nn.Module`` whose ``forward(x)`` returns a dict of
named feature maps ``{name: (N, C, h, w)}`` plugs in, with per-layer weights. Two extractors ship:

* :class:`~superres.models.vgg.VGG19Features` -- VGG19 (Simonyan and Zisserman 2015),
  torchvision's ``vgg19`` weights; layers ``convX_Y`` (before ReLU), ``reluX_Y`` (after), ``poolX``;
* :class:`~superres.models.squeezenet.SqueezeNet11Features` -- SqueezeNet 1.1, torchvision's
  ``squeezenet1_1`` weights; layers ``relu1``, ``fire2`` ... ``fire9`` (LPIPS's slices).

:class:`PerceptualLoss` builds one of them by name and fetches its ImageNet weights.
Published settings (``loss_weight`` of the perceptual term 1 in all three):

==============  ==========================  =========  =================================
recipe          ``layer_weights``           criterion  ``feature_scale``
==============  ==========================  =========  =================================
SRGAN VGG54     ``{"relu5_4": 1.0}``        ``"l2"``   ``SRGAN_FEATURE_SCALE`` (1/12.75)
SRGAN VGG22     ``{"relu2_2": 1.0}``        ``"l2"``   ``SRGAN_FEATURE_SCALE``
ESRGAN          ``{"conv5_4": 1.0}``        ``"l1"``   1.0
==============  ==========================  =========  =================================

SRGAN (Ledig et al., CVPR 2017, arXiv:1609.04802) defines ``phi_{i,j}`` as the feature map of the
j-th convolution *after activation* before the i-th max-pool, so VGG54 is ``relu5_4``; its
Sec. 3.2 rescales the VGG feature maps by 1/12.75 "to obtain VGG losses of a scale that is
comparable to the MSE loss" (the squared loss shrinks by 12.75^2, about 0.006). ESRGAN (Wang et
al., ECCVW 2018, arXiv:1809.00219, Sec. 3.3) uses the features *before* activation,
``conv5_4``, which are denser and keep brightness consistent.

Weights are never silently random: :class:`PerceptualLoss` with ``pretrained=True`` (the
default) loads ``weights=`` (a local file) or the torchvision checkpoint, an asset of
:mod:`superres.assets` (``imagenet/vgg19``; for SqueezeNet the features-only copy
``imagenet/squeezenet1_1-features`` first, then ``imagenet/squeezenet1_1``), downloaded only with
``download=True``; when it is not here it raises :class:`~superres.errors.AssetNotFoundError`
naming the file and the command that gets it.
``pretrained=False`` must be asked for explicitly (tests, architecture experiments).

The extractor is a submodule, so ``loss.to(device)`` moves it and ``loss.state_dict()`` holds
its (frozen) parameters: checkpoint the networks and optimisers, not loss modules.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import torch
from torch import nn

from superres.errors import ConfigError, check_choice
from superres.losses.base import BaseLoss, check_pair, check_reduction
from superres.metrics.lpips import LPIPS
from superres.models.feature_trunk import FeatureTrunk
from superres.models.squeezenet import SqueezeNet11Features
from superres.models.vgg import VGG19Features

__all__ = [
    "BACKBONES",
    "SRGAN_FEATURE_SCALE",
    "FeatureMatchingLoss",
    "LPIPSLoss",
    "PerceptualLoss",
    "VGG19Features",
]

#: SRGAN's rescaling of VGG feature maps (Ledig et al. 2017, Sec. 3.2).
SRGAN_FEATURE_SCALE = 1.0 / 12.75

_CRITERIA = ("l1", "l2", "mse")


#: The trunks :class:`PerceptualLoss` builds, by ``network`` name.
_TRUNKS: dict[str, type[FeatureTrunk]] = {
    "vgg19": VGG19Features,
    "squeezenet1_1": SqueezeNet11Features,
}
#: The ImageNet weights of those trunks: assets of :mod:`superres.assets`, best first.
BACKBONES: dict[str, tuple[str, ...]] = {name: t.layout.assets for name, t in _TRUNKS.items()}


def _check_layer_weights(owner: str, layer_weights: Mapping[str, float]) -> dict[str, float]:
    if not isinstance(layer_weights, Mapping) or not layer_weights:
        raise ConfigError(
            f"{owner}: layer_weights must be a non-empty mapping of layer name to weight; got "
            f"{layer_weights!r}, e.g. {{'conv5_4': 1.0}}."
        )
    checked: dict[str, float] = {}
    for name, weight in layer_weights.items():
        if (
            not isinstance(name, str)
            or isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not math.isfinite(weight)
        ):
            raise ConfigError(
                f"{owner}: layer_weights entries must be name: finite number; got "
                f"{name!r}: {weight!r}."
            )
        checked[name] = float(weight)
    return checked


class FeatureMatchingLoss(BaseLoss):
    """Weighted distance between the feature maps of ``sr`` and ``gt`` under a frozen extractor.

    ``loss = sum_l w_l * mean(rho(s * phi_l(sr) - s * phi_l(gt)))`` per image, with ``rho = |.|``
    (``criterion="l1"``) or ``(.)^2`` (``"l2"``, alias ``"mse"``), the mean over each layer's
    ``C x h x w`` elements, and ``s = feature_scale``. ``gt``'s features are computed without
    autograd; ``sr``'s keep the graph to the generator.

    Args:
        extractor: a module whose ``forward(x)`` returns a dict with (at least) the keys of
            ``layer_weights``, each ``(N, C, h, w)``. Its parameters should be frozen.
        layer_weights: ``{layer name: weight}``.
        criterion: ``"l1"``, ``"l2"`` or ``"mse"`` (same as ``"l2"``).
        feature_scale: multiplies the features before the distance (SRGAN: 1/12.75).
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``, one value per image; ``"mean"``/``"sum"`` over the batch.
    """

    def __init__(
        self,
        *,
        extractor: nn.Module,
        layer_weights: Mapping[str, float],
        criterion: str = "l1",
        feature_scale: float = 1.0,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        owner = type(self).__name__
        self.extractor = extractor
        self.layer_weights = _check_layer_weights(owner, layer_weights)
        criterion = check_choice(criterion, _CRITERIA, "criterion", owner)
        self.criterion = "l2" if criterion == "mse" else criterion
        if not (
            isinstance(feature_scale, int | float)
            and math.isfinite(feature_scale)
            and feature_scale > 0
        ):
            raise ConfigError(
                f"{owner}: feature_scale must be a positive number; got {feature_scale!r} "
                "(SRGAN uses SRGAN_FEATURE_SCALE = 1/12.75)."
            )
        self.feature_scale = float(feature_scale)

    def _features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.extractor(x)
        missing = [name for name in self.layer_weights if name not in features]
        if missing:
            raise ConfigError(
                f"{type(self).__name__}: the extractor returned layers {sorted(features)}, not "
                f"{missing}; set layer_weights to layers the extractor provides."
            )
        return features

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        check_pair(type(self).__name__, sr, gt)
        sr_features = self._features(sr)
        with torch.no_grad():
            gt_features = self._features(gt.detach())
        dtype = torch.float64 if sr.dtype == torch.float64 else torch.float32
        per_image = sr.new_zeros(sr.shape[0], dtype=dtype)
        for name, weight in self.layer_weights.items():
            diff = self.feature_scale * (sr_features[name] - gt_features[name])
            dist = diff.abs() if self.criterion == "l1" else diff.square()
            per_image = per_image + weight * dist.to(dtype).mean(dim=(1, 2, 3))
        return self._reduce(per_image)

    def extra_repr(self) -> str:
        return (
            f"layer_weights={self.layer_weights}, criterion={self.criterion!r}, "
            f"feature_scale={self.feature_scale:g}, {super().extra_repr()}"
        )


class PerceptualLoss(FeatureMatchingLoss):
    """Feature-matching loss over a frozen ImageNet VGG19 (default) or SqueezeNet 1.1.

    See the module docstring for the SRGAN and ESRGAN settings.

    Args:
        layer_weights: ``{layer: weight}``; default ``{"conv5_4": 1.0}`` for VGG19 (ESRGAN) and
            equal weights on :data:`~superres.models.squeezenet.LPIPS_LAYERS` for SqueezeNet.
            VGG19 names: ``convX_Y`` (before ReLU), ``reluX_Y`` (after), ``poolX``.
        network: ``"vgg19"`` or ``"squeezenet1_1"``.
        criterion: ``"l1"``, ``"l2"`` or ``"mse"`` (same as ``"l2"``).
        weights: a local torchvision-format state dict for the network, used as it is; default
            the torchvision checkpoint's asset (sha256-checked).
        pretrained: ``False`` builds random weights on purpose (tests); ``True`` never does.
        data_root: the data root the assets are looked for in (default ``SUPERRES_DATA``).
        download: download the checkpoint when it is not here (pinned by sha256).
        normalize_input: ImageNet-normalise the [0, 1] RGB inputs, as the weights expect.
        feature_scale: multiplies the features (SRGAN: :data:`SRGAN_FEATURE_SCALE`).
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``; ``"mean"``/``"sum"`` over the batch.

    Raises:
        AssetNotFoundError: ``pretrained=True`` and the weights are not here (nor downloaded);
            the message names the file and the command that gets it.
        ConfigError: an unknown network, layer or criterion, or ``weights`` with
            ``pretrained=False``.
        IncompatibleWeightsError: the weight file does not fit the network.
    """

    def __init__(
        self,
        *,
        layer_weights: Mapping[str, float] | None = None,
        network: str = "vgg19",
        criterion: str = "l1",
        weights: str | os.PathLike[str] | None = None,
        pretrained: bool = True,
        data_root: str | os.PathLike[str] | None = None,
        download: bool = False,
        normalize_input: bool = True,
        feature_scale: float = 1.0,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        # Cheap checks first: a typo must not wait for (or trigger) a weight download.
        network = check_choice(network, tuple(BACKBONES), "network", "PerceptualLoss")
        check_choice(criterion, _CRITERIA, "criterion", "PerceptualLoss")
        check_reduction(reduction, "PerceptualLoss")
        trunk = _TRUNKS[network]
        if layer_weights is None:  # ESRGAN's conv5_4 for VGG19; LPIPS's taps, equally weighted
            defaults = trunk.layout.default_layers
            layer_weights = dict.fromkeys(defaults, 1.0 / len(defaults))
        layer_weights = _check_layer_weights("PerceptualLoss", layer_weights)
        # Layer names are case-insensitive; the trunk returns them lower-cased.
        layer_weights = {name.lower(): weight for name, weight in layer_weights.items()}
        for name in layer_weights:
            trunk.layout.index(name)  # unknown names fail before any weights are fetched
        if not pretrained and weights is not None:
            raise ConfigError(
                f"PerceptualLoss: pretrained=False but weights={os.fspath(weights)!r}; pass "
                "one or the other (pretrained=False means random weights)."
            )
        # The user's own file is used as it is (a re-saved or converted copy has another hash).
        path = (
            trunk.asset_weights(weights, data_root=data_root, download=download)
            if pretrained
            else None
        )
        extractor = trunk(layers=list(layer_weights), normalize_input=normalize_input, weights=path)
        super().__init__(
            extractor=extractor,
            layer_weights=layer_weights,
            criterion=criterion,
            feature_scale=feature_scale,
            loss_weight=loss_weight,
            reduction=reduction,
        )
        self.network = network

    @property
    def pretrained(self) -> bool:
        """Whether the extractor holds loaded (not random) weights."""
        return bool(getattr(self.extractor, "pretrained", False))

    def extra_repr(self) -> str:
        return f"network={self.network!r}, pretrained={self.pretrained}, {super().extra_repr()}"


class LPIPSLoss(BaseLoss):
    """LPIPS (Zhang et al., CVPR 2018) as a training loss: a learned perceptual distance.

    The trunk's features are unit-normalised per position and weighted by the release's linear
    heads (:class:`superres.metrics.lpips.LPIPS`), so the distance follows human similarity
    judgements rather than raw feature energy. With the SqueezeNet trunk, as with plain feature
    matching on it, a generator fine-tuned from a PSNR model picks up a static sub-pixel pattern
    within a few steps; add the ``subpixel_pattern`` loss to hold it off.

    Args:
        net: ``"squeeze"`` (the ImageNet trunk our machines have), ``"alex"`` or ``"vgg"``.
        version: linear-head version, ``"0.1"`` or ``"0.0"``.
        heads, trunk_weights, data_root, download: where the weights are and whether a missing
            one may be downloaded, as for :class:`~superres.metrics.lpips.LPIPS`.
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``; ``"mean"``/``"sum"`` over the batch.

    Raises:
        ConfigError: unknown ``net``, ``version`` or ``reduction``.
        AssetNotFoundError: the heads or the trunk weights are not here (the message names the
            file and the command that gets it).
    """

    def __init__(
        self,
        *,
        net: str = "squeeze",
        version: str = "0.1",
        heads: str | os.PathLike[str] | None = None,
        trunk_weights: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
        download: bool = False,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        check_reduction(reduction, "LPIPSLoss")
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        self.lpips = LPIPS(
            net=net,
            version=version,
            heads=heads,
            trunk_weights=trunk_weights,
            data_root=data_root,
            download=download,
        )

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        check_pair(type(self).__name__, sr, gt)
        dtype = self.lpips.scale.dtype
        return self._reduce(self.lpips(sr.to(dtype), gt.detach().to(dtype)).to(sr.dtype))

    def extra_repr(self) -> str:
        return f"net={self.lpips.net!r}, version={self.lpips.version!r}, {super().extra_repr()}"
