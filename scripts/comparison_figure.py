"""Paper-style crop comparisons of shipped models on benchmark images (one PNG per image).

    python scripts/comparison_figure.py \
        --models srresnet-x4 srgan-x4 rrdbnet-6b-x4 esrgan-6b-x4 \
        --dataset set14 --images baboon comic --data-root ../shared/data --out-dir docs/figures

Each figure shows the HR image with a zoom box, then the same crop from HR, bicubic (MATLAB
``imresize`` of the 8-bit LR, as the benchmark) and every model, enlarged with nearest-neighbour.
Model outputs are computed on the CPU under ``torch.inference_mode`` and rounded to 8 bit; the
score under each panel is PSNR on Y of the whole image (border of ``scale`` pixels cropped,
the benchmark's default protocol), not of the crop. The crop is the most textured window of the
HR image (:func:`superres.evaluation.figures.select_crop`) unless ``--crop`` or
``--crop-method seeded`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from superres.data.datasets import BenchmarkSet
from superres.errors import UnknownModelError
from superres.evaluation.figures import comparison_figure, select_crop
from superres.imaging.quantize import quantize, to_integer
from superres.imaging.resize import imresize
from superres.metrics.fidelity import psnr
from superres.models.catalog import WEIGHTS
from superres.models.weights import load_model

LOG = logging.getLogger("comparison_figure")
MAX_BYTES = 1_500_000
DATASET_NAMES = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", required=True, help="catalog names; 'bicubic' is always included"
    )
    parser.add_argument("--dataset", required=True, help="catalog name, e.g. set14")
    parser.add_argument("--images", nargs="+", required=True, help="HR file stems, e.g. baboon")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--crop-size", type=int, default=96, help="crop side in HR pixels")
    parser.add_argument("--crop-method", choices=("texture", "seeded"), default="texture")
    parser.add_argument("--seed", type=int, default=0, help="seed of --crop-method seeded")
    parser.add_argument(
        "--crop",
        nargs=2,
        type=int,
        metavar=("TOP", "LEFT"),
        help="explicit crop corner in HR pixels (only with a single --images entry)",
    )
    parser.add_argument("--data-root", default=None, help="data root (default: SUPERRES_DATA)")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/figures"))
    args = parser.parse_args(argv)
    if args.crop is not None and len(args.images) != 1:
        parser.error("--crop applies to one image; pass a single --images entry")
    for name in args.models:
        if name == "bicubic":
            continue
        try:
            entry = WEIGHTS.get(name)
        except UnknownModelError as exc:  # the message lists close matches
            parser.error(str(exc))
        if entry.scale != args.scale:
            parser.error(f"{name} is a x{entry.scale} model, but --scale is {args.scale}")
    return args


def bicubic(lq: torch.Tensor, scale: int) -> torch.Tensor:
    """The benchmark's bicubic: MATLAB ``imresize`` of the 8-bit LR, rounded to 8 bit."""
    return imresize(to_integer(lq), scale=float(scale)).to(torch.float32) / 255.0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    methods = ["bicubic", *(m for m in args.models if m != "bicubic")]
    models = {name: load_model(name) for name in methods if name != "bicubic"}
    dataset = BenchmarkSet(args.dataset, args.scale, root=args.data_root)
    stems = {path.stem: index for index, path in enumerate(dataset.files)}
    missing = [s for s in args.images if s not in stems]
    if missing:
        LOG.error("%s has no image(s) %s; it has %s", args.dataset, missing, sorted(stems))
        return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)
    label = DATASET_NAMES.get(args.dataset, args.dataset)

    for stem in args.images:
        pair = dataset[stems[stem]]
        hr = pair.hr
        outputs: dict[str, torch.Tensor] = {}
        scores: dict[str, str] = {}
        for name in methods:
            if name == "bicubic":
                sr = bicubic(pair.lq, args.scale)
            else:
                with torch.inference_mode():
                    sr = models[name](pair.lq[None].to(torch.float32))[0]
            sr = quantize(sr.float())
            outputs[name] = sr
            value = float(
                psnr(sr[None].double(), hr[None].double(), crop_border=args.scale, y_channel=True)[
                    0
                ]
            )
            scores[name] = f"PSNR-Y {value:.2f} dB"
        if args.crop is not None:
            top, left = args.crop
        else:
            top, left = select_crop(hr, args.crop_size, method=args.crop_method, seed=args.seed)
        path = args.out_dir / f"{args.dataset}_{stem}_x{args.scale}.png"
        figure = comparison_figure(
            hr,
            outputs,
            crop=(top, left, args.crop_size),
            path=path,
            title=f"{label} {stem}, x{args.scale} (PSNR-Y on the whole image, border "
            f"{args.scale} px; LR: {pair.lq_source})",
            scores=scores,
        )
        size = path.stat().st_size
        LOG.info(
            "%s: %dx%d px, %.0f kB, crop top=%d left=%d size=%d; %s",
            path, *figure.size, size / 1000, top, left, args.crop_size,
            ", ".join(f"{k} {v}" for k, v in scores.items()),
        )  # fmt: skip
        if size > MAX_BYTES:
            LOG.warning("%s is %d bytes, over the %d-byte budget", path, size, MAX_BYTES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
