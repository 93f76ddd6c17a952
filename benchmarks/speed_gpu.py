"""GPU speed of the shipped models on each CUDA execution path, with the quality each path costs.

The GPU counterpart of ``benchmarks/speed.py``. Per model, LR size and path: ms per image and per
output megapixel (median of ``--repeats`` runs timed with CUDA events, after an untimed first call
and ``--warmup`` more), GFLOP/s (2 x :func:`~superres.models.flops.count_macs`), peak GPU memory
(``max_memory_allocated`` over the row, weights included), the speed-up over ``fp32`` in the same
run, and the quality cost: max abs difference from fp32's output on the same random input and, with
Set5 under ``--data-root`` (``SUPERRES_DATA``), mean PSNR-Y of the 8-bit outputs and its change.
First the ceiling: a channels_last 3x3 convolution, 64 -> 64 features, on 1x64x512x512.

    python benchmarks/speed_gpu.py --budget-s 90 --json out/speed_gpu.json
    python benchmarks/speed_gpu.py --device cpu --models srresnet-x4 --sizes 32 --paths fp32 bf16_cl

Paths (``--paths``; ``fp32`` always runs, first: it is the reference):

=============== ===================================================================================
``fp32``        eager, NCHW, TF32 off for cuDNN and cuBLAS (PyTorch's default has cuDNN TF32 on)
``tf32``        eager, NCHW, TF32 on for cuDNN convolutions and cuBLAS matmuls
``bf16``        ``torch.autocast(dtype=bfloat16)``, NCHW
``fp16``        ``torch.autocast(dtype=float16)``, NCHW
``bf16_cl``     bf16 autocast, model and input channels_last
``fp16_cl``     fp16 autocast, channels_last
``compile``     ``torch.compile(model, dynamic=True)`` (default mode) under bf16 autocast,
                channels_last; compiled once, on a non-square input, so that no size recompiles
``cuda_graph``  bf16 autocast channels_last captured into one ``torch.cuda.CUDAGraph`` per input
                shape (warmed up on a side stream first), replayed
=============== ===================================================================================

Built for one unattended run: every step fails alone (its error goes in its row), no step starts
once ``--budget-s`` has passed (counted from the process start) and the step still running then is
interrupted; the JSON is rewritten after every row. ``compile`` runs after every other path of
every model, as compiling costs the most. With ``--device cpu`` the CUDA-only paths are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from speed import Quality
from superres.data.datasets import BenchmarkSet
from superres.evaluation.protocol import super_resolve
from superres.io.files import atomic_write_text
from superres.metrics.fidelity import psnr
from superres.models.catalog import WEIGHTS
from superres.models.flops import count_macs
from superres.models.weights import load_model
from superres.runtime import describe_machine

PATHS = ("fp32", "tf32", "bf16", "fp16", "bf16_cl", "fp16_cl", "compile", "cuda_graph")
CUDA_ONLY = ("tf32", "fp16", "fp16_cl", "compile", "cuda_graph")
DEFAULT_MODELS = ("srresnet-x4", "edsr-baseline-x4", "rrdbnet-6b-x4")
TF32 = {"fp32": False, "tf32": True}  # other paths leave the TF32 flags as they are
Runner = Callable[[torch.Tensor], torch.Tensor]


class OverBudget(BaseException):
    """Raised by the budget alarm or SIGTERM in the step in progress (not an ``Exception``, so
    the per-step handlers let it through)."""


@dataclass
class Row:
    model: str
    path: str
    size: str
    ms_per_image: float = math.nan
    ms_per_mp: float = math.nan
    gflops: float = math.nan
    peak_mib: float = math.nan
    speedup: float = math.nan
    max_abs_diff: float = math.nan
    setup_s: float = math.nan
    note: str = ""
    times_ms: list[float] = field(default_factory=list)


@dataclass
class Subject:
    """One model on the device with its inputs and fp32 reference outputs."""

    name: str
    model: nn.Module
    scale: int
    inputs: dict[int, torch.Tensor]
    macs: dict[int, int]
    set5: list[tuple[torch.Tensor, torch.Tensor]]
    reference: dict[int, torch.Tensor] = field(default_factory=dict)
    fp32_s: dict[int, float] = field(default_factory=dict)
    set5_reference: list[torch.Tensor] = field(default_factory=list)
    set5_psnr: float = math.nan


# --- the machine and measuring --------------------------------------------------------------------


def machine_line(device: torch.device) -> str:
    if device.type != "cuda":
        return describe_machine()
    props = torch.cuda.get_device_properties(device)
    driver = "?"
    with contextlib.suppress(Exception):
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        done = subprocess.run(query, capture_output=True, text=True, timeout=3, check=False)
        driver = done.stdout.strip().splitlines()[0]
    return (
        f"{torch.cuda.get_device_name(device)}, {props.total_memory / 2**30:.0f} GiB, "
        f"sm_{props.major}{props.minor}, {props.multi_processor_count} SMs; PyTorch "
        f"{torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
        f"driver {driver}; cudnn.benchmark {torch.backends.cudnn.benchmark}"
    )


@contextlib.contextmanager
def tf32(enabled: bool | None) -> Iterator[None]:
    """TF32 for cuDNN convolutions and cuBLAS matmuls on/off (None: as it is), restored after.
    Only the legacy flags: mixing them with the ``fp32_precision`` API is an error in torch."""
    if enabled is None:
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = enabled
    cudnn.allow_tf32 = enabled  # pyright: ignore[reportAttributeAccessIssue] - a module property
    try:
        yield
    finally:
        matmul.allow_tf32 = saved[0]
        cudnn.allow_tf32 = saved[1]  # pyright: ignore[reportAttributeAccessIssue]


def measure(
    run: Runner, x: torch.Tensor, *, warmup: int, repeats: int
) -> tuple[list[float], float, torch.Tensor]:
    """Seconds of ``repeats`` timed calls, peak MiB allocated (NaN on the CPU), the first output.

    The first call (untimed) is where a CUDA graph is captured. On CUDA each call is timed with
    events and waited for, so launch overhead that leaves the GPU idle counts."""
    cuda = x.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
    first = run(x)
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(repeats):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(x.device)
            start.record()
            run(x)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            began = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - began)
    peak = torch.cuda.max_memory_allocated(x.device) / 2**20 if cuda else math.nan
    return times, peak, first


def conv_ceiling(device: torch.device, dtype: torch.dtype, tf32_on: bool | None) -> float:
    """GFLOP/s of a channels_last 3x3 convolution, 64 -> 64, on 1x64xSxS (S: 512, 64 on CPU)."""
    size = 512 if device.type == "cuda" else 64
    conv = nn.Conv2d(64, 64, 3, padding=1).to(device=device, dtype=dtype)
    conv = conv.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    x = torch.rand(1, 64, size, size, device=device, dtype=dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    with tf32(tf32_on), torch.inference_mode():
        seconds = statistics.median(measure(conv, x, warmup=3, repeats=10)[0])
    return 2 * 64 * 64 * 9 * size * size / seconds / 1e9


# --- execution paths ------------------------------------------------------------------------------


def _channels_last(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]


def _graphed(net: nn.Module, dtype: torch.dtype) -> Runner:
    """``net`` (channels_last) under ``dtype`` autocast, captured into one CUDA graph per input
    shape and replayed: the input is copied into the graph's static buffer, the output out of it."""
    graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def forward(x: torch.Tensor) -> torch.Tensor:
        # No autocast weight-cast cache across a capture (PyTorch's CUDA graph notes).
        with torch.autocast("cuda", dtype=dtype, cache_enabled=False):
            return net(x)

    def capture(x: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        static_in = torch.empty_like(x, memory_format=torch.channels_last).copy_(x)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up on a side stream before capturing (the docs' way)
            for _ in range(3):
                forward(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = forward(static_in)
        return graph, static_in, static_out

    def run(x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in graphs:
            graphs[key] = capture(x)
        graph, static_in, static_out = graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.to(torch.float32, copy=True)  # the next replay overwrites static_out

    return run


def build(path: str, model: nn.Module, device: torch.device) -> Runner:
    if path in TF32:
        return model
    dtype = torch.float16 if path.startswith("fp16") else torch.bfloat16
    nhwc = path.endswith("_cl") or path in ("compile", "cuda_graph")
    net = _channels_last(model) if nhwc else model
    if path == "cuda_graph":
        return _graphed(net, dtype)
    if path == "compile":
        net = torch.compile(net, dynamic=True)

    def run(x: torch.Tensor) -> torch.Tensor:
        if nhwc:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype):
            return net(x).float()

    return run


class _Recorder(nn.Module):
    """A runner as the module :func:`super_resolve` takes; keeps its last float output."""

    def __init__(self, run: Runner, scale: int) -> None:
        super().__init__()
        self.run, self.scale, self.in_channels = run, scale, 3
        self.last = torch.empty(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last = self.run(x)
        return self.last


def set5_quality(run: Runner, s: Subject, path: str, device: torch.device) -> Quality:
    """Mean PSNR-Y of the 8-bit outputs (as ``superres eval`` scores them) and the max abs
    difference of the float outputs from fp32's; the fp32 path stores the references."""
    recorder, scores, outputs = _Recorder(run, s.scale), [], []
    for lq, hr in s.set5:
        sr = super_resolve(recorder, lq, s.scale, device=device)
        scores.append(float(psnr(sr[None], hr[None], crop_border=s.scale, y_channel=True)[0]))
        outputs.append(recorder.last[0].float().cpu())
    score = math.fsum(scores) / len(scores)
    if path == "fp32":
        s.set5_reference, s.set5_psnr = outputs, score
    worst = math.nan
    if len(s.set5_reference) == len(outputs):
        worst = max(
            float((a - b).abs().max()) for a, b in zip(outputs, s.set5_reference, strict=True)
        )
    return Quality(
        s.name, path, max_abs_diff=worst, psnr_y=score, psnr_y_change=score - s.set5_psnr
    )


# --- the run --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, device: torch.device, deadline: float) -> None:
        self.args, self.device, self.deadline = args, device, deadline
        self.stopped = False
        self.rows: list[Row] = []
        self.quality: list[Quality] = []
        self.ceilings: dict[str, float] = {}
        self.machine = ""
        self._set5: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        # Non-square, so that torch.compile's dynamic shapes give H and W a symbol each.
        self.warm = (40, 56) if device.type == "cuda" else (8, 12)

    def over(self) -> bool:
        return self.stopped or time.perf_counter() > self.deadline

    def add(self, row: Row) -> None:
        self.rows.append(row)
        line = f"  {row.model:17s} {row.path:10s} {row.size:9s}"
        if not math.isnan(row.ms_per_image):
            line += (
                f" {row.ms_per_image:9.2f} ms {row.ms_per_mp:8.2f} ms/MP {row.gflops:8.0f} GFLOP/s"
                f" {_f(row.peak_mib, '7.0f')} MiB {_f(row.speedup, '6.2f')}x"
                f" diff {row.max_abs_diff:.1e}"
            )
        print(f"{line}  {row.note}", flush=True)
        self.write()

    def write(self) -> None:
        if self.args.json is None:
            return
        document = {
            "machine": self.machine,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()},
            "ceilings_gflops": self.ceilings,
            "rows": [asdict(r) for r in self.rows],
            "quality": [asdict(q) for q in self.quality],
        }
        self.args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.args.json, json.dumps(document, indent=1))

    def subject(self, name: str) -> Subject | None:
        model = load_model(name).eval().to(self.device)
        for p in model.parameters():
            p.requires_grad_(False)
        if getattr(model, "in_channels", 3) != 3:
            self.add(Row(name, "-", "-", note="skipped: luma (1-channel) model, see speed.py"))
            return None
        scale = int(getattr(model, "scale", 1))
        gen = torch.Generator().manual_seed(0)
        batch, sizes = self.args.batch, self.args.sizes
        inputs = {s: torch.rand(batch, 3, s, s, generator=gen).to(self.device) for s in sizes}
        macs = {s: count_macs(model, (batch, 3, s, s)) for s in sizes}
        if scale not in self._set5:
            self._set5[scale] = []
            if not self.args.no_quality:
                try:
                    bench = BenchmarkSet("set5", scale, root=self.args.data_root)
                    self._set5[scale] = [(p.lq, p.hr.to(torch.float64)) for p in bench]
                except Exception as exc:  # quality is optional: say why, go on
                    print(f"  (no Set5 quality: {type(exc).__name__}: {exc})", flush=True)
        return Subject(name, model, scale, inputs, macs, self._set5[scale])

    def path(self, s: Subject, path: str) -> None:
        if path in CUDA_ONLY and self.device.type != "cuda":
            self.add(Row(s.name, path, "-", note="skipped: needs CUDA"))
            return
        left = self.deadline - time.perf_counter()
        if path == "compile" and not self.over() and left < self.args.compile_min_s:
            self.add(Row(s.name, path, "-", note=f"skipped: {left:.0f} s left, compile needs more"))
            return
        with tf32(TF32.get(path)), torch.inference_mode():
            if self.over():
                self.add(Row(s.name, path, "-", note="skipped: over the time budget"))
                return
            began = time.perf_counter()
            try:
                run = build(path, s.model, self.device)
                run(torch.rand(1, 3, *self.warm, device=self.device))  # compiles, plans: setup
            except Exception as exc:  # one failing path must not end the run
                self.add(Row(s.name, path, "-", note=_failed(exc)))
                return
            setup = time.perf_counter() - began
            for size, x in s.inputs.items():
                self.row(s, path, size, x, run, setup)
            if s.set5 and not self.over():
                try:
                    q = set5_quality(run, s, path, self.device)
                except Exception as exc:
                    q = Quality(s.name, path, note=_failed(exc))
                self.quality.append(q)
                print(
                    f"  {s.name} {path}: Set5 PSNR-Y {q.psnr_y:.4f} ({q.psnr_y_change:+.4f} dB), "
                    f"max|diff| {q.max_abs_diff:.1e} {q.note}",
                    flush=True,
                )
                self.write()

    def row(self, s: Subject, path: str, size: int, x: torch.Tensor, run: Runner, setup: float):
        label = f"{size}x{size}"
        if self.over():
            self.add(Row(s.name, path, label, note="skipped: over the time budget"))
            return
        args = self.args
        try:
            times, peak, out = measure(run, x, warmup=args.warmup, repeats=args.repeats)
            if path == "fp32":
                s.reference[size], s.fp32_s[size] = out, statistics.median(times)
            ref = s.reference.get(size)
            diff = math.nan if ref is None else float((out.float() - ref).abs().max())
        except Exception as exc:  # e.g. out of memory
            self.add(Row(s.name, path, label, note=_failed(exc)))
            return
        seconds = statistics.median(times)
        out_mp = args.batch * size * size * s.scale**2 / 1e6
        self.add(
            Row(
                s.name,
                path,
                label,
                ms_per_image=seconds * 1e3 / args.batch,
                ms_per_mp=seconds * 1e3 / out_mp,
                gflops=2 * s.macs[size] / seconds / 1e9,
                peak_mib=peak,
                speedup=s.fp32_s.get(size, math.nan) / seconds,
                max_abs_diff=diff,
                setup_s=setup,
                times_ms=[t * 1e3 for t in times],
            )
        )


def _process_age() -> float:
    """Seconds since this process started (Linux; 0 elsewhere)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
        return age if 0.0 <= age < 300.0 else 0.0  # else not to be trusted
    except (OSError, ValueError, IndexError):
        return 0.0


def _failed(exc: BaseException) -> str:
    """An error as a one-line note (compile errors run to pages)."""
    return f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _f(value: float, spec: str) -> str:
    return "-" if math.isnan(value) else format(value, spec)


def markdown(bench: Bench) -> str:
    top = bench.ceilings.get("bf16", math.nan)
    lines = [
        "| model | path | LR size | ms / image | ms / output MP | GFLOP/s | % of bf16 3x3 | "
        "peak MiB | speed-up vs fp32 | max abs diff vs fp32 | setup s | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {r.model} | {r.path} | {r.size} | {_f(r.ms_per_image, '.2f')} | "
        f"{_f(r.ms_per_mp, '.2f')} | {_f(r.gflops, '.0f')} | {_f(100 * r.gflops / top, '.0f')} | "
        f"{_f(r.peak_mib, '.0f')} | {_f(r.speedup, '.2f')} | {_f(r.max_abs_diff, '.1e')} | "
        f"{_f(r.setup_s, '.1f')} | {r.note.replace('|', '/')} |"
        for r in bench.rows
    ]
    if bench.quality:
        lines += ["", "| model | path | Set5 PSNR-Y | change (dB) | Set5 max abs diff | note |"]
        lines += ["|---|---|---:|---:|---:|---|"]
        lines += [
            f"| {q.model} | {q.path} | {_f(q.psnr_y, '.4f')} | {_f(q.psnr_y_change, '+.4f')} | "
            f"{_f(q.max_abs_diff, '.1e')} | {q.note.replace('|', '/')} |"
            for q in bench.quality
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=list(WEIGHTS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128, 256], help="LR sizes")
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=90.0, help="wall-clock budget")
    parser.add_argument(
        "--compile-min-s", type=float, default=25.0, help="skip compile with less time left"
    )
    parser.add_argument(
        "--cudnn-benchmark", action="store_true", help="cuDNN autotuning (per new input shape)"
    )
    parser.add_argument("--data-root", default=None, help="folder with Set5/ (SUPERRES_DATA)")
    parser.add_argument("--no-quality", action="store_true", help="skip the Set5 quality check")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    args.data_root = args.data_root or os.environ.get("SUPERRES_DATA")
    # From the command line the budget counts from the process start (imports included).
    started = time.perf_counter() - (_process_age() if argv is None else 0.0)
    device = torch.device(args.device)
    if args.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    bench = Bench(args, device, started + args.budget_s)

    def stop(signum: int, _frame: object) -> None:
        if not bench.stopped:
            bench.stopped = True
            raise OverBudget(signal.Signals(signum).name)

    handlers: dict[int, Any] = {}
    try:
        with contextlib.suppress(ValueError, AttributeError):  # not the main thread / no SIGALRM
            handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGALRM, signal.SIGTERM)}
            signal.setitimer(signal.ITIMER_REAL, max(0.01, bench.deadline - time.perf_counter()))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("CUDA is not available here; use --device cpu")
        bench.machine = machine_line(device)
        print(f"machine: {bench.machine}", flush=True)
        ceilings = [("fp32", torch.float32, False), ("bf16", torch.bfloat16, None)]
        if device.type == "cuda":
            ceilings.insert(1, ("tf32", torch.float32, True))
        for label, dtype, tf32_on in ceilings:
            try:
                bench.ceilings[label] = conv_ceiling(device, dtype, tf32_on)
                gflops = bench.ceilings[label]
                print(f"3x3 conv 64->64 channels_last, {label}: {gflops:.0f} GFLOP/s", flush=True)
            except Exception as exc:
                print(f"3x3 conv ceiling {label}: {_failed(exc)}", flush=True)
        subjects: list[Subject] = []
        for name in args.models:
            try:
                if bench.over():
                    bench.add(Row(name, "-", "-", note="skipped: over the time budget"))
                elif (subject := bench.subject(name)) is not None:
                    subjects.append(subject)
            except OverBudget as exc:
                bench.add(Row(name, "-", "-", note=f"interrupted while loading ({exc})"))
            except Exception as exc:
                bench.add(Row(name, "-", "-", note=_failed(exc)))
        paths = ["fp32", *[p for p in args.paths if p not in ("fp32", "compile")]]
        phases = [paths, ["compile"] if "compile" in args.paths else []]
        for phase in filter(None, phases):
            for subject in subjects:
                print(f"\n{subject.name}:", flush=True)
                for path in phase:
                    try:
                        bench.path(subject, path)
                    except OverBudget as exc:
                        bench.add(Row(subject.name, path, "-", note=f"interrupted ({exc})"))
                    with contextlib.suppress(Exception):
                        gc.collect()
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
    except OverBudget as exc:
        print(f"stopped: {exc}", flush=True)
    except Exception as exc:  # whatever happened, the table and the JSON of the rows so far
        print(f"stopped: {_failed(exc)}", flush=True)
    finally:
        bench.stopped = True  # first, so that a late alarm cannot raise any more
        with contextlib.suppress(ValueError, AttributeError):
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    print("\n" + markdown(bench), flush=True)
    bench.write()
    if args.json is not None:
        print(f"wrote {args.json}", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    # Exit at once: a compile the budget interrupted can leave workers a normal exit waits for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
