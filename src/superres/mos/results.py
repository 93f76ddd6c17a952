"""MOS per method from a study's ratings: a table, CSV, JSON and a bar plot with CI error bars.

Methods are listed in the study's order (the models as given, then the ``bicubic`` and ``hr``
anchors); see :mod:`superres.mos.stats` for the interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from superres.io.files import atomic_write, atomic_write_text, make_output_folder
from superres.mos.stats import CI_METHOD, mean_ci
from superres.mos.study import connection, open_study

__all__ = ["MethodResult", "StudyResults", "compute_results", "format_markdown", "write_results"]


@dataclass(frozen=True)
class MethodResult:
    """The MOS of one method.

    Attributes:
        method: label (a model name, ``bicubic`` or ``hr``).
        kind: ``"model"``, ``"bicubic"`` or ``"hr"``.
        mos: mean score in [1, 5]; ``None`` without ratings.
        std: sample standard deviation of its ratings; ``None`` for fewer than two.
        ci_low, ci_high, ci_half_width: the 95% interval; ``None`` for fewer than two ratings.
        ratings: number of ratings.
        raters: number of raters who rated at least one of its images.
    """

    method: str
    kind: str
    mos: float | None
    std: float | None
    ci_low: float | None
    ci_high: float | None
    ci_half_width: float | None
    ratings: int
    raters: int


@dataclass(frozen=True, kw_only=True)
class StudyResults:
    """A study's results: one :class:`MethodResult` per method, plus totals."""

    dataset: str
    scale: int
    images: int
    items: int
    raters: int
    ratings: int
    confidence: float = 0.95
    ci_method: str = CI_METHOD
    methods: list[MethodResult]

    def to_dict(self) -> dict[str, object]:
        """The JSON document: every field, in order."""
        return asdict(self)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def compute_results(path: str | os.PathLike[str]) -> StudyResults:
    """Read every rating of the study ``path`` and compute the MOS of each method.

    Safe while ``superres mos serve`` runs (the file is in WAL mode: a reader sees the last
    committed ratings and blocks no writer).
    """
    info = open_study(path)
    with connection(info.path) as conn:
        rows = conn.execute(
            "SELECT i.method, r.rater_id, r.score FROM ratings r JOIN items i USING (item_id)"
        ).fetchall()
        (raters,) = conn.execute("SELECT COUNT(DISTINCT rater_id) FROM ratings").fetchone()
    scores: dict[str, list[int]] = {m: [] for m in info.methods}
    who: dict[str, set[str]] = {m: set() for m in info.methods}
    for method, rater, score in rows:
        scores[method].append(int(score))
        who[method].add(rater)
    methods = []
    for method in info.methods:
        ci = mean_ci(scores[method], bounds=(1.0, 5.0))
        methods.append(
            MethodResult(
                method=method,
                kind=info.kinds[method],
                mos=_finite(ci.mean),
                std=_finite(ci.std),
                ci_low=_finite(ci.low),
                ci_high=_finite(ci.high),
                ci_half_width=_finite(ci.half_width),
                ratings=ci.n,
                raters=len(who[method]),
            )
        )
    return StudyResults(
        dataset=info.dataset,
        scale=info.scale,
        images=len(info.images),
        items=info.num_items,
        raters=int(raters),
        ratings=len(rows),
        methods=methods,
    )


def _label(m: MethodResult) -> str:
    return {"hr": "hr (original)", "bicubic": "bicubic (anchor)"}.get(m.kind, m.method)


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def format_markdown(results: StudyResults) -> str:
    """A Markdown table of the MOS per method, with a header line and the CI method below it."""
    lines = [
        f"MOS on {results.dataset} x{results.scale}: {results.images} images, "
        f"{results.ratings} ratings from {results.raters} rater(s)",
        "",
        "| Method | MOS | 95% CI | Std | Ratings | Raters |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for m in results.methods:
        ci = "–" if m.ci_low is None else f"[{m.ci_low:.2f}, {m.ci_high:.2f}]"
        if m.ci_half_width is not None:
            ci += f" (±{m.ci_half_width:.2f})"
        lines.append(
            f"| {_label(m)} | {_num(m.mos)} | {ci} | {_num(m.std)} | {m.ratings} | {m.raters} |"
        )
    lines += ["", f"{results.ci_method}.", ""]
    return "\n".join(lines)


def _csv_text(results: StudyResults) -> str:
    buf = io.StringIO()
    fields = list(MethodResult.__dataclass_fields__)
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for m in results.methods:
        writer.writerow({k: "" if v is None else v for k, v in vars(m).items()})
    return buf.getvalue()


def _plot_png(results: StudyResults) -> bytes:
    """Bar chart of the MOS per method with 95% CI error bars (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    methods = results.methods
    fig = Figure(figsize=(max(4.0, 1.1 * len(methods) + 1.5), 4.0), dpi=110)
    FigureCanvasAgg(fig)  # attaches itself to fig; no global backend state
    ax = fig.add_subplot()
    xs = range(len(methods))
    heights = [m.mos if m.mos is not None else 0.0 for m in methods]
    # Asymmetric bars: the interval's ends, clipped to the 1..5 scale, not mean ± half width.
    below = [
        m.mos - m.ci_low if m.mos is not None and m.ci_low is not None else 0.0 for m in methods
    ]
    above = [
        m.ci_high - m.mos if m.mos is not None and m.ci_high is not None else 0.0 for m in methods
    ]
    colours = ["#4c72b0" if m.kind == "model" else "#a0a0a0" for m in methods]
    ax.bar(
        xs, heights, yerr=[below, above], capsize=6, color=colours, edgecolor="black", linewidth=0.6
    )
    for x, m in zip(xs, methods, strict=True):
        text = "no ratings" if m.mos is None else f"{m.mos:.2f}"
        ax.text(x, 0.1, text, ha="center", va="bottom", fontsize=9, color="white")
    ax.set_xticks(list(xs), [_label(m) for m in methods], rotation=20, ha="right")
    ax.set_ylim(0, 5.25)
    ax.set_yticks([1, 2, 3, 4, 5])
    ax.axhline(1, color="black", linewidth=0.4, linestyle=":")
    ax.set_ylabel("MOS (1 bad – 5 excellent)")
    ax.set_title(
        f"MOS, {results.dataset} x{results.scale} ({results.ratings} ratings, "
        f"{results.raters} raters); bars: 95% CI (t)",
        fontsize=9,
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_results(results: StudyResults, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``mos.md``, ``mos.csv``, ``mos.json`` and ``mos.png`` into ``out_dir`` (atomically;
    the folder is made if missing, parents included). Returns the paths written."""
    folder = make_output_folder(out_dir, "--out")
    paths = [folder / f"mos.{ext}" for ext in ("md", "csv", "json", "png")]
    atomic_write_text(paths[0], format_markdown(results))
    atomic_write_text(paths[1], _csv_text(results))
    atomic_write_text(paths[2], json.dumps(results.to_dict(), indent=2) + "\n")
    with atomic_write(paths[3]) as f:
        f.write(_plot_png(results))
    return paths
