"""Train the model zoo (the weights superres ships) with the recipes in configs/zoo/.

Every run is an ordinary ``superres train`` process with a wall-clock limit (``--time-limit``), so
the whole zoo fits one fixed GPU budget: the PSNR models train side by side on one GPU, then each
GAN model starts from its freshly trained PSNR parent. Afterwards each run's final weights (the
EMA) are exported in float16 with their metadata plus the hardware, iterations and wall time, and
bundled with the logs and plots for the model cards.

    python scripts/train_zoo.py --data-root DATA --runs runs/zoo --export zoo_out \\
        --psnr-minutes 4.5 --gan-minutes 2.5

Runs whose folder already holds a checkpoint continue from it (``--resume auto``), so the zoo can
also be trained in several sittings, e.g. on a CPU overnight.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    name: str  # the recipe (configs/zoo/<name>.yaml) and run folder
    shipped: str  # the catalog name of the weights it produces
    phase: str  # "psnr" (from scratch) or "gan" (after its parent)
    parent: str | None = None
    long: bool = False  # a PSNR model without a GAN child: trains through both phases


JOBS = (
    Job("srresnet_x4", "srresnet-x4", "psnr"),
    Job("rrdbnet_6b_x4", "rrdbnet-6b-x4", "psnr"),
    Job("srcnn_x4", "srcnn-x4", "psnr", long=True),
    Job("srresnet_x2", "srresnet-x2", "psnr", long=True),
    Job("edsr_baseline_x4", "edsr-baseline-x4", "psnr", long=True),
    Job("srgan_x4", "srgan-x4", "gan", parent="srresnet_x4"),
    Job("esrgan_6b_x4", "esrgan-6b-x4", "gan", parent="rrdbnet_6b_x4"),
)


def hardware() -> str:
    if torch.cuda.is_available():
        return f"1x {torch.cuda.get_device_name(0)} (shared by the zoo's concurrent runs)"
    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} threads"


def launch(job: Job, args: argparse.Namespace, seconds: float) -> subprocess.Popen[bytes]:
    run_dir = args.runs / job.name
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "superres",
        "train",
        str(REPO / "configs" / "zoo" / f"{job.name}.yaml"),
    ]
    cmd += ["--out", str(run_dir), "--resume", "auto", "--time-limit", f"{seconds:.0f}"]
    cmd += ["--workers", str(args.workers), "--precision", args.precision, "-q"]
    if args.data_root is not None:
        cmd += ["--data-root", str(args.data_root)]
    log = (run_dir / "train.out").open("ab")
    print(f"[zoo] start {job.name} for {seconds:.0f} s", flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=args.runs)


def export(job: Job, args: argparse.Namespace, wall: dict[str, float]) -> Path | None:
    from superres.models.weights import (
        extra_metadata,
        load_weights,
        read_metadata,
        save_weights,
    )

    source = args.runs / job.name / "weights_last.safetensors"
    if not source.is_file():
        print(f"[zoo] {job.name}: no weights (see {source.parent}/train.out)", flush=True)
        return None
    meta = read_metadata(source)
    model = load_weights(source)
    extra = extra_metadata(meta)
    extra.update(
        {
            "name": job.shipped,
            "hardware": hardware(),
            "wall_time_s": f"{wall.get(job.name, 0.0):.0f}",
            "parent": job.parent.replace("_", "-") if job.parent else "",
            "precision": args.precision,
        }
    )
    metrics = json.loads(meta["metrics"]) if "metrics" in meta else None
    target = args.export / f"{job.shipped}.safetensors"
    save_weights(
        model,
        target,
        dtype=torch.float16,
        recipe=meta.get("recipe"),
        metrics=metrics,
        metadata=extra,
    )
    print(f"[zoo] {job.shipped}: iterations {meta.get('iterations')} metrics {metrics}", flush=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--runs", type=Path, default=Path("runs/zoo"))
    parser.add_argument("--export", type=Path, required=True)
    parser.add_argument("--psnr-minutes", type=float, default=4.5)
    parser.add_argument("--gan-minutes", type=float, default=2.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--only", nargs="*", default=None, help="subset of job names")
    parser.add_argument(
        "--export-only", action="store_true", help="skip training; export what the runs hold"
    )
    args = parser.parse_args()
    args.runs = args.runs.resolve()
    args.export.mkdir(parents=True, exist_ok=True)
    if args.data_root is not None:
        args.data_root = args.data_root.resolve()
    jobs = [j for j in JOBS if args.only is None or j.name in args.only]

    psnr_s, gan_s = args.psnr_minutes * 60, args.gan_minutes * 60
    started: dict[str, float] = {}
    wall: dict[str, float] = {}
    running: dict[str, subprocess.Popen[bytes]] = {}
    status: dict[str, int] = {}
    if args.export_only:
        wall = (
            json.loads((args.runs / "wall.json").read_text())
            if (args.runs / "wall.json").is_file()
            else {}
        )
        jobs_to_run: list[Job] = []
    else:
        jobs_to_run = jobs
    for job in jobs_to_run:
        if job.phase == "psnr":
            seconds = psnr_s + gan_s if job.long else psnr_s
            running[job.name] = launch(job, args, seconds)
            started[job.name] = time.monotonic()
    pending = [j for j in jobs_to_run if j.phase == "gan"]
    while running or pending:
        time.sleep(2)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                wall[name] = time.monotonic() - started[name]
                status[name] = proc.returncode
                print(f"[zoo] {name} exited {proc.returncode} after {wall[name]:.0f} s", flush=True)
                del running[name]
                (args.runs / "wall.json").write_text(json.dumps(wall))
        for job in list(pending):
            parent = job.parent or ""
            if parent in status or parent not in {j.name for j in jobs_to_run}:
                pending.remove(job)
                if status.get(parent, 0) != 0:
                    print(f"[zoo] skip {job.name}: parent {parent} failed", flush=True)
                    continue
                running[job.name] = launch(job, args, gan_s)
                started[job.name] = time.monotonic()

    exported = [p for job in jobs if (p := export(job, args, wall)) is not None]
    with tarfile.open(args.export / "logs.tar.gz", "w:gz") as tar:
        for job in jobs:
            run = args.runs / job.name
            for pattern in ("*.csv", "train.out", "plots/*.png", "samples/*.png"):
                for path in sorted(run.glob(pattern))[-12:]:
                    tar.add(path, arcname=f"{job.name}/{path.relative_to(run)}")
    (args.export / "zoo.json").write_text(
        json.dumps(
            {
                "status": status,
                "wall_s": wall,
                "hardware": hardware(),
                "exported": [p.name for p in exported],
            },
            indent=2,
        )
    )
    print(json.dumps(status), flush=True)
    return 0 if all(code == 0 for code in status.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
