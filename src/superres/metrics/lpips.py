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

Weights (never random: a missing file is an error naming it):

* the **linear heads** (a few KB) are the authors' ``lpips/weights/v{version}/{net}.pth`` at
  commit 082bb24 (legacy ``torch.save`` state dicts, read with ``weights_only=True``), found
  under ``<data root>/weights/lpips/v{version}/{net}.pth`` or downloaded once into the hub
  cache, sha256-checked either way (:data:`LPIPS_HEADS_SHA256`);
* the **trunk** is torchvision's ImageNet checkpoint (:data:`TRUNK_WEIGHTS`: 233 MiB AlexNet,
  528 MiB VGG16, 4.7 MiB SqueezeNet 1.1), looked for in the hub cache and in torch's own hub
  cache (``$TORCH_HOME/hub/checkpoints``, where torchvision keeps it), else downloaded once; its
  sha256 is checked against the prefix in its file name, as torchvision does, and a download
  against the full hash where the catalog has one
  (:data:`superres.models.imagenet.IMAGENET_CHECKPOINTS`). For ``squeeze``
  the features-only copy ``<data root>/weights/squeezenet1_1_imagenet_features.safetensors``
  (full sha256 pinned, :data:`SQUEEZENET_FEATURES_SHA256`) is used first when present.

``trunk_weights=`` and ``heads=`` take explicit local files instead (not hash-checked, so a
re-saved copy works); the data root is ``data_root=``, else ``SUPERRES_DATA``, else
``<user cache>/data`` (:func:`superres.data.catalog.resolve_data_root`). ``SUPERRES_OFFLINE=1``
forbids downloads. When a file cannot be had, :class:`LpipsWeightsError` (for the trunk its
subclass :class:`TrunkWeightsNotFoundError`) says which file to provide and where.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import torch
from torch import nn

from superres.errors import (
    ConfigError,
    ImageTooSmallError,
    IncompatibleWeightsError,
    InvalidImageError,
    SuperresError,
)
from superres.models.alexnet import LPIPS_ALEX_LAYERS, AlexNetFeatures
from superres.models.feature_trunk import FeatureTrunk, read_state_dict
from superres.models.imagenet import IMAGENET_CHECKPOINTS, TorchvisionCheckpoint
from superres.models.squeezenet import LPIPS_LAYERS as LPIPS_SQUEEZE_LAYERS
from superres.models.squeezenet import SqueezeNet11Features
from superres.models.vgg import LPIPS_VGG16_LAYERS, VGG16Features

__all__ = [
    "LPIPS",
    "LPIPS_COMMIT",
    "LPIPS_HEADS_SHA256",
    "LPIPS_NETS",
    "LPIPS_VERSIONS",
    "SQUEEZENET_FEATURES_FILENAME",
    "SQUEEZENET_FEATURES_SHA256",
    "TRUNK_WEIGHTS",
    "LpipsWeightsError",
    "TrunkWeightsNotFoundError",
    "lpips",
    "lpips_heads_url",
]

logger = logging.getLogger(__name__)

#: Trunk names, as ``lpips.LPIPS(net=...)``.
LPIPS_NETS: tuple[str, ...] = ("alex", "vgg", "squeeze")
#: Versions of the linear heads; 0.1 is the authors' default.
LPIPS_VERSIONS: tuple[str, ...] = ("0.1", "0.0")

#: The richzhang/PerceptualSimilarity commit the heads are pinned to.
LPIPS_COMMIT = "082bb24f84c091ea94de2867d34c4544f68e0963"

#: sha256 of ``lpips/weights/v{version}/{net}.pth`` at :data:`LPIPS_COMMIT`.
LPIPS_HEADS_SHA256: dict[tuple[str, str], str] = {
    ("0.1", "alex"): "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    ("0.1", "vgg"): "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    ("0.1", "squeeze"): "4a5350f23600cb79923ce65bb07cbf57dca461329894153e05a1346bd531cf76",
    ("0.0", "alex"): "18720f55913d0af89042f13faa7e536a6ce1444a0914e6db9461355ece1e8cd5",
    ("0.0", "vgg"): "b9e4236260c3dd988fc79d2a48d645d885afcbb21f9fd595e6744cf7419b582c",
    ("0.0", "squeeze"): "c27abd3a0145541baa50990817df58d3759c3f8154949f42af3b59b4e042d0bf",
}

#: torchvision SqueezeNet 1.1 ImageNet weights, ``features.*`` only, bit-exact (see the data
#: root's SOURCES.md); looked for under ``<data root>/weights/``.
SQUEEZENET_FEATURES_FILENAME = "squeezenet1_1_imagenet_features.safetensors"
SQUEEZENET_FEATURES_SHA256 = "a3583cefdad6f4d03a1cb5f692b218f07c6fcff762defbd24d25509a37e2b9c9"

# ScalingLayer constants of lpips/lpips.py (v0.1).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10  # lpips.normalize_tensor


def lpips_heads_url(net: str, version: str = "0.1") -> str:
    """The official URL of the linear heads ``v{version}/{net}.pth``, pinned to one commit."""
    return (
        f"https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/{LPIPS_COMMIT}/"
        f"lpips/weights/v{version}/{net}.pth"
    )


class LpipsWeightsError(SuperresError, FileNotFoundError):
    """LPIPS weights (linear heads or trunk) are unavailable, wrong or unreadable."""

    def __str__(self) -> str:  # FileNotFoundError would otherwise format an errno message
        return str(self.args[0])


class TrunkWeightsNotFoundError(LpipsWeightsError):
    """The ImageNet trunk weights are not given, not cached and cannot be downloaded.

    LPIPS never runs on a randomly initialised trunk: its scores would be meaningless.
    """


#: The torchvision checkpoints of the three LPIPS trunks (whole networks; ``classifier.*`` is
#: ignored when loading), from :data:`superres.models.imagenet.IMAGENET_CHECKPOINTS`.
TRUNK_WEIGHTS: dict[str, TorchvisionCheckpoint] = {
    "alex": IMAGENET_CHECKPOINTS["alexnet"],
    "vgg": IMAGENET_CHECKPOINTS["vgg16"],
    "squeeze": IMAGENET_CHECKPOINTS["squeezenet1_1"],
}


@dataclass(frozen=True)
class _NetSpec:
    trunk: Callable[..., FeatureTrunk | SqueezeNet11Features]
    layers: tuple[str, ...]
    channels: tuple[int, ...]
    min_size: int  # smallest H and W the trunk accepts up to its last LPIPS layer


_NETS: dict[str, _NetSpec] = {
    "alex": _NetSpec(AlexNetFeatures, LPIPS_ALEX_LAYERS, (64, 192, 384, 256, 256), 31),
    "vgg": _NetSpec(VGG16Features, LPIPS_VGG16_LAYERS, (64, 128, 256, 512, 512), 16),
    "squeeze": _NetSpec(
        SqueezeNet11Features, LPIPS_SQUEEZE_LAYERS, (64, 128, 256, 384, 384, 512, 512), 17
    ),
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


# --- locating the weight files --------------------------------------------------------------------


def _data_root(data_root: str | os.PathLike[str] | None) -> Path:
    from superres.data.catalog import resolve_data_root  # the catalog is only needed here

    return resolve_data_root(data_root)


def _resolve_heads(
    net: str, version: str, heads: str | os.PathLike[str] | None, root: Path
) -> Path:
    """The local file of the linear heads (see the module docstring for the search order)."""
    from superres.io.hub import HubError, default_cache_dir, fetch

    expected = LPIPS_HEADS_SHA256[(version, net)]
    url = lpips_heads_url(net, version)
    cache_name = f"lpips-v{version}-{net}.pth"  # the URL's "alex.pth" is ambiguous across versions
    local = root / "weights" / "lpips" / f"v{version}" / f"{net}.pth"
    try:
        if heads is not None:
            return fetch(heads, sha256=None)
        if local.is_file():
            return fetch(local, sha256=expected)
        return fetch(url, sha256=expected, filename=cache_name)
    except HubError as exc:
        raise LpipsWeightsError(
            f"LPIPS(net={net!r}, version={version!r}) needs its linear heads "
            f"v{version}/{net}.pth (sha256 {expected}) and cannot get them: {exc} The file is "
            f"{url}; put it at {local} (the data root's weights/lpips/v{version}/) or at "
            f"{default_cache_dir() / cache_name}, or pass heads='/path/to/{net}.pth'."
        ) from exc


def _trunk_advice(net: str, spec: TorchvisionCheckpoint, root: Path) -> str:
    from superres.io.hub import default_cache_dir

    advice = (
        f"Fix: download {spec.filename} ({spec.summary}, {spec.size}, sha256 starting with "
        f"{spec.sha256_prefix}) from {spec.url} and pass "
        f"trunk_weights='/path/to/{spec.filename}', or place it at "
        f"{default_cache_dir() / spec.filename} (superres's hub cache; SUPERRES_CACHE moves it) "
        f"or at {Path(torch.hub.get_dir()) / 'checkpoints' / spec.filename} (torchvision's "
        "cache)."
    )
    if net == "squeeze":
        advice += (
            f" The features-only copy {SQUEEZENET_FEATURES_FILENAME} (sha256 "
            f"{SQUEEZENET_FEATURES_SHA256}) also works: put it at "
            f"{root / 'weights' / SQUEEZENET_FEATURES_FILENAME} or pass it as trunk_weights=."
        )
    return advice + " LPIPS refuses to run on a randomly initialised trunk."


def _check_prefix(path: Path, spec: TorchvisionCheckpoint, *, fresh: bool, advice: str) -> Path:
    from superres.io.hub import sha256_file

    actual = sha256_file(path)
    if not actual.startswith(spec.sha256_prefix):
        if fresh:
            path.unlink(missing_ok=True)  # never leave a bad download where it would be trusted
        raise TrunkWeightsNotFoundError(
            f"{path} is not {spec.filename}: its sha256 is {actual}, which does not start with "
            f"{spec.sha256_prefix} as the file name promises ("
            + ("the download was deleted" if fresh else "delete or replace the file")
            + f"). {advice}"
        )
    return path


def _resolve_trunk(net: str, trunk_weights: str | os.PathLike[str] | None, root: Path) -> Path:
    """The local trunk weight file (see the module docstring for the search order)."""
    from superres.io.hub import HubError, default_cache_dir, fetch

    spec = TRUNK_WEIGHTS[net]
    advice = _trunk_advice(net, spec, root)
    try:
        if trunk_weights is not None:
            return fetch(trunk_weights, sha256=None)  # the user's own copy: no pinned hash
        if net == "squeeze":
            features = root / "weights" / SQUEEZENET_FEATURES_FILENAME
            if features.is_file():
                return fetch(features, sha256=SQUEEZENET_FEATURES_SHA256)
        torch_cached = Path(torch.hub.get_dir()) / "checkpoints" / spec.filename
        if not (default_cache_dir() / spec.filename).is_file() and torch_cached.is_file():
            return _check_prefix(torch_cached, spec, fresh=False, advice=advice)
        fresh = not (default_cache_dir() / spec.filename).is_file()
        # The full sha256 where the catalog has it; the name's prefix is checked below anyway.
        path = fetch(spec.url, sha256=spec.sha256)
    except HubError as exc:
        raise TrunkWeightsNotFoundError(
            f"LPIPS(net={net!r}) needs ImageNet trunk weights and cannot get them: {exc} {advice}"
        ) from exc
    return _check_prefix(path, spec, fresh=fresh, advice=advice)


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
        heads: a local file with the linear heads, used as given; default the official file
            (data root or hub cache, sha256-checked).
        trunk_weights: a local torchvision-format state dict of the trunk, used as given;
            default: searched and downloaded as the module docstring says.
        data_root: where ``weights/lpips/...`` and (for ``squeeze``)
            ``weights/squeezenet1_1_imagenet_features.safetensors`` are looked for; default
            ``SUPERRES_DATA``, else ``<user cache>/data``.

    ``forward(a, b)``: two float tensors of the same shape, ``(N, 3, H, W)`` or ``(3, H, W)``,
    **RGB in [0, 1]**, on the module's device and dtype -> ``(N,)`` distances (0 for identical
    images, larger is more different; typical values 0 ... 0.8). Gradients flow to the inputs;
    the parameters never require grad and the module stays in eval mode.

    Raises:
        ConfigError: unknown ``net`` or ``version``.
        TrunkWeightsNotFoundError: the trunk weights cannot be found or downloaded.
        LpipsWeightsError: the linear heads cannot be found or downloaded.
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
    ) -> None:
        super().__init__()
        _check_choice(net, version)
        self.net = net
        self.version = version
        spec = _NETS[net]
        root = _data_root(data_root)
        heads_path = _resolve_heads(net, version, heads, root)
        weights = _read_heads(heads_path, net)
        trunk_path = _resolve_trunk(net, trunk_weights, root)
        # LPIPS feeds its own scaling of [-1, 1] input, not torchvision's normalisation.
        self.trunk = spec.trunk(layers=spec.layers, normalize_input=False, weights=trunk_path)
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


@functools.lru_cache(maxsize=4)
def _cached(
    net: str,
    version: str,
    heads: str | None,
    trunk_weights: str | None,
    root: str,
    device: torch.device,
    dtype: torch.dtype,
) -> LPIPS:
    model = LPIPS(
        net=net, version=version, heads=heads, trunk_weights=trunk_weights, data_root=root
    )
    return model.to(device=device, dtype=dtype)


def lpips(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    net: str = "alex",
    version: str = "0.1",
    heads: str | os.PathLike[str] | None = None,
    trunk_weights: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
) -> torch.Tensor:
    """LPIPS distance of each image pair: ``(N, 3, H, W)`` RGB in [0, 1] twice -> ``(N,)``.

    Runs on ``a``'s device and dtype with a cached :class:`LPIPS` (built on the first call for
    these arguments, device and dtype; the weight files are located once). Differentiable in
    both inputs. See :class:`LPIPS` for the arguments and errors, and the module docstring for
    the method and where the weights come from.

    Example::

        d = lpips(sr, gt, net="alex")  # sr, gt: float (N, 3, H, W) RGB in [0, 1]
    """
    _check_choice(net, version)
    a, b = _as_batch(a, "a"), _as_batch(b, "b")
    model = _cached(
        net,
        version,
        None if heads is None else os.fspath(heads),
        None if trunk_weights is None else os.fspath(trunk_weights),
        str(_data_root(data_root)),
        a.device,
        a.dtype,
    )
    return model(a, b)
