"""The reports' experiments, regenerated: one command per table, our numbers beside theirs.

    python benchmarks/experiments.py t1_cnn_vs_gan --budget-minutes 2.5 --out runs/experiments
    python benchmarks/experiments.py all --budget-minutes 10 --seeds 0 1 --docs docs/experiments.md

Each table is a folder of ``configs/experiments/`` (see its README): ``experiment.yaml`` holds
the report's claims (an ordering of arms by one metric) and the figures it printed; one YAML per
arm names the recipe it starts from and what it changes. For every seed the arms train in the
order listed (an arm with ``after`` starts its generator from that arm's weights), each for an
equal share of ``--budget-minutes`` (``superres train``'s time limit: it checkpoints and stops),
as ordinary runs under ``OUT/<table>/seed<S>/<arm>/`` that ``--resume auto`` continues. Every
arm is then scored by the one evaluation protocol (:func:`superres.evaluation.report.build_report`:
PSNR-Y, SSIM-Y, LPIPS, NIQE on the test sets; the report's crop figures for seed 0), and each
claim is marked *holds* or *does not hold* on the mean over the sets and seeds, with the
per-seed spread. ``results.json``, ``table.md`` and the figures land in ``OUT/<table>/``;
``--docs`` writes the table's section of docs/experiments.md. A table with a MOS claim gets a
study file of its arms (``superres mos serve`` it; the ratings need people).

On a CPU the same command runs with a tiny budget (tests/test_experiments.py shrinks every arm
to a few iterations of a narrow network); the claims then say nothing, and the output says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from superres.evaluation.report import build_report, write_report
from superres.io.files import atomic_write_text
from superres.mos.study import create_study
from superres.runtime import describe_machine
from superres.training.checkpoint import WEIGHTS_LAST
from superres.training.config import RunOptions, recipe_from_dict
from superres.training.recipe_text import apply_overrides, parse_yaml, read_recipe_text
from superres.training.trainer import train

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = REPO / "configs" / "experiments"
#: Metrics where lower is better (every other one: higher).
LOWER_BETTER = frozenset({"lpips", "niqe", "rmse_y"})
#: ``(arm, recipe as a dict) -> recipe``: how a test shrinks every arm.
RecipeHook = Callable[[str, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Arm:
    """One row of a table: a recipe (``base`` + ``overrides``) or a parameter-free ``model``."""

    name: str
    base: Path | None = None
    model: str | None = None
    after: str | None = None
    overrides: tuple[str, ...] = ()
    differs: str = ""  # the arm file's comment: what differs from the report


@dataclass(frozen=True)
class Claim:
    text: str
    metric: str
    order: tuple[str, ...]  # worst to best


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    datasets: tuple[str, ...]
    arms: tuple[Arm, ...]
    claims: tuple[Claim, ...]
    published: tuple[dict[str, Any], ...] = ()
    mos: dict[str, Any] | None = None
    comment: str = ""


def _comment(text: str) -> str:
    lines = [line[1:].strip() for line in text.splitlines() if line.startswith("#")]
    return " ".join(lines)


def _read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    text = read_recipe_text(path)
    data = parse_yaml(text, what=str(path))
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping")
    return data, _comment(text)


def _arm(folder: Path, name: str) -> Arm:
    path = folder / f"{name}.yaml"
    data, comment = _read_yaml(path)
    if data.get("arm") != name:
        raise SystemExit(f"{path}: 'arm' must be {name!r}")
    base = (folder / data["base"]).resolve() if "base" in data else None
    if (base is None) == ("model" not in data):
        raise SystemExit(f"{path}: give exactly one of 'base' (a recipe) and 'model' (bicubic)")
    return Arm(
        name=name,
        base=base,
        model=data.get("model"),
        after=data.get("after"),
        overrides=tuple(str(s) for s in data.get("set", ())),
        differs=comment,
    )


def load_experiment(name: str) -> Experiment:
    """The table ``configs/experiments/<name>/``, checked (arms exist, claims name arms)."""
    folder = EXPERIMENTS / name
    if not (folder / "experiment.yaml").is_file():
        known = ", ".join(list_experiments())
        raise SystemExit(f"no experiment {name!r} in {EXPERIMENTS}; known: {known}")
    data, comment = _read_yaml(folder / "experiment.yaml")
    arms = tuple(_arm(folder, a) for a in data["arms"])
    names = [a.name for a in arms]
    for arm in arms:
        if arm.after is not None and (
            arm.after not in names or names.index(arm.after) > names.index(arm.name)
        ):
            raise SystemExit(
                f"{folder}: arm {arm.name} starts after {arm.after!r}, not listed before it"
            )
    claims = tuple(Claim(c["text"], c["metric"], tuple(c["order"])) for c in data["claims"])
    for claim in claims:
        if unknown := set(claim.order) - set(names):
            raise SystemExit(f"{folder}: claim {claim.text!r} names unknown arms {sorted(unknown)}")
    return Experiment(
        name=name,
        title=data["title"],
        datasets=tuple(data["datasets"]),
        arms=arms,
        claims=claims,
        published=tuple(data.get("published", ())),
        mos=data.get("mos"),
        comment=comment,
    )


def list_experiments() -> list[str]:
    return sorted(p.parent.name for p in EXPERIMENTS.glob("*/experiment.yaml"))


# --- training ---------------------------------------------------------------------------------


@dataclass
class Trained:
    """One arm of one seed: its weights file (``None``: a parameter-free model) and scale."""

    arm: str
    scale: int
    weights: Path | None
    model: str | None = None
    iterations: int = 0
    seconds: float = 0.0


def arm_recipe(
    arm: Arm, *, seed: int, parent: Path | None, extra: Sequence[str], hook: RecipeHook | None
) -> dict[str, Any]:
    """The recipe dict an arm trains with: its base, its overrides, the seed, its parent."""
    assert arm.base is not None
    data, _ = _read_yaml(arm.base)
    data = apply_overrides(data, [*arm.overrides, *extra])
    data["name"] = arm.name
    data["seed"] = seed
    data = hook(arm.name, data) if hook is not None else data
    if parent is not None:
        data["train"]["pretrained"] = str(parent)
    return data


def train_arms(
    experiment: Experiment,
    *,
    seed: int,
    out: Path,
    budget_s: float,
    options: Mapping[str, Any],
    extra: Sequence[str] = (),
    hook: RecipeHook | None = None,
) -> list[Trained]:
    """Train every arm of one seed for an equal share of ``budget_s``, parents first."""
    learned = [a for a in experiment.arms if a.base is not None]
    share = budget_s / max(1, len(learned))
    done: dict[str, Trained] = {}
    for arm in experiment.arms:
        if arm.base is None:
            done[arm.name] = Trained(arm.name, 0, None, model=arm.model)
            continue
        parent = done[arm.after].weights if arm.after is not None else None
        recipe = recipe_from_dict(
            arm_recipe(arm, seed=seed, parent=parent, extra=extra, hook=hook), source=str(arm.base)
        )
        run_dir = out / arm.name
        started = time.perf_counter()
        run_options = RunOptions(out_dir=run_dir, resume="auto", time_limit=share, **options)
        train(recipe, run_options)
        weights = out / "weights" / f"{arm.name}.safetensors"
        weights.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(run_dir / WEIGHTS_LAST, weights)  # named by the arm: its row in the report
        state = torch.load(run_dir / "state_last.pt", map_location="cpu", weights_only=True)
        done[arm.name] = Trained(
            arm.name,
            recipe.scale,
            weights,
            iterations=int(state["step"]),
            seconds=time.perf_counter() - started,
        )
    scales = {t.scale for t in done.values() if t.weights is not None}
    for trained in done.values():  # a parameter-free arm runs at the learned arms' scale
        if trained.weights is None:
            trained.scale = min(scales) if scales else 4
    return list(done.values())


# --- scoring ----------------------------------------------------------------------------------


#: ``scores[arm][dataset][metric]`` (``"mean"``: over the datasets).
Scores = dict[str, dict[str, dict[str, float]]]


def score_arms(
    experiment: Experiment,
    trained: Sequence[Trained],
    *,
    root: Path | None,
    device: torch.device | None,
    figures: Path | None,
) -> tuple[Scores, list[str]]:
    """Every arm on every test set with the report's metrics, one report per scale."""
    scores: Scores = {}
    notes: list[str] = []
    for scale in sorted({t.scale for t in trained}):
        group = [t for t in trained if t.scale == scale]
        report = build_report(
            [t.model for t in group if t.model is not None],
            list(experiment.datasets),
            scale=scale,
            weights=[t.weights for t in group if t.weights is not None],
            root=root,
            device=device,
            progress=False,
        )
        notes.extend(report.notes)
        if figures is not None:  # this run's figures replace an earlier run's
            shutil.rmtree(figures / f"x{scale}", ignore_errors=True)
            figures.mkdir(parents=True, exist_ok=True)
            write_report(report, figures / f"x{scale}")
        for row in report.rows:
            if row.model == "HR":
                continue
            values = {m: getattr(row, m) for m in ("psnr_y", "ssim_y", "lpips", "niqe")}
            scores.setdefault(row.model, {})[row.dataset] = {
                k: v for k, v in values.items() if v is not None
            }
    for per_set in scores.values():
        metrics = {m for values in per_set.values() for m in values}
        per_set["mean"] = {
            m: sum(v[m] for v in per_set.values() if m in v) / sum(m in v for v in per_set.values())
            for m in metrics
        }
    return scores, notes


@dataclass
class Verdict:
    claim: Claim
    values: dict[str, float]  # arm -> mean over sets and seeds
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)  # arm -> (min, max)
    holds: bool | None = None  # None: a metric was not measured


def judge(claim: Claim, per_seed: Sequence[Scores]) -> Verdict:
    """Does ``claim.order`` (worst to best) hold on the mean over the sets, averaged over seeds?"""
    samples: dict[str, list[float]] = {}
    for arm in claim.order:
        got = [s[arm]["mean"].get(claim.metric) for s in per_seed if arm in s]
        if not got or any(x is None for x in got):
            return Verdict(claim, {})  # a metric left out (its files missing, images too small)
        samples[arm] = [float(x) for x in got if x is not None]
    values = {arm: sum(v) / len(v) for arm, v in samples.items()}
    spread = {arm: (min(v), max(v)) for arm, v in samples.items()}
    sign = -1.0 if claim.metric in LOWER_BETTER else 1.0
    ordered = [sign * values[a] for a in claim.order]
    holds = all(a < b for a, b in itertools.pairwise(ordered))
    return Verdict(claim, values, spread, holds)


# --- output -----------------------------------------------------------------------------------


def _fmt(value: float | None, metric: str) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.4f}" if metric in ("ssim_y", "lpips") else f"{value:.2f}"


def _claim_cell(verdict: Verdict, arm: str, spread: bool) -> str:
    metric = verdict.claim.metric
    if arm not in verdict.values:
        return ""
    text = f"{arm} {_fmt(verdict.values[arm], metric)}"
    if spread:
        low, high = verdict.spread[arm]
        text += f" ({_fmt(low, metric)}..{_fmt(high, metric)})"
    return text


def markdown(
    experiment: Experiment,
    per_seed: Sequence[Scores],
    verdicts: Sequence[Verdict],
    trained: Sequence[Trained],
    budget_s: float,
) -> str:
    """The table's section: our scores per arm and set, the claims, the report's figures."""
    seeds = len(per_seed)
    lines = [f"## {experiment.title}", "", experiment.comment, ""]
    lines.append(f"Budget {budget_s / 60:.1f} min per seed, {seeds} seed(s); {describe_machine()}.")
    lines.append("")
    sets = [*experiment.datasets, "mean"]
    lines.append(
        "| arm | iterations | " + " | ".join(f"{d} PSNR / SSIM / LPIPS / NIQE" for d in sets) + " |"
    )
    lines.append("|---|---:|" + "---|" * len(sets))
    for arm in experiment.arms:
        its = [t.iterations for t in trained if t.arm == arm.name]
        cells = []
        for dataset in sets:
            vals = [s.get(arm.name, {}).get(dataset, {}) for s in per_seed]
            cell = []
            for metric in ("psnr_y", "ssim_y", "lpips", "niqe"):
                got = [v[metric] for v in vals if metric in v]
                cell.append(_fmt(sum(got) / len(got) if got else None, metric))
            cells.append(" / ".join(cell))
        lines.append(f"| {arm.name} | {its[0] if its else '-'} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "| claim | ours (mean over sets and seeds; spread over seeds) | verdict |",
        "|---|---|---|",
    ]
    for v in verdicts:
        shown = ", ".join(_claim_cell(v, a, seeds > 1) for a in v.claim.order) or "not measured"
        verdict = "not measured" if v.holds is None else ("holds" if v.holds else "does not hold")
        lines.append(f"| {v.claim.text} | {shown} | {verdict} |")
    for pub in experiment.published:
        lines += [
            "",
            f"The report's {pub['metric']} ({pub['where']}): "
            + ", ".join(f"{arm} {value}" for arm, value in pub["values"].items())
            + ".",
        ]
    lines += ["", "What differs from the report, per arm:", ""]
    lines += [f"- {arm.name}: {arm.differs}" for arm in experiment.arms if arm.differs]
    return "\n".join(lines) + "\n"


def write_docs(path: Path, name: str, section: str) -> None:
    """Replace (or add) table ``name``'s section of the generated experiments document."""
    begin, end = f"<!-- experiment {name} -->", f"<!-- /experiment {name} -->"
    text = (
        path.read_text(encoding="utf-8")
        if path.is_file()
        else (
            "# The reports' experiments, regenerated\n\nGenerated by `benchmarks/experiments.py` "
            "(one section per table); each claim is marked with what we measured, whatever it "
            "shows. Why ours may differ: the data (T91 + BSD200, not DIV2K), the budget "
            '(minutes, not epochs) and the protocol (README "Evaluation protocols").\n'
        )
    )
    block = f"{begin}\n{section}{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    atomic_write_text(path, text)


def run_experiment(
    name: str,
    *,
    out: Path,
    budget_s: float,
    seeds: Sequence[int] = (0,),
    data_root: Path | None = None,
    device: str = "auto",
    extra: Sequence[str] = (),
    hook: RecipeHook | None = None,
    docs: Path | None = None,
    mos: bool = True,
    datasets: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Train, score and judge one table; returns what ``results.json`` holds. ``datasets``
    replaces the table's test sets (a quick look; the claims are about the table's)."""
    experiment = load_experiment(name)
    if datasets:
        experiment = dataclasses.replace(experiment, datasets=tuple(datasets))
    folder = out / name
    options = {
        "data_root": data_root,
        "device": device,
        "progress": False,
        "tensorboard": False,
        "num_workers": 0 if device == "cpu" else 4,
    }
    per_seed: list[Scores] = []
    trained_all: list[Trained] = []
    notes: list[str] = []
    run_device = None if device == "auto" else torch.device(device)
    for seed in seeds:
        trained = train_arms(
            experiment,
            seed=seed,
            out=folder / f"seed{seed}",
            budget_s=budget_s,
            options=options,
            extra=extra,
            hook=hook,
        )
        trained_all.extend(trained)
        figures = folder / "report" if seed == seeds[0] else None
        scores, seed_notes = score_arms(
            experiment, trained, root=data_root, device=run_device, figures=figures
        )
        per_seed.append(scores)
        notes.extend(n for n in seed_notes if n not in notes)
    verdicts = [judge(c, per_seed) for c in experiment.claims]
    section = markdown(experiment, per_seed, verdicts, trained_all, budget_s)
    atomic_write_text(folder / "table.md", section)
    if docs is not None:
        write_docs(docs, name, section)
    study = None
    if mos and experiment.mos is not None:
        study = folder / "study.db"
        if not study.exists():
            files = [
                t.weights
                for t in trained_all[: len(experiment.arms)]
                if t.arm in experiment.mos["arms"] and t.weights is not None
            ]
            on = datasets[0] if datasets else experiment.mos["dataset"]
            create_study(study, [], on, root=data_root, weights=files, seed=0, device=device)
    results = {
        "experiment": name,
        "budget_s": budget_s,
        "seeds": list(seeds),
        "scores": per_seed,
        "claims": [{"text": v.claim.text, "values": v.values, "holds": v.holds} for v in verdicts],
        "iterations": {t.arm: t.iterations for t in trained_all},
        "notes": notes,
        "mos_study": str(study) if study is not None else None,
    }
    atomic_write_text(folder / "results.json", json.dumps(results, indent=2))
    print(section)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "tables", nargs="+", help=f"tables ({', '.join(list_experiments())}) or all"
    )
    parser.add_argument(
        "--budget-minutes", type=float, default=2.5, help="training per table and seed"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=Path("runs/experiments"))
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--set",
        dest="extra",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override every arm's recipe",
    )
    parser.add_argument("--docs", type=Path, default=None, help="write the tables' sections here")
    parser.add_argument("--no-mos", action="store_true", help="no study file for MOS claims")
    parser.add_argument(
        "--datasets", nargs="+", default=None, help="other test sets (a quick look)"
    )
    args = parser.parse_args(argv)
    tables = list_experiments() if args.tables == ["all"] else args.tables
    for table in tables:
        run_experiment(
            table,
            out=args.out,
            budget_s=args.budget_minutes * 60,
            seeds=args.seeds,
            data_root=args.data_root,
            device=args.device,
            extra=args.extra,
            docs=args.docs,
            mos=not args.no_mos,
            datasets=args.datasets,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
