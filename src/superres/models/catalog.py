"""The model zoo: named pretrained weights (:data:`WEIGHTS`) and the default model per scale.

:data:`WEIGHTS` maps names (``"srresnet-x4"``) to pretrained weights: the architecture, scale and
recipe, and the file, an asset of :mod:`superres.assets` (``zoo/<name>``, shipped as
``superres/weights/<name>.safetensors``, sha256-pinned). :func:`superres.models.weights.load_model`
loads an entry by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from superres.assets import PACKAGE_DIR, Asset, asset_path, get_asset
from superres.errors import UnknownWeightsError
from superres.models.realism import REALISM_SPACES, RealismSpace
from superres.registry import Registry

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "PACKAGE_WEIGHTS_DIR",
    "WEIGHTS",
    "PretrainedWeights",
    "default_model",
    "get_pretrained",
    "list_pretrained",
    "pretrained_path",
    "register_pretrained",
]

# Weights shipped inside the package; a module global so that tests can point it elsewhere.
PACKAGE_WEIGHTS_DIR = PACKAGE_DIR / "weights"


@dataclass(frozen=True)
class PretrainedWeights:
    """One named set of pretrained weights.

    Attributes:
        name: catalog name, lower case (``"srresnet-x4"``); never equal to an architecture name.
        architecture: registry name of the network (``"srresnet"``).
        scale: its upscaling factor.
        summary: one line for listings (data, recipe, headline score).
        asset: the weight file, a record of :mod:`superres.assets` (where it ships or is
            published, its sha256 and size).
        recipe: the config that trained it (``"configs/srresnet_x4.yaml"``).
        metrics: measured scores, e.g. ``{"set5_psnr_y": 32.05, "set5_ssim_y": 0.901}``.
        parent: for a GAN model, the catalog name of its PSNR-oriented counterpart of the same
            architecture, towards which ``realism`` blends (see
            :func:`superres.models.weights.load_model`).
        realism_space: how ``realism`` blends this GAN model with its parent by default, chosen
            from the measured slider (``scripts/realism_curve.py``): ``"weights"`` where network
            interpolation trades fidelity for texture smoothly, ``"pixels"`` where it does not.
        weak_variant: for a real-world model, the catalog name of the same network trained on
            weaker degradations, towards which ``denoise`` blends (0: the weak variant, 1: this
            model; realesr-general-x4v3's ``-dn``).
    """

    name: str
    architecture: str
    scale: int
    summary: str
    asset: Asset
    recipe: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    parent: str | None = None
    realism_space: RealismSpace = "weights"
    weak_variant: str | None = None

    def __post_init__(self) -> None:
        if self.realism_space not in REALISM_SPACES:
            raise ValueError(f"{self.name!r}: realism_space must be one of {REALISM_SPACES}")


WEIGHTS: Registry[PretrainedWeights] = Registry("pretrained model", UnknownWeightsError)


def register_pretrained(entry: PretrainedWeights) -> PretrainedWeights:
    """Add ``entry`` to :data:`WEIGHTS` (each name once)."""
    return WEIGHTS.add(entry.name, entry)


def list_pretrained(pattern: str | None = None) -> list[str]:
    """Names of the pretrained weights, optionally filtered by a glob (``"*-x4"``)."""
    return WEIGHTS.names(pattern)


def get_pretrained(name: str) -> PretrainedWeights:
    """The catalog entry ``name``; unknown names raise :class:`UnknownWeightsError`."""
    return WEIGHTS.get(name)


def pretrained_path(entry: PretrainedWeights, *, download: bool = False) -> Path:
    """A local, sha256-checked path of ``entry``'s file (:func:`superres.assets.asset_path`)."""
    return asset_path(entry.asset, download=download)


#: The model used when neither a model name nor a weights file is given: the shipped model with
#: the best PSNR on the benchmark sets (BENCHMARKS.md, docs/models.md).
DEFAULT_MODEL = "edsr-baseline-x4"
#: The default per scale; other scales run the x4 default and resize exactly to the asked factor.
DEFAULT_MODELS: dict[int, str] = {4: DEFAULT_MODEL, 2: "srresnet-x2"}


def default_model(
    scale: int | None, outscale: float | None
) -> tuple[str, int | None, float | None]:
    """``(model, scale, outscale)`` when the user named no model: the shipped default for
    ``scale``, else the x4 default followed by an exact resize to ``scale``."""
    if scale is None or scale in DEFAULT_MODELS:
        return DEFAULT_MODELS[scale or 4], scale, outscale
    return DEFAULT_MODEL, None, float(scale) if outscale is None else outscale


# The model zoo: weights trained by this project's recipes (configs/zoo/<name>.yaml, dashes as
# underscores) with scripts/train_zoo.py on T91 + BSD200, validated on Set5, shipped in
# superres/weights/ as float16 safetensors whose metadata holds the recipe, iterations, hardware
# and wall time. docs/models.md (generated by scripts/model_cards.py) has the measured tables.
_ZOO_DATA = "T91 + BSD200"
#: (name, architecture, scale, summary) of every shipped model.
_ZOO: tuple[tuple[str, str, int, str], ...] = (
    ("srcnn-x4", "srcnn", 4, f"SRCNN 9-5-5 on Y, MSE, {_ZOO_DATA}, 14.4k iterations"),
    ("srresnet-x4", "srresnet", 4, f"SRResNet-16 (MSE), {_ZOO_DATA}, 19.4k iterations"),
    ("srresnet-x2", "srresnet", 2, f"SRResNet-16 (MSE) x2, {_ZOO_DATA}, 14.8k iterations"),
    (
        "edsr-baseline-x4",
        "edsr-baseline",
        4,
        f"EDSR baseline 16x64 (L1), {_ZOO_DATA}, 16.3k iterations",
    ),
    (
        "rrdbnet-6b-x4",
        "rrdbnet",
        4,
        f"RRDBNet, 6 RRDB blocks (L1; ESRGAN's PSNR stage), {_ZOO_DATA}, 4.9k iterations",
    ),
    (
        "srgan-x4",
        "srresnet",
        4,
        "SRGAN (SqueezeNet-1.1 perceptual + vanilla GAN, sub-pixel pattern guard) from "
        "srresnet-x4, 4.8k iterations",
    ),
    (
        "esrgan-6b-x4",
        "rrdbnet",
        4,
        "ESRGAN, 6 RRDB blocks (SqueezeNet-1.1 perceptual + RaGAN) from rrdbnet-6b-x4, "
        "1.8k iterations",
    ),
    (
        "real-compact-psnr-x4",
        "compact",
        4,
        "SRVGGNetCompact 32x64 for real photos (L1 towards sharpened targets; LR by "
        f"Real-ESRGAN's degradations of {_ZOO_DATA}), 3.3k iterations on a CPU",
    ),
)
#: The GAN models: (PSNR parent, realism space). srgan-x4's weights do not blend smoothly with
#: its parent's (BENCHMARKS.md), so its realism blends the output images.
_GAN_PARENTS: dict[str, tuple[str, RealismSpace]] = {
    "srgan-x4": ("srresnet-x4", "pixels"),
    "esrgan-6b-x4": ("rrdbnet-6b-x4", "weights"),
}
for _name, _arch, _scale, _summary in _ZOO:
    _parent, _space = _GAN_PARENTS.get(_name, (None, "weights"))
    register_pretrained(
        PretrainedWeights(
            name=_name,
            architecture=_arch,
            scale=_scale,
            summary=_summary,
            asset=get_asset(f"zoo/{_name}"),
            recipe=f"configs/zoo/{_name.replace('-', '_')}.yaml",
            parent=_parent,
            realism_space=_space,
        )
    )
