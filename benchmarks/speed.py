"""CPU speed of every shipped model on every execution path, with the quality each path costs.

For each model and path: milliseconds per output megapixel (median of ``--repeats`` runs after
``--warmup``), achieved GFLOP/s (MACs counted from the layer shapes by
:mod:`superres.models.flops`, printed), peak memory (resident-set growth during one run, sampled
every 2 ms) and the speed-up over eager fp32 NCHW measured in the same run, on ``--sizes`` LR
inputs and one large image run tiled (``--large``). Quality: max abs difference and PSNR-Y change
(8-bit output, default protocol) against the eager fp32 output on Set5 (``--quality-set``). The
reference ceiling is a channels_last 3x3 convolution (64 -> 64 features) in fp32 and bf16,
measured first.

    python benchmarks/speed.py                                 # everything (tens of minutes)
    python benchmarks/speed.py --models srresnet-x4 --sizes 256 \\
        --paths eager channels_last bf16 default exact --repeats 5

Paths (``--paths``):

========================= ========================================================================
``eager``                 the model as it is: fp32, NCHW (the reference)
``channels_last``         fp32, model and input in channels_last
``bf16``                  bf16 autocast, NCHW
``bf16_cl``               bf16 autocast, channels_last
``compile``               ``torch.compile`` (inductor, default options), fp32
``compile_freeze``        ``torch.compile`` with inductor freezing (weights constant, conv/BN
                          folding, oneDNN weight prepacking), fp32 channels_last
``jit``                   TorchScript trace + ``torch.jit.freeze`` + ``optimize_for_inference``
``onednn_graph``          TorchScript trace + freeze with oneDNN Graph fusion enabled (fp32)
``onnxruntime``           ONNX Runtime (CPU provider, all graph optimisations), fp32
``onnxruntime_int8``      ONNX Runtime after static int8 quantisation (QDQ), calibrated on the
                          32 T91 crops of :func:`superres.inference.int8.calibration_crops`
``openvino``              OpenVINO (CPU plugin, latency hint) on the same ONNX file, f32
``openvino_bf16``         the same with ``INFERENCE_PRECISION_HINT=bf16`` (OpenVINO runs f32
                          where the CPU has no native bf16; the note says which it ran)
``openvino_int8``         what ``--precision int8`` runs
                          (:func:`superres.inference.int8.int8_network`: NNCF post-training
                          quantisation, calibrated as ``onnxruntime_int8``, the convolution
                          that reads the pixels and the rest of the graph in bf16 where native)
``exact``                 :func:`superres.inference.fast.fast_network`, fp32: what
                          ``--precision fp32`` runs
``fast_bf16``             the same rewrite in bf16
``default``               what ``Upscaler(precision="auto")`` runs on this machine
========================= ========================================================================

ONNX Runtime, OpenVINO and NNCF are optional (``pip install 'superres[bench]'``): a path whose
package (or, for the int8 paths, T91 in the data root) is missing is printed as unavailable,
with the reason, and the run goes on. OpenVINO is imported without its telemetry.

Every timed run is ``(1, C, s, s)`` float32 in, float32 out, single image. The large image goes
through :func:`superres.inference.tiling.run_tiled` with the default overlap; ``--tiles`` also
times the default path at several tile sizes on it. Training speed and loss curves are
``benchmarks/train_speed.py``'s.

Numbers depend on the machine and on what else runs on it: run on a quiet machine, and keep the
machine line that is printed first with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.data.datasets import BenchmarkSet
from superres.evaluation.protocol import super_resolve
from superres.inference.fast import FastNetwork, fast_network
from superres.inference.int8 import (
    calibration_crops,
    import_engines,
    int8_network,
    openvino_core,
)
from superres.inference.options import DEFAULT_OVERLAP, UpscaleOptions
from superres.inference.tiling import run_tiled
from superres.inference.upscaler import Upscaler
from superres.io.files import atomic_write_text
from superres.metrics.fidelity import psnr
from superres.models.catalog import WEIGHTS
from superres.models.descriptor import describe_network
from superres.models.flops import count_macs
from superres.models.weights import load_model
from superres.runtime import describe_machine, retain_freed_memory

INFERENCE_PATHS = (
    "eager",
    "channels_last",
    "bf16",
    "bf16_cl",
    "compile",
    "compile_freeze",
    "jit",
    "onednn_graph",
    "onnxruntime",
    "onnxruntime_int8",
    "openvino",
    "openvino_bf16",
    "openvino_int8",
    "exact",
    "fast_bf16",
    "default",
)
DEFAULT_MODELS = ("srresnet-x4", "edsr-baseline-x4", "rrdbnet-6b-x4", "srcnn-x4")
Runner = Callable[[torch.Tensor], torch.Tensor]


# --- measuring ------------------------------------------------------------------------------------


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Yields a one-item list that holds, afterwards, the peak RSS growth in bytes."""
    result = [0]
    base = _rss()
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result[0] = max(result[0], _rss() - base)
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result[0] = max(result[0], _rss() - base)


def time_runs(fn: Callable[[], object], *, warmup: int, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def conv3x3_ceiling(dtype: torch.dtype, *, size: int = 256, repeats: int = 5) -> float:
    """GFLOP/s of a channels_last 3x3 convolution, 64 -> 64 features, on ``size``^2 pixels."""
    conv = nn.Conv2d(64, 64, 3, padding=1).eval().to(dtype=dtype)
    conv = conv.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    x = torch.rand(1, 64, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds = statistics.median(time_runs(lambda: conv(x), warmup=2, repeats=repeats))
    return 2 * 64 * 64 * 9 * size * size / seconds / 1e9


# --- execution paths ------------------------------------------------------------------------------


class _AsModule(nn.Module):
    """A runner as a module with the attributes :func:`super_resolve` reads."""

    def __init__(self, run: Runner, model: nn.Module) -> None:
        super().__init__()
        self.run = run
        self.scale = getattr(model, "scale", 1)
        self.in_channels = getattr(model, "in_channels", 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


def _channels_last(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]


def _autocast(model: nn.Module, *, nhwc: bool) -> Runner:
    net = _channels_last(model) if nhwc else model

    def run(x: torch.Tensor) -> torch.Tensor:
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return net(x).float()

    return run


def _compile(model: nn.Module, *, freeze: bool) -> Runner:
    import torch._inductor.config as inductor_config

    net = _channels_last(model) if freeze else copy.deepcopy(model)
    compiled = torch.compile(net)

    def run(x: torch.Tensor) -> torch.Tensor:
        if freeze:
            x = x.contiguous(memory_format=torch.channels_last)
        with inductor_config.patch(freezing=freeze):
            return compiled(x)

    return run


def _jit(model: nn.Module, *, onednn_graph: bool) -> Runner:
    example = torch.rand(1, getattr(model, "in_channels", 3), 32, 32)
    scripts: dict[tuple[int, ...], Any] = {}

    def build(shape: tuple[int, ...]) -> Any:
        # Traced per input shape: SRCNN's bicubic step computes its weights from the size.
        torch.jit.enable_onednn_fusion(onednn_graph)
        with torch.no_grad():
            traced = torch.jit.trace(copy.deepcopy(model), torch.rand(shape), check_trace=False)
            frozen = torch.jit.freeze(traced)
            if not onednn_graph:
                frozen = torch.jit.optimize_for_inference(frozen)
        return frozen

    def run(x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in scripts:
            scripts[key] = build(key)
        torch.jit.enable_onednn_fusion(onednn_graph)
        try:
            return scripts[key](x)
        finally:
            torch.jit.enable_onednn_fusion(False)

    run(example)
    return run


def _onnx_file(model: nn.Module, folder: Path) -> Path:
    path = folder / "model.onnx"
    try:
        from superres.inference.export import export_onnx
    except ImportError:
        export_onnx = None
    if export_onnx is not None:
        return export_onnx(model, path, verify=False, overwrite=True)
    channels = getattr(model, "in_channels", 3)
    with torch.no_grad():
        torch.onnx.export(
            copy.deepcopy(model).float().eval(),
            (torch.rand(1, channels, 32, 32),),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "n", 2: "h", 3: "w"}, "output": {0: "n", 2: "H", 3: "W"}},
            dynamo=False,
        )
    return path


def _ort_session(path: Path) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: x.numpy()})[0]
        return torch.from_numpy(out)  # pyright: ignore[reportArgumentType]

    return run


def _onnxruntime(model: nn.Module, folder: Path, *, int8: bool, data_root: str | None) -> Runner:
    path = _onnx_file(model, folder)
    if not int8:
        return _ort_session(path)
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    described = describe_network(model)
    calibration = calibration_crops(
        described.scale, in_channels=described.in_channels, data_root=data_root
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": x[None].numpy()} for x in calibration])

        def get_next(self) -> dict[str, Any]:
            return next(self.items, None)  # pyright: ignore[reportReturnType] - None ends it

    quantised = folder / "model_int8.onnx"
    quantize_static(str(path), str(quantised), Reader(), quant_format=QuantFormat.QDQ)
    return _ort_session(quantised)


def _openvino(model: nn.Module, folder: Path, *, bf16: bool) -> tuple[Runner, str]:
    """OpenVINO's CPU plugin on the ONNX export, f32 or with the bf16 precision hint."""
    openvino, _ = import_engines()  # without their telemetry
    core = openvino_core()  # the one --precision int8 compiles with
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": str(torch.get_num_threads()),
        "INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
    }
    compiled = core.compile_model(core.read_model(str(_onnx_file(model, folder))), "CPU", config)
    request = compiled.create_infer_request()
    hint = compiled.get_property("INFERENCE_PRECISION_HINT")
    ran = hint.to_string() if hasattr(hint, "to_string") else str(hint)

    def run(x: torch.Tensor) -> torch.Tensor:
        request.infer({0: x.numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())

    return run, f"{_openvino_version(openvino)}, ran {ran}"


def _openvino_version(openvino: Any) -> str:
    return f"OpenVINO {openvino.__version__.split('-')[0]}"


def _openvino_int8(model: nn.Module, folder: Path, *, data_root: str | None) -> tuple[Runner, str]:
    """What ``--precision int8`` runs (:func:`superres.inference.int8.int8_network`), calibrated
    afresh (a cache in ``folder``), so the setup time includes the calibration."""
    network = int8_network(model, data_root=data_root, cache_dir=folder / "int8")
    openvino, nncf = import_engines()
    note = f"{_openvino_version(openvino)}, NNCF {nncf.__version__}, rest in "
    return network, note + network.inference_precision


def build_path(
    name: str, model: nn.Module, folder: Path, data_root: str | None
) -> tuple[Runner, str]:
    """The runner for path ``name`` and a note (e.g. what ``default`` resolved to)."""
    if name == "eager":
        return model, "fp32 NCHW"
    if name == "channels_last":
        net = _channels_last(model)
        return (lambda x: net(x.contiguous(memory_format=torch.channels_last))), ""
    if name in ("bf16", "bf16_cl"):
        return _autocast(model, nhwc=name == "bf16_cl"), ""
    if name in ("compile", "compile_freeze"):
        return _compile(model, freeze=name == "compile_freeze"), ""
    if name in ("jit", "onednn_graph"):
        return _jit(model, onednn_graph=name == "onednn_graph"), ""
    if name in ("onnxruntime", "onnxruntime_int8"):
        return _onnxruntime(model, folder, int8=name == "onnxruntime_int8", data_root=data_root), ""
    if name in ("openvino", "openvino_bf16"):
        return _openvino(model, folder, bf16=name == "openvino_bf16")
    if name == "openvino_int8":
        return _openvino_int8(model, folder, data_root=data_root)
    if name == "exact":
        return fast_network(model, dtype=torch.float32), ""
    if name == "fast_bf16":
        return fast_network(model, dtype=torch.bfloat16), ""
    if name == "default":
        upscaler = Upscaler(model, options=UpscaleOptions(device="cpu", precision="auto"))
        return upscaler.network, upscaler.execution_path
    raise SystemExit(f"unknown path {name!r}; use some of {', '.join(INFERENCE_PATHS)}")


# --- one model ------------------------------------------------------------------------------------


@dataclass
class Row:
    """One model x path x input measurement."""

    model: str
    path: str
    input: str
    ms_per_mp: float
    gflops: float
    peak_mib: float
    speedup: float = float("nan")
    setup_s: float = 0.0
    note: str = ""
    times_s: list[float] = field(default_factory=list)


@dataclass
class Quality:
    """Quality cost of one path on Set5 (``--quality-set``) against the eager fp32 output (also
    speed_gpu.py's)."""

    model: str
    path: str
    max_abs_diff: float = math.nan
    psnr_y: float = math.nan
    psnr_y_change: float = math.nan
    note: str = ""  # why it was not measured


def _quality_pairs(
    scale: int, root: str | None, name: str = "set5"
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    try:
        bench = BenchmarkSet(name, scale, root=root)
        return [(pair.lq, pair.hr.to(torch.float64)) for pair in bench]
    except Exception as exc:  # quality is optional: say why, go on
        print(f"  (no {name} quality: {exc})", file=sys.stderr)
        return []


def _quality(
    run: Runner,
    model: nn.Module,
    pairs: list[tuple[torch.Tensor, torch.Tensor]],
    reference: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[float, float]:
    """``(max abs diff of float outputs, mean PSNR-Y of the 8-bit outputs)``."""
    scale = int(getattr(model, "scale", 1))
    wrapped = _AsModule(run, model)
    worst = 0.0
    scores = []
    for (lq, hr), (ref_float, _ref_sr) in zip(pairs, reference, strict=True):
        with torch.inference_mode():
            out = _float_output(run, model, lq)
        worst = max(worst, float((out - ref_float).abs().max()))
        sr = super_resolve(wrapped, lq, scale)
        scores.append(float(psnr(sr[None], hr[None], crop_border=scale, y_channel=True)[0]))
    return worst, math.fsum(scores) / max(1, len(scores))


def _float_output(run: Runner, model: nn.Module, lq: torch.Tensor) -> torch.Tensor:
    """The network's float output on the RGB or Y input it takes."""
    if getattr(model, "in_channels", 3) == 1:
        from superres.imaging.color import rgb2ycbcr

        lq = rgb2ycbcr(lq[None])[0, :1]
    return run(lq[None].float())[0].float()


def bench_model(name: str, args: argparse.Namespace) -> tuple[list[Row], list[Quality]]:
    model = load_model(name).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    scale = int(getattr(model, "scale", 1))
    channels = int(getattr(model, "in_channels", 3))
    rows: list[Row] = []
    qualities: list[Quality] = []
    pairs = [] if args.no_quality else _quality_pairs(scale, args.data_root, args.quality_set)
    reference: list[tuple[torch.Tensor, torch.Tensor]] = []
    ref_psnr = float("nan")
    if pairs:
        with torch.inference_mode():
            reference = [(_float_output(model, model, lq), lq) for lq, _ in pairs]
        _, ref_psnr = _quality(model, model, pairs, reference)
    eager_ms: dict[str, float] = {}

    large_h, large_w = args.large
    inputs = [(f"{s}x{s}", (s, s), False) for s in args.sizes]
    if large_h > 0:
        inputs.append((f"{large_h}x{large_w} tiled", (large_h, large_w), True))
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.paths:
            start = time.perf_counter()
            try:
                with torch.inference_mode(mode=path not in ("jit", "onednn_graph")):
                    run, note = build_path(path, model, Path(tmp), args.data_root)
                    # The first call compiles/plans: part of the setup time, not of the runs.
                    run(torch.rand(1, channels, 32, 32))
            except Exception as exc:  # one failing path must not end the run
                print(f"  {name} {path}: unavailable ({type(exc).__name__}: {exc})")
                continue
            setup = time.perf_counter() - start
            if isinstance(run, FastNetwork) and not note:
                note = f"{run.fused} fused convs"
            for label, (h, w), tiled in inputs:
                x = torch.rand(1, channels, h, w, generator=torch.Generator().manual_seed(0))
                tile = args.large_tile
                if tiled and tile == "auto":
                    tile = Upscaler(model, options=UpscaleOptions(device="cpu")).tile_size() or h

                def once(
                    run: Runner = run, x: torch.Tensor = x, tiled: bool = tiled, tile: object = tile
                ) -> object:
                    if tiled:  # run_tiled takes one (C, H, W) image and batches tiles itself
                        return run_tiled(
                            run, x[0], scale=scale, tile=int(str(tile)), overlap=DEFAULT_OVERLAP
                        )
                    return run(x)

                repeats = args.large_repeats if tiled else args.repeats
                with torch.inference_mode(mode=path not in ("jit", "onednn_graph")):
                    try:
                        with peak_rss_growth() as peak:
                            once()
                        times = time_runs(once, warmup=args.warmup, repeats=repeats)
                    except Exception as exc:  # e.g. out of memory
                        print(f"  {name} {path} {label}: failed ({type(exc).__name__}: {exc})")
                        continue
                seconds = statistics.median(times)
                out_mp = h * w * scale * scale / 1e6
                macs = (
                    count_macs(model, (1, channels, h, w))
                    if not tiled
                    else _tiled_macs(model, channels, h, w, scale)
                )
                row = Row(
                    model=name,
                    path=path,
                    input=label + (f" ({tile} px)" if tiled else ""),
                    ms_per_mp=seconds * 1e3 / out_mp,
                    gflops=2 * macs / seconds / 1e9,
                    peak_mib=peak[0] / 2**20,
                    setup_s=setup,
                    note=note,
                    times_s=times,
                )
                if path == "eager":
                    eager_ms[label] = row.ms_per_mp
                if label in eager_ms:
                    row.speedup = eager_ms[label] / row.ms_per_mp
                rows.append(row)
                print(_row_line(row), flush=True)
            if pairs:
                with torch.inference_mode(mode=path not in ("jit", "onednn_graph")):
                    worst, score = _quality(run, model, pairs, reference)
                quality = Quality(
                    name, path, max_abs_diff=worst, psnr_y=score, psnr_y_change=score - ref_psnr
                )
                qualities.append(quality)
                print(
                    f"  {name} {path}: {args.quality_set} max|diff| {worst:.2e}, "
                    f"PSNR-Y {score:.4f} ({score - ref_psnr:+.4f} dB)",
                    flush=True,
                )
            del run
        if args.tiles and large_h > 0:
            rows += _tile_sweep(name, model, args)
    return rows, qualities


def _tiled_macs(model: nn.Module, channels: int, h: int, w: int, scale: int) -> int:
    """MACs of the whole image's output (tiling overlap is overhead, not counted as work)."""
    per_pixel = count_macs(model, (1, channels, 64, 64)) / (64 * 64)
    return int(per_pixel * h * w)


def _tile_sweep(name: str, model: nn.Module, args: argparse.Namespace) -> list[Row]:
    """The default path on the large image at each ``--tiles`` size (0: untiled)."""
    h, w = args.large
    scale = int(getattr(model, "scale", 1))
    channels = int(getattr(model, "in_channels", 3))
    x = torch.rand(channels, h, w, generator=torch.Generator().manual_seed(0))
    macs = _tiled_macs(model, channels, h, w, scale)
    rows = []
    for tile in args.tiles:
        upscaler = Upscaler(model, options=UpscaleOptions(device="cpu", tile=tile))  # pyright: ignore[reportArgumentType]
        used = upscaler.tile_size()
        with peak_rss_growth() as peak:
            upscaler(x)
        times = time_runs(lambda u=upscaler: u(x), warmup=0, repeats=args.large_repeats)
        seconds = statistics.median(times)
        row = Row(
            model=name,
            path="default (Upscaler)",
            input=f"{h}x{w} tile {tile}" + (f" = {used} px" if tile == "auto" else ""),
            ms_per_mp=seconds * 1e3 / (h * w * scale * scale / 1e6),
            gflops=2 * macs / seconds / 1e9,
            peak_mib=peak[0] / 2**20,
            note=upscaler.execution_path,
            times_s=times,
        )
        rows.append(row)
        print(_row_line(row), flush=True)
    return rows


def _row_line(row: Row) -> str:
    speed = f"{row.speedup:.2f}x" if not math.isnan(row.speedup) else "-"
    return (
        f"  {row.model:18s} {row.path:16s} {row.input:24s} {row.ms_per_mp:9.1f} ms/MP "
        f"{row.gflops:7.1f} GFLOP/s {row.peak_mib:8.0f} MiB {speed:>7s}  {row.note}"
    )


# --- main -----------------------------------------------------------------------------------------


def _size_pair(text: str) -> tuple[int, int]:
    h, _, w = text.partition("x")
    return int(h), int(w or h)


def _tile(text: str) -> int | str:
    return text if text == "auto" else int(text)


def markdown(
    rows: list[Row], qualities: list[Quality], ceilings: dict[str, float], quality_set: str = "set5"
) -> str:
    lines = [
        "| model | path | input | ms / output MP | GFLOP/s | % of fp32 3x3 | % of bf16 3x3 | "
        "peak MiB | speed-up vs eager | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        shares = [
            f"{100 * r.gflops / ceilings[k]:.0f}%" if ceilings.get(k) else "-"
            for k in ("fp32", "bf16")
        ]
        speed = f"{r.speedup:.2f}x" if not math.isnan(r.speedup) else "-"
        lines.append(
            f"| {r.model} | {r.path} | {r.input} | {r.ms_per_mp:.0f} | {r.gflops:.0f} | "
            f"{shares[0]} | {shares[1]} | {r.peak_mib:.0f} | {speed} | {r.note} |"
        )
    if qualities:
        lines += [
            "",
            f"| model | path | {quality_set} max abs diff | PSNR-Y | change (dB) |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {q.model} | {q.path} | {q.max_abs_diff:.1e} | {q.psnr_y:.4f} | "
            f"{q.psnr_y_change:+.4f} |"
            for q in qualities
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(WEIGHTS))
    parser.add_argument(
        "--paths", nargs="+", default=list(INFERENCE_PATHS), choices=INFERENCE_PATHS
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256], help="LR sizes")
    parser.add_argument(
        "--large", type=_size_pair, default=(512, 512), help="large image HxW, tiled (0: none)"
    )
    parser.add_argument("--large-tile", type=_tile, default="auto", help="its tile (auto)")
    parser.add_argument(
        "--tiles", nargs="*", type=_tile, default=[], help="tile sizes to sweep on the large image"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--large-repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--no-quality", action="store_true", help="skip the Set5 quality check")
    parser.add_argument(
        "--quality-set", default="set5", help="benchmark set of the quality check (set5, set14)"
    )
    parser.add_argument("--data-root", default=None, help="folder with Set5/ (SUPERRES_DATA)")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.data_root is None:
        args.data_root = os.environ.get("SUPERRES_DATA")

    print(f"machine: {describe_machine()}")
    # Every path runs with the allocator the Upscaler sets on the CPU (runtime.py).
    print(
        f"freed CPU memory retained (superres.runtime.retain_freed_memory): {retain_freed_memory()}"
    )
    ceilings: dict[str, float] = {}
    rows: list[Row] = []
    qualities: list[Quality] = []
    for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        ceilings[label] = conv3x3_ceiling(dtype, repeats=args.repeats)
        print(f"channels_last 3x3 conv 64->64, {label}: {ceilings[label]:.1f} GFLOP/s")
    for name in args.models:
        print(f"\n{name}:")
        model_rows, model_quality = bench_model(name, args)
        rows += model_rows
        qualities += model_quality
    print()
    print(markdown(rows, qualities, ceilings, args.quality_set))
    if args.json is not None:
        document = {
            "machine": describe_machine(),
            "ceilings_gflops": ceilings,
            "rows": [asdict(r) for r in rows],
            "quality": [asdict(q) for q in qualities],
        }
        atomic_write_text(args.json, json.dumps(document, indent=1))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
