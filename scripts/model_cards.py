"""Generate docs/models.md, the model cards of the shipped zoo, from the weights and measurements.

    python scripts/model_cards.py            # from the committed measurements (DEFAULT_RESULTS)
    python scripts/model_cards.py --check    # exit 1 when docs/models.md is out of date

The measurements come from ``superres eval --output-json benchmarks/results/...`` and
``superres report --out docs/report_x4...`` (BENCHMARKS.md has the commands).

Nothing in the cards is typed by hand: recipe, data, iterations, hardware and wall time come from
each file's metadata; parameters and MACs per output megapixel are counted on the network; the
scores come from the evaluation JSON files (the default protocol of BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from superres.evaluation.published import published_psnr
from superres.io.files import atomic_write_text
from superres.models.catalog import WEIGHTS, get_pretrained, pretrained_path
from superres.models.flops import macs_per_output_megapixel
from superres.models.weights import load_model
from superres.models.weights_file import read_metadata

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("set5", "set14", "bsd100", "urban100")
#: The degraded sets of the real-photo models (LR from the fixed-seed degradation pipeline).
REAL_DATASETS = ("set5-real", "bsd100-real", "urban100-real")
NAMES = {
    "set5": "Set5",
    "set14": "Set14",
    "bsd100": "BSD100",
    "urban100": "Urban100",
    "set5-real": "Set5-real",
    "bsd100-real": "BSD100-real",
    "urban100-real": "Urban100-real",
}


#: The measurements behind docs/models.md (later files override earlier ones).
DEFAULT_RESULTS = (
    "benchmarks/results/zoo_x4_set5.json",
    "benchmarks/results/zoo_x4_set14.json",
    "benchmarks/results/zoo_x4_bsd100.json",
    "benchmarks/results/zoo_x2.json",
    "docs/report_x4/report.json",
    "docs/report_x4_bsd100_urban100/report.json",
    "benchmarks/results/zoo_real_x4_clean.json",
    "benchmarks/results/zoo_real_x4_cpu_sitting1.json",
)
DEFAULT_REALISM = REPO / "benchmarks" / "results" / "realism_set5.json"
DEFAULT_REALISM_FIGURE = "figures/realism_set5.png"
#: ``--realism-space`` in words: network interpolation, or image interpolation.
SPACE_WORDS = {"weights": "weights", "pixels": "output images"}

#: How far a GAN stage's Set5 PSNR-Y may fall below its PSNR parent's (the zoo's acceptance).
MAX_GAN_PSNR_DROP = 3.5

Scores = dict[tuple[str, int, str], dict[str, float]]


def load_results(paths: Iterable[Path]) -> Scores:
    """``(model, scale, dataset) -> {metric: value}`` from eval or report JSON files.

    ``superres eval --output-json`` gives PSNR-Y and SSIM-Y; ``superres report``'s
    ``report.json`` adds MS-SSIM, RMSE, NIQE and LPIPS (its ``HR`` rows carry NIQE only); a
    sitting's ``scores.json`` (scripts/train_zoo.py, the same report on the training machine)
    gives each kept model's rows. Later files add to (and overwrite) earlier ones.
    """
    scores: Scores = {}
    for path in paths:
        data = json.loads(path.read_text())
        for row in data.get("results") or _sitting_rows(data):
            key = (row["model"], row["scale"], row["dataset"])
            values = {
                k: float(v)
                for k, v in row.items()
                if k in ("psnr_y", "ssim_y", "niqe", "lpips") and v is not None
            }
            scores.setdefault(key, {}).update(values)
    return scores


def _sitting_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The kept models' rows of a train_zoo ``scores.json``, in ``results`` form."""
    return [
        {"model": d["shipped"], "scale": get_pretrained(d["shipped"]).scale, "dataset": name}
        | values
        for d in data["decisions"]
        if d["kept"]
        for name, values in d["candidate"].items()
    ]


def load_realism(path: Path | None) -> list[dict[str, object]]:
    return [] if path is None else json.loads(path.read_text())["results"]


def _pairs(data: dict[str, object]) -> str:
    """How the recipe made its training pairs, in words."""
    if "degradation" in data:  # data.degradation: Real-ESRGAN's model, on the training device
        sharpened = "; targets unsharp-masked" if data.get("sharpen_targets") else ""
        return (
            "HR crops, flips, rotations; LR by Real-ESRGAN's second-order degradation of each "
            f"crop{sharpened}"
        )
    return "HR crops, flips, rotations; LR by MATLAB-exact bicubic"


def _validation(recipe: dict[str, Any]) -> str:
    dataset = str((recipe.get("validation") or {}).get("dataset", "set5"))
    return NAMES.get(dataset, dataset)


def _autocast(hardware: str) -> str:
    """What ``precision auto`` ran on the training hardware (runtime.resolve_precision): bf16
    on a GPU, on a CPU only where its bf16 is native (train_zoo.hardware lists the features)."""
    if not hardware.startswith("CPU"):
        return "bf16 autocast on the GPU"
    if "avx512_bf16" in hardware or "amx_bf16" in hardware:
        return "bf16 autocast: the CPU's bf16 is native"
    return "fp32: the CPU has no native bf16"


def card(
    name: str, scores: Scores, realism: list[dict[str, object]], figure: str | None
) -> list[str]:
    entry = get_pretrained(name)
    path = pretrained_path(entry)
    meta = read_metadata(path)
    model = load_model(name)
    channels = int(vars(model)["config"].get("in_channels", 3))
    params = sum(p.numel() for p in model.parameters())
    macs = macs_per_output_megapixel(model, entry.scale, channels)
    recipe = yaml.safe_load(meta.get("recipe_yaml", "")) or {}
    data = recipe.get("data") or {}
    roots = " + ".join(str(r) for r in data.get("train_roots", [])) or "?"
    lines = [
        f"## `{name}`",
        "",
        f"{entry.summary}.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{entry.architecture}` {json.loads(meta['kwargs'])} |",
        f"| source | {meta.get('source', '')} |",
        f"| recipe | [`{entry.recipe}`](../{entry.recipe}) |",
        f"| data | {roots}, {data.get('gt_size', '?')}-px HR crops, batch "
        f"{data.get('batch_size', '?')} ({_pairs(data)}); validation {_validation(recipe)} |",
        f"| iterations | {meta.get('iterations')} |",
        f"| hardware | {meta.get('hardware')}, precision {meta.get('precision')} "
        f"({_autocast(str(meta.get('hardware', '')))}) |",
        f"| wall time | {float(meta.get('wall_time_s', 0)) / 60:.1f} min |",
    ]
    if meta.get("parent"):
        lines.append(
            f"| initialised from | `{meta['parent']}` (the generator's starting weights) |"
        )
    if meta.get("training_note"):
        lines.append(f"| note | {meta['training_note']} |")
    lines += [
        f"| parameters | {params:,} |",
        f"| MACs per output megapixel | {macs / 1e9:.1f} G |",
        f"| file | `superres/{entry.asset.packaged}` (float16, sha256 "
        f"`{(entry.asset.sha256 or '')[:16]}...`) |",
        "",
        "| set | PSNR-Y | SSIM-Y | NIQE | LPIPS | published PSNR-Y | row | difference |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for dataset in (*DATASETS, *REAL_DATASETS):
        got = scores.get((name, entry.scale, dataset))
        if got is None or "psnr_y" not in got:
            continue
        ref = published_psnr(name, entry.scale, dataset)
        pub = f"{ref[1]:.2f}" if ref else "-"
        row = ref[0] if ref else ""
        diff = f"{got['psnr_y'] - ref[1]:+.2f}" if ref else ""
        niqe = f"{got['niqe']:.2f}" if "niqe" in got else "-"
        lpips = f"{got['lpips']:.4f}" if "lpips" in got else "-"
        lines.append(
            f"| {NAMES[dataset]} | {got['psnr_y']:.2f} | {got['ssim_y']:.4f} | {niqe} | {lpips} "
            f"| {pub} | {row} | {diff} |"
        )
    parent = meta.get("parent")
    if parent:  # a GAN stage must look more natural than its parent: say so when it does not
        worse = [
            f"{NAMES[d]} ({scores[(name, entry.scale, d)]['niqe']:.2f} vs "
            f"{scores[(parent, entry.scale, d)]['niqe']:.2f})"
            for d in DATASETS
            if "niqe" in scores.get((name, entry.scale, d), {})
            and "niqe" in scores.get((parent, entry.scale, d), {})
            and scores[(name, entry.scale, d)]["niqe"] >= scores[(parent, entry.scale, d)]["niqe"]
        ]
        if worse:
            lines += [
                "",
                f"**Measured shortfall:** NIQE is not lower than `{parent}`'s on "
                f"{', '.join(worse)}; this GAN stage has not reached its perceptual goal.",
            ]
        mine_set5 = scores.get((name, entry.scale, "set5"), {})
        parent_set5 = scores.get((parent, entry.scale, "set5"), {})
        if "psnr_y" in mine_set5 and "psnr_y" in parent_set5:
            drop = parent_set5["psnr_y"] - mine_set5["psnr_y"]
            verdict = "within" if drop <= MAX_GAN_PSNR_DROP else "**beyond**"
            lines += [
                "",
                f"PSNR-Y on Set5 is {drop:.2f} dB below `{parent}`'s, {verdict} the "
                f"{MAX_GAN_PSNR_DROP} dB a GAN stage may give up.",
            ]
    mine = [r for r in realism if r["model"] == name]
    if mine:
        by_space: dict[str, list[dict[str, object]]] = {}
        for r in mine:  # files written before the spaces existed hold weight blends only
            by_space.setdefault(str(r.get("space", "weights")), []).append(r)
        first = next(iter(by_space.values()))
        lines += [
            "",
            f"Along the realism slider (`--realism R`: 0 is `{meta.get('parent')}`, 1 this model; "
            f"it blends the two networks' **{SPACE_WORDS[entry.realism_space]}** unless "
            f"`--realism-space` says otherwise), {mine[0]['dataset']}:",
            "",
            "| realism | " + " | ".join(f"{float(r['realism']):.1f}" for r in first) + " |",  # type: ignore[arg-type]
            "|---|" + "---:|" * len(first),
        ]
        for space, rows in by_space.items():
            lines += [
                f"| PSNR-Y, {space} | "
                + " | ".join(f"{float(r['psnr_y']):.2f}" for r in rows)  # type: ignore[arg-type]
                + " |",
                f"| NIQE, {space} | " + " | ".join(f"{float(r['niqe']):.2f}" for r in rows) + " |",  # type: ignore[arg-type]
            ]
        for space, rows in by_space.items():
            psnrs = [float(r["psnr_y"]) for r in rows]  # type: ignore[arg-type]
            lowest = min(range(len(rows)), key=psnrs.__getitem__)
            if not 0 < lowest < len(rows) - 1:
                continue
            where = (
                f"{psnrs[lowest]:.2f} dB at realism {float(rows[lowest]['realism']):.1f}, below "  # type: ignore[arg-type]
                "both ends"
            )
            if space == entry.realism_space:
                lines += [
                    "",
                    f"**Measured shortfall:** PSNR-Y is not monotone along the slider ({space}): "
                    f"{where}.",
                ]
            else:
                lines += [
                    "",
                    f"Blending the {SPACE_WORDS[space]} does not trade smoothly for this model "
                    f"({where}), so `--realism` blends the {SPACE_WORDS[entry.realism_space]} by "
                    "default.",
                ]
        if figure:
            lines += ["", f"![PSNR and NIQE along the realism slider]({figure})"]
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/models.md, the zoo's model cards.")
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        help="superres eval --output-json / superres report report.json files, later ones "
        "overriding earlier ones (default: the committed measurements, DEFAULT_RESULTS)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "models.md")
    parser.add_argument(
        "--realism",
        type=Path,
        default=DEFAULT_REALISM,
        help="scripts/realism_curve.py --output-json file",
    )
    parser.add_argument(
        "--realism-figure",
        default=DEFAULT_REALISM_FIGURE,
        help="its plot, relative to the cards' folder",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when --out differs from what would be generated",
    )
    args = parser.parse_args(argv)
    results = args.results or [REPO / p for p in DEFAULT_RESULTS]
    scores = load_results(results)
    realism = load_realism(args.realism)
    lines = [
        "# Model zoo",
        "",
        "Generated by `scripts/model_cards.py` from the shipped weight files and "
        f"{', '.join(f'`{_shown(p)}`' for p in results)} (`superres eval` and `superres report`, "
        "default protocol: "
        "PSNR/SSIM on Y, border = scale, output rounded to 8 bit). Do not edit by hand.",
        "",
        "| model | scale | " + " | ".join(NAMES[d] for d in DATASETS) + " |",
        "|---|---|" + "---:|" * len(DATASETS),
    ]
    for model in ("bicubic", *WEIGHTS):
        for scale in (4, 2):
            cells = [scores.get((model, scale, d), {}) for d in DATASETS]
            if any("psnr_y" in c for c in cells):
                text = [
                    f"{c['psnr_y']:.2f} / {c['ssim_y']:.4f}" if "psnr_y" in c else "-"
                    for c in cells
                ]
                lines.append(f"| {model} | x{scale} | " + " | ".join(text) + " |")
    lines.append("")
    for name in WEIGHTS:
        lines += card(name, scores, realism, args.realism_figure)
    text = "\n".join(lines)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date: run python scripts/model_cards.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(exist_ok=True)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return path.name


if __name__ == "__main__":
    sys.exit(main())
