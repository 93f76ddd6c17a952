"""``precision="int8"``: a network quantised to 8-bit integers and run by OpenVINO on the CPU.

The network is exported to ONNX (:func:`~superres.inference.export.export_onnx`), read by
OpenVINO and quantised by NNCF's post-training quantisation (``nncf.quantize``: per-channel int8
weights, per-tensor activations, ranges from calibration), calibrated on
:data:`CALIBRATION_CROPS` low-resolution crops of T91 training images (never a test set).
Two choices, measured on Set5 (``benchmarks/speed.py``, BENCHMARKS.md):

* the convolution that reads the image (3 or fewer input channels: the first) stays out of
  int8: an 8-bit grid on the pixels themselves costs most, and that layer is cheap (Set5:
  srresnet-x4 -0.17 dB with it kept, -0.24 with everything quantised; rrdbnet-6b-x4 -0.18 and
  -0.28; the speed unchanged). The last convolution (features -> pixels) is quantised: keeping
  it too gains 0.01-0.03 dB but costs up to a third of the time (srresnet-x4's 9x9 one at the
  output resolution: 331 against 244 ms per output megapixel, no faster than bf16);
* what is not int8 runs in bfloat16 where the CPU has it natively, else float32.

int8 is never the default: no shipped model loses at most 0.02 dB in it (BENCHMARKS.md lists
the cost per model). Calibration takes seconds to a minute, so the quantised network is cached
(``<user cache>/int8/<key>/model.xml``, ``SUPERRES_CACHE`` moves it), keyed by the sha256 of
the exported graph (weights and architecture), the calibration recipe and the OpenVINO and NNCF
versions; a later run with the same network reads it back in a second.

Needs the ``int8`` extra (``pip install 'superres[int8]'``: OpenVINO, NNCF and the ONNX export)
and T91 in the data root (``superres data get t91``). Calibration crops are read through
:mod:`superres.data.catalog`, the one import of ``data`` this layer makes.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.errors import DatasetNotFoundError, SuperresError
from superres.imaging.color import rgb2ycbcr
from superres.imaging.resize import imresize
from superres.io.files import user_cache_dir
from superres.models.descriptor import describe_network
from superres.runtime import PrecisionError, cpu_has_native_bf16

__all__ = [
    "CALIBRATION_CROPS",
    "CALIBRATION_SET",
    "CALIBRATION_SIZE",
    "Int8Network",
    "Int8SupportError",
    "calibration_crops",
    "import_engines",
    "int8_network",
    "openvino_core",
]

logger = logging.getLogger(__name__)

#: The training set the int8 ranges are calibrated on (a test set must not calibrate what it
#: scores), the number of its images used (one crop each) and the crops' side in LR pixels.
CALIBRATION_SET = "t91"
CALIBRATION_CROPS = 32
CALIBRATION_SIZE = 64
_SEED = 0
# Changes whenever the quantisation recipe changes, so no older cached network is read back.
_RECIPE = f"v2 {CALIBRATION_SET} {CALIBRATION_CROPS}x{CALIBRATION_SIZE} seed {_SEED} input-convs"


class Int8SupportError(PrecisionError):
    """``precision="int8"`` cannot run here: a package, the calibration set or weights missing."""


#: OpenVINO sends a usage event to Google Analytics when it is imported, and NNCF one per call,
#: unless the user opted out (``openvino/tools/ovc/__init__.py``, ``nncf/telemetry/wrapper.py``);
#: both fall back to a silent stub when this package does not import. superres never touches
#: the network unasked, so it imports them with the package hidden (and puts it back after).
_TELEMETRY = "openvino_telemetry"


@contextlib.contextmanager
def _telemetry_hidden() -> Iterator[None]:
    """While inside, ``import openvino_telemetry`` raises ImportError."""
    hidden = {
        name: sys.modules.pop(name)
        for name in list(sys.modules)
        if name == _TELEMETRY or name.startswith(_TELEMETRY + ".")
    }
    sys.modules[_TELEMETRY] = None  # type: ignore[assignment] - None makes the import fail
    try:
        yield
    finally:
        if sys.modules.get(_TELEMETRY, "") is None:
            del sys.modules[_TELEMETRY]
        sys.modules.update(hidden)


def import_engines() -> tuple[Any, Any]:
    """``(openvino, nncf)`` without their telemetry, or the one-line error that says how to get
    them."""
    try:
        with _telemetry_hidden():
            import nncf  # pyright: ignore[reportMissingImports] - the int8 extra
            import openvino  # pyright: ignore[reportMissingImports] - the int8 extra
    except ImportError as exc:
        raise Int8SupportError(
            f"precision int8 needs OpenVINO and NNCF ({exc}); install them with "
            "pip install 'superres[int8]', or use --precision auto"
        ) from None
    return openvino, nncf


@functools.cache
def openvino_core() -> Any:
    """The process's one ``openvino.Core``, kept until exit: every compiled network comes from it.

    Each ``Core`` loads its own CPU plugin, and the plugin registers an alternate signal stack for
    the thread that compiles (``sigaltstack``), remembering the one before it; freeing a plugin
    puts the earlier stack back, even when that one was freed first. Two Cores freed in the order
    they were made left the main thread pointing at unmapped memory, and the next signal it
    handled (a Ctrl-C, a ``SIGCHLD``) killed the process with a segmentation fault (OpenVINO
    2026.4). One Core, never freed, registers one stack that stays valid.
    """
    openvino, _ = import_engines()
    return openvino.Core()


def calibration_crops(
    scale: int,
    *,
    in_channels: int = 3,
    data_root: str | os.PathLike[str] | None = None,
    count: int = CALIBRATION_CROPS,
    size: int = CALIBRATION_SIZE,
) -> list[torch.Tensor]:
    """``count`` LR crops ``(in_channels, size, size)`` (float32 in [0, 1]) of T91 images, as the
    network sees them: the MATLAB bicubic ``1 / scale`` of the whole image, then a seeded random
    crop of each of ``count`` seeded random images; luma Y for one-channel networks.

    Raises:
        DatasetNotFoundError: T91 is not in the data root (the message says how to get it).
    """
    from superres.data.catalog import dataset_hr_dir, list_image_files
    from superres.io.image import read_image

    try:
        files = list_image_files(dataset_hr_dir(CALIBRATION_SET, data_root))
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(
            "precision int8 is calibrated on T91 training images (once per network); get them "
            f"with `superres data get t91`. {exc}"
        ) from None
    generator = torch.Generator().manual_seed(_SEED)
    crops = []
    for index in torch.randperm(len(files), generator=generator)[:count].tolist():
        lr = imresize(read_image(files[index]).rgb[None], scale=1 / scale).clamp(0, 1)[0]
        if in_channels == 1:
            lr = rgb2ycbcr(lr, y_only=True)
        side = min(size, *lr.shape[-2:])
        top = int(torch.randint(lr.shape[-2] - side + 1, (1,), generator=generator))
        left = int(torch.randint(lr.shape[-1] - side + 1, (1,), generator=generator))
        crops.append(lr[:, top : top + side, left : left + side].contiguous())
    return crops


def _digest(folder: Path, recipe: str) -> str:
    """sha256 of the exported graph's files and what else decides the quantised result."""
    digest = hashlib.sha256(recipe.encode())
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _input_convolutions(network: Any) -> list[str]:
    """Names of the convolutions that read at most 3 channels: those that read the image."""
    names = []
    for op in network.get_ordered_ops():
        if op.get_type_name() != "Convolution":
            continue
        shape = op.input(1).get_partial_shape()  # (out, in, k, k)
        if shape.rank.get_length() == 4 and shape[1].get_length() <= 3:
            names.append(op.get_friendly_name())
    return names


def _quantise(network: Any, crops: list[torch.Tensor], nncf: Any) -> Any:
    samples = [crop[None].numpy() for crop in crops]
    kept = _input_convolutions(network)
    # NNCF logs each layer it leaves out and draws a progress bar on stdout; our log says what
    # runs, and stdout stays the user's (the level and stdout are restored after).
    nncf_logger = logging.getLogger("nncf")
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return nncf.quantize(
                network,
                nncf.Dataset(samples),
                subset_size=len(samples),
                ignored_scope=nncf.IgnoredScope(names=kept, validate=False),
            )
    finally:
        nncf_logger.setLevel(level)


def _save_atomically(network: Any, openvino: Any, folder: Path) -> None:
    """``folder/model.xml`` + ``.bin``, written beside it and renamed in (a concurrent run that
    got there first wins; its files are the same)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        openvino.save_model(network, str(tmp / "model.xml"), compress_to_fp16=False)
        shutil.rmtree(folder, ignore_errors=True)  # an incomplete entry (a file deleted by hand)
        with contextlib.suppress(OSError):  # it exists again: another process finished first
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Int8Network(nn.Module):
    """An SR network in int8 on OpenVINO's CPU plugin: float32 ``(N, C, H, W)`` in and out, any
    ``H`` and ``W`` (dynamic shapes). Built by :func:`int8_network`; has the source network's
    ``scale``, ``in_channels``, ``out_channels`` and ``size_multiple``.

    Attributes:
        inference_precision: what OpenVINO runs the layers that are not int8 in (``"bf16"`` or
            ``"f32"``). cached: the quantised network came from the cache.
    """

    def __init__(self, compiled: Any, *, source: nn.Module, cached: bool) -> None:
        super().__init__()
        described = describe_network(source)
        self.scale, self.in_channels = described.scale, described.in_channels
        self.out_channels = described.out_channels
        self.size_multiple = described.size_multiple
        self.cached = cached
        self._compiled = compiled  # outlives its request, whatever order they are freed in
        self._request = compiled.create_infer_request()
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        self.inference_precision = hint.to_string() if hasattr(hint, "to_string") else str(hint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._request.infer({0: x.detach().float().cpu().contiguous().numpy()})
        return torch.from_numpy(self._request.get_output_tensor(0).data.copy())


def int8_network(
    model: nn.Module,
    *,
    data_root: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    threads: int | None = None,
) -> Int8Network:
    """``model`` quantised to int8 (see the module), from the cache when it was quantised before.

    Args:
        model: a superres network with weights (a parameter-free one such as bicubic has nothing
            to quantise).
        data_root: where T91 is (default: ``SUPERRES_DATA``, else the default data root).
        cache_dir: the cache's folder (default ``<user cache>/int8``).
        threads: OpenVINO's inference threads (default PyTorch's ``torch.get_num_threads()``).

    Raises:
        Int8SupportError: OpenVINO/NNCF or the ONNX exporter missing, or a model without weights.
        DatasetNotFoundError: T91 is needed to calibrate and is not in the data root.
    """
    from superres.inference.export import OnnxExportError, export_onnx

    if next(model.parameters(), None) is None:
        raise Int8SupportError(
            f"{type(model).__name__} has no weights to quantise; run it with --precision auto"
        )
    openvino, nncf = import_engines()
    described = describe_network(model)
    recipe = f"{_RECIPE} openvino {openvino.__version__} nncf {nncf.__version__}"
    root = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "int8"
    core = openvino_core()
    with tempfile.TemporaryDirectory(prefix="superres-int8-") as scratch:
        try:
            onnx_file = export_onnx(model, Path(scratch) / "model.onnx", verify=False)
        except OnnxExportError as exc:
            raise Int8SupportError(f"precision int8: {exc}") from None
        folder = root / _digest(Path(scratch), recipe)[:32]
        cached = (folder / "model.xml").is_file() and (folder / "model.bin").is_file()
        if not cached:
            crops = calibration_crops(
                described.scale, in_channels=described.in_channels, data_root=data_root
            )
            logger.info("int8: calibrating on %d T91 crops (once per network)", len(crops))
            quantised = _quantise(core.read_model(str(onnx_file)), crops, nncf)
            _save_atomically(quantised, openvino, folder)
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": str(threads or torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": "bf16" if cpu_has_native_bf16() else "f32",
    }
    try:
        compiled = core.compile_model(core.read_model(str(folder / "model.xml")), "CPU", config)
    except RuntimeError as exc:  # a damaged cache entry: drop it and say so
        shutil.rmtree(folder, ignore_errors=True)
        said = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise SuperresError(
            f"the cached int8 network in {folder} could not be loaded "
            f"({said[-1] if said else type(exc).__name__}); it was removed, run again to "
            "calibrate anew"
        ) from None
    return Int8Network(compiled, source=model, cached=cached)
