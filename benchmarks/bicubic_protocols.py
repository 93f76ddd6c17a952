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

DATASETS = ("set5", "set14", "bsd100", "urban100")
# An independent implementation of today's protocol (RGB bicubic, float Y, gray as 3 channels).
REFERENCE = {
    ("set5", 4): (28.4302, 0.81114),
    ("set14", 4): (26.0914, 0.70480),
    ("bsd100", 4): (25.9620, 0.66807),
    ("urban100", 4): (23.1406, 0.65806),
    ("set5", 2): (33.6741, 0.93029),
    ("set14", 2): (30.3263, 0.86985),
    ("bsd100", 2): (29.5605, 0.84340),
    ("urban100", 2): (26.8766, 0.84047),
}
# The bicubic rows as printed in the papers (e.g. VDSR Table 3, EDSR Table 6).
PUBLISHED = {
    ("set5", 4): (28.42, 0.8104),
    ("set14", 4): (26.00, 0.7027),
    ("bsd100", 4): (25.96, 0.6675),
    ("urban100", 4): (23.14, 0.6577),
    ("set5", 2): (33.66, 0.9299),
    ("set14", 2): (30.24, 0.8688),
    ("bsd100", 2): (29.56, 0.8431),
    ("urban100", 2): (26.88, 0.8403),
}


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
            rp, rs = REFERENCE[(d, s)]
            pp, ps = PUBLISHED[(d, s)]
            print(
                f"| {d} | x{s} | {dp:.4f} / {ds:.5f} | {rp:.4f} / {rs:.5f} | "
                f"{dp - rp:+.4f} / {ds - rs:+.5f} | {lp:.4f} / {ls:.5f} | {pp:.2f} / {ps:.4f} | "
                f"{lp - pp:+.3f} / {ls - ps:+.4f} |"
            )


if __name__ == "__main__":
    main()
