"""Measure a static sub-pixel pattern (checkerboard) in a model's outputs.

For each benchmark image, the output minus its local 4x4 box mean is averaged over every position
of the same phase (row mod s, column mod s, s = the scale); a pattern that is the same on every
image is an artefact of the network, not of the content. Prints the per-phase means (8-bit
levels, channel mean) of each image and their largest magnitude.

    python scripts/subpixel_pattern.py srgan-x4                      # a shipped model
    python scripts/subpixel_pattern.py runs/srgan_x4/weights_last.safetensors --dataset set14

A PSNR model stays within about 0.5 levels; BENCHMARKS.md ("The srgan-x4 checkerboard") lists
what the SRGAN stage's terms do to it.
"""

from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F

from superres.data.datasets import BenchmarkSet
from superres.evaluation.protocol import super_resolve
from superres.inference.fast import fast_network
from superres.models.weights import load_model
from superres.models.weights_file import load_weights


def phase_means(image: torch.Tensor, scale: int) -> torch.Tensor:
    """``(s, s)`` mean of ``image - box_mean(image)`` per sub-pixel phase, channel mean, 0-255."""
    x = image.to(torch.float32)[None]
    k = scale
    padded = F.pad(x, ((k - 1) // 2, k // 2, (k - 1) // 2, k // 2), mode="replicate")
    residual = (x - F.avg_pool2d(padded, k, stride=1))[0].mean(0)
    h, w = (residual.shape[0] // k) * k, (residual.shape[1] // k) * k
    return residual[:h, :w].reshape(h // k, k, w // k, k).mean((0, 2)) * 255


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Static sub-pixel pattern of a model's outputs.")
    parser.add_argument("model", help="a pretrained name (srgan-x4) or a weights file")
    parser.add_argument("--dataset", default="set5")
    parser.add_argument("--data-root", default=None, help="default: SUPERRES_DATA")
    parser.add_argument("--images", type=int, default=0, help="first N images only (0: all)")
    args = parser.parse_args(argv)
    is_file = args.model.endswith((".safetensors", ".pth", ".pt"))
    model = load_weights(args.model) if is_file else load_model(args.model)
    scale = int(getattr(model, "scale", 4))
    network = fast_network(model.eval(), dtype=torch.float32)
    bench = BenchmarkSet(args.dataset, scale, root=args.data_root)
    largest = 0.0
    for index, pair in enumerate(bench):
        if args.images and index >= args.images:
            break
        with torch.inference_mode():
            means = phase_means(super_resolve(network, pair.lq, scale), scale)
        largest = max(largest, float(means.abs().max()))
        rows = " | ".join(" ".join(f"{v:+5.1f}" for v in row) for row in means.tolist())
        print(f"{pair.name:>16}: {rows}")
    print(f"largest per-phase mean: {largest:.2f} levels (8-bit)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
