"""Mean NIQE on benchmark sets: the HR images, their bicubic x4 upscales and, optionally, models.

NIQE (superres.metrics.niqe) on the Y channel (MATLAB ``rgb2ycbcr`` of the 8-bit image), with
``crop_border=4``. HR = the mod-4-cropped HR image; bicubic = MATLAB-exact bicubic x4
(:func:`superres.imaging.resize.imresize`, float64) of the dataset's benchmark LR
(:class:`superres.data.datasets.BenchmarkSet`), clamped and rounded to 8 bit; a model row runs the
shipped catalog model on the LR on the CPU under ``torch.inference_mode`` and rounds its output to
8 bit the same way. Gray sources (Set14 ``bridge``) are scored as 3 equal channels, like their
upscales. Lower NIQE = more natural; bicubic must score clearly worse (higher) than HR.

    python benchmarks/niqe_sets.py --data-root ../shared/data [--datasets set14 bsd100]
        [--models srresnet-x4 srgan-x4 ...] [--params PATH]

``--params`` defaults to the asset ``niqe/pristine`` (the data root's ``niqe/`` copy, else the
download cache; ``superres assets get niqe/pristine`` fetches it).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch

from superres.data.catalog import resolve_data_root
from superres.data.datasets import BenchmarkSet
from superres.imaging.resize import imresize
from superres.metrics.niqe import load_niqe_params, niqe
from superres.models.weights import load_model

SCALE = 4


def _to_8bit(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float -> ``(H, W, 3)`` float64 in [0, 1] on the 8-bit grid."""
    x = image.detach().to(torch.float64).clamp(0, 1).permute(1, 2, 0).numpy()
    return np.floor(x * 255.0 + 0.5) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--datasets", nargs="+", default=["set14", "bsd100"])
    parser.add_argument("--models", nargs="*", default=[], help="catalog names, e.g. srgan-x4")
    parser.add_argument("--no-baselines", action="store_true", help="skip the HR/bicubic rows")
    parser.add_argument("--params", type=Path, default=None)
    args = parser.parse_args()

    root = resolve_data_root(args.data_root)
    params = load_niqe_params(args.params, data_root=root)
    torch.set_grad_enabled(False)
    models = {name: load_model(name, scale=SCALE).eval() for name in args.models}
    rows = [] if args.no_baselines else ["HR", "bicubic"]
    rows += list(models)

    start = time.perf_counter()
    table: dict[tuple[str, str], float] = {}
    counts: dict[str, int] = {}
    for dataset in args.datasets:
        scores: dict[str, list[float]] = {row: [] for row in rows}
        for pair in BenchmarkSet(dataset, SCALE, root=root):
            images: dict[str, np.ndarray] = {}
            if not args.no_baselines:
                images["HR"] = _to_8bit(pair.hr)
                images["bicubic"] = _to_8bit(imresize(pair.lq.to(torch.float64), scale=SCALE))
            for name, model in models.items():
                with torch.inference_mode():
                    sr = model(pair.lq[None].to(torch.float32))[0]
                images[name] = _to_8bit(sr)
            for row, image in images.items():
                scores[row].append(niqe(image, crop_border=SCALE, params=params))
        counts[dataset] = len(scores[rows[0]]) if rows else 0
        for row in rows:
            table[row, dataset] = float(np.mean(scores[row]))
    elapsed = time.perf_counter() - start

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} | python "
        f"{platform.python_version()} | torch {torch.__version__} | threads "
        f"{torch.get_num_threads()} | {elapsed:.0f} s"
    )
    print(f"params: {args.params or 'the asset niqe/pristine (data root or hub cache)'}")
    header = " | ".join(f"{d} ({counts[d]})" for d in args.datasets)
    print(f"| NIQE (Y, crop 4), mean | {header} |")
    print("|---|" + "---|" * len(args.datasets))
    for row in rows:
        cells = " | ".join(f"{table[row, d]:.4f}" for d in args.datasets)
        print(f"| {row} | {cells} |")


if __name__ == "__main__":
    main()
