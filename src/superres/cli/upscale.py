"""``superres upscale``: image files, folders or globs through a network, tiled."""

from __future__ import annotations

import argparse
import logging
import sys

from superres.cli.common import (
    CommandText,
    add_device,
    add_weights_args,
    quality_arg,
    unit_fraction,
)
from superres.inference.batch import upscale_files
from superres.inference.jobs import AUTO_FORMAT, BatchReport
from superres.inference.options import DEFAULT_OVERLAP, UpscaleOptions
from superres.io.image import DEFAULT_MAX_PIXELS, SUPPORTED_EXTENSIONS
from superres.models.realism import REALISM_SPACES
from superres.runtime import RUN_PRECISIONS

logger = logging.getLogger("superres")

_EPILOG = """inputs and outputs:
  INPUT is an image file, a folder (its image files, sorted; --recursive for
  sub-folders), a glob pattern (expanded by superres, so quote it: "photos/*.jpg",
  "shots/**/*.png") or sample:NAME (see `superres samples`). Non-image files found
  in folders/patterns are listed in a warning, never silently dropped.
  Outputs are named STEM_x{scale}.png (x{outscale} with --outscale; --suffix
  replaces _x{scale}, '' for none; --ext/--format picks another extension, auto
  keeps the input's) and written beside each input file, or into -o. They record
  the model, scale and outscale in their metadata (PNG text, JPEG comment, TIFF
  description), and keep the input's ICC profile and EXIF. `superres metrics`
  pairs STEM_x4.png with the reference STEM.png.
  -o is an output file (a name with an extension) for a single input, else a
  folder, created if missing, parents included (with --recursive, sub-folders
  below it mirror the input's). Folder inputs need -o (results beside the
  inputs would be upscaled again next time). All outputs are checked before the
  first image is read: a file where a folder must be or two inputs with one
  output name stop the run with nothing written.

failures and reruns:
  An image that cannot be read or written is reported and the rest of the batch
  goes on; the run ends with a list of failures and exit code 1. Files are
  written atomically (no partial files), so --skip-existing resumes a stopped run;
  it keeps only outputs made by the same model and scale (others are redone).
  Animated GIF/WebP inputs are refused in one line (extract the frames first).

Real-ESRGAN habits: -i INPUT, -n NAME (--model), -s OUTSCALE, -t TILE, --fp32,
  --suffix, --ext auto.

many GPUs:
  torchrun --nproc_per_node N -m superres upscale ... shards the inputs across
  N processes (rank r takes every N-th image from r), each on cuda:LOCAL_RANK
  (CPU without CUDA); rank 0 prints the summary."""


def scale_arg(text: str) -> int:
    """``--scale``: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (the network's factor), got {text!r}; --outscale "
            "takes any positive size factor"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer (the network's factor), got {value}"
        )
    return value


def tile_arg(text: str) -> int | str:
    """``--tile``: a non-negative integer or ``auto``."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of pixels, auto or 0, got {text!r}"
        ) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


TEXT = CommandText(
    help="upscale image files, folders or glob patterns (or a sample: sample:astronaut)",
    description="Upscale images with any size (tiled, bounded memory), 8/16-bit, gray or "
    "RGBA; bit depth, grayscale and alpha are preserved.",
    epilog=_EPILOG,
    raw=True,
)


def add_arguments(up: argparse.ArgumentParser) -> None:
    """The inputs and outputs, then the option groups below."""
    up.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, folders, globs")
    up.add_argument(
        "-i",
        "--input",
        dest="input_flags",
        action="append",
        default=[],
        metavar="INPUT",
        help="an input, as a positional INPUT (Real-ESRGAN's -i); may be repeated",
    )
    up.add_argument(
        "-o",
        "--output",
        help="output file (one input) or folder (created if missing); default: beside each input",
    )
    _add_model_options(up)
    _add_run_options(up)
    _add_output_options(up)
    add_device(up)


def _add_model_options(up: argparse.ArgumentParser) -> None:
    """Which network, at which scale."""
    add_weights_args(
        up,
        model="registered or pretrained model name (default: the model the --weights file "
        "describes, else the shipped edsr-baseline-x4; srresnet-x2 with --scale 2)",
        weights="weights file (.safetensors/.pth); it says which model it holds, so --model is "
        "only needed as a check",
        model_flags=("-n", "--model", "--name"),
    )
    up.add_argument(
        "--scale",
        "--scales",
        dest="scale",
        type=scale_arg,
        default=None,
        help="network upscaling factor (default: the weights' scale, else 4); without --model, "
        "a scale no shipped model has is refused unless --outscale asks for the resize",
    )
    up.add_argument(
        "-s",
        "--outscale",
        type=float,
        default=None,
        help="final size factor, any positive number (e.g. 3.5): network scale, then MATLAB "
        "bicubic to round(H*outscale) x round(W*outscale)",
    )


def _add_run_options(up: argparse.ArgumentParser) -> None:
    """How the network runs: tiles, precision, back-projection, GAN realism."""
    up.add_argument(
        "-t",
        "--tile",
        type=tile_arg,
        default="auto",
        help="tile size in input pixels, auto (fit a memory budget) or 0 (off) (default: auto)",
    )
    up.add_argument(
        "--overlap",
        type=int,
        default=DEFAULT_OVERLAP,
        help="pixels shared by neighbouring tiles; tiles are exact when overlap/4 covers the "
        f"network's receptive field (default: {DEFAULT_OVERLAP})",
    )
    up.add_argument(
        "--precision",
        choices=RUN_PRECISIONS,
        default="auto",
        help="auto: fp16 on CUDA; on the CPU the fastest path that costs no visible quality "
        "(bf16 for verified models on CPUs with native bf16, else fp32); fp32: exact (equal to "
        "eager fp32 to 1e-5); fp16 needs CUDA; int8: OpenVINO int8 on the CPU, faster still "
        "but 0.06-0.2 dB below (pip install 'superres[int8]'; calibrated once per model on T91 "
        "from the data root, then cached) (default: auto)",
    )
    up.add_argument(
        "--fp32",
        dest="precision",
        action="store_const",
        const="fp32",
        help="same as --precision fp32 (Real-ESRGAN's flag)",
    )
    up.add_argument(
        "--backproject",
        type=int,
        default=0,
        metavar="N",
        help="iterations of back-projection against the input (default: 0, off)",
    )
    up.add_argument(
        "--realism",
        type=unit_fraction,
        default=None,
        metavar="R",
        help="GAN models (srgan-x4, esrgan-6b-x4): blend with the PSNR parent, 0 = smooth "
        "parent, 1 = GAN as trained",
    )
    up.add_argument(
        "--denoise",
        "-dn",
        type=unit_fraction,
        default=None,
        metavar="S",
        help="real-world models: blend with the weak-degradation variant, 0 = keeps noise and "
        "detail, 1 = full denoising (realesr-general-x4v3's -dn); with --weights, name the "
        "variant with --denoise-weights",
    )
    up.add_argument(
        "--denoise-weights",
        default=None,
        metavar="FILE",
        help="the weak-degradation variant --denoise blends with "
        "(e.g. realesr-general-wdn-x4v3.pth)",
    )
    up.add_argument(
        "--realism-space",
        choices=REALISM_SPACES,
        default=None,
        help="how --realism blends: the networks' weights (network interpolation) or their "
        "output images (twice the compute); default: the model's measured choice (see "
        "docs/models.md)",
    )


def _add_output_options(up: argparse.ArgumentParser) -> None:
    """What is written, what is skipped, what is refused."""
    up.add_argument(
        "--ext",
        "--format",
        dest="format",
        choices=(AUTO_FORMAT, *(ext.lstrip(".") for ext in SUPPORTED_EXTENSIONS)),
        default=None,
        help="extension of the output names; auto: the input's own (PNG for GIF) (default: png)",
    )
    up.add_argument(
        "--suffix",
        default=None,
        help="put after each input's stem instead of _x{scale} ('' for none) (default: _x{scale})",
    )
    up.add_argument(
        "--quality",
        type=quality_arg,
        default=95,
        help="JPEG/WebP quality 0..100 (WebP 100: lossless) (default: 95)",
    )
    up.add_argument(
        "--recursive", action="store_true", help="also take images in sub-folders of folders"
    )
    up.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip inputs whose output exists (resume a stopped run)",
    )
    up.add_argument(
        "--max-pixels",
        type=int,
        default=None,
        help="refuse inputs with more pixels than this, a guard against decompression bombs; "
        f"0: no limit (default: {DEFAULT_MAX_PIXELS // 1_000_000} million)",
    )


def run(args: argparse.Namespace) -> int:
    """Upscale; failures are listed on stderr and end the run with exit code 1."""
    if not args.inputs and not args.input_flags:
        print(
            "superres upscale: error: give at least one INPUT (a file, folder, glob or "
            "sample:NAME), as an argument or with -i",
            file=sys.stderr,
        )
        return 2
    report = _upscale(args)
    if not report.main_process:  # torchrun: rank 0 reports for everyone (and exits 1)
        return 0
    done = f"{len(report.written)} written, {len(report.skipped)} skipped (existing)"
    if report.total == 1 and report.failed:  # the one image's problem is the run's one line
        name, message = report.failed[0]
        line = message if name in message else f"{name}: {message}"
        print(f"superres upscale: error: {line}", file=sys.stderr)
        return 1
    if report.failed:
        lines = "".join(f"\n  {name}: {message}" for name, message in report.failed)
        print(
            f"superres upscale: error: {len(report.failed)} of {report.total} image(s) failed "
            f"({done}):{lines}",
            file=sys.stderr,
        )
        return 1
    logger.info("done: %d image(s), %s", report.total, done)
    return 0


def _upscale(args: argparse.Namespace) -> BatchReport:
    """The one call into the library: the parsed options as ``upscale_files`` takes them."""
    options = UpscaleOptions(
        device=args.device,
        precision=args.precision,
        tile=args.tile or None,
        overlap=args.overlap,
        outscale=args.outscale,
        backproject=args.backproject,
        progress=not args.quiet,
    )
    inputs = [*args.inputs, *args.input_flags]
    return upscale_files(
        inputs,
        output=args.output,
        model=args.model,
        weights=args.weights,
        scale=args.scale,
        options=options,
        realism=args.realism,
        realism_space=args.realism_space,
        denoise=args.denoise,
        denoise_weights=args.denoise_weights,
        fmt=args.format,
        recursive=args.recursive,
        skip_existing=args.skip_existing,
        max_pixels=_max_pixels(args.max_pixels),
        quality=args.quality,
        suffix=args.suffix,
    )


def _max_pixels(value: int | None) -> int | None:
    """``--max-pixels``: absent, the default guard; 0, no limit (the library refuses < 0)."""
    if value is None:
        return DEFAULT_MAX_PIXELS
    return value or None
