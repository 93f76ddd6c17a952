"""``superres metrics``: every metric that applies to an image (and its reference)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from superres.cli.common import (
    CommandText,
    add_data_root,
    add_download,
    add_output_json,
    check_output_parent,
)
from superres.errors import SuperresError
from superres.evaluation.image_metrics import (
    ImageMetrics,
    MetricOptions,
    mean_scores,
    pair_paths,
    prepare_options,
    score_pairs,
)
from superres.io.files import atomic_write_text, make_output_folder
from superres.metrics.lpips import LPIPS_NETS
from superres.metrics.table import IMAGE_METRICS

TEXT = CommandText(
    help="score an image or folder (against a reference) with every applicable metric",
    description="""Print every metric that applies: with a REFERENCE, MSE, RMSE, PSNR, SSIM,
    MS-SSIM (on Y in float, 0-255 scale, unless --rgb) and LPIPS (RGB in [0, 1]); always NIQE and,
    when its model file is available, Ma (NRQM) and the Perceptual Index. Two folders are matched by
    file name without extension; a folder prints one row per file and the mean. A metric whose
    files are unavailable is listed as skipped, with why.""",
)


def add_arguments(me: argparse.ArgumentParser) -> None:
    """The images, the scoring options and the files the metrics need."""
    me.add_argument("image", type=Path, metavar="IMAGE", help="image file or folder to score")
    me.add_argument(
        "reference",
        type=Path,
        nargs="?",
        default=None,
        metavar="REFERENCE",
        help="reference (ground truth) file or folder for the full-reference metrics",
    )
    me.add_argument(
        "--crop-border",
        type=int,
        default=MetricOptions.crop_border,
        help="pixels dropped from every side before scoring (the SR protocol uses the scale)",
    )
    me.add_argument(
        "--rgb",
        action="store_true",
        help="full-reference metrics on RGB (0-255 scale) instead of BT.601 Y",
    )
    me.add_argument("--niqe-params", default=None, help="NIQE pristine-parameter .npz file")
    me.add_argument(
        "--lpips-net",
        choices=LPIPS_NETS,
        default=MetricOptions.lpips_net,
        help=f"LPIPS trunk (default: {MetricOptions.lpips_net})",
    )
    me.add_argument(
        "--lpips-trunk",
        default=None,
        help="ImageNet trunk weights for LPIPS (torchvision format .pth or .safetensors)",
    )
    me.add_argument("--ma-model", default=None, help="Ma (NRQM) model file")
    add_data_root(me, "data root whose niqe/ and weights/ folders hold the metrics' files")
    add_download(me)
    add_output_json(me, "write every score as JSON")


def run(args: argparse.Namespace) -> int:
    """Score, print the table (and the skipped metrics), write the JSON asked for."""
    if args.output_json is not None:
        check_output_parent(args.output_json, "--output-json")
    pairs = pair_paths(args.image, args.reference)  # bad paths fail before any model loads
    options = prepare_options(
        crop_border=args.crop_border,
        y_channel=not args.rgb,
        niqe_params=args.niqe_params,
        lpips_net=args.lpips_net,
        lpips_trunk=args.lpips_trunk,
        ma_model=args.ma_model,
        data_root=args.data_root,
        full_reference=args.reference is not None,
        download=args.download,
    )
    failures: list[tuple[str, str]] = []
    results = score_pairs(pairs, options, failures=failures)
    if not results:  # one bad file is the run's one line; more are counted
        if len(failures) == 1:
            raise SuperresError(failures[0][1])
        first = failures[0][1] if failures else "nothing to score"
        raise SuperresError(
            f"no image of {args.image} could be scored ({len(failures)} failed; first: {first})"
        )
    names = [m for m in IMAGE_METRICS if any(m in r.scores for r in results)]
    skipped = {m: why for r in results for m, why in r.skipped.items()}
    if not names:
        reasons = "; ".join(f"{metric}: {why}" for metric, why in skipped.items())
        raise SuperresError(
            f"no metric applies to {args.image}: every one was skipped ({reasons}). Score a larger "
            "image, or give a REFERENCE for the full-reference metrics"
        )
    space = "RGB" if args.rgb else "Y"
    if args.reference is not None:
        print(f"full-reference metrics on {space}, border {args.crop_border} px cropped")
    else:
        print(f"no-reference metrics (on Y), border {args.crop_border} px cropped")
    _print_table(results, names)
    for metric, why in skipped.items():
        print(f"skipped {metric}: {why}")
    if args.output_json is not None:
        doc = {
            "options": {"crop_border": args.crop_border, "space": space},
            "images": [asdict(r) for r in results],
            "mean": mean_scores(results),
            "failures": [{"image": path, "error": why} for path, why in failures],
        }
        make_output_folder(args.output_json.parent, "--output-json")
        atomic_write_text(args.output_json, json.dumps(doc, indent=2) + "\n")
    if failures:  # listed as `superres upscale` lists its failures
        lines = "".join(f"\n  {why if path in why else f'{path}: {why}'}" for path, why in failures)
        print(
            f"superres metrics: error: {len(failures)} of {len(pairs)} image(s) could not be "
            f"scored (the table holds the others):{lines}",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_table(results: list[ImageMetrics], names: list[str]) -> None:
    """One row per image, and the mean when there are several."""
    print("| image | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for r in results:
        cells = [f"{r.scores[m]:.4f}" if m in r.scores else "-" for m in names]
        print(f"| {Path(r.image).name} | " + " | ".join(cells) + " |")
    if len(results) > 1:
        mean = mean_scores(results)
        print("| mean | " + " | ".join(f"{mean[m]:.4f}" for m in names) + " |")
