"""Train the model zoo within a fixed GPU budget, score the results there, keep only the winners.

    python scripts/train_zoo.py --data-root DATA --runs /tmp/zoo --out OUT --budget-minutes 8

One sitting:

1. **Train.** Every zoo recipe (configs/zoo/) runs as an ordinary ``superres train`` process
   with a wall-clock limit, all of them side by side on the one GPU (small networks leave most
   of an H200 idle alone). Each continues from its *shipped* weights (``train.pretrained``; a
   PSNR model's learning rate ramps up over ``--lr-warmup`` steps, the GAN models' fresh
   discriminator first learns alone for ``--d-warmup`` steps), so sittings add
   up: once a sitting's winners are packaged (scripts/package_zoo.py) and committed, the next one
   starts from them. ``--from-scratch`` starts PSNR models anew and GAN models from their PSNR
   parent's new weights (then after the parent's run); a model not shipped yet (the real-world
   ones) always starts so. A run folder that already holds a checkpoint continues it
   (``--resume auto``).
2. **Score where it was trained**, against the shipped model, on the same device and protocol
   (:func:`superres.evaluation.report.build_report`): on Set5, the validation set, a PSNR model
   is kept only if its PSNR-Y is higher; a GAN model only if its NIQE is lower, its PSNR-Y at
   most 3.5 dB below its PSNR parent's, and its static sub-pixel pattern
   (scripts/subpixel_pattern.py) no stronger than max(1 level, the shipped model's). A model not
   shipped yet is judged against its reference on its own set instead (:func:`decide_first`:
   the real-world models against ``edsr-baseline-x4`` on ``set5-real``).
   The test sets (``--test-sets``, those present) are scored for the winners while the budget
   lasts, for the model cards; they never decide.
3. **Pack.** ``--out`` receives each winner as float16 safetensors (with its metadata, the
   hardware, iterations and wall time) and one ``zoo_results.tar.gz`` (``scores.json`` with every
   candidate's scores and decision, the training logs): at most 8 files, each under 16 MiB, the
   limits of what a lent GPU machine returns.

The budget covers everything: scoring and packing get ``--score-share`` of it (at least
``--min-score-s``), training the rest. On a CPU the same script runs end to end with a tiny
budget (a smoke test: a few iterations, Set5 scoring).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from subpixel_pattern import phase_means

REPO = Path(__file__).resolve().parents[1]
#: What a lent machine returns: at most this many files of at most this many bytes.
MAX_FILES, MAX_BYTES = 8, 16 * 2**20


@dataclass(frozen=True)
class Job:
    name: str  # the recipe (configs/zoo/<name>.yaml) and run folder
    shipped: str  # the catalog name of the weights it produces
    gan: bool = False
    parent: str | None = None  # a GAN model's PSNR parent (catalog name)
    #: a model not shipped yet is judged against this shipped model on ``validation`` instead
    reference: str | None = None
    validation: str = "set5"  # the set that decides
    test_sets: tuple[str, ...] | None = None  # instead of --test-sets


#: The real-world models: judged on degraded sets against the shipped default (the issue's bars:
#: the PSNR model beats its PSNR-Y, the GAN model's LPIPS is at least 25% lower, its NIQE lower).
_REAL_TESTS = ("bsd100-real", "urban100-real", "set5")


def _real(name: str, shipped: str, parent: str | None = None) -> Job:
    return Job(
        name,
        shipped,
        gan=parent is not None,
        parent=parent,
        reference="edsr-baseline-x4",
        validation="set5-real",
        test_sets=_REAL_TESTS,
    )


JOBS = (
    Job("srresnet_x4", "srresnet-x4"),
    Job("rrdbnet_6b_x4", "rrdbnet-6b-x4"),
    Job("srcnn_x4", "srcnn-x4"),
    Job("srresnet_x2", "srresnet-x2"),
    Job("edsr_baseline_x4", "edsr-baseline-x4"),
    Job("srgan_x4", "srgan-x4", gan=True, parent="srresnet-x4"),
    Job("esrgan_6b_x4", "esrgan-6b-x4", gan=True, parent="rrdbnet-6b-x4"),
    _real("real_compact_psnr_x4", "real-compact-psnr-x4"),
    _real("real_compact_x4", "real-compact-x4", parent="real-compact-psnr-x4"),
    _real("real_esrgan_6b_psnr_x4", "real-esrgan-6b-psnr-x4"),
    _real("real_esrgan_6b_x4", "real-esrgan-6b-x4", parent="real-esrgan-6b-psnr-x4"),
)


def is_shipped(name: str | None) -> bool:
    """Whether the catalog has weights called ``name``."""
    from superres.models.catalog import WEIGHTS

    return name is not None and name in WEIGHTS


def _fresh_start(job: Job, args: argparse.Namespace) -> bool:
    """Whether ``job`` starts from its parent's run of this sitting (GAN) or from nothing."""
    return args.from_scratch or not is_shipped(job.shipped)


@dataclass
class Decision:
    job: str
    shipped: str
    iterations: int
    wall_s: float
    kept: bool
    reason: str
    candidate: dict[str, dict[str, float | None]]  # dataset -> metric -> value
    shipped_scores: dict[str, dict[str, float | None]]
    lattice: float | None = None
    shipped_lattice: float | None = None


def hardware() -> str:
    if torch.cuda.is_available():
        return f"1x {torch.cuda.get_device_name(0)} (shared by the zoo's concurrent runs)"
    from superres.runtime import cpu_features, cpu_name

    features = ", ".join(cpu_features()) or "no AVX2/AVX-512"
    return f"CPU {cpu_name()} ({features}), {torch.get_num_threads()} threads"


def shipped_file(name: str) -> Path:
    from superres.models.catalog import get_pretrained, pretrained_path

    return pretrained_path(get_pretrained(name))


def launch(job: Job, args: argparse.Namespace, seconds: float) -> subprocess.Popen[bytes]:
    """Start ``job``'s training process (stdout and stderr into its run folder's train.out)."""
    run_dir = args.runs / job.name
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "superres",
        "train",
        str(REPO / "configs/zoo" / f"{job.name}.yaml"),
    ]
    cmd += ["--out", str(run_dir), "--resume", "auto", "--time-limit", f"{max(seconds, 1):.0f}"]
    cmd += ["--precision", args.precision, "-q"]
    if args.data_root is not None:
        cmd += ["--data-root", str(args.data_root)]
    if job.gan:
        start = args.runs / f"{_job_of(job.parent).name}/weights_last.safetensors"
        start = start if _fresh_start(job, args) else shipped_file(job.shipped)
        cmd += [
            "--set",
            f"train.pretrained={start}",
            "--set",
            f"train.d_init_iters={args.d_warmup}",
        ]
    elif not _fresh_start(job, args):
        # A fine-tune: the learning rate ramps up, so a fresh Adam's first full-size steps do
        # not knock a converged network off its optimum (the EMA starts at the shipped weights).
        cmd += ["--set", f"train.pretrained={shipped_file(job.shipped)}"]
        cmd += ["--set", f"train.scheduler.warmup_iters={args.lr_warmup}"]
    cmd += [item for extra in args.set for item in ("--set", extra)]
    log = (run_dir / "train.out").open("ab")
    print(f"[zoo] start {job.name} for {seconds:.0f} s", flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=args.runs)


def _job_of(shipped: str | None) -> Job:
    return next(j for j in JOBS if j.shipped == shipped)


def train_all(jobs: list[Job], args: argparse.Namespace, seconds: float) -> dict[str, float]:
    """Run the jobs side by side for ``seconds`` (GAN jobs after their parent with
    ``--from-scratch``, or when they are not shipped yet); returns each job's wall time."""
    started: dict[str, float] = {}
    running: dict[str, subprocess.Popen[bytes]] = {}
    wall: dict[str, float] = {}
    deadline = time.monotonic() + seconds
    waiting = [j for j in jobs if j.gan and _fresh_start(j, args) and _job_of(j.parent) in jobs]
    for job in jobs:
        if job not in waiting:
            running[job.name] = launch(job, args, seconds - args.startup_s)
            started[job.name] = time.monotonic()
    while running or waiting:
        time.sleep(1)
        for name, proc in list(running.items()):
            if proc.poll() is not None:
                wall[name] = time.monotonic() - started[name]
                print(f"[zoo] {name} exited {proc.returncode} after {wall[name]:.0f} s", flush=True)
                del running[name]
        for job in list(waiting):
            if _job_of(job.parent).name in wall:
                waiting.remove(job)
                left = deadline - time.monotonic() - args.startup_s
                if left > 30:
                    running[job.name] = launch(job, args, left)
                    started[job.name] = time.monotonic()
    return wall


def export_candidate(job: Job, args: argparse.Namespace, wall_s: float) -> tuple[Path, int] | None:
    """The run's final (EMA) weights as float16 with the zoo metadata, and its iterations."""
    from superres.models.weights_file import (
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
    extra = extra_metadata(meta)
    extra.update(
        {
            "name": job.shipped,
            "hardware": hardware(),
            "wall_time_s": f"{wall_s:.0f}",
            "parent": job.parent or "",
            "precision": args.precision,
        }
    )
    target = args.runs / "candidates" / f"{job.shipped}.candidate.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    metrics = json.loads(meta["metrics"]) if "metrics" in meta else None
    save_weights(
        load_weights(source),
        target,
        dtype=torch.float16,
        recipe=meta.get("recipe"),
        metrics=metrics,
        metadata=extra,
    )
    return target, int(meta.get("iterations", "0"))


def score(
    job: Job, candidate: Path, datasets: list[str], args: argparse.Namespace
) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{row: {dataset: {metric: value}}}`` for the candidate, the shipped model (and a GAN's
    parent) or, for a model not shipped yet, its reference; one report on this device."""
    from superres.evaluation.report import build_report
    from superres.models.catalog import get_pretrained

    if is_shipped(job.shipped):
        models = [job.shipped] + ([job.parent] if job.parent and is_shipped(job.parent) else [])
    else:
        models = [str(job.reference)]
    report = build_report(
        models,
        datasets,
        scale=get_pretrained(models[0]).scale,  # the scale of the rows it is compared with
        weights=[candidate],
        root=args.data_root,
        device=args.device,
        niqe_metric=job.gan or job.reference is not None,
        lpips_metric=job.gan or job.reference is not None,
        crops=0,
        progress=False,
    )
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for row in report.rows:
        label = "candidate" if row.model == candidate.stem else row.model
        out.setdefault(label, {})[row.dataset.lower()] = {
            k: v for k, v in asdict(row).items() if k in ("psnr_y", "ssim_y", "niqe", "lpips")
        }
    return out


def lattice(model_or_file: str | Path, data_root: Path | None) -> float:
    """The largest static sub-pixel pattern on Set5 (8-bit levels, scripts/subpixel_pattern.py)."""
    from superres.data.datasets import BenchmarkSet
    from superres.evaluation.protocol import super_resolve
    from superres.models.weights import load_model
    from superres.models.weights_file import load_weights

    model = (
        load_weights(model_or_file)
        if isinstance(model_or_file, Path)
        else load_model(model_or_file)
    )
    scale = int(getattr(model, "scale", 4))
    largest = 0.0
    with torch.inference_mode():
        for pair in BenchmarkSet("set5", scale, root=data_root):
            largest = max(
                largest,
                float(phase_means(super_resolve(model.eval(), pair.lq, scale), scale).abs().max()),
            )
    return largest


def decide(
    job: Job, scores: dict[str, Any], args: argparse.Namespace, candidate: Path
) -> tuple[bool, str, float | None, float | None]:
    """Whether the candidate beats the shipped model on Set5 (see the module docstring), or a
    model not shipped yet its reference (:func:`decide_first`)."""
    if not is_shipped(job.shipped):
        return decide_first(job, scores, candidate, args)
    new, old = scores["candidate"]["set5"], scores[job.shipped]["set5"]
    if not job.gan:
        better = new["psnr_y"] > old["psnr_y"]
        return better, f"Set5 PSNR-Y {new['psnr_y']:.4f} vs shipped {old['psnr_y']:.4f}", None, None
    parent = scores[str(job.parent)]["set5"]["psnr_y"]
    if new["niqe"] is None or old["niqe"] is None:
        return False, "NIQE unavailable (its parameters are missing): nothing decided", None, None
    drop = parent - new["psnr_y"]
    pattern, shipped_pattern = (
        lattice(candidate, args.data_root),
        lattice(job.shipped, args.data_root),
    )
    reasons = [
        f"Set5 NIQE {new['niqe']:.3f} vs shipped {old['niqe']:.3f}",
        f"PSNR-Y {drop:.2f} dB below the parent",
        f"sub-pixel pattern {pattern:.2f} vs shipped {shipped_pattern:.2f} levels",
    ]
    kept = new["niqe"] < old["niqe"] and drop <= 3.5 and pattern <= max(1.0, shipped_pattern)
    return kept, "; ".join(reasons), pattern, shipped_pattern


def decide_first(
    job: Job, scores: dict[str, Any], candidate: Path, args: argparse.Namespace
) -> tuple[bool, str, float | None, None]:
    """A first release: a PSNR model must beat its reference's PSNR-Y on ``job.validation``; a
    GAN model must have at least 25% lower LPIPS and a lower NIQE than the reference there, and,
    as every zoo GAN, a static sub-pixel pattern of at most 1 level on Set5."""
    new, ref = scores["candidate"][job.validation], scores[str(job.reference)][job.validation]
    where = f"{job.validation} vs {job.reference}"
    if not job.gan:
        kept = new["psnr_y"] > ref["psnr_y"]
        return kept, f"{where}: PSNR-Y {new['psnr_y']:.4f} vs {ref['psnr_y']:.4f}", None, None
    if None in (new["niqe"], ref["niqe"], new["lpips"], ref["lpips"]):
        return False, "NIQE or LPIPS unavailable (missing assets): nothing decided", None, None
    pattern = lattice(candidate, args.data_root)
    kept = new["lpips"] <= 0.75 * ref["lpips"] and new["niqe"] < ref["niqe"] and pattern <= 1.0
    reason = (
        f"{where}: LPIPS {new['lpips']:.4f} vs {ref['lpips']:.4f} (needs <= 75%), "
        f"NIQE {new['niqe']:.3f} vs {ref['niqe']:.3f}; sub-pixel pattern {pattern:.2f} levels"
    )
    return kept, reason, pattern, None


def pack(
    decisions: list[Decision], winners: dict[str, Path], jobs: list[Job], args: argparse.Namespace
) -> list[Path]:
    """Winners' weights and zoo_results.tar.gz into --out; at most MAX_FILES files of MAX_BYTES."""
    args.out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, path in winners.items():
        target = args.out / f"{name}.safetensors"
        shutil.copyfile(path, target)
        files.append(target)
    scores = args.runs / "scores.json"
    scores.write_text(
        json.dumps(
            {
                "hardware": hardware(),
                "budget_minutes": args.budget_minutes,
                "decisions": [asdict(d) for d in decisions],
            },
            indent=2,
        )
    )
    bundle = args.out / "zoo_results.tar.gz"
    with tarfile.open(bundle, "w:gz") as tar:
        tar.add(scores, arcname="scores.json")
        for extra in args.bundle_extra:
            if extra.is_file():
                tar.add(extra, arcname=extra.name)
        for job in jobs:
            run = args.runs / job.name
            for pattern in ("*.csv", "train.out", "recipe.yaml", "plots/*.png"):
                for path in sorted(run.glob(pattern))[-6:]:
                    tar.add(path, arcname=f"{job.name}/{path.relative_to(run)}")
    files.append(bundle)
    too_big = [f.name for f in files if f.stat().st_size > MAX_BYTES]
    if len(files) > MAX_FILES or too_big:
        raise SystemExit(
            f"[zoo] cannot pack: {len(files)} files (max {MAX_FILES}); over 16 MiB: {too_big}"
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--data-root", type=Path, default=None, help="T91/, BSD200/, Set5/ ... (SUPERRES_DATA)"
    )
    parser.add_argument(
        "--runs", type=Path, default=Path("runs/zoo"), help="run folders (kept between sittings)"
    )
    parser.add_argument("--out", type=Path, required=True, help="winners and zoo_results.tar.gz")
    parser.add_argument("--budget-minutes", type=float, required=True, help="the whole sitting")
    parser.add_argument("--score-share", type=float, default=0.15, help="budget for scoring")
    parser.add_argument("--min-score-s", type=float, default=60.0, help="at least this (seconds)")
    parser.add_argument(
        "--startup-s",
        type=float,
        default=30.0,
        help="a run's start-up before its clock starts (data, networks, layout probe) and its "
        "final checkpoint: taken off each run's time limit so the sitting keeps its budget",
    )
    parser.add_argument("--test-sets", nargs="*", default=["set14", "bsd100", "urban100"])
    parser.add_argument(
        "--d-warmup", type=int, default=100, help="discriminator-only steps of a GAN run"
    )
    parser.add_argument(
        "--lr-warmup", type=int, default=1000, help="learning-rate ramp of a PSNR warm start"
    )
    parser.add_argument(
        "--from-scratch", action="store_true", help="no warm start (GANs from their new parent)"
    )
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--device", default="auto", help="scoring device")
    parser.add_argument("--only", nargs="*", default=None, help="subset of job names")
    parser.add_argument(
        "--bundle-extra",
        nargs="*",
        type=Path,
        default=[],
        help="more files for zoo_results.tar.gz (e.g. a benchmark's JSON from the same sitting)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="recipe override for every run",
    )
    args = parser.parse_args(argv)
    from superres.data.datasets import BenchmarkSet
    from superres.errors import SuperresError
    from superres.runtime import resolve_device

    begin = time.monotonic()
    budget = args.budget_minutes * 60
    reserve = max(args.min_score_s, args.score_share * budget)
    args.runs = args.runs.resolve()
    args.device = resolve_device(args.device)
    if args.data_root is not None:
        args.data_root = args.data_root.resolve()
    jobs = [j for j in JOBS if args.only is None or j.name in args.only]
    wall = train_all(jobs, args, budget - reserve)

    decisions: list[Decision] = []
    winners: dict[str, Path] = {}
    for job in jobs:
        exported = export_candidate(job, args, wall.get(job.name, 0.0))
        if exported is None:
            continue
        candidate, iterations = exported
        scores = score(job, candidate, [job.validation], args)
        kept, reason, pattern, shipped_pattern = decide(job, scores, args, candidate)
        against = job.shipped if is_shipped(job.shipped) else str(job.reference)
        print(f"[zoo] {job.shipped}: {'KEEP' if kept else 'drop'} ({reason})", flush=True)
        decisions.append(
            Decision(
                job.name,
                job.shipped,
                iterations,
                wall.get(job.name, 0.0),
                kept,
                reason,
                scores["candidate"],
                scores[against],
                pattern,
                shipped_pattern,
            )
        )
        if kept:
            winners[job.shipped] = candidate
    # Test sets for the winners, while the budget lasts (for the cards; they decided nothing).
    for decision in decisions:
        if not decision.kept:
            continue
        job = _job_of(decision.shipped)
        against = job.shipped if is_shipped(job.shipped) else str(job.reference)
        for dataset in job.test_sets or args.test_sets:
            if time.monotonic() - begin > budget - 20:
                print(
                    f"[zoo] out of budget: {decision.shipped} not scored on {dataset}", flush=True
                )
                break
            try:
                BenchmarkSet(dataset, 4, root=args.data_root)
            except SuperresError as exc:
                print(f"[zoo] {dataset} skipped: {exc}", flush=True)
                continue
            extra = score(job, winners[decision.shipped], [dataset], args)
            decision.candidate.update(extra["candidate"])
            decision.shipped_scores.update(extra[against])
    files = pack(decisions, winners, jobs, args)
    print(
        f"[zoo] packed {len(files)} files in {math.ceil(time.monotonic() - begin)} s: "
        + ", ".join(f.name for f in files),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
