"""Upscaling decoded images and files with a model.

Colour and alpha are upscaled with the model and MATLAB-exact bicubic respectively; the source's
bit depth and grayscale-ness are preserved when writing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from superres.errors import ImageWriteError, SuperresError
from superres.imaging.resize import imresize
from superres.inference.device import resolve_device
from superres.io.image import DEFAULT_MAX_PIXELS, ImageData, read_image, write_image
from superres.io.samples import SAMPLE_PREFIX, check_sample, load_sample
from superres.models import create_model

logger = logging.getLogger(__name__)

#: Formats that store 16 bits per channel; others get 8-bit output.
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")


def upscale_image(model: nn.Module, image: ImageData, scale: int) -> ImageData:
    """Upscale colour with ``model`` and alpha with bicubic; returns a new :class:`ImageData`.

    The model runs on the device of its parameters (CPU for parameter-free models).
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    with torch.inference_mode():
        rgb = model(image.rgb[None].to(device)).float().cpu()[0].clamp(0.0, 1.0)
        alpha = None
        if image.alpha is not None:
            alpha = imresize(image.alpha, scale=float(scale)).clamp(0.0, 1.0)
    return replace(image, rgb=rgb, alpha=alpha)


def _output_path(source: str, output: Path | None, scale: int, many: bool) -> Path:
    stem = source[len(SAMPLE_PREFIX) :] if source.startswith(SAMPLE_PREFIX) else Path(source).stem
    default_name = f"{stem}_x{scale}.png"
    if output is None:
        folder = Path.cwd() if source.startswith(SAMPLE_PREFIX) else Path(source).parent
        return folder / default_name
    if output.is_dir():
        return output / default_name
    if many:
        raise SuperresError(
            f"-o {str(output)!r} must be an existing folder when upscaling several inputs; "
            "create it first"
        )
    if not output.parent.is_dir():
        raise ImageWriteError(
            output, f"folder {str(output.parent)!r} does not exist; create it first"
        )
    return output


def upscale_files(
    inputs: Sequence[str],
    *,
    output: str | Path | None = None,
    model: str = "bicubic",
    scale: int = 4,
    device: str = "auto",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> list[Path]:
    """Upscale files (or ``sample:NAME``) and write the results; returns the written paths.

    Every input is checked and every output path resolved before the first image is processed.
    """
    net = create_model(model, scale=scale).to(resolve_device(device)).eval()
    out = Path(output) if output is not None else None
    targets = [(src, _output_path(src, out, scale, len(inputs) > 1)) for src in inputs]
    for src, _ in targets:
        if src.startswith(SAMPLE_PREFIX):
            check_sample(src[len(SAMPLE_PREFIX) :])  # unknown names fail before any work
        elif not Path(src).is_file():
            raise SuperresError(
                f"input {src!r} does not exist or is not a file; check the path "
                "(bundled samples are named sample:NAME, see `superres samples`)"
            )
    written = []
    for src, dst in tqdm(
        targets, desc="upscale", unit="img", disable=not progress or len(targets) < 2
    ):
        if src.startswith(SAMPLE_PREFIX):
            image = load_sample(src[len(SAMPLE_PREFIX) :])
        else:
            image = read_image(src, max_pixels=max_pixels)
        result = upscale_image(net, image, scale)
        bit_depth = result.bit_depth
        if bit_depth == 16 and dst.suffix.lower() not in _SIXTEEN_BIT_SUFFIXES:
            logger.warning("%s: 16-bit input written as 8-bit (%s holds 8 bit)", dst, dst.suffix)
            bit_depth = 8
        write_image(
            dst, result.rgb, alpha=result.alpha, bit_depth=bit_depth, grayscale=result.grayscale
        )
        h, w = result.rgb.shape[-2:]
        logger.info("wrote %s (%dx%d, x%d %s)", dst, w, h, scale, model)
        written.append(dst)
    return written
