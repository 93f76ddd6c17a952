"""The ``superres`` command: parse arguments, call the library, turn errors into exit codes.

Exit codes: 0 success; 1 a :class:`~superres.errors.SuperresError` (message on stderr names the
problem and the fix); 2 bad command-line usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from superres import __version__
from superres.errors import SuperresError

logger = logging.getLogger("superres")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps (default: auto)",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar or info messages"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="superres",
        description="Single-image super-resolution: upscale images and benchmark models.",
    )
    parser.add_argument("--version", action="version", version=f"superres {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "upscale",
        help="upscale image files (or a bundled sample: sample:astronaut)",
        description="Upscale images. Inputs are files or bundled samples (sample:NAME; "
        "see `superres samples`). Bit depth, grayscale and alpha are preserved.",
    )
    up.add_argument("inputs", nargs="+", help="image files, or sample:NAME")
    up.add_argument(
        "-o",
        "--output",
        help="output file (one input) or existing folder; default: INPUT_x{scale}.png beside "
        "the input (samples: in the current folder)",
    )
    up.add_argument("--model", default="bicubic", help="registered model name (default: bicubic)")
    up.add_argument("--scale", type=int, default=4, help="upscaling factor (default: 4)")
    up.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse inputs with more pixels than this (default: the io module's guard)",
    )
    _add_common(up)

    ev = sub.add_parser(
        "eval",
        help="benchmark models on datasets (PSNR/SSIM on Y)",
        description="Evaluate models on benchmark sets with the field's protocol and print a "
        "Markdown table of PSNR (dB) / SSIM on Y, border of `scale` pixels cropped.",
    )
    ev.add_argument("--models", nargs="+", required=True, help="registered model names")
    ev.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        help="catalog names, e.g. set5 set14 bsd100 urban100",
    )
    ev.add_argument("--scales", nargs="+", type=int, default=[4], help="scales (default: 4)")
    ev.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding Set5/, Set14/, ... (default: $SUPERRES_DATA, else the user cache)",
    )
    ev.add_argument(
        "--protocol",
        choices=("default", "legacy"),
        default="default",
        help="default: today's tables (RGB bicubic, float Y); legacy: the SRCNN-era scripts "
        "(bicubic on rounded Y, gray images raw)",
    )
    ev.add_argument("--output-json", type=Path, help="write per-set and per-image scores as JSON")
    ev.add_argument(
        "--output-csv",
        type=Path,
        help="write per-set scores as CSV (per-image scores go to NAME_per_image.csv beside it)",
    )
    _add_common(ev)

    sub.add_parser("models", help="list the registered models")
    ds = sub.add_parser("datasets", help="list the known datasets and whether they are present")
    ds.add_argument("--data-root", type=Path, default=None, help="data root to look in")
    sub.add_parser("samples", help="list the bundled sample images")
    return parser


def _check_output_parent(path: Path, flag: str) -> None:
    if not path.parent.is_dir():
        raise SuperresError(
            f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first"
        )


def _cmd_eval(args: argparse.Namespace) -> int:
    from superres.evaluation.benchmark import format_markdown, run_benchmark, write_csv, write_json
    from superres.inference import resolve_device

    for flag, path in (("--output-json", args.output_json), ("--output-csv", args.output_csv)):
        if path is not None:
            _check_output_parent(path, flag)
    report = run_benchmark(
        args.models,
        args.datasets,
        args.scales,
        root=args.data_root,
        protocol=args.protocol,
        device=resolve_device(args.device),
        progress=not args.quiet,
    )
    sys.stdout.write(format_markdown(report))
    if args.output_json is not None:
        write_json(report, args.output_json)
        logger.info("wrote %s", args.output_json)
    if args.output_csv is not None:
        per_image = write_csv(report, args.output_csv)
        logger.info("wrote %s and %s", args.output_csv, per_image)
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    from superres.inference.upscaler import upscale_files

    upscale_files(
        args.inputs,
        output=args.output,
        model=args.model,
        scale=args.scale,
        device=args.device,
        max_pixels=args.max_pixels,
        progress=not args.quiet,
    )
    return 0


def _cmd_models(_: argparse.Namespace) -> int:
    from superres.models import get_model_spec, list_models

    for name in list_models():
        spec = get_model_spec(name)
        scales = "any" if spec.scales is None else ",".join(map(str, spec.scales))
        print(f"{name:24s} scales: {scales:10s} {spec.summary}")
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from superres.data.catalog import (
        get_dataset_info,
        list_datasets,
        list_image_files,
        resolve_data_root,
    )

    root = resolve_data_root(args.data_root)
    print(f"data root: {root}")
    for name in list_datasets():
        info = get_dataset_info(name)
        hr = root / info.folder / "HR"
        found = len(list_image_files(hr)) if hr.is_dir() else 0
        state = f"{found}/{info.num_images} images" if found else "missing"
        print(f"{name:12s} {info.split:6s} {state:16s} {info.summary}")
    return 0


def _cmd_samples(_: argparse.Namespace) -> int:
    from superres.io.samples import SAMPLES

    for name, (_loader, description) in SAMPLES.items():
        print(f"sample:{name:12s} {description}")
    return 0


_COMMANDS = {
    "eval": _cmd_eval,
    "upscale": _cmd_upscale,
    "models": _cmd_models,
    "datasets": _cmd_datasets,
    "samples": _cmd_samples,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``superres`` console script; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(levelname)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except SuperresError as exc:
        print(f"superres {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("superres: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
