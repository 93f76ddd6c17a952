"""Bicubic PSNR/SSIM-Y on the four classic test sets, under both evaluation protocols.

Prints, per dataset and scale: our default-protocol score beside an independent implementation of
that protocol (the reference DESIGN.md records), and our legacy-protocol score beside the
bicubic row printed in the papers (SRCNN/VDSR/EDSR tables).

    python benchmarks/bicubic_protocols.py --data-root ../shared/data [--scales 2 4]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from superres.evaluation.benchmark import run_benchmark
from superres.evaluation.published import BICUBIC

DATASETS = ("set5", "set14", "bsd100", "urban100")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 2])
    args = parser.parse_args()

    start = time.perf_counter()
    scores = {}
    for protocol in ("default", "legacy"):
        report = run_benchmark(
            ["bicubic"],
            DATASETS,
            args.scales,
            root=args.data_root,
            protocol=protocol,
            progress=False,
        )
        for r in report.results:
            scores[(protocol, r.dataset, r.scale)] = (r.psnr_y, r.ssim_y)
    elapsed = time.perf_counter() - start

    print(
        f"# bicubic, PSNR-Y (dB) / SSIM-Y; {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {elapsed:.0f} s"
    )
    print()
    print("| set | scale | default (ours) | reference | diff | legacy (ours) | published | diff |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for s in args.scales:
        for d in DATASETS:
            dp, ds = scores[("default", d, s)]
            lp, ls = scores[("legacy", d, s)]
            (rp, rs), (pp, ps) = BICUBIC[(d, s)].default, BICUBIC[(d, s)].legacy
            print(
                f"| {d} | x{s} | {dp:.4f} / {ds:.5f} | {rp:.4f} / {rs:.5f} | "
                f"{dp - rp:+.4f} / {ds - rs:+.5f} | {lp:.4f} / {ls:.5f} | {pp:.2f} / {ps:.4f} | "
                f"{lp - pp:+.3f} / {ls - ps:+.4f} |"
            )


if __name__ == "__main__":
    main()
