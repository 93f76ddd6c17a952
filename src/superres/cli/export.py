"""``superres export``: a model as one ONNX file, checked against PyTorch."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from superres.cli.common import CommandText, add_quiet, add_scales_arg, add_weights_args
from superres.inference.export import DEFAULT_OPSET, EXPORTERS, check_onnx_output, export_onnx
from superres.models.weights import load_model

logger = logging.getLogger("superres")


TEXT = CommandText(
    help="export a model to ONNX for onnxruntime, TensorRT, OpenVINO, ... (verified)",
    description="""Write the model as one ONNX file: input `input`, float32 NCHW RGB (Y for srcnn)
    in [0, 1], output `output` of H*scale x W*scale, not clamped; batch, height and width are
    dynamic; the model name, scale and channels are in its metadata. Before the file is written,
    onnxruntime runs it on random inputs of two sizes and must match PyTorch within 1e-4; otherwise
    nothing is written. Needs pip install 'superres[onnx]'.""",
    epilog="example: superres export --model srresnet-x4 --onnx srresnet-x4.onnx",
)


def add_arguments(ex: argparse.ArgumentParser) -> None:
    """The network, the file and how it is written."""
    add_weights_args(
        ex,
        model="pretrained model name (e.g. srresnet-x4) or bicubic; with --weights, only a check",
        weights="weights file (.safetensors/.pth) to export; it says which model it holds",
    )
    ex.add_argument(
        "--onnx",
        "-o",
        type=Path,
        required=True,
        metavar="OUT.onnx",
        help="file to write (-o as in upscale); its folder is created if missing; an existing "
        "file needs --force",
    )
    add_scales_arg(
        ex,
        "upscaling factor: a check for weights, the factor for bicubic (default: 4)",
        many=False,
        default=None,
    )
    ex.add_argument(
        "--opset",
        type=int,
        default=DEFAULT_OPSET,
        help=f"ONNX opset version (default: {DEFAULT_OPSET})",
    )
    ex.add_argument(
        "--exporter",
        choices=EXPORTERS,
        default="torchscript",
        help="torch.onnx exporter: torchscript (fast) or dynamo (torch.export-based, needs "
        "onnxscript) (default: torchscript)",
    )
    ex.add_argument(
        "--no-verify", action="store_true", help="skip the onnxruntime check (not recommended)"
    )
    ex.add_argument("--force", action="store_true", help="replace an existing OUT.onnx")
    add_quiet(ex)


def run(args: argparse.Namespace) -> int:
    """Load the model, export (and verify) it, say what was written."""
    check_onnx_output(args.onnx, overwrite=args.force)  # before loading a large model
    model = load_model(args.model, weights=args.weights, scale=args.scale)
    name = args.weights.stem if args.weights is not None else args.model
    path = export_onnx(
        model,
        args.onnx,
        name=name,
        opset=args.opset,
        exporter=args.exporter,
        verify=not args.no_verify,
        overwrite=args.force,
    )
    checked = "" if args.no_verify else ", checked against PyTorch with onnxruntime"
    logger.info(
        "wrote %s: %s x%s, %s input channel(s), opset %d%s",
        path,
        name,
        model.scale,
        model.in_channels,
        args.opset,
        checked,
    )
    return 0
