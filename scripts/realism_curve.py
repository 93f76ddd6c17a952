"""PSNR-Y and NIQE of the shipped GAN models along the ``--realism`` slider (for the model cards).

    python scripts/realism_curve.py --models srgan-x4 esrgan-6b-x4 --dataset set14 \
        --data-root ../shared/data --output-json benchmarks/results/realism_set14.json \
        --plot docs/figures/realism_set14.png

For each model, each blending space (``--spaces``: the networks' weights, as ESRGAN proposed, and
their output images) and each realism value, the GAN model is blended with its PSNR parent
(:func:`superres.models.weights.load_model` with ``realism=r, realism_space=space``: 0 is the
parent, 1 the GAN model), run on every image of the set (the benchmark's default protocol, output
rounded to 8 bit) and scored with PSNR-Y (border = scale) and NIQE (standard pristine parameters,
border = scale). Prints a table and writes the JSON and a two-panel plot (PSNR and NIQE against
realism). The catalog's ``realism_space`` of each model is the space that trades smoothly here.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from superres.data.datasets import BenchmarkSet
from superres.evaluation.protocol import super_resolve
from superres.io.files import atomic_write, atomic_write_text
from superres.metrics.fidelity import psnr
from superres.metrics.niqe import niqe
from superres.models.catalog import WEIGHTS
from superres.models.realism import REALISM_SPACES
from superres.models.weights import load_model


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["srgan-x4", "esrgan-6b-x4"])
    parser.add_argument("--dataset", default="set14", help="catalog name (default: set14)")
    parser.add_argument(
        "--steps", type=int, default=6, help="realism values 0..1 inclusive (default: 6)"
    )
    parser.add_argument("--spaces", nargs="+", choices=REALISM_SPACES, default=list(REALISM_SPACES))
    parser.add_argument("--data-root", default=None, help="data root (default: SUPERRES_DATA)")
    parser.add_argument("--output-json", type=Path, required=True)
    parser.add_argument("--plot", type=Path, required=True)
    args = parser.parse_args(argv)
    for name in args.models:
        if not WEIGHTS.get(name).parent:
            parser.error(f"{name} has no PSNR parent, so it has no realism slider")
    if args.steps < 2:
        parser.error("--steps must be at least 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_grad_enabled(False)
    niqe_params = None
    if args.data_root is not None:
        candidate = Path(args.data_root) / "niqe" / "niqe_pris_params.npz"
        niqe_params = candidate if candidate.is_file() else None
    values = [i / (args.steps - 1) for i in range(args.steps)]
    rows: list[dict[str, object]] = []
    print(f"| model | space | realism | PSNR-Y (dB) | NIQE |  ({args.dataset})")
    print("|---|---|---:|---:|---:|")
    for name in args.models:
        scale = WEIGHTS.get(name).scale
        bench = BenchmarkSet(args.dataset, scale, root=args.data_root)
        pairs = list(bench)
        for space in args.spaces:
            for r in values:
                model = load_model(name, realism=r, realism_space=space).eval()
                p_values, n_values = [], []
                for pair in pairs:
                    sr = super_resolve(model, pair.lq, scale)
                    hr = pair.hr.to(torch.float64)
                    p_values.append(
                        float(psnr(sr[None], hr[None], crop_border=scale, y_channel=True))
                    )
                    n_values.append(
                        float(niqe(sr[None].float(), crop_border=scale, params=niqe_params))
                    )
                row = {
                    "model": name,
                    "dataset": bench.info.name,
                    "space": space,
                    "realism": r,
                    "psnr_y": math.fsum(p_values) / len(p_values),
                    "niqe": math.fsum(n_values) / len(n_values),
                    "images": len(pairs),
                }
                rows.append(row)
                print(
                    f"| {name} | {space} | {r:.1f} | {row['psnr_y']:.2f} | {row['niqe']:.3f} |",
                    flush=True,
                )
    atomic_write_text(args.output_json, json.dumps({"results": rows}, indent=2) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    styles = {"weights": "-", "pixels": "--"}
    for i, name in enumerate(args.models):
        for space in args.spaces:
            mine = [r for r in rows if r["model"] == name and r["space"] == space]
            xs = [float(r["realism"]) for r in mine]  # type: ignore[arg-type]
            style = {"color": f"C{i}", "linestyle": styles[space], "marker": "o"}
            label = f"{name}, {space}"
            axes[0].plot(xs, [r["psnr_y"] for r in mine], label=label, **style)
            axes[1].plot(xs, [r["niqe"] for r in mine], label=label, **style)
    axes[0].set_ylabel("PSNR-Y (dB), higher: closer to HR")
    axes[1].set_ylabel("NIQE, lower: more natural")
    for ax in axes:
        ax.set_xlabel("realism (0: PSNR parent, 1: GAN model)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"The realism slider on {rows[0]['dataset']}, x4", fontsize=11)
    fig.tight_layout()
    with atomic_write(args.plot) as f:
        fig.savefig(f, format="png", dpi=110)
    print(f"wrote {args.output_json} and {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
