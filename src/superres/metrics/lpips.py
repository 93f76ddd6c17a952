"""LPIPS, the Learned Perceptual Image Patch Similarity: a full-reference perceptual distance.

Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018 (arXiv:1801.03924). Lower is more similar; identical images score 0.
This module reproduces ``lpips.LPIPS(net=..., version=..., spatial=False)`` of the authors'
package (richzhang/PerceptualSimilarity, ``lpips/lpips.py``) step by step:

1. each [0, 1] RGB image is mapped to [-1, 1] (``2 x - 1``) and, in version 0.1, through the
   ``ScalingLayer``: ``(x - shift) / scale`` with shift (-0.030, -0.088, -0.188) and scale
   (0.458, 0.448, 0.450) (version 0.0 feeds the [-1, 1] image unscaled, the release's bug);
2. an ImageNet trunk gives L feature maps: AlexNet ``relu1 ... relu5`` (L = 5), VGG16
   ``relu1_2, relu2_2, relu3_3, relu4_3, relu5_3`` (L = 5) or SqueezeNet 1.1 ``relu1, fire3,
   fire5 ... fire9`` (L = 7), each with torchvision's ImageNet weights;
3. every map is unit-normalised along channels, ``f / (sqrt(sum_c f^2) + 1e-10)``;
4. per layer, the squared difference of the two normalised maps goes through a learned 1x1
   convolution to one channel (no bias: the "linear heads", non-negative weights), is averaged
   over the spatial positions, and the L layer values are summed: one score per image.

Input convention: float ``(N, 3, H, W)`` (or ``(3, H, W)``) **RGB in [0, 1]** -- the project's
convention, i.e. the authors' ``forward(..., normalize=True)``; values are not clamped, so an SR
output slightly outside [0, 1] is scored as it is. The smallest side is 31 pixels for ``alex``,
16 for ``vgg`` and 17 for ``squeeze``. LPIPS is differentiable and usable as a loss: gradients
flow to both inputs, the network itself is frozen.

Weights (never random: a missing file is an error naming it). Both are assets of
:mod:`superres.assets`, found by its one resolver and sha256-checked:

* the **linear heads** (a few KB, ``lpips/v{version}/{net}``) are the authors'
  ``lpips/weights/v{version}/{net}.pth`` at one pinned commit (legacy ``torch.save`` state dicts,
  read with ``weights_only=True``), looked for at ``<data root>/weights/lpips/v{version}/``;
* the **trunk** is torchvision's ImageNet checkpoint (``imagenet/alexnet``, 233 MiB;
  ``imagenet/vgg16``, 528 MiB; ``imagenet/squeezenet1_1``, 4.7 MiB), also found in torch's own hub
  cache; for ``squeeze`` the features-only copy ``imagenet/squeezenet1_1-features`` (data root
  ``weights/``) is used first when present.

Nothing is downloaded unless ``download=True`` (``superres assets get NAME``, or a command's
``--download``). ``trunk_weights=`` and ``heads=`` take explicit local files instead (not
hash-checked, so a re-saved copy works); the data root is ``data_root=``, else ``SUPERRES_DATA``,
else ``<user cache>/data``. A missing file raises :class:`~superres.errors.AssetNotFoundError`
naming it, where it was looked for and the command that gets it.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, Self

import torch
from torch import nn

from superres.assets import asset_path
from superres.errors import (
    ConfigError,
    ImageTooSmallError,
    IncompatibleWeightsError,
    InvalidImageError,
)
from superres.io.files import resolve_data_root
from superres.models.alexnet import AlexNetFeatures
from superres.models.feature_trunk import FeatureTrunk, read_state_dict
from superres.models.squeezenet import SqueezeNet11Features
from superres.models.vgg import VGG16Features

__all__ = ["LPIPS", "LPIPS_NETS", "LPIPS_TRUNKS", "LPIPS_VERSIONS", "lpips"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")

#: Trunk names, as ``lpips.LPIPS(net=...)``.
LPIPS_NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
#: Versions of the linear heads; 0.1 is the authors' default.
LPIPS_VERSIONS: tuple[str, ...] = ("0.1", "0.0")

# ScalingLayer constants of lpips/lpips.py (v0.1).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips.normalize_tensor


@dataclass(frozen=True)
class _NetSpec:
    trunk: type[FeatureTrunk]  # its layout's default layers are LPIPS's taps
    channels: tuple[int, ...]
    min_size: int  # smallest H and W the trunk accepts up to its last LPIPS layer


_NETS: dict[str, _NetSpec] = {
    "alex": _NetSpec(AlexNetFeatures, (64, 192, 384, 256, 256), 31),
    "vgg": _NetSpec(VGG16Features, (64, 128, 256, 512, 512), 16),
    "squeeze": _NetSpec(SqueezeNet11Features, (64, 128, 256, 384, 384, 512, 512), 17),
}

#: The trunk assets of each net, best first (:func:`superres.assets.asset_path` takes the first
#: one present, else downloads the first downloadable one when allowed).
LPIPS_TRUNKS: dict[str, tuple[str, ...]] = {
    net: spec.trunk.layout.assets for net, spec in _NETS.items()
}


def _check_choice(net: str, version: str) -> None:
    if net not in LPIPS_NETS:
        raise ConfigError(
            f"LPIPS: unknown net {net!r}; expected one of {', '.join(map(repr, LPIPS_NETS))} "
            "(as lpips.LPIPS(net=...))."
        )
    if version not in LPIPS_VERSIONS:
        raise ConfigError(
            f"LPIPS: unknown version {version!r}; expected one of "
            f"{', '.join(map(repr, LPIPS_VERSIONS))} (0.1 is the authors' default)."
        )


def _read_heads(path: Path, net: str) -> list[torch.Tensor]:
    """The L head weights ``(1, C_l, 1, 1)`` from the authors' state dict (``linK.model.I``)."""
    state = read_state_dict(path, what=f"LPIPS linear heads for net={net!r}")
    spec = _NETS[net]
    found: dict[int, torch.Tensor] = {}
    for key, value in state.items():
        # lin{k}.model.1.weight with dropout (the release), .model.0. without; heads.{k}.weight
        # is this module's own state-dict name.
        match = re.fullmatch(r"lins?\.?(\d+)\.model\.\d+\.weight|heads\.(\d+)\.weight", key)
        if match is None:
            continue
        found[int(match.group(1) or match.group(2))] = value
    expected = [(1, c, 1, 1) for c in spec.channels]
    got = [tuple(found[k].shape) if k in found else None for k in range(len(expected))]
    if got != expected or len(found) != len(expected):
        raise IncompatibleWeightsError(
            f"{str(path)!r} does not hold LPIPS linear heads for net={net!r}: expected "
            f"lin0.model.1.weight ... lin{len(expected) - 1}.model.1.weight of shapes "
            f"{expected}, got {dict(sorted((k, tuple(v.shape)) for k, v in found.items()))} "
            f"among the keys {sorted(state)[:8]}. Pass the v0.1 (or v0.0) {net}.pth of "
            "richzhang/PerceptualSimilarity for this net."
        )
    return [found[k].detach().to(torch.float32) for k in range(len(expected))]


# --- the metric -----------------------------------------------------------------------------------


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise InvalidImageError(
            f"LPIPS: {name} must be a torch.Tensor (N, 3, H, W) RGB in [0, 1]; got "
            f"{type(x).__name__}. Convert with torch.from_numpy(array).permute(2, 0, 1) / 255."
        )
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[1] != 3:
        raise InvalidImageError(
            f"LPIPS: {name} has shape {tuple(x.shape)}; expected (N, 3, H, W) or (3, H, W) RGB "
            "in [0, 1]. Gray images: repeat the channel, x.expand(-1, 3, -1, -1)."
        )
    if not x.is_floating_point():
        raise InvalidImageError(
            f"LPIPS: {name} has dtype {x.dtype}; expected a float tensor in [0, 1] (divide "
            "uint8 images by 255)."
        )
    return x


class LPIPS(nn.Module):
    """LPIPS as a frozen module: build once, call many times (a metric or a loss).

    Args:
        net: the trunk, ``"alex"`` (the authors' default and the usual reported one), ``"vgg"``
            (VGG16, recommended by the authors as a loss) or ``"squeeze"`` (SqueezeNet 1.1).
        version: linear-head version, ``"0.1"`` (default, as ``lpips`` >= 0.1) or ``"0.0"``.
        heads: a local file with the linear heads, used as given; default the asset
            ``lpips/v{version}/{net}`` (sha256-checked).
        trunk_weights: a local torchvision-format state dict of the trunk, used as given;
            default the trunk's asset (see the module docstring).
        data_root: the data root the assets are looked for in; default ``SUPERRES_DATA``, else
            ``<user cache>/data``.
        download: download a missing head or trunk file (pinned by sha256); default ``False``:
            a missing file is an error saying how to get it.

    ``forward(a, b)``: two float tensors of the same shape, ``(N, 3, H, W)`` or ``(3, H, W)``,
    **RGB in [0, 1]**, on the module's device and dtype -> ``(N,)`` distances (0 for identical
    images, larger is more different; typical values 0 ... 0.8). Gradients flow to the inputs;
    the parameters never require grad and the module stays in eval mode.

    Raises:
        ConfigError: unknown ``net`` or ``version``.
        AssetNotFoundError: the heads or the trunk weights are not here (and may not or cannot
            be downloaded).
        ChecksumMismatchError: a copy was found with another sha256.
        IncompatibleWeightsError: a file holds other keys or shapes than this net needs.
    """

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        *,
        net: str = "alex",
        version: str = "0.1",
        heads: str | os.PathLike[str] | None = None,
        trunk_weights: str | os.PathLike[str] | None = None,
        data_root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> None:
        super().__init__()
        _check_choice(net, version)
        self.net = net
        self.version = version
        spec = _NETS[net]
        heads_path = asset_path(
            f"lpips/v{version}/{net}", path=heads, data_root=data_root, download=download
        )
        weights = _read_heads(heads_path, net)
        trunk_path = spec.trunk.asset_weights(trunk_weights, data_root=data_root, download=download)
        # LPIPS feeds its own scaling of [-1, 1] input, not torchvision's normalisation.
        self.trunk = spec.trunk(normalize_input=False, weights=trunk_path)
        self.heads = nn.ModuleList(
            nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in spec.channels
        )
        with torch.no_grad():
            for head, weight in zip(self.heads, weights, strict=True):
                assert isinstance(head, nn.Conv2d)
                head.weight.copy_(weight)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.min_size = spec.min_size
        self.requires_grad_(False)
        self.train(False)
        logger.debug("LPIPS(%s, v%s): heads %s, trunk %s", net, version, heads_path, trunk_path)

    def train(self, mode: bool = True) -> Self:
        """Always eval: the metric has no training behaviour (the release's dropout is off)."""
        del mode
        return super().train(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = _as_batch(a, "a"), _as_batch(b, "b")
        if a.shape != b.shape:
            raise InvalidImageError(
                f"LPIPS: the images differ in shape, {tuple(a.shape)} vs {tuple(b.shape)}; "
                "expected the same (N, 3, H, W). Crop or resize one to the other first."
            )
        if a.dtype != b.dtype or a.device != b.device:
            raise InvalidImageError(
                f"LPIPS: the images differ in dtype or device, {a.dtype} on {a.device} vs "
                f"{b.dtype} on {b.device}; convert one with .to(other)."
            )
        if min(a.shape[-2:]) < self.min_size:
            raise ImageTooSmallError(
                f"LPIPS(net={self.net!r}): images of {a.shape[-2]}x{a.shape[-1]} pixels are too "
                f"small; H and W must be at least {self.min_size}. Use larger crops."
            )
        n = a.shape[0]
        # One trunk pass over both images; the features are split again below.
        x = torch.cat([a, b]) * 2 - 1  # [0, 1] -> [-1, 1], the authors' normalize=True
        if self.version == "0.1":
            x = (x - self.shift.to(x.dtype)) / self.scale.to(x.dtype)
        features = self.trunk(x)
        total = x.new_zeros(n)
        for name, head in zip(self.trunk.layers, self.heads, strict=True):
            fa, fb = _unit_normalize(features[name]).split(n)
            total = total + head((fa - fb) ** 2).mean(dim=(2, 3))[:, 0]
        return total

    def extra_repr(self) -> str:
        return f"net={self.net!r}, version={self.version!r}"


def _unit_normalize(f: torch.Tensor) -> torch.Tensor:
    """``lpips.normalize_tensor``: divide by the channel-wise L2 norm plus 1e-10."""
    return f / (torch.sqrt(torch.sum(f**2, dim=1, keepdim=True)) + _EPS)


def _with_options_of(
    cls: Callable[P, LPIPS],
) -> Callable[
    [Callable[..., torch.Tensor]],
    Callable[Concatenate[torch.Tensor, torch.Tensor, P], torch.Tensor],
]:
    """Type a function ``(a, b, **options)`` as taking exactly the keyword arguments of ``cls``."""

    def typed(
        fn: Callable[..., torch.Tensor],
    ) -> Callable[Concatenate[torch.Tensor, torch.Tensor, P], torch.Tensor]:
        return fn

    return typed


@functools.lru_cache(maxsize=4)
def _cached(
    options: tuple[tuple[str, Any], ...], device: torch.device, dtype: torch.dtype
) -> LPIPS:
    return LPIPS(**dict(options)).to(device=device, dtype=dtype)


_LPIPS_ARGUMENTS = inspect.signature(LPIPS)


@_with_options_of(LPIPS)
def lpips(a: torch.Tensor, b: torch.Tensor, **options: object) -> torch.Tensor:
    """LPIPS distance of each image pair: ``(N, 3, H, W)`` RGB in [0, 1] twice -> ``(N,)``.

    Takes the keyword arguments of :class:`LPIPS` (``net``, ``version``, ``heads``,
    ``trunk_weights``, ``data_root``, ``download``). Runs on ``a``'s device and dtype with a
    cached :class:`LPIPS` (built on the first call for these arguments, device and dtype; the
    weight files are located once). Differentiable in both inputs. See :class:`LPIPS` for the
    arguments and errors, and the module docstring for the method and where the weights come
    from.

    Example::

        d = lpips(sr, gt, net="alex")  # sr, gt: float (N, 3, H, W) RGB in [0, 1]
    """
    bound = _LPIPS_ARGUMENTS.bind(**options)  # a misspelt keyword is a TypeError here
    bound.apply_defaults()
    given = bound.arguments
    _check_choice(str(given["net"]), str(given["version"]))
    given["data_root"] = str(resolve_data_root(given["data_root"]))
    for name in ("heads", "trunk_weights"):
        if given[name] is not None:
            given[name] = os.fspath(given[name])
    a, b = _as_batch(a, "a"), _as_batch(b, "b")
    return _cached(tuple(given.items()), a.device, a.dtype)(a, b)
