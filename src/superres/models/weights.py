"""The one entry point to a ready model: :func:`load_model`, the CLI's and `superres.upscale`'s.

A catalog name, a registry name (parameter-free models only) or a weights file. The ideas it
joins each have their own home, whose public names are re-exported here:

* :mod:`superres.models.weights_file` -- our safetensors format (:func:`save_weights`,
  :func:`load_weights`, :func:`read_metadata`) and anyone else's checkpoint;
* :mod:`superres.models.catalog` -- the zoo (:data:`WEIGHTS`, :class:`PretrainedWeights`, the
  default model per scale);
* :mod:`superres.models.realism` -- blending a GAN model with its PSNR parent.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

import torch
from torch import nn

from superres.errors import (
    IncompatibleWeightsError,
    MissingWeightsError,
    SuperresError,
    UnknownModelError,
    UnsupportedScaleError,
)
from superres.models.catalog import (
    DEFAULT_MODEL,
    DEFAULT_MODELS,
    PACKAGE_WEIGHTS_DIR,
    WEIGHTS,
    PretrainedWeights,
    default_model,
    get_pretrained,
    list_pretrained,
    pretrained_path,
    register_pretrained,
)
from superres.models.descriptor import describe_network
from superres.models.realism import (
    REALISM_SPACES,
    OutputBlend,
    RealismSpace,
    blend_outputs,
    check_realism_space,
    check_strength,
    interpolate_models,
)
from superres.models.weights_check import meta_model
from superres.models.weights_file import (
    FORMAT,
    PathLike,
    load_weights,
    read_metadata,
    save_weights,
)
from superres.registry import builder_target

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODELS",
    "FORMAT",
    "PACKAGE_WEIGHTS_DIR",
    "REALISM_SPACES",
    "WEIGHTS",
    "OutputBlend",
    "PretrainedWeights",
    "RealismSpace",
    "blend_outputs",
    "default_model",
    "get_pretrained",
    "list_pretrained",
    "load_model",
    "load_weights",
    "pretrained_path",
    "read_metadata",
    "register_pretrained",
    "save_weights",
]


def load_model(
    model: str | None = None,
    *,
    weights: PathLike | None = None,
    scale: int | None = None,
    map_location: str | torch.device = "cpu",
    realism: float | None = None,
    realism_space: RealismSpace | None = None,
    denoise: float | None = None,
    denoise_weights: PathLike | None = None,
) -> nn.Module:
    """The model a user asked for by name and/or weights file, in eval mode (the CLI's loader).

    * ``weights`` given: the file's model (see :func:`load_weights`); ``model``, when also given,
      must name the file's architecture (or a catalog entry of it), ``scale`` its scale.
    * a catalog name (:data:`WEIGHTS`): its pretrained weights, at its scale.
    * a registry name (:func:`superres.list_models`): only parameter-free models (``bicubic``),
      at ``scale`` (default 4); a learned architecture without weights raises
      :class:`MissingWeightsError` rather than upscale with random weights.

    ``realism`` (catalog GAN models only): blend the GAN model with its PSNR-oriented parent; 1 is
    the GAN model as trained. ``realism_space`` says how: ``"weights"`` (:func:`interpolate_models`)
    or ``"pixels"`` (:func:`blend_outputs`); ``None``: the entry's measured choice
    (:attr:`PretrainedWeights.realism_space`).

    ``denoise`` (real-world models): network interpolation between the model (1, full denoising)
    and its weak-degradation variant (0, keeps more noise and detail), as realesr-general-x4v3's
    ``-dn``: the catalog entry's :attr:`PretrainedWeights.weak_variant`, or ``denoise_weights``
    (e.g. ``realesr-general-wdn-x4v3.pth`` beside ``weights=realesr-general-x4v3.pth``).

    Raises:
        UnknownModelError: ``model`` is neither registered nor in the catalog (close matches are
            suggested). UnsupportedScaleError, IncompatibleWeightsError, MissingWeightsError, and
            the file errors of :func:`load_weights`.
    """
    if denoise is not None or denoise_weights is not None:
        if realism is not None:
            raise SuperresError(
                "realism and denoise cannot be combined: realism blends a GAN model with its "
                "PSNR parent, denoise a real-world model with its weak variant; pass one"
            )
        return _load_denoise(model, weights, denoise_weights, scale, map_location, denoise)
    if realism is not None:
        return _load_blend(model, weights, scale, map_location, realism, realism_space)
    if realism_space is not None:
        raise SuperresError(
            "a realism space (--realism-space, realism_space=) needs a realism value "
            "(--realism R, realism=R) to blend a GAN model with its parent"
        )
    from superres.models import MODELS

    if model is not None and model not in MODELS and model not in WEIGHTS:
        raise UnknownModelError(model, [*MODELS, *WEIGHTS])
    if weights is not None:
        return _load_file(model, weights, scale, map_location)
    if model is None:
        raise SuperresError(
            "no model given: pass a model name (see `superres models`) or a weights file"
        )
    if model in WEIGHTS:
        return _load_pretrained(WEIGHTS.get(model), scale, map_location)
    return _load_parameter_free(model, scale, map_location)


def _load_blend(
    model: str | None,
    weights: PathLike | None,
    scale: int | None,
    map_location: str | torch.device,
    realism: float,
    realism_space: RealismSpace | None,
) -> nn.Module:
    """A catalog GAN model blended with its PSNR parent (``realism``, ``realism_space``)."""
    gan_names = [n for n in WEIGHTS if WEIGHTS.get(n).parent]
    if model is None or weights is not None or model not in WEIGHTS:
        raise SuperresError(
            "realism applies to a shipped GAN model and its PSNR parent; pass --model with "
            f"one of {', '.join(gan_names)} (and no --weights)"
        )
    entry = WEIGHTS.get(model)
    if entry.parent is None:
        raise SuperresError(
            f"{entry.name!r} is not a GAN model with a PSNR parent, so it has no realism "
            f"setting; use one of {', '.join(gan_names)}"
        )
    space = check_realism_space(entry.realism_space if realism_space is None else realism_space)
    textured = _load_pretrained(entry, scale, map_location)
    smooth = _load_pretrained(WEIGHTS.get(entry.parent), scale, map_location)
    if space == "pixels":
        return blend_outputs(smooth, textured, realism).eval()
    return interpolate_models(smooth, textured, realism).eval()


def _load_denoise(
    model: str | None,
    weights: PathLike | None,
    weak_weights: PathLike | None,
    scale: int | None,
    map_location: str | torch.device,
    denoise: float | None,
) -> nn.Module:
    """A real-world model blended with its weak-degradation variant (``denoise``); both
    sources are known to exist before either file is read."""
    if denoise is None:
        raise SuperresError(
            "denoise weights (--denoise-weights, denoise_weights=) need a strength "
            "(--denoise S, denoise=S in [0, 1]) to blend with"
        )
    denoise = check_strength(denoise, "denoise")
    entry = (
        WEIGHTS.get(model) if weights is None and model is not None and model in WEIGHTS else None
    )
    weak_entry = entry.weak_variant if entry is not None else None
    if (weights is None and entry is None) or (weak_weights is None and weak_entry is None):
        shipped = [n for n in WEIGHTS if WEIGHTS.get(n).weak_variant]
        choices = f"one of {', '.join(shipped)}" if shipped else "none ships with superres yet"
        raise SuperresError(
            "denoise blends a real-world model with its weak-degradation variant: pass --weights "
            "FILE with --denoise-weights WEAK_FILE (e.g. realesr-general-x4v3.pth and "
            f"realesr-general-wdn-x4v3.pth), or a shipped real-world model ({choices})"
        )
    if weights is not None:
        strong = _load_file(model, weights, scale, map_location)
    else:
        assert entry is not None  # checked above
        strong = _load_pretrained(entry, scale, map_location)
    if weak_weights is not None:
        weak = load_weights(weak_weights, map_location=map_location, scale=scale)
    else:
        assert weak_entry is not None  # checked above
        weak = _load_pretrained(WEIGHTS.get(weak_entry), scale, map_location)
    return interpolate_models(
        weak,
        strong,
        denoise,
        pair="denoise needs a real-world model and its weak-degradation variant of one network",
    ).eval()


def _load_file(
    model: str | None, weights: PathLike, scale: int | None, map_location: str | torch.device
) -> nn.Module:
    """The model of a weights file; ``model``, when given, must name its architecture."""
    net = load_weights(weights, map_location=map_location, scale=scale)
    if model is None:
        return net
    wanted = WEIGHTS.get(model).architecture if model in WEIGHTS else model
    return _holding(
        net,
        lambda found: wanted.lower() == found or _family(wanted) is _family(found),
        lambda found: (
            f"weights file {str(weights)!r} holds a {found} model, not {model!r}; leave "
            f"out the model name (the file says what it is) or pass {model} weights"
        ),
    )


def _load_pretrained(
    entry: PretrainedWeights, scale: int | None, map_location: str | torch.device
) -> nn.Module:
    """The catalog entry's weights, checked to hold its architecture at its scale."""
    if scale is not None and scale != entry.scale:
        raise UnsupportedScaleError(
            f"pretrained model {entry.name!r} upscales x{entry.scale}, not x{scale}; drop "
            "the scale or pick weights for that scale"
        )
    path = pretrained_path(entry)
    return _holding(
        load_weights(path, map_location=map_location, scale=entry.scale),
        lambda found: found == entry.architecture,
        lambda found: (
            f"pretrained model {entry.name!r}: {path} holds a {found} model, but the "
            f"catalog says {entry.architecture}; reinstall superres or delete the cached file"
        ),
    )


def _holding(
    net: nn.Module, accepts: Callable[[str], bool], mismatch: Callable[[str], str]
) -> nn.Module:
    """``net`` if ``accepts`` its architecture, else :class:`IncompatibleWeightsError` with the
    message ``mismatch`` writes for the architecture found."""
    found = str(describe_network(net).architecture)
    if not accepts(found):
        raise IncompatibleWeightsError(mismatch(found))
    return net


def _load_parameter_free(
    model: str, scale: int | None, map_location: str | torch.device
) -> nn.Module:
    """A registered model without parameters (``bicubic``); a learned one needs weights."""
    from superres.models import MODELS, check_scale, create_model

    name = MODELS.get(model).name
    resolved = 4 if scale is None else scale
    check_scale(name, resolved)
    if _has_parameters(name, resolved):
        pretrained = [n for n in WEIGHTS if WEIGHTS.get(n).architecture == name]
        hint = f" or use pretrained weights: {', '.join(pretrained)}" if pretrained else ""
        raise MissingWeightsError(
            f"model {name!r} has no trained weights yet; pass a weights file for it "
            f"(weights=FILE, --weights FILE: .safetensors or .pth){hint}"
        )
    return create_model(name, scale=resolved).to(map_location).eval()


def _family(name: str) -> object:
    """The class an architecture name builds (``edsr`` and ``edsr-baseline`` are both EDSR)."""
    from superres.models import get_model_spec

    builder = builder_target(get_model_spec(name).builder)
    if isinstance(builder, type):
        return builder
    try:
        return typing.get_type_hints(builder).get("return", builder)
    except (NameError, TypeError):
        return builder


def _has_parameters(name: str, scale: int) -> bool:
    return any(True for _ in meta_model(name, scale=scale).parameters())
