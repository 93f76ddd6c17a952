"""What hostile inputs cost: time and memory of each refusal, strips, and an oversized canvas.

The test suite checks that every hostile file is refused in one line with bounded memory, but holds
no timing bound (machines are noisy); this script measures the times the reliability issue bounds,
each group in a fresh interpreter so peak RSS is that group's alone:

- **weights**: the hostile weight files of ``tests/test_hostile_weights.py``, all refused by
  ``superres upscale --weights FILE`` in one process (bounds: 2 s each, 500 MB growth in all);
- **images**: the hostile images of ``tests/test_hostile_images.py`` through ``superres upscale``
  (bound: 2 s each);
- **strips**: the default model on a 1x65535 and a 65535x1 strip against a 256x256 square (the same
  pixel count), as ratios to the square measured in the same run;
- **canvas**: a 12000x12000 (144 MP) PNG asked for x4, refused before the 27.6 GB output canvas is
  allocated (time and peak RSS of the whole process, including writing nothing).

    python benchmarks/hostile_inputs.py            # all four groups, a table each
    python benchmarks/hostile_inputs.py --only weights images
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TypedDict

ROOT = Path(__file__).resolve().parents[1]
GROUPS = ("weights", "images", "strips", "canvas")
BOUND_S = 2.0
BOUND_MB = 500.0


class Result(TypedDict):
    """A group's measurements: (case, seconds, exit code) rows and the peak RSS growth."""

    rows: list[tuple[str, float, int]]
    growth_mb: float


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _quiet_main(argv: list[str]) -> int:
    """``superres ARGV`` in this process with stderr discarded (the messages are not timed)."""
    from superres.cli import main

    with open(os.devnull, "w") as sink:
        saved, sys.stderr = sys.stderr, sink
        try:
            return main(argv)
        finally:
            sys.stderr = saved


def _weights(folder: Path) -> Result:
    sys.path.insert(0, str(ROOT / "tests"))
    from PIL import Image

    from test_hostile_weights import CASES, write_cases

    paths = write_cases(folder / "weights")
    Image.new("RGB", (8, 8), (120, 60, 30)).save(folder / "in.png")
    image_args = [str(folder / "in.png"), "-o", str(folder / "out.png")]
    _quiet_main(["upscale", "--weights", str(paths[CASES[0].name]), *image_args])  # imports
    baseline = _peak_mb()
    rows = []
    for case in CASES:
        begin = time.perf_counter()
        code = _quiet_main(["upscale", "--weights", str(paths[case.name]), *image_args])
        rows.append((case.name, time.perf_counter() - begin, code))
    return {"rows": rows, "growth_mb": _peak_mb() - baseline}


def _images(folder: Path) -> Result:
    sys.path.insert(0, str(ROOT / "tests"))
    import superres.inference.upscaler as upscaler_module
    from test_hostile_images import HOSTILE

    real_limit = upscaler_module.memory_limit
    rows = []
    for case in HOSTILE:
        if case.name == "permission-denied" and os.geteuid() == 0:
            continue  # root reads it
        work = folder / case.name
        work.mkdir()
        source = case.make(work)
        limit = case.memory
        upscaler_module.memory_limit = real_limit if limit is None else (lambda n=limit: n)
        argv = ["upscale", "--model", "bicubic", str(source), "-o", str(work / "r.png"), "-q"]
        begin = time.perf_counter()
        code = _quiet_main([*argv, *case.args])
        rows.append((case.name, time.perf_counter() - begin, code))
    upscaler_module.memory_limit = real_limit
    return {"rows": rows, "growth_mb": float("nan")}


def _strips(folder: Path) -> Result:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    shapes = {"256x256": (256, 256), "1x65535 (one row)": (1, 65535), "65535x1": (65535, 1)}
    rows = []
    for label, (height, width) in shapes.items():
        path = folder / f"{height}x{width}.png"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
        argv = ["upscale", str(path), "-o", str(folder / f"out_{height}x{width}.png"), "-q"]
        if not rows:
            _quiet_main(argv)  # warm-up: weights, threads, allocator
        begin = time.perf_counter()
        code = _quiet_main(argv)
        rows.append((label, time.perf_counter() - begin, code))
    return {"rows": rows, "growth_mb": float("nan")}


_BIG_PNG = """
import sys, numpy as np
from PIL import Image
Image.fromarray(np.full((12000, 12000, 3), 128, dtype=np.uint8)).save(sys.argv[1], compress_level=1)
"""


def _canvas(folder: Path) -> Result:
    path = folder / "big.png"
    # Written by another process, so this one's peak RSS is the refusal's alone.
    subprocess.run([sys.executable, "-c", _BIG_PNG, str(path)], check=True)
    from superres.cli import main  # the imports before the baseline

    del main
    baseline = _peak_mb()
    begin = time.perf_counter()
    code = _quiet_main(["upscale", str(path), "-o", str(folder / "big_x4.png"), "-q"])
    seconds = time.perf_counter() - begin
    written = (folder / "big_x4.png").exists()
    label = "12000x12000 PNG, x4" + (" (an output was written!)" if written else "")
    return {"rows": [(label, seconds, code)], "growth_mb": _peak_mb() - baseline}


_RUNNERS = {"weights": _weights, "images": _images, "strips": _strips, "canvas": _canvas}


def _child(group: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        result = _RUNNERS[group](Path(folder))
    print(json.dumps(result))


def _run_group(group: str) -> Result:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, __file__, "--child", group],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"hostile_inputs.py: group {group} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _print_refusals(group: str, result: Result) -> None:
    rows = result["rows"]
    times = [seconds for _, seconds, _ in rows]
    slowest = max(rows, key=lambda row: row[1])
    refused = sum(code == 1 for _, _, code in rows)
    over = sum(seconds >= BOUND_S for seconds in times)
    growth = result["growth_mb"]
    print(f"\n{group}: {len(rows)} hostile files, {refused} exited 1")
    print("| files | median s | max s | slowest | over 2 s | peak RSS growth MB |")
    print("|---|---:|---:|---|---:|---:|")
    shown = "" if growth != growth else f"{growth:.1f}"
    print(
        f"| {len(rows)} | {statistics.median(times):.3f} | {slowest[1]:.3f} | {slowest[0]} "
        f"| {over} | {shown} |"
    )


def _print_strips(result: Result) -> None:
    rows = result["rows"]
    square = rows[0][1]
    print("\nstrips: the default model, the same pixel count (65,535-65,536 pixels)")
    print("| input | s | vs 256x256 | exit |")
    print("|---|---:|---:|---:|")
    for label, seconds, code in rows:
        print(f"| {label} | {seconds:.2f} | {seconds / square:.2f}x | {code} |")


def _print_canvas(result: Result) -> None:
    rows = result["rows"]
    label, seconds, code = rows[0]
    growth = result["growth_mb"]
    print("\ncanvas: refused before the output canvas is allocated")
    print("| input | s | peak RSS growth MB | exit |")
    print("|---|---:|---:|---:|")
    print(f"| {label} | {seconds:.1f} | {growth:.0f} | {code} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description="What hostile inputs cost: time and memory of each refusal."
    )
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS))
    parser.add_argument("--child", choices=GROUPS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    for group in args.only:
        result = _run_group(group)
        if group == "strips":
            _print_strips(result)
        elif group == "canvas":
            _print_canvas(result)
        else:
            _print_refusals(group, result)


if __name__ == "__main__":
    main()
