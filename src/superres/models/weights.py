"""Weight files: our checkpoint format, loading anyone's checkpoint, and the pretrained catalog.

**Our format** (``format = "superres/1"``) is a `safetensors <https://github.com/huggingface/
safetensors>`_ file: the model's state dict (tensors only; loading it runs no code) plus string
metadata from which the model rebuilds itself:

==================== ==============================================================================
``format``           ``"superres/1"``
``architecture``     registry name, e.g. ``"srresnet"`` (see :func:`superres.list_models`)
``kwargs``           JSON of every constructor argument: ``{"scale": 4, "num_blocks": 16, ...}``
``scale``            the upscaling factor (also in ``kwargs``), e.g. ``"4"``
``in_channels``      ``"3"`` (RGB) or ``"1"`` (Y/gray)
``dtype``            the storage dtype of the floating tensors: ``"float32"`` or ``"float16"``
``superres_version`` the version that wrote the file
``recipe``           optional: the training recipe (e.g. ``"configs/srresnet_x4.yaml"``)
``metrics``          optional: JSON of measured scores, e.g. ``{"set5_x4_psnr_y": 32.05}``
anything else        the caller's own ``metadata=`` (strings)
==================== ==============================================================================

Shipped weights are stored as float16 (half the size) and loaded back into float32 models.

**Other checkpoints** (``.pth``/``.pt``/``.ckpt``, or safetensors without our metadata) are read
with ``torch.load(..., weights_only=True)`` only: a file that needs arbitrary unpickling (a
pickled ``nn.Module`` or any other Python object) is refused, never executed. Their layout
(BasicSR, Real-ESRGAN, original ESRGAN, EDSR-PyTorch, leftthomas/SRGAN, ...) is recognised by
:mod:`superres.models.convert`. The file format is recognised from its content, not its name.

**The catalog** :data:`WEIGHTS` maps names (``"srresnet-x4"``) to pretrained weights: the
architecture, scale and recipe, and the file, an asset of :mod:`superres.assets` (``zoo/<name>``,
shipped as ``superres/weights/<name>.safetensors``, sha256-pinned). :func:`load_model` is the one
entry point the CLI and :func:`superres.upscale` use: a catalog name, a registry name
(parameter-free models only) or a weights file.
"""

from __future__ import annotations

import json
import logging
import math
import numbers
import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import torch
from torch import nn

from superres.assets import PACKAGE_DIR, Asset, asset_path, get_asset
from superres.errors import (
    IncompatibleWeightsError,
    MissingWeightsError,
    SuperresError,
    UnknownModelError,
    UnknownWeightsError,
    UnsupportedScaleError,
    WeightsNotFoundError,
    WeightsReadError,
)
from superres.io.files import atomic_write
from superres.models.convert import convert_state_dict, unwrap_state_dict
from superres.models.descriptor import describe_network, record_network
from superres.registry import Registry

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

logger = logging.getLogger(__name__)

FORMAT = "superres/1"
_RESERVED = (
    "format",
    "architecture",
    "kwargs",
    "scale",
    "in_channels",
    "dtype",
    "superres_version",
    "recipe",
    "metrics",
)


def extra_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """The entries of a weights file's metadata beyond the reserved ones that :func:`save_weights`
    writes itself, i.e. what to pass as its ``metadata=`` to re-save the file faithfully."""
    return {k: v for k, v in metadata.items() if k not in _RESERVED}


_STORAGE_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_FLOAT16_MAX = 65504.0
# Weights shipped inside the package; a module global so that tests can point it elsewhere.
PACKAGE_WEIGHTS_DIR = PACKAGE_DIR / "weights"

PathLike = str | os.PathLike[str]

#: How ``realism`` blends a GAN model with its PSNR parent: their weights (network interpolation,
#: one network's cost) or their output images (two networks' cost; PSNR-Y never below the lower
#: end's, since the squared error is convex).
RealismSpace = Literal["weights", "pixels"]
REALISM_SPACES: tuple[RealismSpace, ...] = typing.get_args(RealismSpace)


# --- the catalog ----------------------------------------------------------------------------------


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
            architecture, towards which ``realism`` blends (see :func:`load_model`).
        realism_space: how ``realism`` blends this GAN model with its parent by default, chosen
            from the measured slider (``scripts/realism_curve.py``): ``"weights"`` where network
            interpolation trades fidelity for texture smoothly, ``"pixels"`` where it does not.
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


# --- saving ---------------------------------------------------------------------------------------


def save_weights(
    model: nn.Module,
    path: PathLike,
    *,
    dtype: torch.dtype | None = None,
    recipe: str | None = None,
    metrics: Mapping[str, float] | None = None,
    metadata: Mapping[str, object] | None = None,
) -> Path:
    """Write ``model`` to ``path`` in our safetensors format (atomically; see the module).

    Args:
        model: a superres model: built by :func:`superres.create_model`, by a model class, or
            loaded by :func:`load_weights` (they record ``arch_name`` and ``config``).
        path: the file to write, conventionally ``*.safetensors``; its folder must exist.
        dtype: storage dtype of the floating-point tensors: ``None`` (as they are, float32),
            ``torch.float16`` (half the size; what shipped weights use) or ``torch.bfloat16``.
            Loading converts back to the model's float32.
        recipe: the training recipe, stored as ``recipe``.
        metrics: measured scores, stored as JSON under ``metrics``.
        metadata: more string metadata (non-strings are stored as JSON); the reserved keys
            above cannot be overridden.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from safetensors.torch import save

    from superres._version import __version__

    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise SuperresError(
            f"cannot save weights to {str(target)!r}: folder {str(target.parent)!r} does not "
            "exist; create it first"
        )
    described = describe_network(model)
    config, arch = described.config, described.architecture
    if config is None or arch is None:
        raise SuperresError(
            f"cannot save a {type(model).__name__}: it does not record the arguments it was "
            "built with, so the file could not rebuild it; build it with superres.create_model() "
            "or a superres model class"
        )
    if dtype is not None and dtype not in _STORAGE_DTYPES:
        allowed = ", ".join(f"torch.{name}" for name in _STORAGE_DTYPES.values())
        raise SuperresError(f"dtype must be None or one of {allowed}, got {dtype!r}")
    try:
        kwargs_json = json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SuperresError(
            f"cannot save {arch}: its constructor arguments {config!r} are not JSON ({exc})"
        ) from None

    tensors: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        tensor = value.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            if dtype == torch.float16 and tensor.numel():
                peak = float(tensor.abs().max())
                if not math.isfinite(peak) or peak > _FLOAT16_MAX:
                    raise SuperresError(
                        f"cannot store {key!r} as float16: its largest magnitude {peak:g} "
                        f"exceeds {_FLOAT16_MAX:g}; save with dtype=None (float32)"
                    )
            tensor = tensor.to(dtype)
        tensors[key] = tensor.contiguous()
    storage = {v.dtype for v in tensors.values() if v.is_floating_point()}

    meta: dict[str, str] = {
        "format": FORMAT,
        "architecture": arch,
        "kwargs": kwargs_json,
        "scale": str(config.get("scale", described.scale)),
        "in_channels": str(config.get("in_channels", described.in_channels)),
        "dtype": ",".join(sorted(_STORAGE_DTYPES.get(d, str(d)) for d in storage)) or "none",
        "superres_version": __version__,
    }
    if recipe is not None:
        meta["recipe"] = str(recipe)
    if metrics is not None:
        meta["metrics"] = json.dumps(dict(metrics), sort_keys=True)
    for key, value in (metadata or {}).items():
        if key in _RESERVED:
            raise SuperresError(
                f"metadata key {key!r} is reserved (reserved: {', '.join(_RESERVED)}); "
                "pass recipe= and metrics= as arguments, and pick another name for your own"
            )
        meta[str(key)] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    if target.suffix != ".safetensors":
        logger.warning("%s is written in the safetensors format; name it *.safetensors", target)
    with atomic_write(target) as handle:
        handle.write(save(tensors, metadata=meta))
    return target


# --- reading files --------------------------------------------------------------------------------


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    """safetensors: an 8-byte little-endian header length, then the JSON header."""
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + header_len <= size


def _check_file(path: Path) -> int:
    if path.is_dir():
        raise WeightsNotFoundError(path, "it is a folder; pass the weights file inside it")
    if not path.is_file():
        raise WeightsNotFoundError(path, "the file does not exist; check the path")
    size = path.stat().st_size
    if size == 0:
        raise WeightsReadError(
            path, "the file is empty (0 bytes), e.g. an interrupted download; get it again"
        )
    return size


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsReadError(
            path, f"not a valid safetensors file, truncated or corrupt ({exc}); get it again"
        ) from exc
    return tensors, metadata


def _read_torch(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found is not None:
            raise IncompatibleWeightsError(
                f"weights file {str(path)!r} holds a pickled Python object ({found.group(1)}), "
                "not only tensors; superres loads .pth files with torch.load(weights_only=True) "
                "and never unpickles arbitrary objects (that can run code). Re-save it as a plain "
                "state dict (torch.save(model.state_dict(), 'weights.pth')) or as safetensors, "
                "where you trust the file and have its code"
            ) from None
        # torch's first sentence only: the rest of its message advises weights_only=False.
        detail = str(exc).splitlines()[0].split(". ")[0] if str(exc) else "no details"
        raise WeightsReadError(
            path,
            f"not a PyTorch checkpoint or safetensors file, or truncated/corrupt "
            f"({type(exc).__name__}: {detail}); get the file again",
        ) from exc


#: Leading bytes of the image formats a user may pass as weights by mistake.
_IMAGE_SIGNATURES: Final[dict[bytes, str]] = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _read(path: Path) -> tuple[object, dict[str, str] | None]:
    """The loaded object and, for safetensors files, their metadata."""
    size = _check_file(path)
    with path.open("rb") as handle:
        head = handle.read(16)
    if _looks_like_safetensors(head, size) or path.suffix == ".safetensors":
        return _read_safetensors(path)
    image = next((f for sig, f in _IMAGE_SIGNATURES.items() if head.startswith(sig)), None)
    if image is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        image = "WebP"
    if image is not None:
        raise WeightsReadError(
            path,
            f"this is a {image} image, not a weights file; weights are .safetensors or .pth "
            "files (images go to `superres upscale` as its inputs)",
        )
    return _read_torch(path), None


def read_metadata(path: PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (``{}`` for other formats); tensors unread."""
    from safetensors import SafetensorError, safe_open

    file = Path(path).expanduser()
    size = _check_file(file)
    with file.open("rb") as handle:
        if not _looks_like_safetensors(handle.read(16), size):
            return {}
    try:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            return dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsReadError(file, f"corrupt safetensors header ({exc})") from exc


# --- loading --------------------------------------------------------------------------------------


def _tuples(value: object) -> object:
    # JSON has no tuples; every sequence argument of our constructors is a tuple.
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _own_config(metadata: Mapping[str, str], source: str) -> tuple[str, dict[str, Any]]:
    if metadata.get("format") != FORMAT:
        raise IncompatibleWeightsError(
            f"{source} is in format {metadata.get('format')!r}, written by a newer superres; "
            f"this version reads {FORMAT!r}. Upgrade superres"
        )
    try:
        arch = metadata["architecture"]
        kwargs = json.loads(metadata["kwargs"])
        if not isinstance(kwargs, dict):
            raise TypeError("kwargs is not a JSON object")
        if "scale" not in kwargs:
            kwargs["scale"] = int(metadata["scale"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IncompatibleWeightsError(
            f"{source} has broken superres metadata ({type(exc).__name__}: {exc}); save it "
            "again with superres.save_weights"
        ) from None
    return arch, {str(k): _tuples(v) for k, v in kwargs.items()}


def _build(arch: str, kwargs: dict[str, Any], source: str) -> nn.Module:
    from superres.models import create_model

    try:
        return create_model(arch, **kwargs)
    except SuperresError as exc:
        raise IncompatibleWeightsError(
            f"{source} describes a {arch} model with {kwargs} that this superres cannot build "
            f"({exc}); a newer superres may"
        ) from None


def _load_state(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str, layout: str
) -> None:
    """``load_state_dict(strict=True)`` with errors that name the keys and both shapes."""
    expected = model.state_dict()
    what = f"{source} ({layout} layout) does not fit {describe_network(model).architecture}"
    for key, tensor in expected.items():
        if key in state and tuple(state[key].shape) != tuple(tensor.shape):
            raise IncompatibleWeightsError(
                f"{what}: {key!r} has shape {tuple(state[key].shape)} in the file but "
                f"{tuple(tensor.shape)} in the model"
            )
    # Checkpoints older than PyTorch 0.4.1 have no num_batches_tracked; BN fills in 0 itself.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            more = " ..." if len(unexpected) > 5 else ""
            parts.append(f"unexpected {', '.join(unexpected[:5])}{more}")
        raise IncompatibleWeightsError(f"{what}: {'; '.join(parts)}")
    model.load_state_dict(state, strict=True)


def load_weights(
    path: PathLike, *, map_location: str | torch.device = "cpu", scale: int | None = None
) -> nn.Module:
    """Rebuild the model stored in a weights file, in eval mode.

    Our files rebuild from their own metadata; anything else goes through
    :func:`superres.models.convert.convert_state_dict` (BasicSR, Real-ESRGAN, ESRGAN, EDSR,
    leftthomas/SRGAN layouts, with ``params_ema``/``state_dict``/... containers and ``module.``
    prefixes).

    Args:
        path: a ``.safetensors`` file, or a ``.pth``/``.pt``/``.ckpt`` file of tensors.
        map_location: the device of the returned model.
        scale: the expected scale: checked against the file's, and used for files that do not
            record one (plain SRCNN state dicts).

    Returns:
        The model in eval mode; its :func:`~superres.models.descriptor.describe_network` holds
        ``architecture``/``config`` (see :func:`save_weights`) and ``weights_metadata`` (the
        file's metadata, or ``{"layout": ...}`` for other formats).

    Raises:
        WeightsNotFoundError: no such file. WeightsReadError: empty, truncated or corrupt.
        IncompatibleWeightsError: pickled objects, an unknown layout, or tensors that do not fit
            (the message names the key and both shapes).
        UnsupportedScaleError: ``scale`` differs from the file's (the message names the file's).
    """
    file = Path(path).expanduser()
    source = f"weights file {str(file)!r}"
    loaded, metadata = _read(file)
    if metadata is not None and metadata.get("format", "").startswith("superres/"):
        arch, kwargs = _own_config(metadata, source)
        state = unwrap_state_dict(loaded, source=source) if loaded else {}
        layout, info = "superres", dict(metadata)
    else:
        if isinstance(loaded, Mapping) and not loaded:
            raise IncompatibleWeightsError(f"{source} holds no tensors")
        converted = convert_state_dict(
            unwrap_state_dict(loaded, source=source), scale=scale, source=source
        )
        arch, kwargs, state = converted.architecture, converted.kwargs, converted.state_dict
        layout, info = converted.layout, {"layout": converted.layout, **(metadata or {})}
        logger.info("%s: recognised the %s layout -> %s %s", file, layout, arch, kwargs)
    file_scale = kwargs.get("scale")
    if scale is not None and scale != file_scale:
        raise UnsupportedScaleError(
            f"{source} holds a x{file_scale} {arch} model, but scale {scale} was asked for; "
            f"drop the scale to upscale x{file_scale}, or pass weights trained for x{scale}"
        )
    model = _build(arch, kwargs, source)
    _load_state(model, state, source, layout)
    record_network(model, weights_metadata=info)
    return model.to(map_location).eval()


def _family(name: str) -> object:
    """The class an architecture name builds (``edsr`` and ``edsr-baseline`` are both EDSR)."""
    from superres.models import get_model_spec

    builder = get_model_spec(name).builder
    if isinstance(builder, type):
        return builder
    try:
        return typing.get_type_hints(builder).get("return", builder)
    except (NameError, TypeError):
        return builder


def _has_parameters(name: str, scale: int) -> bool:
    from superres.models import create_model

    with torch.device("meta"):  # the real architecture, no memory, no init
        return any(True for _ in create_model(name, scale=scale).parameters())


def interpolate_models(smooth: nn.Module, textured: nn.Module, realism: float) -> nn.Module:
    """Network interpolation (Wang et al., ESRGAN, section 3.4): ``(1 - r) * smooth + r * textured``
    for every floating-point parameter and buffer; ``textured`` is updated in place and returned.

    ``realism`` 0 gives the PSNR-oriented model, 1 the GAN model; values in between trade fidelity
    for texture without retraining. Both networks must be the same architecture.

    Raises:
        SuperresError: ``realism`` outside [0, 1]. IncompatibleWeightsError: different networks.
    """
    realism = _check_realism(realism)
    a, b = smooth.state_dict(), textured.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise IncompatibleWeightsError(
            "cannot interpolate networks of different architectures or sizes; realism needs a "
            "GAN model and its PSNR-oriented parent"
        )
    blended = {
        k: torch.lerp(a[k].float(), b[k].float(), float(realism)).to(b[k].dtype)
        if b[k].is_floating_point()
        else b[k]
        for k in b
    }
    textured.load_state_dict(blended)
    return textured


class OutputBlend(nn.Module):
    """Image interpolation of two networks: ``(1 - realism) * smooth(x) + realism * textured(x)``.

    For a GAN model whose weights do not interpolate smoothly with its parent's. Inference only:
    it has no constructor record, so :func:`save_weights` refuses it (save either network).

    Attributes:
        smooth, textured: the PSNR-oriented parent and the GAN model.
        realism: the blend factor in [0, 1].
        scale, in_channels, size_multiple: as the networks' (the multiple is their lcm).
    """

    def __init__(self, smooth: nn.Module, textured: nn.Module, realism: float) -> None:
        super().__init__()
        smooth_net, textured_net = describe_network(smooth), describe_network(textured)
        shape = [(d.scale, d.in_channels) for d in (smooth_net, textured_net)]
        if shape[0] != shape[1]:
            raise IncompatibleWeightsError(
                f"cannot blend the outputs of networks of different scales or channels {shape}; "
                "realism needs a GAN model and its PSNR-oriented parent"
            )
        self.smooth = smooth
        self.textured = textured
        self.realism = _check_realism(realism)
        self.scale = textured_net.scale
        self.in_channels = textured_net.in_channels
        self.size_multiple = math.lcm(smooth_net.size_multiple, textured_net.size_multiple)
        # The architecture (both networks share it) selects the verified bf16 path; no "config".
        record_network(self, architecture=textured_net.architecture)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lerp(self.smooth(x), self.textured(x), self.realism)

    def extra_repr(self) -> str:
        return f"realism={self.realism}"


def _check_realism(realism: float) -> float:
    real = isinstance(realism, numbers.Real) and not isinstance(realism, bool)
    if not (real and 0.0 <= float(realism) <= 1.0):
        raise SuperresError(f"realism must be a number in [0, 1], got {realism!r}")
    return float(realism)


def blend_outputs(smooth: nn.Module, textured: nn.Module, realism: float) -> nn.Module:
    """Image interpolation (:class:`OutputBlend`); at 0 or 1 the one network itself."""
    r = _check_realism(realism)
    if r in (0.0, 1.0):
        return textured if r == 1.0 else smooth
    return OutputBlend(smooth, textured, r)


def load_model(
    model: str | None = None,
    *,
    weights: PathLike | None = None,
    scale: int | None = None,
    map_location: str | torch.device = "cpu",
    realism: float | None = None,
    realism_space: RealismSpace | None = None,
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

    Raises:
        UnknownModelError: ``model`` is neither registered nor in the catalog (close matches are
            suggested). UnsupportedScaleError, IncompatibleWeightsError, MissingWeightsError, and
            the file errors of :func:`load_weights`.
    """
    from superres.models import MODELS, check_scale, create_model

    if realism is not None:
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
        space = entry.realism_space if realism_space is None else realism_space
        if space not in REALISM_SPACES:
            raise SuperresError(
                f"realism space must be one of {', '.join(REALISM_SPACES)}, got {space!r}"
            )
        textured = load_model(entry.name, scale=scale, map_location=map_location)
        smooth = load_model(entry.parent, scale=scale, map_location=map_location)
        if space == "pixels":
            return blend_outputs(smooth, textured, realism).eval()
        return interpolate_models(smooth, textured, realism).eval()
    if realism_space is not None:
        raise SuperresError(
            "a realism space (--realism-space, realism_space=) needs a realism value "
            "(--realism R, realism=R) to blend a GAN model with its parent"
        )

    if model is not None and model not in MODELS and model not in WEIGHTS:
        raise UnknownModelError(model, [*MODELS, *WEIGHTS])
    if weights is not None:
        net = load_weights(weights, map_location=map_location, scale=scale)
        if model is not None:
            wanted = WEIGHTS.get(model).architecture if model in WEIGHTS else model
            found = str(describe_network(net).architecture)
            if wanted.lower() != found and _family(wanted) is not _family(found):
                raise IncompatibleWeightsError(
                    f"weights file {str(weights)!r} holds a {found} model, not {model!r}; leave "
                    f"out the model name (the file says what it is) or pass {model} weights"
                )
        return net
    if model is None:
        raise SuperresError(
            "no model given: pass a model name (see `superres models`) or a weights file"
        )
    if model in WEIGHTS:
        entry = WEIGHTS.get(model)
        if scale is not None and scale != entry.scale:
            raise UnsupportedScaleError(
                f"pretrained model {entry.name!r} upscales x{entry.scale}, not x{scale}; drop "
                "the scale or pick weights for that scale"
            )
        path = pretrained_path(entry)
        net = load_weights(path, map_location=map_location, scale=entry.scale)
        found = describe_network(net).architecture
        if found != entry.architecture:
            raise IncompatibleWeightsError(
                f"pretrained model {entry.name!r}: {path} holds a {found} model, but the catalog "
                f"says {entry.architecture}; reinstall superres or delete the cached file"
            )
        return net
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


# The model zoo: weights trained by this project's recipes (configs/zoo/) with scripts/train_zoo.py
# on T91 + BSD200, validated on Set5, shipped in superres/weights/ as float16 safetensors whose
# metadata holds the recipe, iterations, hardware and wall time. docs/models.md (generated by
# scripts/model_cards.py) has the measured tables.
_ZOO_DATA = "T91 + BSD200"
for _entry in (
    PretrainedWeights(
        name="srcnn-x4",
        architecture="srcnn",
        scale=4,
        summary=f"SRCNN 9-5-5 on Y, MSE, {_ZOO_DATA}, 14.4k iterations",
        asset=get_asset("zoo/srcnn-x4"),
        recipe="configs/zoo/srcnn_x4.yaml",
    ),
    PretrainedWeights(
        name="srresnet-x4",
        architecture="srresnet",
        scale=4,
        summary=f"SRResNet-16 (MSE), {_ZOO_DATA}, 19.4k iterations",
        asset=get_asset("zoo/srresnet-x4"),
        recipe="configs/zoo/srresnet_x4.yaml",
    ),
    PretrainedWeights(
        name="srresnet-x2",
        architecture="srresnet",
        scale=2,
        summary=f"SRResNet-16 (MSE) x2, {_ZOO_DATA}, 14.8k iterations",
        asset=get_asset("zoo/srresnet-x2"),
        recipe="configs/zoo/srresnet_x2.yaml",
    ),
    PretrainedWeights(
        name="edsr-baseline-x4",
        architecture="edsr-baseline",
        scale=4,
        summary=f"EDSR baseline 16x64 (L1), {_ZOO_DATA}, 16.3k iterations",
        asset=get_asset("zoo/edsr-baseline-x4"),
        recipe="configs/zoo/edsr_baseline_x4.yaml",
    ),
    PretrainedWeights(
        name="rrdbnet-6b-x4",
        architecture="rrdbnet",
        scale=4,
        summary=f"RRDBNet, 6 RRDB blocks (L1; ESRGAN's PSNR stage), {_ZOO_DATA}, 4.9k iterations",
        asset=get_asset("zoo/rrdbnet-6b-x4"),
        recipe="configs/zoo/rrdbnet_6b_x4.yaml",
    ),
    PretrainedWeights(
        name="srgan-x4",
        architecture="srresnet",
        scale=4,
        summary="SRGAN (SqueezeNet-1.1 perceptual + vanilla GAN, sub-pixel pattern guard) from "
        "srresnet-x4, 4.8k iterations",
        asset=get_asset("zoo/srgan-x4"),
        parent="srresnet-x4",
        realism_space="pixels",  # its weights do not blend smoothly (BENCHMARKS.md)
        recipe="configs/zoo/srgan_x4.yaml",
    ),
    PretrainedWeights(
        name="esrgan-6b-x4",
        architecture="rrdbnet",
        scale=4,
        summary="ESRGAN, 6 RRDB blocks (SqueezeNet-1.1 perceptual + RaGAN) from rrdbnet-6b-x4, "
        "1.8k iterations",
        asset=get_asset("zoo/esrgan-6b-x4"),
        parent="rrdbnet-6b-x4",
        recipe="configs/zoo/esrgan_6b_x4.yaml",
    ),
):
    register_pretrained(_entry)
