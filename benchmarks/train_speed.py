"""Training speed of the zoo's networks: the old DataLoader step against the device pipeline.

Every row is the real :class:`~superres.training.trainer.Trainer` built from a zoo recipe (its
model, losses, patch size, optimiser), timed over ``--steps`` iterations after ``--warmup``:
patches per second, ms per step, the part of a step spent getting the batch, achieved TFLOP/s
(convolution MACs counted from the layer shapes; a training step is counted as three forward
passes of the generator; GAN steps add the discriminator and the perceptual trunk the same way),
that as a share of the measured bf16 (and fp32) 3x3-convolution ceiling of the device, and peak
memory (CUDA: allocator peak; CPU: resident-set growth while the trainer is built, warmed up
and timed). All paths of a network run in one
process, one after another, on the same machine.

Paths (``--paths``):

============== =================================================================================
``loader-nchw`` DataLoader batches (``--workers`` processes), NCHW fp32, per-tensor Adam: eager
               PyTorch, what the trainer ran before it used channels_last
``loader``     DataLoader batches, channels_last, ``--precision``, per-tensor Adam (the trainer
               as it was before the device pipeline)
``device``     what ``superres train`` runs by default: batches cut on the device
               (``data.pipeline: device``), the layout a timed step finds faster (channels_last
               on CUDA), ``--precision auto``, fused Adam
``compile``    ``device`` with ``--compile`` (torch.compile of the networks)
============== =================================================================================

    python benchmarks/train_speed.py --data-root ../shared/data           # CPU: the two rows
    python benchmarks/train_speed.py --models all --batches 16 64 --device cuda --steps 30
    python benchmarks/train_speed.py --curve 200 --models srresnet        # loss vs samples

``--curve N`` trains N steps of the first model from one seed on the device pipeline, at each
``--batches`` size with the learning rate scaled linearly from the recipe's batch, once in fp32
and once in the automatic precision, and prints the loss against the number of patches seen:
the evidence a recipe needs before it trains with a larger batch, and for bf16 training.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from speed import conv3x3_ceiling, peak_rss_growth
from superres.io.files import atomic_write_text
from superres.models.flops import count_macs
from superres.runtime import describe_machine, resolve_device
from superres.training.config import RunOptions, recipe_from_dict
from superres.training.ema import unwrap_model
from superres.training.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]

#: ``--models`` names -> the recipe whose step is timed.
NETWORKS: dict[str, Path] = {
    "srcnn": REPO / "configs/zoo/srcnn_x4.yaml",
    "srresnet": REPO / "configs/zoo/srresnet_x4.yaml",
    "edsr-baseline": REPO / "configs/zoo/edsr_baseline_x4.yaml",
    "rrdbnet-6b": REPO / "configs/zoo/rrdbnet_6b_x4.yaml",
    "rrdbnet-23": REPO / "configs/esrgan_psnr_x4.yaml",
    "srgan": REPO / "configs/zoo/srgan_x4.yaml",
    "esrgan-6b": REPO / "configs/zoo/esrgan_6b_x4.yaml",
}
PATHS = ("loader-nchw", "loader", "device", "compile")


@dataclass
class Row:
    model: str
    path: str
    batch: int
    patch: int
    ms_per_step: float
    data_ms: float
    patches_per_s: float
    layout: str
    precision: str
    tflops: float
    peak_mib: float
    speedup: float = math.nan  # against the first path of this model and batch
    step_times_s: list[float] = field(default_factory=list)


def _recipe(name: str, batch: int, pipeline: str) -> dict[str, Any]:
    data = yaml.safe_load(NETWORKS[name].read_text())
    data = copy.deepcopy(data)
    data["data"]["batch_size"] = batch
    data["data"]["pipeline"] = pipeline
    data["train"]["pretrained"] = None  # a GAN step costs the same from any weights
    data["train"]["d_init_iters"] = 0
    data["validation"] = {"dataset": None}
    return data


def build_trainer(
    name: str, path: str, *, batch: int, args: argparse.Namespace, out: Path
) -> Trainer:
    """The Trainer of ``name``'s recipe set up as ``path`` runs it (see the module docstring)."""
    pipeline = "loader" if path.startswith("loader") else "device"
    recipe = recipe_from_dict(_recipe(name, batch, pipeline))
    layouts = {"loader-nchw": "contiguous", "loader": "channels_last"}
    options = RunOptions(
        out_dir=out,
        data_root=args.data_root,
        device=args.device,
        precision="fp32" if path == "loader-nchw" else args.precision,
        num_workers=args.workers,
        progress=False,
        tensorboard=False,
        compile=path == "compile",
        memory_format=layouts.get(path, "auto"),  # pyright: ignore[reportArgumentType]
    )
    trainer = Trainer(recipe, options)
    if pipeline == "loader":
        # The step as it was: Adam's per-tensor loop, not the fused kernel.
        for opt in (trainer.opt_g, trainer.opt_d):
            for group in opt.param_groups if opt is not None else ():
                group["fused"] = None
                group["foreach"] = False
    return trainer


def step_flops(trainer: Trainer, batch: int) -> float:
    """FLOPs of one training step (see the module docstring for what is counted)."""
    recipe = trainer.recipe
    lq_size = recipe.data.gt_size // recipe.scale
    g = unwrap_model(trainer.net_g)
    channels = 1 if recipe.data.channels == "y" else 3
    macs = 3 * count_macs(g, (batch, channels, lq_size, lq_size))
    hr = (1, channels, recipe.data.gt_size, recipe.data.gt_size)
    if trainer.net_d is not None:
        d = count_macs(unwrap_model(trainer.net_d), hr)
        real_in_g_step = trainer.gan_loss.gan_type == "ragan"
        # G step: D forward + input-gradient backward on the fakes (+ forward on the reals);
        # D step: forward + backward on reals and fakes.
        macs += d * batch * (2 + int(real_in_g_step) + 3 * 2)
    for _key, term in trainer.pixel_terms:
        trunk = getattr(term, "extractor", None)  # a feature-matching loss's network
        if isinstance(trunk, nn.Module):
            # forward on SR and HR, backward to the input on SR
            macs += count_macs(trunk, (1, 3, *hr[2:])) * batch * 4
    return 2.0 * macs


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def peak_memory(device: torch.device) -> Iterator[list[int]]:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        result = [0]
        yield result
        result[0] = torch.cuda.max_memory_allocated(device)
    else:
        with peak_rss_growth() as result:
            yield result


def time_path(name: str, path: str, batch: int, args: argparse.Namespace) -> Row:
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp, peak_memory(device) as peak:
        trainer = build_trainer(name, path, batch=batch, args=args, out=Path(tmp) / "run")
        batches = trainer.batches()
        for _ in range(args.warmup):
            trainer.train_step(next(batches))
        _sync(device)
        data_s, step_s = [], []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            item = next(batches)
            _sync(device)
            t1 = time.perf_counter()
            trainer.train_step(item)
            _sync(device)
            t2 = time.perf_counter()
            data_s.append(t1 - t0)
            step_s.append(t2 - t0)
        flops = step_flops(trainer, batch)
        layout = trainer.memory_format
        precision = str(trainer.amp_dtype or torch.float32).removeprefix("torch.")
        del batches, trainer
    median = statistics.median(step_s)
    return Row(
        model=name,
        path=path,
        batch=batch,
        patch=int(yaml.safe_load(NETWORKS[name].read_text())["data"]["gt_size"]),
        ms_per_step=1000 * median,
        data_ms=1000 * statistics.median(data_s),
        patches_per_s=batch / median,
        layout=layout,
        precision=precision,
        tflops=flops / median / 1e12,
        peak_mib=peak[0] / 2**20,
        step_times_s=step_s,
    )


def ceilings(device: torch.device) -> dict[str, float]:
    """GFLOP/s of a channels_last 3x3 convolution 64 -> 64, fp32 and bf16, on ``device``."""
    if device.type == "cuda":
        from speed_gpu import conv_ceiling

        return {
            "fp32": conv_ceiling(device, torch.float32, False),
            "bf16": conv_ceiling(device, torch.bfloat16, None),
        }
    return {
        label: conv3x3_ceiling(dtype)
        for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }


def markdown(rows: list[Row], tops: dict[str, float]) -> str:
    lines = [
        "| network | path | layout, precision | batch | HR patch | ms / step | data ms (share) "
        "| patches/s | speed-up "
        "| TFLOP/s | % of bf16 3x3 | % of fp32 3x3 | peak MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        share = 100 * r.data_ms / r.ms_per_step
        pct = {k: f"{100 * r.tflops * 1e3 / v:.0f}%" if v else "-" for k, v in tops.items()}
        lines.append(
            f"| {r.model} | {r.path} | {r.layout}, {r.precision} | {r.batch} | {r.patch} | "
            f"{r.ms_per_step:.1f} | "
            f"{r.data_ms:.1f} ({share:.1f}%) | {r.patches_per_s:.1f} | {r.speedup:.2f}x | "
            f"{r.tflops:.3f} | {pct.get('bf16', '-')} | {pct.get('fp32', '-')} | "
            f"{r.peak_mib:.0f} |"
        )
    return "\n".join(lines)


# --- loss against samples seen --------------------------------------------------------------------


def loss_curve(name: str, batch: int, precision: str, args: argparse.Namespace) -> list[float]:
    """Per-step losses of ``args.curve`` steps at ``batch``, lr scaled linearly from the recipe."""
    data = _recipe(name, batch, "device")
    base_batch = int(yaml.safe_load(NETWORKS[name].read_text())["data"]["batch_size"])
    data["train"]["optimizer"]["lr"] = float(data["train"]["optimizer"]["lr"]) * batch / base_batch
    data["train"]["ema_decay"] = None
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(
            out_dir=Path(tmp) / "run",
            data_root=args.data_root,
            device=args.device,
            precision=precision,
            progress=False,
            tensorboard=False,
        )
        trainer = Trainer(recipe_from_dict(data), options)
        batches = trainer.batches()
        losses = []
        for i in range(args.curve):
            values = trainer.train_step(next(batches))
            trainer.step += 1
            losses.append(float(values["loss_total"]))
            if (i + 1) % max(1, args.curve // 5) == 0:
                print(
                    f"  {name} batch {batch} {precision}: step {i + 1} loss {losses[-1]:.5f}",
                    flush=True,
                )
    return losses


def curve_table(curves: dict[str, list[float]], batches: dict[str, int], points: int = 10) -> str:
    """Mean loss per window of patches seen, one column per run."""
    total = min(len(v) * batches[k] for k, v in curves.items())
    points = max(1, min(points, min(len(v) for v in curves.values())))
    edges = [round(total * i / points) for i in range(points + 1)]
    names = list(curves)
    lines = ["| patches seen | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for lo, hi in itertools.pairwise(edges):
        cells = []
        for k in names:
            b = batches[k]
            start = min(lo // b, len(curves[k]) - 1)
            window = curves[k][start : max(start + 1, math.ceil(hi / b))]
            cells.append(f"{statistics.fmean(window):.5f}")
        lines.append(f"| {lo}-{hi} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["srresnet", "edsr-baseline"])
    parser.add_argument(
        "--paths", nargs="+", default=["loader-nchw", "loader", "device"], choices=PATHS
    )
    parser.add_argument("--batches", nargs="+", type=int, default=[16])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader processes (loader paths)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", help="precision of the non-nchw paths")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="holds T91/, BSD200/ (SUPERRES_DATA)"
    )
    parser.add_argument("--curve", type=int, default=0, help="steps of the loss-vs-samples curve")
    parser.add_argument("--json", type=Path, default=None, help="write every number here")
    args = parser.parse_args(argv)
    models = list(NETWORKS) if args.models == ["all"] else args.models
    unknown = sorted(set(models) - set(NETWORKS))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {', '.join(NETWORKS)} or all")
    device = resolve_device(args.device)
    machine = describe_machine() if device.type != "cuda" else torch.cuda.get_device_name(device)
    print(f"machine: {machine}", flush=True)
    result: dict[str, Any] = {"machine": machine, "command": " ".join(sys.argv)}

    if args.curve:
        curves: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}
        for batch in args.batches:
            for precision in ("fp32", "auto"):
                key = f"batch {batch} {precision}"
                curves[key] = loss_curve(models[0], batch, precision, args)
                sizes[key] = batch
        table = curve_table(curves, sizes)
        print(f"\nloss against patches seen ({models[0]}, lr scaled linearly with the batch):")
        print(table)
        result["curves"] = curves
    else:
        tops = ceilings(device)
        print(
            ", ".join(f"3x3 conv ceiling {k}: {v:.1f} GFLOP/s" for k, v in tops.items()), flush=True
        )
        rows: list[Row] = []
        for name in models:
            for batch in args.batches:
                first: float | None = None
                for path in args.paths:
                    row = time_path(name, path, batch, args)
                    first = row.patches_per_s if first is None else first
                    row.speedup = row.patches_per_s / first
                    rows.append(row)
                    print(
                        f"  {name:14s} {path:12s} batch {batch:4d}: {row.ms_per_step:9.1f} ms/step "
                        f"(data {row.data_ms:6.1f}), {row.patches_per_s:8.1f} patches/s, "
                        f"{row.speedup:5.2f}x",
                        flush=True,
                    )
        print()
        print(markdown(rows, tops))
        result.update({"ceilings_gflops": tops, "rows": [asdict(r) for r in rows]})
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
