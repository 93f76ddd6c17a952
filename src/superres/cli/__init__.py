"""The ``superres`` command: parse arguments, call the library, turn errors into exit codes.

Exit codes: 0 success; 1 a :class:`~superres.errors.SuperresError` (message on stderr names the
problem and the fix); 2 bad command-line usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from superres._version import __version__
from superres.cli import assets as cli_assets
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
        help="upscale image files, folders or glob patterns (or a sample: sample:astronaut)",
        description="Upscale images with any size (tiled, bounded memory), 8/16-bit, gray or "
        "RGBA; bit depth, grayscale and alpha are preserved.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""inputs and outputs:
  INPUT is an image file, a folder (its image files, sorted; --recursive for
  sub-folders), a glob pattern (expanded by superres, so quote it: "photos/*.jpg",
  "shots/**/*.png") or sample:NAME (see `superres samples`). Non-image files found
  in folders/patterns are listed in a warning, never silently dropped.
  Outputs are named STEM_x{scale}.png (x{outscale} with --outscale; --format
  picks another extension) and written beside each input file, or into -o.
  -o is an output file for a single input, else an EXISTING folder (never
  created; with --recursive, sub-folders below it mirror the input's). Folder
  inputs need -o (results beside the inputs would be upscaled again next time).
  All outputs are checked before the first image is read: a missing folder or
  two inputs with one output name stop the run with nothing written.

failures and reruns:
  An image that cannot be read or written is reported and the rest of the batch
  goes on; the run ends with a list of failures and exit code 1. Files are
  written atomically (no partial files), so --skip-existing resumes a stopped run.

many GPUs:
  torchrun --nproc_per_node N -m superres upscale ... shards the inputs across
  N processes (rank r takes every N-th image from r), each on cuda:LOCAL_RANK
  (CPU without CUDA); rank 0 prints the summary.""",
    )
    up.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs")
    up.add_argument(
        "-o",
        "--output",
        help="output file (one input) or existing folder; default: beside each input",
    )
    up.add_argument(
        "--model",
        default=None,
        help="registered or pretrained model name (default: the model the --weights file "
        "describes, else the shipped edsr-baseline-x4; srresnet-x2 with --scale 2)",
    )
    up.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file (.safetensors/.pth); it says which model it holds, so --model is "
        "only needed as a check",
    )
    up.add_argument(
        "--scale",
        type=int,
        default=None,
        help="network upscaling factor (default: the weights' scale, else 4)",
    )
    up.add_argument(
        "--outscale",
        type=float,
        default=None,
        help="final size factor, any positive number (e.g. 3.5): network scale, then MATLAB "
        "bicubic to round(H*outscale) x round(W*outscale)",
    )
    up.add_argument(
        "--tile",
        type=_tile_arg,
        default="auto",
        help="tile size in input pixels, auto (fit a memory budget) or 0 (off) (default: auto)",
    )
    up.add_argument(
        "--overlap",
        type=int,
        default=32,
        help="pixels shared by neighbouring tiles; tiles are exact when overlap/4 covers the "
        "network's receptive field (default: 32)",
    )
    up.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto: fp16 on CUDA; on the CPU the fastest path that costs no visible quality "
        "(bf16 for verified models on CPUs with native bf16, else fp32); fp32: exact (equal to "
        "eager fp32 to 1e-5); fp16 needs CUDA (default: auto)",
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
        type=float,
        default=None,
        metavar="R",
        help="GAN models (srgan-x4, esrgan-6b-x4): blend with the PSNR parent, 0 = smooth "
        "parent, 1 = GAN as trained",
    )
    up.add_argument(
        "--realism-space",
        choices=("weights", "pixels"),
        default=None,
        help="how --realism blends: the networks' weights (network interpolation) or their "
        "output images (twice the compute); default: the model's measured choice (see "
        "docs/models.md)",
    )
    up.add_argument(
        "--format",
        choices=("png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"),
        default=None,
        help="extension of the output names (default: png)",
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
        "0: no limit (default: 300 million)",
    )
    _add_common(up)

    ev = sub.add_parser(
        "eval",
        help="benchmark models on datasets (PSNR/SSIM on Y)",
        description="Evaluate models on benchmark sets with the field's protocol and print a "
        "Markdown table of PSNR (dB) / SSIM on Y, border of `scale` pixels cropped.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="""models and weights:
  Every --models NAME and every --weights FILE is one row of the table (give
  either or both). NAME is a parameter-free model (bicubic), run at every
  scale, or a pretrained name, run at its own scale. FILE is a checkpoint
  (.safetensors, or .pth/.pt of tensors: ours, BasicSR, Real-ESRGAN, ESRGAN,
  EDSR, leftthomas/SRGAN layouts); its architecture and scale come from the
  file, its row is named by the file stem (srgan_x4.pth -> srgan_x4), and it
  runs at its own scale only. Without --scales, the scales are those of the
  files and pretrained names (4 if there are none).

example:
  superres eval --models bicubic --weights netG_epoch_4_100.pth --datasets set5""",
    )
    ev.add_argument(
        "--models",
        nargs="+",
        default=[],
        metavar="NAME",
        help="parameter-free (bicubic) or pretrained model names",
    )
    ev.add_argument(
        "--weights",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="weights files, each evaluated as its own row named by the file stem",
    )
    ev.add_argument(
        "--datasets",
        nargs="+",
        required=True,
        help="catalog names, e.g. set5 set14 bsd100 urban100",
    )
    ev.add_argument(
        "--scales",
        nargs="+",
        type=int,
        default=None,
        help="scales (default: the scales of the weights files, else 4)",
    )
    ev.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding Set5/, Set14/, ... (default: $SUPERRES_DATA, else the user cache)",
    )
    ev.add_argument(
        "--eager",
        action="store_true",
        help="run the networks as plain PyTorch modules (default on the CPU: the fused float32 "
        "path of `upscale --precision fp32`, equal within 1e-5 and several times faster)",
    )
    ev.add_argument(
        "--protocol",
        choices=("default", "legacy"),
        default="default",
        help="default: today's tables (RGB bicubic, float Y); legacy: the SRCNN-era scripts "
        "(bicubic on rounded Y, gray images raw)",
    )
    ev.add_argument(
        "--published",
        action="store_true",
        help="also print each shipped model beside its published counterpart's PSNR",
    )
    ev.add_argument("--output-json", type=Path, help="write per-set and per-image scores as JSON")
    ev.add_argument(
        "--output-csv",
        type=Path,
        help="write per-set scores as CSV (per-image scores go to NAME_per_image.csv beside it)",
    )
    _add_common(ev)

    tr = sub.add_parser(
        "train",
        help="train a model from a recipe YAML (resumable; torchrun for several GPUs)",
        description="Train from one recipe (configs/*.yaml). Launch with `torchrun "
        "--nproc_per_node N -m superres train ...` for DDP (data.batch_size is the global batch).",
    )
    tr.add_argument("config", type=Path, help="recipe YAML, e.g. configs/srresnet_x4.yaml")
    tr.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set train.total_iters=2000 (repeatable)",
    )
    tr.add_argument(
        "--out", type=Path, default=None, help="run folder (default: runs/<recipe name>)"
    )
    tr.add_argument(
        "--resume",
        default="never",
        help="auto: continue the run folder's last checkpoint if there is one; a state file "
        "path; never (default): refuse to touch a folder that holds a run. A resumed run may "
        "change train.total_iters and the log/checkpoint/validation cadence, nothing else",
    )
    tr.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="autocast: auto = bf16 (or fp16) on GPUs, bf16 on CPUs with native bf16, else fp32",
    )
    tr.add_argument(
        "--workers",
        type=int,
        default=2,
        help="data loader processes per rank (with data.pipeline: loader)",
    )
    tr.add_argument(
        "--memory-format",
        default="auto",
        choices=("auto", "channels_last", "contiguous"),
        help="the networks' layout (auto: channels_last on CUDA, the faster one measured on a CPU)",
    )
    tr.add_argument(
        "--compile",
        action="store_true",
        help="run the networks through torch.compile (for GPUs; no gain measured on CPUs)",
    )
    tr.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding T91/, BSD200/, Set5/ ... (default: $SUPERRES_DATA)",
    )
    tr.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    tr.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    tr.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="SECONDS",
        help="checkpoint and stop after this many seconds (continue later with --resume auto)",
    )
    _add_common(tr)

    sub.add_parser("models", help="list the registered models")
    ds = sub.add_parser("datasets", help="list the known datasets and whether they are present")
    ds.add_argument("--data-root", type=Path, default=None, help="data root to look in")
    sub.add_parser("samples", help="list the bundled sample images")
    cli_assets.add_parser(sub)
    _add_data_parser(sub)
    _add_mos_parser(sub)
    _add_metrics_parser(sub)
    _add_report_parser(sub)
    _add_export_parser(sub)
    return parser


_DOWNLOAD_HELP = (
    "download the pinned files this needs (ImageNet trunks, LPIPS heads, NIQE model) when they "
    "are not here, verified by sha256 (default: never touch the network; see `superres assets`)"
)


def _add_metrics_parser(sub: argparse._SubParsersAction) -> None:
    """``superres metrics``: every metric that applies to an image (and its reference)."""
    me = sub.add_parser(
        "metrics",
        help="score an image or folder (against a reference) with every applicable metric",
        description="Print every metric that applies: with a REFERENCE, MSE, RMSE, PSNR, SSIM, "
        "MS-SSIM (on Y in float, 0-255 scale, unless --rgb) and LPIPS (RGB in [0, 1]); always "
        "NIQE and, when its model file is available, Ma (NRQM) and the Perceptual Index. Two "
        "folders are matched by file name without extension; a folder prints one row per file "
        "and the mean. A metric whose files are unavailable is listed as skipped, with why.",
    )
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
        default=0,
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
        choices=("alex", "vgg", "squeeze"),
        default="squeeze",
        help="LPIPS trunk (default: squeeze)",
    )
    me.add_argument(
        "--lpips-trunk",
        default=None,
        help="ImageNet trunk weights for LPIPS (torchvision format .pth or .safetensors)",
    )
    me.add_argument("--ma-model", default=None, help="Ma (NRQM) model file")
    me.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="data root whose niqe/ and weights/ folders hold the metrics' files",
    )
    me.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    me.add_argument("--output-json", type=Path, default=None, help="write every score as JSON")


def _add_report_parser(sub: argparse._SubParsersAction) -> None:
    """``superres report``: the benchmark report with every metric, crops and plots."""
    rp = sub.add_parser(
        "report",
        help="benchmark report: metric tables, crop figures, perception-distortion plot",
        description="Run MODELS on DATASETS and write into the new folder OUT: report.md (a "
        "table per dataset: PSNR/SSIM/MS-SSIM/RMSE on Y, NIQE, LPIPS, published PSNR), "
        "scores.csv, per_image.csv, report.json, crop figures (HR, bicubic and every model, "
        "zoomed on the most textured region of seeded images) and perception_distortion.png.",
    )
    rp.add_argument("--models", nargs="+", default=[], metavar="NAME", help="model names")
    rp.add_argument("--weights", nargs="+", default=[], metavar="FILE", help="weights files")
    rp.add_argument("--datasets", nargs="+", required=True, help="e.g. set5 set14 bsd100")
    rp.add_argument("--scale", type=int, default=4, help="upscaling factor (default: 4)")
    rp.add_argument("--out", type=Path, required=True, help="new folder for the report")
    rp.add_argument("--data-root", type=Path, default=None, help="benchmark data root")
    rp.add_argument("--crops", type=int, default=3, help="number of crop figures (default: 3)")
    rp.add_argument("--crop-size", type=int, default=96, help="zoomed region side in HR pixels")
    rp.add_argument("--seed", type=int, default=0, help="seed of the crop images (default: 0)")
    rp.add_argument("--no-niqe", action="store_true", help="leave NIQE out")
    rp.add_argument("--no-lpips", action="store_true", help="leave LPIPS out")
    rp.add_argument("--download", action="store_true", help=_DOWNLOAD_HELP)
    rp.add_argument(
        "--eager",
        action="store_true",
        help="run the networks as plain PyTorch modules (default on the CPU: the fused float32 "
        "path, as `superres eval`)",
    )
    _add_common(rp)


def _add_export_parser(sub: argparse._SubParsersAction) -> None:
    """``superres export``: a model as one ONNX file, checked against PyTorch."""
    ex = sub.add_parser(
        "export",
        help="export a model to ONNX for onnxruntime, TensorRT, OpenVINO, ... (verified)",
        description="Write the model as one ONNX file: input `input`, float32 NCHW RGB (Y for "
        "srcnn) in [0, 1], output `output` of H*scale x W*scale, not clamped; batch, height and "
        "width are dynamic; the model name, scale and channels are in its metadata. Before the "
        "file is written, onnxruntime runs it on random inputs of two sizes and must match "
        "PyTorch within 1e-4; otherwise nothing is written. Needs pip install 'superres[onnx]'.",
        epilog="example: superres export --model srresnet-x4 --onnx srresnet-x4.onnx",
    )
    ex.add_argument(
        "--model",
        default=None,
        help="pretrained model name (e.g. srresnet-x4) or bicubic; with --weights, only a check",
    )
    ex.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="weights file (.safetensors/.pth) to export; it says which model it holds",
    )
    ex.add_argument(
        "--onnx",
        "-o",
        type=Path,
        required=True,
        metavar="OUT.onnx",
        help="file to write (-o as in upscale); its folder must exist; an existing file needs "
        "--force",
    )
    ex.add_argument(
        "--scale",
        type=int,
        default=None,
        help="upscaling factor: a check for weights, the factor for bicubic (default: 4)",
    )
    ex.add_argument("--opset", type=int, default=None, help="ONNX opset version (default: 18)")
    ex.add_argument(
        "--exporter",
        choices=("torchscript", "dynamo"),
        default="torchscript",
        help="torch.onnx exporter: torchscript (fast) or dynamo (torch.export-based, needs "
        "onnxscript) (default: torchscript)",
    )
    ex.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime check (not recommended)"
    )
    ex.add_argument("--force", action="store_true", help="replace an existing OUT.onnx")
    ex.add_argument("-q", "--quiet", action="store_true", help="no info messages")


def _add_data_parser(sub: argparse._SubParsersAction) -> None:
    """``superres data ...``: dataset preparation."""
    data = sub.add_parser("data", help="prepare datasets (extract-subimages)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    ex = data_sub.add_parser(
        "extract-subimages",
        help="cut large images into overlapping square PNG sub-images (as for DIV2K)",
        description="Cut every image of INPUT into overlapping CROP_SIZE squares written to "
        "OUTPUT as STEM_s001.png, STEM_s002.png, ... (BasicSR's extract_subimages). Files are "
        "written atomically and existing ones are skipped, so a rerun continues a stopped run.",
    )
    ex.add_argument("input", type=Path, metavar="INPUT", help="folder of images")
    ex.add_argument("output", type=Path, metavar="OUTPUT", help="output folder (created)")
    ex.add_argument("--crop-size", type=int, default=480, help="sub-image side (default: 480)")
    ex.add_argument("--step", type=int, default=240, help="distance between crops (default: 240)")
    ex.add_argument(
        "--thresh-size",
        type=int,
        default=0,
        help="add a border-aligned last crop when more than this many pixels remain (default: 0)",
    )
    ex.add_argument("--workers", type=int, default=1, help="images done in parallel (default: 1)")
    ex.add_argument("--compression", type=int, default=3, help="PNG zlib level 0-9 (default: 3)")
    ex.add_argument("-q", "--quiet", action="store_true", help="no info messages")


def _add_mos_parser(sub: argparse._SubParsersAction) -> None:
    """``superres mos ...``: mean opinion score studies (create, serve, results)."""
    mos = sub.add_parser(
        "mos",
        help="blind mean-opinion-score study: create it, serve it to raters, compute the MOS",
        description="A rating study in the SRGAN paper's protocol: every dataset image in every "
        "model's version plus the HR original and bicubic, rated 1 (bad) to 5 (excellent) by "
        "raters who never see which method made an image.",
    )
    mos_sub = mos.add_subparsers(dest="mos_command", required=True, metavar="MOS_COMMAND")
    cr = mos_sub.add_parser(
        "create",
        help="render a dataset with every model (+ HR and bicubic) into a new study file",
        description="Render every image of DATASET with every model, plus the HR original and "
        "bicubic, and store them as PNG inside the new SQLite study file --out, with tables for "
        "raters and ratings. An existing file is never overwritten; the file appears only when "
        "complete.",
    )
    cr.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="NAME",
        help="pretrained model names of one scale, e.g. edsr-baseline-x4 srgan-x4 (bicubic and "
        "the HR original are always included)",
    )
    cr.add_argument("--dataset", required=True, help="catalog name, e.g. set5 set14 bsd100")
    cr.add_argument(
        "--out",
        type=Path,
        required=True,
        help="study file to create, e.g. study.db (must not exist)",
    )
    cr.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="folder holding Set5/, Set14/, ... (default: $SUPERRES_DATA, else the user cache)",
    )
    cr.add_argument(
        "--limit", type=int, default=None, help="use only the first N images (sorted by name)"
    )
    cr.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the opaque item ids and (with each rater id) of the rating orders "
        "(default: random, stored in the study)",
    )
    _add_common(cr)
    sv = mos_sub.add_parser(
        "serve",
        help="serve the rating page for a study (FastAPI + uvicorn; pip install 'superres[mos]')",
        description="Serve the rating page: a rater enters a name (or gets an id) and rates one "
        "image at a time with the keys 1-5. Ratings are saved as they are given; the same name "
        "resumes where it stopped.",
    )
    sv.add_argument("study", type=Path, metavar="STUDY", help="study file from `mos create`")
    sv.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for a lab "
        "network, without passwords)",
    )
    sv.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    sv.add_argument("-q", "--quiet", action="store_true", help="no request log")
    rs = mos_sub.add_parser(
        "results",
        help="MOS per method with 95%% confidence intervals (table, CSV, JSON, plot)",
        description="Print the MOS of every method with its 95% Student-t confidence interval "
        "and the numbers of ratings and raters, and write mos.md, mos.csv, mos.json and mos.png "
        "into --out.",
    )
    rs.add_argument("study", type=Path, metavar="STUDY", help="study file from `mos create`")
    rs.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for mos.md/csv/json/png, created if missing (default: STUDY_results beside "
        "the study file)",
    )
    rs.add_argument("-q", "--quiet", action="store_true", help="no info messages")


def _check_output_parent(path: Path, flag: str) -> None:
    if not path.parent.is_dir():
        raise SuperresError(
            f"{flag} {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first"
        )


def _cmd_eval(args: argparse.Namespace) -> int:
    from superres.evaluation.benchmark import (
        BenchmarkModels,
        format_markdown,
        run_benchmark,
        write_csv,
        write_json,
    )
    from superres.inference import resolve_device

    if not args.models and not args.weights:
        raise SuperresError(
            "nothing to evaluate: give --models NAME ... and/or --weights FILE ... "
            "(e.g. --models bicubic)"
        )
    for flag, path in (("--output-json", args.output_json), ("--output-csv", args.output_csv)):
        if path is not None:
            _check_output_parent(path, flag)
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
    )
    sys.stdout.write(format_markdown(report))
    if args.published:
        from superres.evaluation.benchmark import format_published

        sys.stdout.write("\n" + format_published(report))
    if args.output_json is not None:
        write_json(report, args.output_json)
        logger.info("wrote %s", args.output_json)
    if args.output_csv is not None:
        per_image = write_csv(report, args.output_csv)
        logger.info("wrote %s and %s", args.output_csv, per_image)
    return 0


def _tile_arg(text: str) -> int | str:
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


def _cmd_upscale(args: argparse.Namespace) -> int:
    from superres.inference.batch import upscale_files
    from superres.inference.options import UpscaleOptions

    options = UpscaleOptions(
        device=args.device,
        precision=args.precision,
        tile=args.tile or None,
        overlap=args.overlap,
        outscale=args.outscale,
        backproject=args.backproject,
        progress=not args.quiet,
    )
    report = upscale_files(
        args.inputs,
        output=args.output,
        model=args.model,
        weights=args.weights,
        scale=args.scale,
        options=options,
        realism=args.realism,
        realism_space=args.realism_space,
        fmt=args.format,
        recursive=args.recursive,
        skip_existing=args.skip_existing,
        max_pixels=_max_pixels(args.max_pixels),
    )
    if not report.main_process:  # torchrun: rank 0 reports for everyone (and exits 1)
        return 0
    done = f"{len(report.written)} written, {len(report.skipped)} skipped (existing)"
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


def _max_pixels(value: int | None) -> int | None:
    """``--max-pixels``: the default guard when absent, no limit for 0."""
    from superres.io.image import DEFAULT_MAX_PIXELS

    if value is None:
        return DEFAULT_MAX_PIXELS
    if value < 0:
        raise SuperresError(f"--max-pixels must be >= 0 (0: no limit), got {value}")
    return value or None


def _cmd_models(_: argparse.Namespace) -> int:
    from superres.models import get_model_spec, list_models

    for name in list_models():
        spec = get_model_spec(name)
        scales = "any" if spec.scales is None else ",".join(map(str, spec.scales))
        print(f"{name:24s} scales: {scales:10s} {spec.summary}")
    from superres.models.weights import DEFAULT_MODELS, WEIGHTS

    print("\nshipped weights (use as --model NAME; docs/models.md has their scores):")
    defaults = {name: scale for scale, name in DEFAULT_MODELS.items()}
    for name in WEIGHTS:
        entry = WEIGHTS.get(name)
        tag = f" [default for x{defaults[name]}]" if name in defaults else ""
        print(f"{name:24s} x{entry.scale:<17d} {entry.summary}{tag}")
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


def _cmd_train(args: argparse.Namespace) -> int:
    from superres.training.config import RunOptions, load_recipe
    from superres.training.trainer import train

    recipe = load_recipe(args.config, args.overrides)
    resume = args.resume if args.resume in ("auto", "never") else Path(args.resume)
    if args.workers < 0:
        raise SuperresError(f"--workers must be 0 or more, got {args.workers}")
    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise SuperresError(
            f"--time-limit must be a positive number of seconds, got {args.time_limit}; leave it "
            "out to train to train.total_iters"
        )
    options = RunOptions(
        out_dir=args.out if args.out is not None else Path("runs") / recipe.name,
        data_root=args.data_root,
        device=args.device,
        precision=args.precision,
        num_workers=args.workers,
        resume=resume,
        progress=not args.quiet,
        tensorboard=not args.no_tensorboard,
        time_limit=args.time_limit,
        compile=args.compile,
        memory_format=args.memory_format,
        download=args.download,
    )
    scores = train(recipe, options)
    if scores:
        logger.info("final validation: %s", ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from superres.data.prepare import extract_subimages

    if args.data_command == "extract-subimages":
        try:
            written = extract_subimages(
                args.input,
                args.output,
                crop_size=args.crop_size,
                step=args.step,
                thresh_size=args.thresh_size,
                workers=args.workers,
                compression=args.compression,
            )
        except ValueError as exc:  # bad option values: a usage error with the reason
            if isinstance(exc, SuperresError):
                raise
            raise SuperresError(f"extract-subimages: {exc}") from exc
        logger.info("wrote %d sub-image(s) to %s", written, args.output)
        return 0
    raise SuperresError(f"unknown data command {args.data_command!r}")


def _cmd_export(args: argparse.Namespace) -> int:
    from superres.inference.export import DEFAULT_OPSET, check_onnx_output, export_onnx
    from superres.models.weights import load_model

    check_onnx_output(args.onnx, overwrite=args.force)  # before loading a large model
    model = load_model(args.model, weights=args.weights, scale=args.scale)
    name = args.weights.stem if args.weights is not None else args.model
    opset = DEFAULT_OPSET if args.opset is None else args.opset
    path = export_onnx(
        model,
        args.onnx,
        name=name,
        opset=opset,
        exporter=args.exporter,
        verify=not args.no_verify,
        overwrite=args.force,
    )
    scale, channels = model.scale, model.in_channels
    checked = "" if args.no_verify else ", checked against PyTorch with onnxruntime"
    logger.info(
        "wrote %s: %s x%s, %s input channel(s), opset %d%s",
        path,
        name,
        scale,
        channels,
        opset,
        checked,
    )
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    import json

    from superres.evaluation.image_metrics import (
        METRIC_INFO,
        mean_scores,
        pair_paths,
        prepare_options,
        score_pairs,
    )

    if args.crop_border < 0:
        raise SuperresError(f"--crop-border must be >= 0, got {args.crop_border}")
    if args.output_json is not None:
        _check_output_parent(args.output_json, "--output-json")
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
    results = score_pairs(pairs, options)
    names = [m for m in METRIC_INFO if any(m in r.scores for r in results)]
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
    print("| image | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for r in results:
        cells = [f"{r.scores[m]:.4f}" if m in r.scores else "-" for m in names]
        print(f"| {Path(r.image).name} | " + " | ".join(cells) + " |")
    if len(results) > 1:
        mean = mean_scores(results)
        print("| mean | " + " | ".join(f"{mean[m]:.4f}" for m in names) + " |")
    for metric, why in skipped.items():
        print(f"skipped {metric}: {why}")
    if args.output_json is not None:
        from dataclasses import asdict

        from superres.io.files import atomic_write_text

        doc = {
            "options": {"crop_border": args.crop_border, "space": space},
            "images": [asdict(r) for r in results],
            "mean": mean_scores(results),
        }
        atomic_write_text(args.output_json, json.dumps(doc, indent=2) + "\n")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from superres.evaluation.report import (
        ReportOutputError,
        build_report,
        format_report_markdown,
        write_report,
    )
    from superres.inference import resolve_device

    if not args.models and not args.weights:
        raise SuperresError("nothing to report on: give --models NAME ... and/or --weights FILE")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ReportOutputError(
            f"--out {str(args.out)!r} already exists and is not an empty folder; choose a new "
            "folder or delete this one first"
        )
    _check_output_parent(args.out, "--out")
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
    )
    files = write_report(report, args.out, crop_size=args.crop_size)
    sys.stdout.write(format_report_markdown(report))
    logger.info("wrote %d file(s) to %s", len(files), args.out)
    return 0


def _cmd_mos(args: argparse.Namespace) -> int:
    if args.mos_command == "create":
        from superres.mos import create_study

        info = create_study(
            args.out,
            args.models,
            args.dataset,
            root=args.data_root,
            limit=args.limit,
            seed=args.seed,
            device=args.device,
            progress=not args.quiet,
        )
        print(
            f"created {info.path}: {len(info.images)} images x {len(info.methods)} methods "
            f"({', '.join(info.methods)}) = {info.num_items} items; serve it with "
            f"`superres mos serve {info.path}`"
        )
        return 0
    if args.mos_command == "serve":
        if not 0 <= args.port <= 65535:
            raise SuperresError(f"--port must be in 0..65535, got {args.port}")
        try:
            from superres.mos.server import serve
        except ImportError as exc:
            raise SuperresError(
                f"`superres mos serve` needs FastAPI and uvicorn ({exc}); install them with "
                "pip install 'superres[mos]'"
            ) from exc
        serve(
            args.study,
            host=args.host,
            port=args.port,
            log_level="warning" if args.quiet else "info",
        )
        return 0
    if args.mos_command == "results":
        from superres.mos import compute_results, format_markdown, write_results

        results = compute_results(args.study)
        sys.stdout.write(format_markdown(results))
        out = (
            args.out if args.out is not None else args.study.with_name(f"{args.study.stem}_results")
        )
        for path in write_results(results, out):
            logger.info("wrote %s", path)
        return 0
    raise SuperresError(f"unknown mos command {args.mos_command!r}")


_COMMANDS = {
    "assets": cli_assets.run,
    "data": _cmd_data,
    "mos": _cmd_mos,
    "metrics": _cmd_metrics,
    "report": _cmd_report,
    "export": _cmd_export,
    "eval": _cmd_eval,
    "train": _cmd_train,
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
