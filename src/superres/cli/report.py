"""``superres report``: the benchmark report with every metric, crops and plots."""

from __future__ import annotations

import argparse
import inspect
import logging
import sys
from pathlib import Path

from superres.cli.common import (
    CommandText,
    add_allow_modified,
    add_data_root,
    add_datasets_arg,
    add_device,
    add_download,
    add_eager,
    add_rows_args,
    add_scales_arg,
    require_rows,
)
from superres.evaluation.report import (
    ReportOutputError,
    build_report,
    format_report_markdown,
    write_report,
)
from superres.io.files import check_output_folder
from superres.runtime import resolve_device

logger = logging.getLogger("superres")

#: the defaults of the report's options are ``build_report``'s
_DEFAULTS = inspect.signature(build_report).parameters


TEXT = CommandText(
    help="benchmark report: metric tables, crop figures, perception-distortion plot",
    description="""Run MODELS on DATASETS and write into the new folder OUT: report.md (a table
    per dataset: PSNR/SSIM/MS-SSIM/RMSE on Y, NIQE, LPIPS, published PSNR), scores.csv,
    per_image.csv, report.json, crop figures (HR, bicubic and every model, zoomed on the most
    textured region of seeded images) and perception_distortion.png; report.md links every
    figure and lists what was left out and why.""",
)


def add_arguments(rp: argparse.ArgumentParser) -> None:
    """The table's rows and datasets, the figures, the metrics left out."""
    add_rows_args(rp, models="model names", weights="weights files")
    add_datasets_arg(rp, "catalog names (e.g. set5 set14 bsd100) or folders of HR images")
    scale, crops, seed = (_DEFAULTS[name].default for name in ("scale", "crops", "seed"))
    add_scales_arg(rp, f"upscaling factor (default: {scale})", many=False, default=scale)
    rp.add_argument(
        "--out",
        type=Path,
        required=True,
        help="new or empty folder for the report (created if missing, parents included)",
    )
    add_data_root(rp, "benchmark data root")
    add_allow_modified(rp)
    rp.add_argument(
        "--crops", type=int, default=crops, help=f"number of crop figures (default: {crops})"
    )
    rp.add_argument(
        "--crop-size",
        type=int,
        default=_DEFAULTS["crop_size"].default,
        help="zoomed region side in HR pixels",
    )
    rp.add_argument(
        "--seed", type=int, default=seed, help=f"seed of the crop images (default: {seed})"
    )
    rp.add_argument("--no-niqe", action="store_true", help="leave NIQE out")
    rp.add_argument("--no-lpips", action="store_true", help="leave LPIPS out")
    add_download(rp)
    add_eager(rp, ", as `superres eval`")
    add_device(rp)


def run(args: argparse.Namespace) -> int:
    """Build the report into a new folder and print its Markdown."""
    require_rows(
        args.models,
        args.weights,
        "nothing to report on: give --models NAME ... and/or --weights FILE",
    )
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ReportOutputError(
            f"--out {str(args.out)!r} already exists and is not an empty folder; choose a new "
            "folder or delete this one first"
        )
    check_output_folder(args.out, "--out")
    report = build_report(
        args.models,
        args.datasets,
        scale=args.scale,
        weights=args.weights,
        root=args.data_root,
        device=resolve_device(args.device),
        niqe_metric=not args.no_niqe,
        lpips_metric=not args.no_lpips,
        crops=args.crops,
        crop_size=args.crop_size,
        seed=args.seed,
        progress=not args.quiet,
        fused=not args.eager,
        download=args.download,
        allow_modified=args.allow_modified,
    )
    files = write_report(report, args.out, crop_size=args.crop_size)
    sys.stdout.write(format_report_markdown(report))
    logger.info("wrote %d file(s) to %s", len(files), args.out)
    return 0
