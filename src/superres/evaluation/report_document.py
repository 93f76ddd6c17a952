"""The benchmark report as a document (see :mod:`.report`, which builds it): its rows, its
Markdown and its perception-distortion plot.

``report.md`` has the conventions, one table per dataset, links to every figure, and a list of
what was left out and why (a metric whose files are missing or that was turned off, MS-SSIM on
images too small for it, the plot without NIQE or LPIPS, crop figures not drawn).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import torch

from superres.data.catalog import get_dataset_info, is_folder_dataset
from superres.errors import SuperresError
from superres.evaluation.published import published_psnr
from superres.io.files import atomic_write
from superres.metrics.table import metric_spec

__all__ = [
    "HR_ROW",
    "PLOT_FILE",
    "CropPanel",
    "Report",
    "ReportImage",
    "ReportRow",
    "figure_file",
    "figure_files",
    "format_report_markdown",
    "has_plot",
    "left_out",
    "perception_distortion_plot",
]

#: The row of the HR images themselves (their NIQE).
HR_ROW = "HR"


@dataclass(frozen=True)
class _Scores:
    """One score per metric of ``REPORT_METRICS``, in its order; ``None``: not measured.

    Fields, not a mapping, so that pyright knows them; ``tests/test_report.py`` holds them to
    the table.
    """

    psnr_y: float | None = None
    ssim_y: float | None = None
    ms_ssim_y: float | None = None
    rmse_y: float | None = None
    niqe: float | None = None
    lpips: float | None = None


# A dataclass takes its fields from the bases from last to first: ``ReportRow(_Scores, _RowKey)``
# has the key fields first, then the scores (the column order of the CSV and JSON files).
@dataclass(frozen=True)
class _RowKey:
    model: str
    dataset: str
    scale: int
    images: int


@dataclass(frozen=True)
class _ImageKey:
    model: str
    dataset: str
    scale: int
    image: str


@dataclass(frozen=True)
class ReportRow(_Scores, _RowKey):
    """Mean scores of one model (or ``HR``) on the ``images`` images of one dataset."""


@dataclass(frozen=True)
class ReportImage(_Scores, _ImageKey):
    """Scores of one model (or ``HR``) on one image."""


@dataclass(frozen=True)
class CropPanel:
    """The images of one crop figure: HR and every model's 8-bit output, float ``(3, H, W)``."""

    dataset: str
    image: str
    hr: torch.Tensor
    outputs: dict[str, torch.Tensor]
    scores: dict[str, str]


@dataclass
class Report:
    """Everything :func:`write_report` needs."""

    models: list[str]
    datasets: list[str]
    scale: int
    metrics: list[str]
    notes: list[str] = field(default_factory=list)
    rows: list[ReportRow] = field(default_factory=list)
    per_image: list[ReportImage] = field(default_factory=list)
    crops: list[CropPanel] = field(default_factory=list)
    crops_asked: int = 0

    def to_dict(self) -> dict[str, object]:
        """The JSON document (scores only; figures are separate files)."""
        return {
            "models": self.models,
            "datasets": self.datasets,
            "scale": self.scale,
            "metrics": self.metrics,
            "notes": self.notes,
            "left_out": left_out(self),
            "figures": figure_files(self),
            "results": [asdict(r) for r in self.rows],
            "per_image": [asdict(r) for r in self.per_image],
        }


def _published(model: str, scale: int, dataset: str) -> str:
    ref = published_psnr(model, scale, dataset)
    return "-" if ref is None else f"{ref[1]:.2f} ({ref[0]})"


def _fmt(value: float | None, metric: str) -> str:
    return "-" if value is None else f"{value:.{metric_spec(metric).digits}f}"


def format_report_markdown(report: Report) -> str:
    """``report.md``: conventions, then one table per dataset (rows: HR, models)."""
    lines = [
        f"# Benchmark report, x{report.scale}",
        "",
        "Default protocol: official LR (else MATLAB bicubic of the HR), outputs rounded to 8 bit; "
        f"every metric with {report.scale} px cropped from each border. PSNR/SSIM/MS-SSIM/RMSE "
        "on BT.601 Y in float (0-255 scale); NIQE on the 8-bit Y (lower is more natural); "
        "LPIPS v0.1 on RGB (lower is closer). Higher is better for PSNR, SSIM and MS-SSIM. "
        "`published` is the PSNR-Y of the paper row each model reproduces.",
        "",
    ]
    lines += [f"> {note}" for note in report.notes]
    if report.notes:
        lines += ["", "(All that was left out is listed at the end.)", ""]
    cell = {(r.model, r.dataset): r for r in report.rows}
    for dataset in report.datasets:
        folder = get_dataset_info(dataset).label
        lines += [f"## {folder}", ""]
        header = ["Model", *(metric_spec(m).header for m in report.metrics), "published PSNR-Y"]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---|" + "---:|" * len(report.metrics) + "---|")
        names = [HR_ROW, *report.models] if "niqe" in report.metrics else report.models
        for name in names:
            r = cell.get((name, dataset))
            if r is None:
                continue
            values = [_fmt(getattr(r, m), m) for m in report.metrics]
            if name == HR_ROW:
                values = [
                    v if m == "niqe" else ("0.0000" if m == "lpips" else "-")
                    for v, m in zip(values, report.metrics, strict=True)
                ]
            published = "-" if name == HR_ROW else _published(name, report.scale, dataset)
            lines.append("| " + " | ".join([name, *values, published]) + " |")
        lines.append("")
    return "\n".join(lines + _figures_markdown(report) + _left_out_markdown(report))


#: The perception-distortion plot's file in the report folder.
PLOT_FILE = "perception_distortion.png"


def has_plot(report: Report) -> bool:
    """The report has the perception-distortion plot (it needs NIQE or LPIPS)."""
    return any(m in report.metrics for m in ("niqe", "lpips"))


def figure_file(panel: CropPanel) -> str:
    """A crop figure's path in the report folder: ``figures/DATASET_IMAGE.png`` (a folder
    dataset is named by its folder, ``/`` replaced)."""
    name = panel.dataset
    if is_folder_dataset(name):
        name = get_dataset_info(name).label
    return f"figures/{name.replace('/', '_').replace(os.sep, '_')}_{panel.image}.png"


def figure_files(report: Report) -> list[str]:
    """Every figure :func:`write_report` writes, as paths in the report folder."""
    return [figure_file(p) for p in report.crops] + ([PLOT_FILE] if has_plot(report) else [])


def left_out(report: Report) -> list[str]:
    """What the report does not show, and why: one sentence each."""
    lines = list(report.notes)
    skipped = [i for i in report.per_image if i.model != HR_ROW and i.ms_ssim_y is None]
    if "ms_ssim_y" in report.metrics and skipped:
        names = sorted({f"{get_dataset_info(i.dataset).label} {i.image}" for i in skipped})
        lines.append(
            f"MS-SSIM-Y not measured on {len(names)} image(s) under 161 px after the border "
            f"crop (its five scales need that; the means leave them out): {', '.join(names)}"
        )
    if not has_plot(report):
        lines.append(f"{PLOT_FILE} left out: it plots PSNR against NIQE or LPIPS, both left out")
    if report.crops_asked == 0:
        lines.append("crop figures left out: none asked for (--crops 0, crops=0)")
    elif len(report.crops) < report.crops_asked:
        lines.append(
            f"{report.crops_asked - len(report.crops)} of the {report.crops_asked} crop figures "
            f"asked for left out: the datasets hold only {len(report.crops)} image(s)"
        )
    return lines


def _figures_markdown(report: Report) -> list[str]:
    files = figure_files(report)
    if not files:
        return []
    lines = ["## Figures", ""]
    for panel, path in zip(report.crops, files, strict=False):
        folder = get_dataset_info(panel.dataset).label
        lines += [
            f"[{folder} {panel.image}]({path}): HR, bicubic and every model on the most textured "
            "region of the HR image, each output pixel a square (nearest-neighbour zoom)",
            "",
            f"![{folder} {panel.image}, x{report.scale}]({path})",
            "",
        ]
    if has_plot(report):
        lines += [
            f"[Perception-distortion plot]({PLOT_FILE}): PSNR-Y against NIQE/LPIPS",
            "",
            f"![Perception-distortion]({PLOT_FILE})",
            "",
        ]
    return lines


def _left_out_markdown(report: Report) -> list[str]:
    lines = left_out(report)
    if not lines:
        return []
    return ["## Left out", "", *(f"- {line}" for line in lines), ""]


def perception_distortion_plot(report: Report, path: str | os.PathLike[str]) -> None:
    """PSNR-Y against NIQE (and LPIPS when measured): one point per model, a panel per dataset.

    The ideal corner is top-left (high PSNR, low NIQE/LPIPS); the HR images' NIQE is drawn as a
    dashed line. Written atomically as PNG.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [m for m in ("niqe", "lpips") if m in report.metrics]
    if not xs:
        raise SuperresError(
            "a perception-distortion plot needs NIQE or LPIPS; make the NIQE parameters or the "
            "LPIPS weights available (see the report's notes)"
        )
    cell = {(r.model, r.dataset): r for r in report.rows}
    fig, axes = plt.subplots(
        len(xs),
        len(report.datasets),
        figsize=(4.2 * len(report.datasets), 3.8 * len(xs)),
        squeeze=False,
    )
    colours = plt.get_cmap("tab10")
    for row, metric in enumerate(xs):
        for col, dataset in enumerate(report.datasets):
            ax = axes[row][col]
            for k, name in enumerate(report.models):
                r = cell.get((name, dataset))
                x = None if r is None else getattr(r, metric)
                if r is None or x is None or r.psnr_y is None:
                    continue
                ax.scatter([x], [r.psnr_y], color=colours(k % 10), s=36, zorder=3)
                ax.annotate(
                    name, (x, r.psnr_y), textcoords="offset points", xytext=(4, 4), fontsize=7
                )
            hr = cell.get((HR_ROW, dataset))
            if metric == "niqe" and hr is not None and hr.niqe is not None:
                ax.axvline(hr.niqe, color="0.4", linestyle="--", linewidth=1)
                ax.annotate("HR", (hr.niqe, ax.get_ylim()[0]), fontsize=7, color="0.3")
            ax.set_xlabel(f"{metric_spec(metric).header} (lower: better perceptual quality)")
            ax.set_ylabel("PSNR-Y (dB)")
            ax.set_title(f"{get_dataset_info(dataset).label}, x{report.scale}", fontsize=10)
            ax.grid(alpha=0.3)
    fig.suptitle("Perception-distortion: top-left is best", fontsize=11)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
