"""ONNX export: one ``.onnx`` file per model, for onnxruntime, TensorRT, OpenVINO, ... .

The graph takes ``input``, float32 ``(N, C, H, W)`` in [0, 1] (RGB for ``C = 3``; Y or gray for
``C = 1``, as the model was trained), and returns ``output``, float32
``(N, C_out, H * scale, W * scale)``, not clamped (clip to [0, 1] before quantising). Batch,
height and width are dynamic. The file's ``metadata_props`` carry the model name, architecture,
scale, channels and the superres version (:func:`onnx_metadata`).

Exporter: the TorchScript-based one (``torch.onnx.export(..., dynamo=False)``; deprecated since
PyTorch 2.9, still shipped) by default. Both it and the torch.export-based one (``dynamo=True``)
give graphs that match PyTorch within 3e-6 (fp32 rounding) for
every registered architecture (PixelShuffle, PReLU, BatchNorm, nearest upsampling, EDSR's mean
shift) with dynamic height and width, but the dynamo exporter takes about ten times longer
(measured on 2 CPU cores: SRResNet-16 18 s against 1.6 s, RRDBNet-6 64 s against 8 s, even a
tiny model 5-15 s) and needs ``onnxscript``.
``exporter="dynamo"`` (``--exporter dynamo``) selects it, for PyTorch versions that drop the
TorchScript exporter.

MATLAB bicubic (:func:`superres.imaging.imresize`, inside :class:`~superres.models.Bicubic` and
:class:`~superres.models.SRCNN`) computes its weights with numpy from the image size, which a
traced graph would freeze at the example size. For an integer upscale it is the same as
edge-replicating the input and applying one 7-tap filter per output phase, rows then columns
(:class:`BicubicUpsample`), which exports with dynamic shapes; those two models are exported
through it, and the verification compares the result with the real model.

Every export is verified before it is kept (:func:`verify_onnx`): onnxruntime runs the file on
random inputs of two sizes and batch sizes, and its output must match PyTorch's within ``atol``.
The file is written to a temporary name beside the target and renamed only when complete and
verified, so a failed export never leaves a file behind.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.errors import InvalidNetworkError, SuperresError
from superres.io.files import check_output_folder, current_umask, make_output_folder
from superres.models import SRCNN, Bicubic
from superres.models.descriptor import NetworkDescriptor, describe_network

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTERS",
    "VERIFY_SIZES",
    "BicubicUpsample",
    "OnnxExportError",
    "OnnxVerificationError",
    "check_onnx_output",
    "export_onnx",
    "onnx_metadata",
    "verification_inputs",
    "verify_onnx",
]

logger = logging.getLogger(__name__)

#: ONNX opset written by default: the dynamo exporter's lowest native one; onnxruntime >= 1.14.
DEFAULT_OPSET = 18
#: ``"torchscript"`` (default, fast) or ``"dynamo"`` (torch.export-based; needs onnxscript).
EXPORTERS = ("torchscript", "dynamo")
#: ``(height, width)`` of the random verification inputs: non-square, unlike the example input, and
#: one taller, one wider, so a graph that froze a size or swapped the axes fails.
VERIFY_SIZES: tuple[tuple[int, int], ...] = ((24, 32), (40, 28))

PathLike = str | os.PathLike[str]


class OnnxExportError(SuperresError):
    """A model could not be exported to ONNX, or the output path is unusable."""


class OnnxVerificationError(OnnxExportError):
    """onnxruntime's output of an exported file differs from PyTorch's (or does not run)."""


# --- MATLAB bicubic as a graph with dynamic shapes ------------------------------------------------

# Half-width of the widest phase filter: MATLAB's bicubic upscale reads input offsets -3..3 around
# the output pixel's source position (4 non-zero taps per phase, at different offsets per phase).
_RADIUS = 3


def _phase_filters(scale: int) -> torch.Tensor:
    """``(scale, 7)`` float64: output ``k * scale + p`` is ``sum_j f[p, j] * x[k + j - 3]``.

    Read off :func:`~superres.imaging.imresize` itself (its 1-D weight matrix, from resizing the
    identity), away from the borders where its edge clamping would fold taps together.
    """
    from superres.imaging.resize import imresize

    length = 4 * _RADIUS + 4
    matrix = imresize(np.eye(length), scale=(float(scale), 1.0))  # (length * scale, length)
    k = length // 2
    rows = matrix[k * scale : (k + 1) * scale]
    filters = rows[:, k - _RADIUS : k + _RADIUS + 1]
    if not np.allclose(filters.sum(axis=1), 1.0) or not np.allclose(rows.sum(axis=1), 1.0):
        raise OnnxExportError(
            f"MATLAB bicubic x{scale} has taps beyond +-{_RADIUS} pixels; it cannot be exported"
        )
    return torch.from_numpy(np.ascontiguousarray(filters))


class BicubicUpsample(nn.Module):
    """MATLAB ``imresize(x, scale, 'bicubic')`` for an integer ``scale >= 2``, in exportable ops.

    Equal to :func:`superres.imaging.imresize` (to float32 rounding) at any size: edge replication
    by 3 pixels, then per dimension a convolution with ``scale`` 7-tap phase filters whose outputs
    are interleaved. Every shape is computed in the graph, so height and width stay dynamic.

    Shapes: ``(N, C, H, W)`` -> ``(N, C, H * scale, W * scale)``, float.
    """

    rows: torch.Tensor  # (scale, 1, 7, 1): the phase filters along H
    cols: torch.Tensor  # (scale, 1, 1, 7): the same along W

    def __init__(self, *, scale: int) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2:
            raise OnnxExportError(f"BicubicUpsample needs an integer scale >= 2, got {scale!r}")
        self.scale = scale
        filters = _phase_filters(scale).float()
        self.register_buffer("rows", filters.reshape(scale, 1, 2 * _RADIUS + 1, 1))
        self.register_buffer("cols", filters.reshape(scale, 1, 1, 2 * _RADIUS + 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = _RADIUS
        y = x.flatten(0, 1).unsqueeze(1)  # (N*C, 1, H, W): one filter bank serves every channel
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), self.rows.to(y.dtype))
        y = y.transpose(1, 2).flatten(1, 2).unsqueeze(1)  # phases interleaved: (N*C, 1, H*s, W)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), self.cols.to(y.dtype))
        y = y.permute(0, 2, 3, 1).flatten(2, 3)  # (N*C, H*s, W*s)
        return y.unflatten(0, (-1, x.shape[1]))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class _SRCNNGraph(nn.Module):
    """SRCNN's forward with :class:`BicubicUpsample` in place of ``imresize``.

    Mirrors :meth:`superres.models.SRCNN.forward`; :func:`verify_onnx` compares the export with
    the real model, so a change there that is not made here fails the export, never silently.
    """

    def __init__(self, net: SRCNN) -> None:
        super().__init__()
        self.upsample = BicubicUpsample(scale=net.scale)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = self.upsample(x)
        x = net.relu(net.conv1(x))
        x = net.relu(net.conv2(x))
        return net.conv3(x)


def _graph_module(net: nn.Module) -> nn.Module:
    """The module to trace: ``net`` itself, or an equivalent without numpy resizing."""
    if isinstance(net, Bicubic):
        return nn.Identity() if net.scale == 1 else BicubicUpsample(scale=net.scale)
    if isinstance(net, SRCNN):
        return _SRCNNGraph(net)
    return net


# --- helpers --------------------------------------------------------------------------------------


def _describe(model: nn.Module) -> NetworkDescriptor:
    """The model's descriptor; a module without the SR-network contract cannot be exported."""
    try:
        return describe_network(model)
    except InvalidNetworkError as exc:
        raise OnnxExportError(
            f"cannot export a {type(model).__name__}: {exc}; pass a superres model "
            "(superres.load_model, superres.create_model or load_weights)"
        ) from None


def _cpu_fp32_copy(model: nn.Module) -> nn.Module:
    """A float32 CPU copy in eval mode: the caller's model keeps its device, dtype and mode."""
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32).eval()


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _missing(module: str, why: str, exc: ImportError) -> OnnxExportError:
    return OnnxExportError(
        f"{why} needs the {module} package ({exc}); install it with pip install 'superres[onnx]'"
    )


def check_onnx_output(path: PathLike, *, overwrite: bool = False) -> None:
    """Raise :class:`OnnxExportError` unless ``path`` can receive an export.

    It must end in ``.onnx``, its folder must exist or be one it can make (it is made, parents
    included, as every command's output folders) and it must not exist unless ``overwrite``.
    :func:`export_onnx` checks this itself; callers check first to fail before loading a large
    model.
    """
    target = Path(path).expanduser()
    if target.suffix.lower() != ".onnx":
        raise OnnxExportError(
            f"ONNX output {str(target)!r} does not end in .onnx; name the file e.g. "
            f"{target.with_suffix('.onnx').name!r}"
        )
    check_output_folder(target.parent, "--onnx")
    if target.is_dir():
        raise OnnxExportError(f"ONNX output {str(target)!r} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise OnnxExportError(
            f"ONNX output {str(target)!r} already exists; choose another name, delete it, or "
            "replace it with --force (overwrite=True)"
        )


@contextlib.contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A temporary file name in ``target``'s folder (same file system: the rename is atomic)."""
    make_output_folder(target.parent, "--onnx")
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp.onnx")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def onnx_metadata(model: nn.Module, *, name: str | None = None) -> dict[str, str]:
    """The ``metadata_props`` written into an exported file (all values are strings).

    ``model_name`` (``name``, else the architecture), ``architecture``, ``scale``,
    ``in_channels``, ``out_channels``, ``size_multiple``, ``config`` (JSON of the constructor
    arguments), ``input``/``output`` (layout and range in words) and ``superres_version``.
    """
    from superres._version import __version__

    described = _describe(model)
    scale, channels = described.scale, described.in_channels
    arch = described.architecture or type(model).__name__.lower()
    colour = {3: "RGB", 1: "Y (BT.601 luma, [16/255, 235/255]) or gray"}.get(
        channels, f"{channels} channels"
    )
    return {
        "model_name": name or arch,
        "architecture": arch,
        "scale": str(scale),
        "in_channels": str(channels),
        "out_channels": str(described.out_channels),
        "size_multiple": str(described.size_multiple),
        "config": json.dumps(dict(described.config or {}), default=str),
        "input": f"float32 NCHW {colour} in [0, 1]; N, H and W are dynamic",
        "output": f"float32 NCHW, H*{scale} x W*{scale}, not clamped: clip to [0, 1]",
        "superres_version": __version__,
    }


# --- the exporters --------------------------------------------------------------------------------


def _torch_onnx_export(
    graph: nn.Module, example: torch.Tensor, file: Path, *, opset: int, dynamo: bool, **options: Any
) -> None:
    """``torch.onnx.export`` with our one ``input`` and one ``output`` name."""
    torch.onnx.export(
        graph,
        (example,),
        str(file),
        dynamo=dynamo,
        input_names=["input"],
        output_names=["output"],
        opset_version=opset,
        **options,
    )


def _export_torchscript(
    graph: nn.Module, example: torch.Tensor, file: Path, *, opset: int, dynamic: bool
) -> None:
    axes = {0: "batch", 2: "height", 3: "width"}
    out_axes = {0: "batch", 2: "out_height", 3: "out_width"}
    with warnings.catch_warnings():
        # Deprecated in favour of dynamo=True since PyTorch 2.9; chosen on purpose (module doc).
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        # Replicate padding exports as reversed slices, which its constant folding skips: harmless.
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
        _torch_onnx_export(
            graph,
            example,
            file,
            opset=opset,
            dynamo=False,
            dynamic_axes={"input": axes, "output": out_axes} if dynamic else None,
            do_constant_folding=True,
        )


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Raise these loggers to ERROR for the duration: the dynamo exporter logs every pass."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _export_dynamo(
    graph: nn.Module, example: torch.Tensor, file: Path, *, opset: int, dynamic: bool
) -> None:
    try:
        import onnxscript  # noqa: F401  (torch imports it lazily, with a less helpful error)
    except ImportError as exc:
        raise _missing("onnxscript", "the dynamo ONNX exporter", exc) from None
    from torch.export import Dim

    shapes = None
    if dynamic:
        shapes = ({0: Dim("batch"), 2: Dim("height"), 3: Dim("width")},)
    with _quiet_loggers("onnxscript", "onnx_ir", "torch.onnx"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*treespec")  # torch's
        _torch_onnx_export(
            graph,
            example,
            file,
            opset=opset,
            dynamo=True,
            dynamic_shapes=shapes,
            external_data=False,  # one self-contained file
            verbose=False,
        )


def verification_inputs(
    model: nn.Module,
    sizes: Sequence[tuple[int, int]] = VERIFY_SIZES,
    *,
    seed: int = 0,
) -> list[torch.Tensor]:
    """Random float32 ``(N, C, H, W)`` inputs in [0, 1] for :func:`verify_onnx`.

    One tensor per ``(H, W)`` in ``sizes`` (rounded up to the model's ``size_multiple``), with
    batch sizes 1, 2, 1, 2, ... so the dynamic batch axis is exercised too. Seeded.
    """
    described = _describe(model)
    channels, multiple = described.in_channels, described.size_multiple
    generator = torch.Generator().manual_seed(seed)
    return [
        torch.rand(
            1 + i % 2,
            channels,
            _round_up(h, multiple),
            _round_up(w, multiple),
            generator=generator,
        )
        for i, (h, w) in enumerate(sizes)
    ]


def _max_difference(file: Path, net: nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _missing("onnxruntime", "checking the export", exc) from None
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 4  # its errors reach the caller in OnnxVerificationError
        session = ort.InferenceSession(
            str(file), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own (pybind) exception types
        raise OnnxVerificationError(
            f"onnxruntime cannot load the exported file ({type(exc).__name__}: {exc})"
        ) from None
    worst = 0.0
    for x in inputs:
        shape = tuple(x.shape)
        with torch.no_grad():
            expected = net(x.to(device="cpu", dtype=torch.float32)).numpy()
        try:
            got = np.asarray(session.run(["output"], {"input": x.numpy()})[0])
        except Exception as exc:
            raise OnnxVerificationError(
                f"onnxruntime cannot run the exported file on an input of shape {shape} "
                f"({type(exc).__name__}: {exc}); the graph may have frozen the example size"
            ) from None
        if got.shape != expected.shape:
            raise OnnxVerificationError(
                f"on an input of shape {shape}, onnxruntime returned shape {got.shape} but "
                f"PyTorch {expected.shape}; the graph froze a size"
            )
        diff = float(np.max(np.abs(got.astype(np.float64) - expected)))
        worst = diff if not np.isfinite(diff) else max(worst, diff)
        if not np.isfinite(worst):
            break
    return worst


def verify_onnx(
    path: PathLike,
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    *,
    atol: float = 1e-4,
) -> float:
    """Run ``path`` in onnxruntime (CPU) and ``model`` in PyTorch on ``inputs``; compare.

    Args:
        path: an exported ``.onnx`` file with an ``input`` and an ``output``.
        model: the PyTorch model it was exported from; run as a float32 CPU copy in eval mode.
        inputs: float32 ``(N, C, H, W)`` tensors in [0, 1] (see :func:`verification_inputs`).
        atol: largest allowed absolute difference, in [0, 1] intensity units.

    Returns:
        The largest absolute difference over all inputs and pixels.

    Raises:
        OnnxVerificationError: a difference above ``atol`` (or NaN), a wrong output shape, or a
            file onnxruntime cannot load or run.
    """
    file = Path(path)
    worst = _max_difference(file, _cpu_fp32_copy(model), inputs)
    _check_difference(worst, atol, file)
    return worst


def _check_difference(worst: float, atol: float, file: Path) -> None:
    if not worst <= atol:
        raise OnnxVerificationError(
            f"the ONNX graph {file.name!r} differs from PyTorch by up to {worst:.3g} (allowed "
            f"{atol:g}); this model does not export faithfully with this exporter and opset. Try "
            "--exporter dynamo or another --opset, or export without dynamic sizes"
        )


def export_onnx(
    model: nn.Module,
    path: PathLike,
    *,
    name: str | None = None,
    opset: int = DEFAULT_OPSET,
    example_size: tuple[int, int] = (32, 32),
    dynamic: bool = True,
    exporter: Literal["torchscript", "dynamo"] = "torchscript",
    verify: bool = True,
    atol: float = 1e-4,
    overwrite: bool = False,
) -> Path:
    """Export a superres model to one ONNX file, check it with onnxruntime, then write it.

    The export runs on a float32 CPU copy in eval mode under ``torch.no_grad()`` (the caller's
    model is not changed); it traces a small ``example_size`` input, which keeps memory low (with
    autograd on, RRDBNet at 512 x 512 needs more than 16 GB).

    Args:
        model: a superres model with ``scale`` and ``in_channels`` attributes (any registered
            architecture, loaded with :func:`superres.load_model` or built by ``create_model``).
        path: the ``.onnx`` file to write; its folder is made if missing.
        name: ``model_name`` in the metadata (e.g. ``"srresnet-x4"``); default the architecture.
        opset: ONNX opset version (18 by default).
        example_size: ``(H, W)`` of the traced example input (rounded up to ``size_multiple``).
        dynamic: batch, height and width are dynamic axes; ``False`` fixes all three to the
            example's ``(1, C, H, W)``.
        exporter: ``"torchscript"`` or ``"dynamo"`` (see the module docstring).
        verify: compare onnxruntime with PyTorch on :func:`verification_inputs` (at
            ``example_size`` when not ``dynamic``) before the file is written.
        atol: largest allowed absolute difference.
        overwrite: replace an existing file at ``path``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        OnnxExportError: the path exists (without ``overwrite``), its folder is missing, the
            model is not a superres model, a package is missing, or the exporter fails.
        OnnxVerificationError: onnxruntime disagrees with PyTorch; nothing is written.
    """
    target = Path(path).expanduser()
    check_onnx_output(target, overwrite=overwrite)
    if exporter not in EXPORTERS:
        raise OnnxExportError(f"unknown exporter {exporter!r}; use one of {', '.join(EXPORTERS)}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 1:
        raise OnnxExportError(f"opset must be a positive integer, got {opset!r}")
    described = _describe(model)
    h, w = (_round_up(max(1, int(n)), described.size_multiple) for n in example_size)
    net = _cpu_fp32_copy(model)
    example = torch.rand(1, described.in_channels, h, w, generator=torch.Generator().manual_seed(0))
    with _temporary_beside(target) as tmp:
        _export_to(
            tmp,
            net,
            example,
            metadata=onnx_metadata(model, name=name),
            exporter=exporter,
            opset=opset,
            dynamic=dynamic,
        )
        if verify:
            inputs = verification_inputs(model) if dynamic else verification_inputs(model, [(h, w)])
            worst = _max_difference(tmp, net, inputs)
            _check_difference(worst, atol, target)
            sizes = ", ".join("x".join(map(str, x.shape)) for x in inputs)
            logger.info(
                "verified with onnxruntime on %s: max |onnx - torch| = %.2g (atol %g)",
                sizes,
                worst,
                atol,
            )
        if target.exists() and not overwrite:  # appeared while exporting: never clobber it
            check_onnx_output(target, overwrite=False)
        tmp.chmod(0o666 & ~current_umask())  # mkstemp's 0600, not what a plain open() gives
        os.replace(tmp, target)
    return target


def _export_to(
    file: Path,
    net: nn.Module,
    example: torch.Tensor,
    *,
    metadata: dict[str, str],
    exporter: str,
    opset: int,
    dynamic: bool,
) -> None:
    """Export ``net`` (a float32 CPU copy) to ``file`` with ``metadata``, checked by onnx."""
    try:
        import onnx
    except ImportError as exc:
        raise _missing("onnx", "ONNX export", exc) from None
    run = _export_torchscript if exporter == "torchscript" else _export_dynamo
    try:
        with torch.no_grad():
            run(_graph_module(net).eval(), example, file, opset=opset, dynamic=dynamic)
        proto = onnx.load(str(file))
        onnx.helper.set_model_props(proto, metadata)
        proto.doc_string = (
            f"superres {metadata['model_name']}: x{metadata['scale']} super-resolution; input "
            "float32 NCHW in [0, 1]"
        )
        onnx.checker.check_model(proto)
        onnx.save(proto, str(file))
    except SuperresError:
        raise
    except Exception as exc:  # the exporters raise many types; name the model and the fix
        raise OnnxExportError(
            f"the {exporter} exporter failed on {type(net).__name__} x{metadata['scale']} "
            f"({type(exc).__name__}: {str(exc)[:500]}); try the other --exporter or "
            "another --opset"
        ) from exc
