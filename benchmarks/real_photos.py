"""No-reference quality of each model on the bundled real photos: NIQE of the x4 output.

    python benchmarks/real_photos.py                        # every RGB sample, every model
    python benchmarks/real_photos.py --samples chelsea coffee --crop 128 --models bicubic

The bundled photos (``superres samples``) have no HR original, so only a no-reference score
applies: NIQE (lower is more natural; :func:`superres.metrics.niqe.niqe`, MATLAB's convention) of
each model's x4 output of a centre crop of ``--crop`` pixels (fp32, the exact path, rounded to 8
bits as the file a user gets). NIQE needs its pristine model (``niqe/niqe_pris_params.npz`` in the
data root, ``SUPERRES_DATA``). Bicubic is the row a model trained on clean LR has to beat on
photos with real noise and compression; the real-world models are meant to.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from jpeg_blockiness import DEFAULT_MODELS  # the same rows as the JPEG table
from superres import UpscaleOptions, Upscaler, load_model
from superres.io.samples import load_sample
from superres.metrics.niqe import niqe
from superres.runtime import describe_machine

DEFAULT_SAMPLES = ("astronaut", "coffee", "chelsea", "rocket")


def centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size`` x ``size`` centre of ``(C, H, W)`` (the whole side where it is smaller)."""
    h, w = image.shape[-2:]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[..., top : top + size, left : left + size]


def score_table(models: list[str], samples: list[str], crop: int) -> dict[str, dict[str, float]]:
    """``{model: {sample: NIQE of its x4 output}}``."""
    photos = {name: centre_crop(load_sample(name).rgb, crop) for name in samples}
    table: dict[str, dict[str, float]] = {}
    for name in models:
        upscaler = Upscaler(
            load_model(name, scale=4), options=UpscaleOptions(device="cpu", precision="fp32")
        )
        row = {}
        for sample, lq in photos.items():
            with torch.inference_mode():
                out = upscaler(lq[None])[0].clamp(0, 1)
            row[sample] = float(niqe((out * 255 + 0.5).floor() / 255))
        table[name] = row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--samples", nargs="+", default=list(DEFAULT_SAMPLES))
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--crop", type=int, default=192, help="LR centre crop side (pixels)")
    args = parser.parse_args(argv)
    print(f"machine: {describe_machine()}")
    print(f"NIQE of the x4 output of a {args.crop}-px centre crop (lower is better)\n")
    table = score_table(args.models, args.samples, args.crop)
    print("| model | " + " | ".join(args.samples) + " | mean |")
    print("|---|" + "---:|" * (len(args.samples) + 1))
    for name, row in table.items():
        cells = [f"{row[s]:.3f}" for s in args.samples]
        print(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(row.values()):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
