"""What a weights file may hold, checked before any network is built or any tensor materialised.

A weights file is untrusted input: its metadata or tensor shapes decide which network is built,
so :mod:`superres.models.weights_file` runs these checks first, in this order:

1. the path (:func:`check_weights_path`): a regular file, not empty; folders, FIFOs, devices and
   symlink loops are refused from ``os.stat`` alone, before anything is opened;
2. the format (:func:`sniff_format`): safetensors, a PyTorch checkpoint, or a refusal that says
   what the file is (an image, an ONNX export);
3. the tensor table, names -> (dtype, shape) (:func:`safetensors_table` reads a safetensors
   header, no tensor; :func:`state_table` reads loaded or memory-mapped tensors): floating-point
   dtypes only and at most as many declared bytes as the file has (:func:`screen_table`);
4. the hyperparameters against :data:`superres.models.limits.LIMITS`, then the network built on
   the ``meta`` device (no memory) and its state dict compared with the table: names, shapes and
   dtype kinds (:func:`expected_network`, :func:`compare_tables`);
5. the values (:func:`check_finite`): no NaN or infinity.

Every refusal is a :class:`~superres.errors.SuperresError` whose one-line message names the file,
the problem and the fix.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import torch
from torch.overrides import TorchFunctionMode

from superres.errors import (
    IncompatibleWeightsError,
    InvalidWeightsError,
    SuperresError,
    WeightsNotFoundError,
    WeightsReadError,
)
from superres.models.limits import check_hyperparameters

__all__ = [
    "MAX_HEADER_BYTES",
    "TensorTable",
    "check_finite",
    "check_weights_path",
    "compare_tables",
    "expected_network",
    "looks_like_safetensors",
    "meta_model",
    "safetensors_table",
    "screen_table",
    "sniff_format",
    "state_table",
]

#: ``{name: (dtype name, shape)}``: what a file declares, or what a network expects.
TensorTable = dict[str, tuple[str, tuple[int, ...]]]

#: The largest safetensors JSON header read (ours are a few KB; 8 MiB is 50k tensors).
MAX_HEADER_BYTES: Final = 8 << 20

#: Bytes per element of the dtypes a weights file may store; float64 is cast to float32.
_FLOAT_SIZES: Final = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}
#: Batch norm's step counter, the one integer tensor of our networks (unused at inference; some
#: converters cast it to float with the rest).
_COUNTER_SIZES: Final = {"int64": 8, "int32": 4, **_FLOAT_SIZES}
_COUNTER: Final = "num_batches_tracked"
_SAFETENSORS_DTYPES: Final = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "I64": "int64",
    "I32": "int32",
}
_REFETCH: Final = (
    "the file is corrupt or was not written by superres; get it again, or load the model in "
    "its own code and re-save it with superres.save_weights"
)

#: Leading bytes of the image formats a user may pass as weights by mistake.
_IMAGE_SIGNATURES: Final[dict[bytes, str]] = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


# --- the path and the format ----------------------------------------------------------------------


def check_weights_path(path: Path) -> int:
    """The size of ``path``, a non-empty regular file (checked with ``os.stat``: never opened,
    so a FIFO cannot block)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise WeightsNotFoundError(
                path, "it is a symbolic link that points to itself (a loop); fix the link"
            ) from None
        raise WeightsNotFoundError(path, "the file does not exist; check the path") from None
    if stat.S_ISDIR(info.st_mode):
        raise WeightsNotFoundError(path, "it is a folder; pass the weights file inside it")
    if not stat.S_ISREG(info.st_mode):
        raise WeightsReadError(
            path,
            "it is not a regular file (a FIFO, socket or device); pass a .safetensors or .pth file",
        )
    if info.st_size == 0:
        raise WeightsReadError(
            path, "the file is empty (0 bytes), e.g. an interrupted download; get it again"
        )
    return info.st_size


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """safetensors: an 8-byte little-endian header length, then the JSON header."""
    if len(head) < 9:
        return False
    header_len = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + header_len <= size


def _looks_like_onnx(head: bytes) -> bool:
    # An ONNX ModelProto opens with field 1 (ir_version, a small varint), then another field.
    return len(head) > 2 and head[0] == 0x08 and head[1] < 0x20 and head[2] in b"\x12\x1a\x22\x3a"


def sniff_format(path: Path, head: bytes, size: int) -> str:
    """``"safetensors"``, ``"zip"`` (a PyTorch checkpoint since 1.6) or ``"torch"`` (anything
    else ``torch.load`` may read); images and ONNX exports are refused by name."""
    if looks_like_safetensors(head, size) or path.suffix == ".safetensors":
        return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    image = next((f for sig, f in _IMAGE_SIGNATURES.items() if head.startswith(sig)), None)
    if image is None and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        image = "WebP"
    if image is not None:
        raise WeightsReadError(
            path,
            f"this is a {image} image, not a weights file; weights are .safetensors or .pth "
            "files (images go to `superres upscale` as its inputs)",
        )
    if not head.startswith(b"\x80") and (path.suffix == ".onnx" or _looks_like_onnx(head)):
        raise WeightsReadError(
            path,
            "this is an ONNX model, an export format (`superres export --onnx`) that superres "
            "does not load as weights; run it with onnxruntime, or pass the .safetensors/.pth "
            "file it was exported from",
        )
    return "torch"


# --- the tensor table -----------------------------------------------------------------------------


def safetensors_table(path: Path, size: int) -> tuple[TensorTable, dict[str, str]]:
    """The declared tensors and the metadata of a safetensors file; no tensor is read."""
    from safetensors import SafetensorError, safe_open

    with path.open("rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
    if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        raise WeightsReadError(
            path,
            f"its safetensors header claims {header_len} bytes (the file has {size}; at most "
            f"{MAX_HEADER_BYTES} are read); {_REFETCH}",
        )
    table: TensorTable = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = dict(handle.metadata() or {})
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                part = handle.get_slice(key)
                dtype = part.get_dtype()
                table[key] = (_SAFETENSORS_DTYPES.get(dtype) or str(dtype), tuple(part.get_shape()))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsReadError(
            path, f"not a valid safetensors file, truncated or corrupt ({detail}); get it again"
        ) from None
    return table, metadata


def state_table(state: Mapping[str, torch.Tensor], source: str) -> TensorTable:
    """The table of loaded (or memory-mapped) tensors: dense CPU tensors only."""
    table: TensorTable = {}
    for key, tensor in state.items():
        if tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise InvalidWeightsError(
                f"{source}: tensor {key!r} is a {tensor.layout} tensor on {tensor.device}, not a "
                f"dense CPU tensor; {_REFETCH}"
            )
        table[key] = (str(tensor.dtype).removeprefix("torch."), tuple(tensor.shape))
    return table


def screen_table(table: TensorTable, size: int, source: str) -> None:
    """Floating-point tensors (and batch-norm counters), declaring at most ``size`` bytes."""
    declared = 0
    for key, (dtype, shape) in table.items():
        sizes = _COUNTER_SIZES if key.endswith(_COUNTER) else _FLOAT_SIZES
        if dtype not in sizes:
            if key.endswith(_COUNTER):
                raise InvalidWeightsError(
                    f"{source}: batch-norm counter {key!r} is {dtype}, expected an integer "
                    f"(int64); {_REFETCH}"
                )
            raise InvalidWeightsError(
                f"{source}: tensor {key!r} is {dtype}, but weights must be floating point "
                f"({', '.join(_FLOAT_SIZES)}); a quantised, integer or boolean tensor is no "
                "network weight. Save the float model's state dict"
            )
        declared += math.prod(shape) * sizes[dtype]
    if declared > size:
        raise InvalidWeightsError(
            f"{source}: its {len(table)} tensors declare {declared} bytes of data, more than the "
            f"file's {size} bytes (shapes that lie about their data); {_REFETCH}"
        )


# --- the network it describes ---------------------------------------------------------------------


class _SkipMetaInit(TorchFunctionMode):
    """Random initialisation of ``meta`` tensors is skipped: there are no values to draw, and
    ``normal_`` on ``meta`` would import torch's compiler (seconds) to run its reference kernel."""

    def __torch_function__(  # type: ignore[override]  # TorchFunctionMode's own signature
        self,
        func: Callable[..., object],
        types: object,
        args: tuple[object, ...] = (),
        kwargs: Mapping[str, object] | None = None,
    ) -> object:
        del types
        first = args[0] if args else None
        named = getattr(func, "__name__", "") in _INIT_OPS
        if named and isinstance(first, torch.Tensor) and first.is_meta:
            return first
        return func(*args, **(kwargs or {}))


_INIT_OPS: Final = frozenset({"normal_", "uniform_", "trunc_normal_", "bernoulli_"})


def meta_model(architecture: str, **kwargs: Any) -> torch.nn.Module:
    """``create_model`` on the ``meta`` device: the real module structure, no memory, no init."""
    from superres.models import create_model

    with torch.device("meta"), _SkipMetaInit():
        return create_model(architecture, **kwargs)


def _kind(dtype: str) -> str:
    return "float" if dtype in _FLOAT_SIZES else "int" if dtype in _COUNTER_SIZES else dtype


def expected_network(
    architecture: str, kwargs: Mapping[str, object], source: str
) -> tuple[dict[str, Any], TensorTable]:
    """The checked arguments and the state dict (names, dtypes, shapes) of ``architecture``.

    The arguments are first held to their limits (:mod:`superres.models.limits`), then the
    network is built on the ``meta`` device: its real module structure, no memory, no init.

    Raises:
        InvalidWeightsError: an unknown architecture, an unknown argument or one out of bounds.
        IncompatibleWeightsError: the constructor refuses the arguments.
    """
    from superres.errors import did_you_mean
    from superres.models import MODELS

    if architecture not in MODELS:
        shown = architecture if len(architecture) <= 40 else architecture[:37] + "..."
        raise InvalidWeightsError(
            f"{source} describes an unknown architecture {shown!r}.{did_you_mean(shown, MODELS)} "
            f"Known: {', '.join(MODELS)}; a newer superres may know it"
        )
    try:
        checked = check_hyperparameters(architecture, kwargs)
    except ValueError as exc:
        raise InvalidWeightsError(f"{source}: {exc}; {_REFETCH}") from None
    try:
        model = meta_model(architecture, **checked)
    except (SuperresError, TypeError, ValueError) as exc:
        raise IncompatibleWeightsError(
            f"{source} describes a {architecture} model with {checked} that this superres cannot "
            f"build ({exc}); a newer superres may"
        ) from None
    table = {
        key: (str(value.dtype).removeprefix("torch."), tuple(value.shape))
        for key, value in model.state_dict().items()
    }
    return checked, table


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")


def compare_tables(expected: TensorTable, found: TensorTable, what: str) -> None:
    """The file's tensors are exactly the network's: names, shapes, dtype kinds.

    Args:
        expected: the network's table (:func:`expected_network`).
        found: the file's table.
        what: the start of each message, e.g. ``"weights file 'x.pth' (ESRGAN layout) does not
            fit rrdbnet"``.
    """
    for key, (dtype, shape) in expected.items():
        if key not in found:
            continue
        file_dtype, file_shape = found[key]
        if file_shape != shape:
            raise IncompatibleWeightsError(
                f"{what}: {key!r} has shape {file_shape} in the file but {shape} in the model"
            )
        if _kind(file_dtype) != _kind(dtype) and not key.endswith(_COUNTER):
            raise InvalidWeightsError(
                f"{what}: {key!r} is {file_dtype} in the file but {dtype} in the model"
            )
    # Checkpoints older than PyTorch 0.4.1 have no num_batches_tracked; BN fills in 0 itself.
    missing = [k for k in expected if k not in found and not k.endswith(_COUNTER)]
    unexpected = [k for k in found if k not in expected]
    parts = [f"missing {_listed(missing)}"] if missing else []
    if unexpected:
        parts.append(f"unexpected {_listed(unexpected)}")
    if parts:
        raise IncompatibleWeightsError(f"{what}: {'; '.join(parts)}")


def check_finite(state: Mapping[str, torch.Tensor], source: str) -> None:
    """No NaN or infinity in any floating-point tensor."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise InvalidWeightsError(
                f"{source}: tensor {key!r} holds {bad} NaN or infinite value(s), so every output "
                "would be too; get the file again, or retrain from the last good checkpoint"
            )
