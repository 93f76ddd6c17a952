"""Our weight-file format: writing it, reading it back, and reading anyone else's checkpoint.

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
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.errors import (
    IncompatibleWeightsError,
    SuperresError,
    UnsupportedScaleError,
    WeightsReadError,
)
from superres.io.files import atomic_write
from superres.models.checkpoint import unwrap_state_dict
from superres.models.convert import convert_state_dict
from superres.models.descriptor import describe_network, record_network
from superres.models.weights_check import (
    TensorTable,
    check_finite,
    check_weights_path,
    compare_tables,
    expected_network,
    looks_like_safetensors,
    safetensors_table,
    screen_table,
    sniff_format,
    state_table,
)

__all__ = [
    "FORMAT",
    "PathLike",
    "extra_metadata",
    "load_weights",
    "read_metadata",
    "resave_weights",
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
PathLike = str | os.PathLike[str]


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

    target = Path(path).expanduser()
    if not target.parent.is_dir():
        raise SuperresError(
            f"cannot save weights to {str(target)!r}: folder {str(target.parent)!r} does not "
            "exist; create it first"
        )
    if dtype is not None and dtype not in _STORAGE_DTYPES:
        allowed = ", ".join(f"torch.{name}" for name in _STORAGE_DTYPES.values())
        raise SuperresError(f"dtype must be None or one of {allowed}, got {dtype!r}")
    tensors = _storage_tensors(model, dtype)
    meta = _file_metadata(model, tensors, recipe=recipe, metrics=metrics, metadata=metadata)
    if target.suffix != ".safetensors":
        logger.warning("%s is written in the safetensors format; name it *.safetensors", target)
    with atomic_write(target) as handle:
        handle.write(save(tensors, metadata=meta))
    return target


def _storage_tensors(model: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The state dict on the CPU, contiguous, floating tensors in ``dtype`` (checked to fit)."""
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
    return tensors


def _file_metadata(
    model: nn.Module,
    tensors: Mapping[str, torch.Tensor],
    *,
    recipe: str | None,
    metrics: Mapping[str, float] | None,
    metadata: Mapping[str, object] | None,
) -> dict[str, str]:
    """The string metadata of the file: the reserved keys, then the caller's own."""
    from superres._version import __version__

    described = describe_network(model)
    config, arch = described.config, described.architecture
    if config is None or arch is None:
        raise SuperresError(
            f"cannot save a {type(model).__name__}: it does not record the arguments it was "
            "built with, so the file could not rebuild it; build it with superres.create_model() "
            "or a superres model class"
        )
    try:
        kwargs_json = json.dumps(dict(config), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise SuperresError(
            f"cannot save {arch}: its constructor arguments {config!r} are not JSON ({exc})"
        ) from None
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
    return meta


def resave_weights(
    source: PathLike,
    target: PathLike,
    *,
    dtype: torch.dtype | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write the model of weights file ``source`` to ``target`` again (e.g. as float16), keeping
    its recipe, metrics and own metadata; ``metadata`` adds entries or replaces them."""
    meta = read_metadata(source)
    return save_weights(
        load_weights(source),
        target,
        dtype=dtype,
        recipe=meta.get("recipe"),
        metrics=json.loads(meta["metrics"]) if "metrics" in meta else None,
        metadata={**extra_metadata(meta), **(metadata or {})},
    )


# --- reading files --------------------------------------------------------------------------------


def _read_torch(path: Path, *, mmap: bool) -> object:
    """``torch.load(weights_only=True)``; zip checkpoints memory-mapped (no copy of their data)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(exc))
        if found is not None:
            raise IncompatibleWeightsError(
                f"weights file {str(path)!r} holds a pickled Python object (unsupported GLOBAL "
                f"{found.group(1)}), not only tensors; superres loads .pth files with "
                "torch.load(weights_only=True) and never unpickles arbitrary objects (that can "
                "run code). Re-save it as a plain state dict (torch.save(model.state_dict(), "
                "'weights.pth')) or as safetensors, where you trust the file and have its code"
            ) from None
        # torch's first sentence only: the rest of its message advises weights_only=False.
        detail = str(exc).splitlines()[0].split(". ")[0] if str(exc) else "no details"
        raise WeightsReadError(
            path,
            f"not a PyTorch checkpoint or safetensors file, or truncated/corrupt "
            f"({type(exc).__name__}: {detail}); get the file again",
        ) from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file whose header :func:`safetensors_table` checked."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsReadError(
            path, f"not a valid safetensors file, truncated or corrupt ({exc}); get it again"
        ) from None


def read_metadata(path: PathLike) -> dict[str, str]:
    """The string metadata of a safetensors file (``{}`` for other formats); tensors unread."""
    file = Path(path).expanduser()
    size = check_weights_path(file)
    with file.open("rb") as handle:
        if not looks_like_safetensors(handle.read(16), size):
            return {}
    return safetensors_table(file, size)[1]


# --- loading --------------------------------------------------------------------------------------


def _own_config(metadata: Mapping[str, str], source: str) -> tuple[str, dict[str, Any]]:
    """The architecture and the (unchecked) constructor arguments our metadata records."""
    if metadata.get("format") != FORMAT:
        raise IncompatibleWeightsError(
            f"{source} is in format {metadata.get('format')!r}, written by a newer superres; "
            f"this version reads {FORMAT!r}. Upgrade superres"
        )
    try:
        arch = metadata["architecture"]
        kwargs = json.loads(metadata["kwargs"])
        if not isinstance(kwargs, dict):
            raise TypeError(f"kwargs is a JSON {type(kwargs).__name__}, not an object")
        if "scale" not in kwargs:
            kwargs["scale"] = int(metadata["scale"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        detail = str(exc) if len(str(exc)) <= 80 else str(exc)[:77] + "..."
        raise IncompatibleWeightsError(
            f"{source} has broken superres metadata ({type(exc).__name__}: {detail}); save it "
            "again with superres.save_weights"
        ) from None
    return arch, kwargs


@dataclass(frozen=True)
class _Checked:
    """A file's network, checked against its tensors, not built yet."""

    architecture: str
    kwargs: dict[str, Any]
    state: dict[str, torch.Tensor]
    layout: str
    info: dict[str, str]


def _check_own(file: Path, metadata: dict[str, str], table: TensorTable, source: str) -> _Checked:
    """Our format: metadata -> bounded arguments -> meta network vs the header, then tensors."""
    arch, raw = _own_config(metadata, source)
    kwargs, expected = expected_network(arch, raw, source)
    compare_tables(expected, table, f"{source} (superres layout) does not fit {arch}")
    return _Checked(arch, kwargs, _read_safetensors(file), "superres", dict(metadata))


def _check_foreign(
    loaded: object, size: int, scale: int | None, info: dict[str, str], source: str
) -> _Checked:
    """Anyone's checkpoint: its layout read off the shapes, bounded, compared with the network."""
    if isinstance(loaded, Mapping) and not loaded:
        raise IncompatibleWeightsError(f"{source} holds no tensors")
    state = unwrap_state_dict(loaded, source=source)
    screen_table(state_table(state, source), size, source)
    try:
        converted = convert_state_dict(state, scale=scale, source=source)
    except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError, RuntimeError) as exc:
        if isinstance(exc, SuperresError):
            raise
        raise IncompatibleWeightsError(
            f"{source}: its tensors do not form a network superres knows ({type(exc).__name__}: "
            f"{exc}); check that it is an SR generator's state dict"
        ) from None
    arch, layout = converted.architecture, converted.layout
    kwargs, expected = expected_network(arch, converted.kwargs, source)
    found = state_table(converted.state_dict, source)
    compare_tables(expected, found, f"{source} ({layout} layout) does not fit {arch}")
    return _Checked(arch, kwargs, converted.state_dict, layout, {"layout": layout, **info})


def _check_file(file: Path, scale: int | None, source: str) -> _Checked:
    """Every check of :mod:`superres.models.weights_check`, in its order; nothing built."""
    size = check_weights_path(file)
    with file.open("rb") as handle:
        head = handle.read(16)
    kind = sniff_format(file, head, size)
    if kind != "safetensors":
        return _check_foreign(_read_torch(file, mmap=kind == "zip"), size, scale, {}, source)
    table, metadata = safetensors_table(file, size)
    screen_table(table, size, source)
    if metadata.get("format", "").startswith("superres/"):
        return _check_own(file, metadata, table, source)
    return _check_foreign(_read_safetensors(file), size, scale, metadata, source)


def load_weights(
    path: PathLike, *, map_location: str | torch.device = "cpu", scale: int | None = None
) -> nn.Module:
    """Rebuild the model stored in a weights file, in eval mode.

    Our files rebuild from their own metadata; anything else goes through
    :func:`superres.models.convert.convert_state_dict` (BasicSR, Real-ESRGAN, ESRGAN, EDSR,
    leftthomas/SRGAN layouts, with ``params_ema``/``state_dict``/... containers and ``module.``
    prefixes). The file is untrusted: its hyperparameters, tensor names, shapes, dtypes and sizes
    are checked (:mod:`superres.models.weights_check`) before the network is built.

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
        WeightsNotFoundError: no such file (or a folder, a symlink loop). WeightsReadError:
            empty, truncated, corrupt, not a regular file, an image or an ONNX export.
        IncompatibleWeightsError: pickled objects, an unknown layout, or tensors that do not fit
            (the message names the key and both shapes); its subclass InvalidWeightsError:
            hyperparameters out of bounds, tensors declaring more bytes than the file has,
            non-float or non-finite tensors.
        UnsupportedScaleError: ``scale`` differs from the file's (the message names the file's).
    """
    file = Path(path).expanduser()
    source = f"weights file {str(file)!r}"
    checked = _check_file(file, scale, source)
    arch, kwargs = checked.architecture, checked.kwargs
    file_scale = kwargs.get("scale")
    if scale is not None and scale != file_scale:
        raise UnsupportedScaleError(
            f"{source} holds a x{file_scale} {arch} model, but scale {scale} was asked for; "
            f"drop the scale to upscale x{file_scale}, or pass weights trained for x{scale}"
        )
    check_finite(checked.state, source)
    from superres.models import create_model

    model = create_model(arch, **kwargs)  # the checks above built it on the meta device already
    model.load_state_dict(checked.state, strict=True)
    if checked.layout != "superres":
        logger.info("%s: recognised the %s layout -> %s %s", file, checked.layout, arch, kwargs)
    record_network(model, weights_metadata=checked.info)
    return model.to(map_location).eval()
