"""Every architecture superres knows, registered in one place.

``create_model("bicubic", scale=4)`` builds a model by name; ``list_models()`` lists the names. Each
architecture lives in its own file as a pure ``nn.Module`` with keyword-only, typed arguments; this
module is the only place that registers them, so adding a model means one file plus its line in
each of the two tables here (builder and scales; summary).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from superres.errors import SuperresError, UnknownModelError, UnsupportedScaleError
from superres.models.bicubic import Bicubic
from superres.models.compact import SRVGGNetCompact
from superres.models.descriptor import describe_network, record_network
from superres.models.discriminator import PatchDiscriminator, VGGStyleDiscriminator
from superres.models.edsr import EDSR, edsr_baseline
from superres.models.rrdbnet import RRDBNet
from superres.models.srcnn import SRCNN
from superres.models.srresnet import SRResNet
from superres.models.vgg import VGG19FeatureExtractor
from superres.models.weights_file import load_weights, save_weights
from superres.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about an architecture (its paper is named in its module).

    Attributes:
        name: registry name (lower case).
        builder: the class or function that builds it; keyword-only arguments.
        scales: the integer scales it supports, or ``None`` for any positive integer.
        summary: one line for ``superres models``.
    """

    name: str
    builder: Callable[..., nn.Module]
    scales: tuple[int, ...] | None
    summary: str


class InvalidModelArgumentError(SuperresError, TypeError):
    """``create_model`` got a keyword the architecture does not take."""


MODELS: Registry[ModelSpec] = Registry("model", UnknownModelError)


_SR_SUMMARIES = {
    "bicubic": "MATLAB-exact bicubic interpolation (no parameters): the baseline row",
    "srcnn": "3-layer CNN on the bicubic-upscaled image (9-5-5, 64/32, Y channel; 57K params)",
    "srresnet": "16 residual blocks with BN + PReLU, pixel-shuffle upsampling (SRGAN's generator)",
    "edsr": "EDSR: 32 residual blocks x 256 features, no BN, residual scaling 0.1 (43M params)",
    "edsr-baseline": "EDSR baseline: 16 residual blocks x 64 features, no BN (1.5M params)",
    "rrdbnet": "ESRGAN's generator: 23 residual-in-residual dense blocks, nearest+conv upsampling",
    "compact": "Real-ESRGAN's SRVGGNetCompact: 16-32 convs x 64 at low resolution, PReLU, shuffle",
}
#: (builder, supported scales) of each architecture; ``None``: any positive integer.
_SR_BUILDERS: dict[str, tuple[Callable[..., nn.Module], tuple[int, ...] | None]] = {
    "bicubic": (Bicubic, None),
    "srcnn": (SRCNN, (2, 3, 4)),
    "srresnet": (SRResNet, (2, 3, 4, 8)),
    "edsr": (EDSR, (2, 3, 4)),
    "edsr-baseline": (edsr_baseline, (2, 3, 4)),
    "rrdbnet": (RRDBNet, (1, 2, 4, 8)),
    "compact": (SRVGGNetCompact, (2, 3, 4)),
}
for _name, (_builder, _scales) in _SR_BUILDERS.items():
    MODELS.add(_name, ModelSpec(_name, _builder, _scales, _SR_SUMMARIES[_name]))


#: Discriminators (critics) for the GAN stage, by name; keyword-only constructors.
DISCRIMINATORS: Registry[Callable[..., nn.Module]] = Registry("discriminator", UnknownModelError)
DISCRIMINATORS.add("vgg", VGGStyleDiscriminator)
DISCRIMINATORS.add("patch", PatchDiscriminator)


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, optionally filtered by a glob such as ``"srresnet*"``."""
    return MODELS.names(pattern)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``; unknown names raise :class:`UnknownModelError`."""
    return MODELS.get(name)


def check_scale(name: str, scale: int) -> None:
    """Raise :class:`UnsupportedScaleError` unless model ``name`` supports ``scale``."""
    spec = MODELS.get(name)
    ok = isinstance(scale, int) and scale >= 1
    if ok and spec.scales is not None:
        ok = scale in spec.scales
    if not ok:
        allowed = (
            "any positive integer" if spec.scales is None else ", ".join(map(str, spec.scales))
        )
        raise UnsupportedScaleError(
            f"model {spec.name!r} does not support scale {scale!r}; supported: {allowed}"
        )


def create_model(name: str, *, scale: int = 4, **kwargs: object) -> nn.Module:
    """Build a registered model.

    Args:
        name: registry name (see :func:`list_models`), case-insensitive.
        scale: integer upscaling factor; checked against the model's supported scales.
        **kwargs: the architecture's own keyword arguments (e.g. ``num_blocks=16``). A keyword the
            architecture does not take raises :class:`InvalidModelArgumentError`, which lists
            the valid ones.

    The model carries ``arch_name`` (``name``, lower case) and ``config`` (every constructor
    argument, defaults filled in) as plain attributes, so ``create_model(m.arch_name,
    **m.config)`` rebuilds it and :func:`save_weights` can store them in the checkpoint.
    """
    spec = MODELS.get(name)
    check_scale(name, scale)
    signature = inspect.signature(spec.builder)
    try:
        signature.bind(scale=scale, **kwargs)
    except TypeError as exc:
        valid = ", ".join(p for p in signature.parameters if p != "self")
        raise InvalidModelArgumentError(
            f"model {spec.name!r}: {exc}; valid arguments: {valid}"
        ) from None
    model = spec.builder(scale=scale, **kwargs)
    config = None
    if describe_network(model).config is None:  # a builder without @records_config: its arguments
        bound = signature.bind(scale=scale, **kwargs)
        bound.apply_defaults()
        config = dict(bound.arguments)
    record_network(model, architecture=spec.name, config=config)
    return model


__all__ = [
    "DISCRIMINATORS",
    "EDSR",
    "MODELS",
    "SRCNN",
    "Bicubic",
    "InvalidModelArgumentError",
    "ModelSpec",
    "PatchDiscriminator",
    "RRDBNet",
    "SRResNet",
    "SRVGGNetCompact",
    "VGG19FeatureExtractor",
    "VGGStyleDiscriminator",
    "check_scale",
    "create_model",
    "edsr_baseline",
    "get_model_spec",
    "list_models",
    "load_weights",
    "save_weights",
]
