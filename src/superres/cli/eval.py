"""``superres eval``: the benchmark table of models on datasets (PSNR/SSIM on Y)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from superres.cli.common import (
    CommandText,
    add_allow_modified,
    add_data_root,
    add_datasets_arg,
    add_device,
    add_eager,
    add_output_json,
    add_rows_args,
    add_scales_arg,
    check_output_parent,
    positive_int,
    require_rows,
)
from superres.evaluation.benchmark import (
    BenchmarkModels,
    format_markdown,
    format_published,
    run_benchmark,
    write_csv,
    write_json,
)
from superres.evaluation.protocol import PROTOCOLS
from superres.runtime import resolve_device

logger = logging.getLogger("superres")

_EPILOG = """models and weights:
  Every --models NAME and every --weights FILE is one row of the table (give
  either or both). NAME is a parameter-free model (bicubic), run at every
  scale, or a pretrained name, run at its own scale. FILE is a checkpoint
  (.safetensors, or .pth/.pt of tensors: ours, BasicSR, Real-ESRGAN, ESRGAN,
  EDSR, leftthomas/SRGAN layouts); its architecture and scale come from the
  file, its row is named by the file stem (srgan_x4.pth -> srgan_x4), and it
  runs at its own scale only. Without --scales, the scales are those of the
  files and pretrained names (4 if there are none).

datasets:
  A catalog name (superres datasets lists them) or a folder of HR images, such
  as /my/HR: LR files are taken from /my/LR_bicubic_x4/, /my/LR_bicubic/X4/ or
  /my/LR/ when present, else made with MATLAB bicubic and cached.

examples:
  superres eval --models bicubic --weights netG_epoch_4_100.pth --datasets set5
  superres eval --models bicubic --datasets /my/HR --limit 10 --save-images sr/"""


TEXT = CommandText(
    help="benchmark models on datasets (PSNR/SSIM on Y)",
    description="Evaluate models on benchmark sets with the field's protocol and print a "
    "Markdown table of PSNR (dB) / SSIM on Y, border of `scale` pixels cropped.",
    epilog=_EPILOG,
    raw=True,
)


def add_arguments(ev: argparse.ArgumentParser) -> None:
    """The table's rows and columns, the protocol and the files to write."""
    add_rows_args(
        ev,
        models="parameter-free (bicubic) or pretrained model names",
        weights="weights files, each evaluated as its own row named by the file stem",
    )
    add_datasets_arg(ev, "catalog names (e.g. set5 set14 bsd100 urban100) or folders of HR images")
    add_scales_arg(
        ev,
        "scales (default: the scales of the weights files and pretrained names, else 4)",
        many=True,
        default=None,
    )
    add_data_root(ev)
    add_allow_modified(ev)
    add_eager(ev, " of `upscale --precision fp32`, equal within 1e-5 and several times faster")
    ev.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="default",
        help="default: today's tables (RGB bicubic, float Y); legacy: the SRCNN-era scripts "
        "(bicubic on rounded Y, gray images raw)",
    )
    ev.add_argument(
        "--published",
        action="store_true",
        help="also print each shipped model beside its published counterpart's PSNR, and "
        "under --protocol legacy bicubic beside the papers' bicubic PSNR/SSIM",
    )
    ev.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        metavar="N",
        help="score only the first N images of each set, sorted by name (the table says so)",
    )
    ev.add_argument(
        "--save-images",
        type=Path,
        default=None,
        metavar="DIR",
        help="write every scored output to DIR/MODEL/SET_xSCALE/IMAGE.png",
    )
    add_output_json(ev, "write per-set and per-image scores (and published figures) as JSON")
    ev.add_argument(
        "--output-csv",
        type=Path,
        help="write per-set scores as CSV (per-image scores go to NAME_per_image.csv beside it)",
    )
    add_device(ev)


def run(args: argparse.Namespace) -> int:
    """Score every row on every dataset and scale; print the table, write the files asked for."""
    require_rows(
        args.models,
        args.weights,
        "nothing to evaluate: give --models NAME ... and/or --weights FILE ... "
        "(e.g. --models bicubic)",
    )
    for flag, path in (("--output-json", args.output_json), ("--output-csv", args.output_csv)):
        if path is not None:
            check_output_parent(path, flag)
    rows = BenchmarkModels(args.models, args.weights)
    scales = args.scales if args.scales is not None else rows.default_scales()
    rows.check_scales(scales)
    report = run_benchmark(
        rows.labels,
        args.datasets,
        scales,
        root=args.data_root,
        protocol=args.protocol,
        device=resolve_device(args.device),
        model_factory=rows,
        progress=not args.quiet,
        fused=not args.eager,
        allow_modified=args.allow_modified,
        limit=args.limit,
        save_images=args.save_images,
    )
    sys.stdout.write(format_markdown(report))
    if args.published:
        sys.stdout.write("\n" + format_published(report))
    if args.output_json is not None:
        write_json(report, args.output_json)
        logger.info("wrote %s", args.output_json)
    if args.output_csv is not None:
        per_image = write_csv(report, args.output_csv)
        logger.info("wrote %s and %s", args.output_csv, per_image)
    if args.save_images is not None:
        logger.info("wrote the outputs to %s", args.save_images)
    return 0
