"""How much each model sharpens the 8x8 blocks of a JPEG: blockiness of its x4 output.

    python benchmarks/jpeg_blockiness.py                       # chelsea at quality 40
    python benchmarks/jpeg_blockiness.py --quality 20 40 80 --models bicubic edsr-baseline-x4
    python benchmarks/jpeg_blockiness.py --models bicubic edsr-baseline-x4 real-compact-psnr-x4 \
        --figure docs/figures/chelsea_jpeg40_x4.png

The input is a bundled photo saved as JPEG at ``--quality`` (Pillow, 4:2:0), decoded, and
upscaled x4 by each model (fp32, the exact path). Blockiness
(:func:`superres.metrics.blockiness.blockiness`) is the edge energy across the JPEG's grid (every
32 output pixels) over the energy elsewhere: 1 is no block structure. Bicubic is the floor a
model trained on clean images should not exceed; the real-photo issue asks that a real-world
model stay at or below it. The clean photo's own value (no JPEG) is printed as the reference.
``--figure`` draws the first quality's outputs beside the JPEG (enlarged x4 with nearest
neighbour), on a 128-pixel output crop of the most textured region, with each blockiness.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from superres import UpscaleOptions, Upscaler, load_model
from superres.evaluation.figures import comparison_figure, select_crop
from superres.io.samples import load_sample
from superres.metrics.blockiness import blockiness
from superres.runtime import describe_machine

DEFAULT_MODELS = (
    "bicubic",
    "edsr-baseline-x4",
    "srresnet-x4",
    "rrdbnet-6b-x4",
    "srgan-x4",
    "esrgan-6b-x4",
)


def jpeg_round_trip(image: torch.Tensor, quality: int) -> torch.Tensor:
    """``(3, H, W)`` in [0, 1] -> the same image after a Pillow JPEG at ``quality``."""
    pixels = (image.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    decoded = np.array(Image.open(buffer).convert("RGB"))
    return torch.from_numpy(decoded).permute(2, 0, 1).float() / 255


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sample", default="chelsea")
    parser.add_argument("--quality", type=int, nargs="+", default=[40])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--figure", type=Path, default=None, help="PNG of the first quality")
    parser.add_argument("--crop", type=int, default=128, help="figure crop side, output pixels")
    args = parser.parse_args(argv)
    clean = load_sample(args.sample).rgb
    print(f"machine: {describe_machine()}")
    print(
        f"{args.sample} {clean.shape[-1]}x{clean.shape[-2]}: clean photo {blockiness(clean):.3f}\n"
    )
    print("| model | " + " | ".join(f"JPEG q{q}: input / x4 output" for q in args.quality) + " |")
    print("|---|" + "---:|" * len(args.quality))
    upscalers = {
        name: Upscaler(
            load_model(name, scale=4), options=UpscaleOptions(device="cpu", precision="fp32")
        )
        for name in args.models
    }
    inputs = {q: jpeg_round_trip(clean, q) for q in args.quality}
    first: dict[str, tuple[torch.Tensor, float]] = {}  # the figure's panels
    for name, upscaler in upscalers.items():
        cells = []
        for q, lq in inputs.items():
            with torch.inference_mode():
                out = upscaler(lq[None])[0].clamp(0, 1)
            out = (out * 255 + 0.5).floor() / 255  # the 8-bit file a user gets
            value = blockiness(out, block=8 * upscaler.scale)
            cells.append(f"{blockiness(lq):.3f} / {value:.3f}")
            if q == args.quality[0]:
                first[name] = (out, value)
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.figure is not None:
        _figure(args.figure, inputs[args.quality[0]], first, args)
    return 0


def _figure(
    path: Path,
    lq: torch.Tensor,
    outputs: dict[str, tuple[torch.Tensor, float]],
    args: argparse.Namespace,
) -> None:
    """The JPEG (nearest x4) and each model's output on one crop, with their blockiness."""
    nearest = lq.repeat_interleave(4, dim=-2).repeat_interleave(4, dim=-1)
    top, left = select_crop(nearest, args.crop)
    label = f"JPEG q{args.quality[0]}, nearest x4"
    figure = comparison_figure(
        nearest,
        {name: out for name, (out, _) in outputs.items()},
        crop=(top, left, args.crop),
        path=path,
        title=f"{args.sample} saved as JPEG q{args.quality[0]}, upscaled x4",
        scores={name: f"blockiness {value:.3f}" for name, (_, value) in outputs.items()}
        | {label: f"blockiness {blockiness(lq):.3f} (input)"},
        hr_label=label,
    )
    print(f"\nwrote {figure.path} ({figure.size[0]}x{figure.size[1]})")


if __name__ == "__main__":
    sys.exit(main())
