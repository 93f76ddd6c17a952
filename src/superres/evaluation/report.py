"""The benchmark report: every metric of every model on every set, crops and a perception plot.

:func:`build_report` runs each model once per image of each dataset (the default protocol of
:mod:`superres.evaluation.benchmark`: official or MATLAB-bicubic LR, outputs rounded to 8 bit) and
scores the output against the HR image with

* PSNR-Y (dB), SSIM-Y, MS-SSIM-Y and RMSE-Y (0-255 scale): full-reference, on BT.601 Y in float,
  ``scale`` pixels cropped from every border (the field's convention);
* NIQE: no-reference, on the 8-bit Y of the output (MATLAB ``computequality``), same border crop;
  lower is more natural; also reported for the HR images themselves (row ``HR``);
* LPIPS v0.1 (SqueezeNet trunk by default): learned full-reference distance on RGB in [0, 1],
  same border crop; lower is closer. Only with ImageNet trunk weights: when they are absent the
  column is left out and the report says why, never a score from random weights.

:func:`write_report` writes ``report.md`` (a table per dataset with the published PSNR beside
ours), ``scores.csv``, ``per_image.csv``, ``report.json``, paper-style crop figures (HR, bicubic,
every model, a zoom box on the same region; the images are drawn with a fixed seed and the region
is the most textured window of the HR image) and ``perception_distortion.png`` (PSNR against NIQE,
and against LPIPS when present: one point per model and dataset).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from tqdm import tqdm

from superres.data.catalog import get_dataset_info
from superres.data.datasets import BenchmarkImage, BenchmarkSet
from superres.errors import ImageTooSmallError, SuperresError, UnsupportedScaleError
from superres.evaluation.benchmark import BenchmarkModels
from superres.evaluation.figures import comparison_figure, select_crop
from superres.evaluation.protocol import prepare_network, set_mean, super_resolve
from superres.evaluation.report_document import (
    HR_ROW,
    PLOT_FILE,
    CropPanel,
    Report,
    ReportImage,
    ReportRow,
    figure_file,
    figure_files,
    format_report_markdown,
    has_plot,
    left_out,
    perception_distortion_plot,
)
from superres.io.files import atomic_write, atomic_write_text, current_umask, make_output_folder
from superres.metrics.fidelity import ms_ssim, psnr, rmse, ssim
from superres.metrics.fidelity_inputs import FidelityOptions
from superres.metrics.table import REPORT_METRICS, metric_spec
from superres.models import Bicubic

logger = logging.getLogger(__name__)

#: The report's metric names in column order, with their direction (True: higher is better): a
#: view of :data:`superres.metrics.table.METRIC_TABLE`.
METRICS: dict[str, bool] = {name: metric_spec(name).higher_better for name in REPORT_METRICS}

#: ``(sr, hr) -> distance`` on float ``(1, 3, H, W)`` RGB in [0, 1], border already cropped.
PairMetric = Callable[[torch.Tensor, torch.Tensor], float]
#: ``image -> score`` on float ``(1, 3, H, W)`` RGB in [0, 1]; ``crop_border`` applied inside.
NoReferenceMetric = Callable[[torch.Tensor, int], float]
_Metric = TypeVar("_Metric", PairMetric, NoReferenceMetric)


class ReportOutputError(SuperresError):
    """The report's output folder cannot be used."""


def _mean(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return set_mean(finite) if finite else None


def _crop(image: torch.Tensor, border: int) -> torch.Tensor:
    return image[..., border : image.shape[-2] - border, border : image.shape[-1] - border]


def default_lpips(
    root: str | os.PathLike[str] | None, net: str = "squeeze", *, download: bool = False
) -> PairMetric:
    """LPIPS v0.1, its heads and ImageNet trunk the assets of :mod:`superres.assets`.

    Raises:
        SuperresError: the trunk or head weights are not here (the message names the file).
    """
    from superres.metrics.lpips import LPIPS

    module = LPIPS(net=net, data_root=root, download=download)

    def score(sr: torch.Tensor, hr: torch.Tensor) -> float:
        with torch.inference_mode():
            return float(module(sr.float(), hr.float())[0])

    return score


def default_niqe(
    root: str | os.PathLike[str] | None, *, download: bool = False
) -> NoReferenceMetric:
    """NIQE with the standard pristine parameters (the asset ``niqe/pristine``).

    Raises:
        SuperresError: the parameter file is not here (the message names the file).
    """
    from superres.metrics.niqe import load_niqe_params, niqe

    # Loaded now: a missing file fails before the first model ran.
    params = load_niqe_params(data_root=root, download=download)

    def score(image: torch.Tensor, border: int) -> float:
        return float(niqe(image, crop_border=border, params=params)[0])

    return score


def build_report(
    models: Sequence[str],
    datasets: Sequence[str],
    *,
    scale: int = 4,
    weights: Sequence[str | os.PathLike[str]] = (),
    root: str | os.PathLike[str] | None = None,
    device: torch.device | None = None,
    niqe_metric: NoReferenceMetric | bool | None = True,
    lpips_metric: PairMetric | bool | None = True,
    crops: int = 3,
    crop_size: int = 96,
    seed: int = 0,
    progress: bool = True,
    fused: bool = True,
    download: bool = False,
    allow_modified: bool = False,
) -> Report:
    """Score every model on every dataset with every available metric and keep crops.

    Args:
        models: registry or catalog names (``bicubic``, ``srgan-x4``, ...), one row each.
        weights: weights files, each a row named by its file stem.
        scale: the upscaling factor; every model must support it.
        niqe_metric, lpips_metric: ``True``: the default (:func:`default_niqe`,
            :func:`default_lpips`), left out with a note when its files are unavailable;
            ``False``/``None``: left out; or a callable used as given.
        crops: number of crop figures, drawn over the datasets in turn with ``seed``.
        crop_size: side of the zoomed region in HR pixels.
        fused: on the CPU, run the networks on the fused float32 path (as ``superres eval``;
            see :func:`superres.evaluation.benchmark.run_benchmark`).
        download: let the default NIQE and LPIPS download their files when they are not here.
        allow_modified: score benchmark sets whose files differ from the catalog's (see
            :class:`~superres.data.datasets.BenchmarkSet`); by default that is an error.

    Raises:
        UnknownModelError, UnknownDatasetError, DatasetNotFoundError, UnsupportedScaleError:
            checked before any image is processed.
        SuperresError: ``crops`` below 0 or ``crop_size`` below 1 (also before any image).
    """
    _check_crop_args(crops, crop_size)
    device = device or torch.device("cpu")
    rows = BenchmarkModels(models, weights)
    built = _build_networks(rows, scale, device, fused=fused)
    sets = [BenchmarkSet(d, scale, root=root, allow_modified=allow_modified) for d in datasets]
    notes: list[str] = []
    niqe_fn = _optional_metric(
        niqe_metric, "NIQE", lambda: default_niqe(root, download=download), notes
    )
    lpips_fn = _optional_metric(
        lpips_metric, "LPIPS", lambda: default_lpips(root, download=download), notes
    )
    chosen = _choose_crops(sets, crops, seed)
    score = _Scorer(scale=scale, device=device, niqe=niqe_fn, lpips=lpips_fn)
    total = sum(len(b) for b in sets) * len(built)
    with tqdm(total=total, desc="report", unit="img", disable=not progress or None) as bar:
        scored = [_score_dataset(bench, built, score, chosen, bar) for bench in sets]
    left_out = {name for name, fn in (("niqe", niqe_fn), ("lpips", lpips_fn)) if fn is None}
    metrics = [name for name in REPORT_METRICS if name not in left_out]
    return Report(
        models=list(rows.labels),
        datasets=[b.info.name for b in sets],
        scale=scale,
        metrics=metrics,
        notes=notes,
        rows=[row for d in scored for row in d.rows],
        per_image=[image for d in scored for image in d.per_image],
        crops=[panel for d in scored for panel in d.crops],
        crops_asked=crops,
    )


def _check_crop_args(crops: int, crop_size: int) -> None:
    if isinstance(crops, bool) or not isinstance(crops, int) or crops < 0:
        raise SuperresError(f"crops must be a whole number >= 0 (0: no figures), got {crops!r}")
    if isinstance(crop_size, bool) or not isinstance(crop_size, int) or crop_size < 1:
        raise SuperresError(
            f"crop_size must be a whole number of HR pixels >= 1, got {crop_size!r}"
        )


def _build_networks(
    rows: BenchmarkModels, scale: int, device: torch.device, *, fused: bool
) -> dict[str, nn.Module]:
    """Every row's network at ``scale``, ready to run on ``device``, in row order."""
    rows.check_scales([scale])
    built: dict[str, nn.Module] = {}
    for label in rows.labels:
        model = rows(label, scale)
        if model is None:  # check_scales guarantees this cannot happen; keep pyright honest
            raise UnsupportedScaleError(f"model {label!r} does not run at x{scale}")
        built[label] = prepare_network(model, device, fused=fused)
    return built


def _optional_metric(
    wanted: _Metric | bool | None, name: str, default: Callable[[], _Metric], notes: list[str]
) -> _Metric | None:
    """The metric to use (see :func:`build_report`); why it is left out is added to ``notes``."""
    if wanted is True:
        try:
            return default()
        except SuperresError as exc:
            notes.append(f"{name} left out: {exc}")
            return None
    if wanted is False or wanted is None:
        flag = f"--no-{name.lower()}, {name.lower()}_metric=False"
        notes.append(f"{name} left out: not asked for ({flag})")
        return None
    return wanted


def _choose_crops(sets: Sequence[BenchmarkSet], crops: int, seed: int) -> set[tuple[str, int]]:
    """``(dataset, index)`` of the crop figures' images: drawn with ``seed``, the sets in turn."""
    rng = random.Random(seed)
    chosen: set[tuple[str, int]] = set()
    order = [list(range(len(b))) for b in sets]
    for indices in order:
        rng.shuffle(indices)
    for k in range(min(crops, sum(len(b) for b in sets))):
        i = k % len(sets)
        while not order[i]:
            i = (i + 1) % len(sets)
        chosen.add((sets[i].info.name, order[i].pop()))
    return chosen


@dataclass(frozen=True)
class _Scorer:
    """Runs a network on one LR image and scores its 8-bit output against the HR image."""

    scale: int
    device: torch.device
    niqe: NoReferenceMetric | None
    lpips: PairMetric | None

    def __call__(
        self, model: nn.Module, pair: BenchmarkImage
    ) -> tuple[torch.Tensor, dict[str, float | None]]:
        """The output and its scores (metric name -> value, ``None``: not measured)."""
        sr = super_resolve(model, pair.lq, self.scale, device=self.device)[None]
        hr = pair.hr.to(torch.float64)[None]
        kwargs: FidelityOptions = {"crop_border": self.scale, "y_channel": True}
        out: dict[str, float | None] = {
            "psnr_y": float(psnr(sr, hr, **kwargs)[0]),
            "ssim_y": float(ssim(sr, hr, **kwargs)[0]),
            "rmse_y": float(rmse(sr, hr, **kwargs)[0]),
        }
        try:
            out["ms_ssim_y"] = float(ms_ssim(sr, hr, **kwargs)[0])
        except ImageTooSmallError:  # under 161 px after cropping: no five-scale MS-SSIM
            out["ms_ssim_y"] = None
        if self.niqe is not None:
            out["niqe"] = self.niqe(sr, self.scale)
        if self.lpips is not None:
            out["lpips"] = self.lpips(_crop(sr, self.scale), _crop(hr, self.scale))
        return sr[0], out


@dataclass(frozen=True)
class _DatasetScores:
    rows: list[ReportRow]
    per_image: list[ReportImage]
    crops: list[CropPanel]


def _score_dataset(
    bench: BenchmarkSet,
    built: dict[str, nn.Module],
    score: _Scorer,
    chosen: set[tuple[str, int]],
    bar: tqdm,
) -> _DatasetScores:
    """Every model on every image of ``bench``: per-image scores, set means, crop panels."""
    dataset, scale = bench.info.name, score.scale
    per_model: dict[str, list[ReportImage]] = {m: [] for m in [HR_ROW, *built]}
    per_image: list[ReportImage] = []
    crops: list[CropPanel] = []
    for index, pair in enumerate(bench):
        if score.niqe is not None:
            niqe = score.niqe(pair.hr.to(torch.float64)[None], scale)
            per_model[HR_ROW].append(ReportImage(HR_ROW, dataset, scale, pair.name, niqe=niqe))
        keep = (dataset, index) in chosen
        outputs: dict[str, torch.Tensor] = {}
        lines: dict[str, str] = {}
        if keep and "bicubic" not in built:  # the papers' anchor is in every figure
            outputs["bicubic"] = super_resolve(Bicubic(scale=scale), pair.lq, scale).float()
        for name, model in built.items():
            bar.set_postfix_str(f"{name} {dataset} {pair.name}", refresh=False)
            sr, scores = score(model, pair)
            image = ReportImage(name, dataset, scale, pair.name, **scores)
            per_model[name].append(image)
            per_image.append(image)
            if keep:
                outputs[name] = sr.to(torch.float32)
                lines[name] = _panel_line(image)
            bar.update(1)
        if keep:
            crops.append(CropPanel(dataset, pair.name, pair.hr.to(torch.float32), outputs, lines))
    if score.niqe is not None:
        per_image.extend(per_model[HR_ROW])
    rows = []
    for name in ([HR_ROW] if score.niqe is not None else []) + list(built):
        images = per_model[name]
        means = {m: _mean([getattr(i, m) for i in images]) for m in REPORT_METRICS}
        rows.append(ReportRow(name, dataset, scale, len(images), **means))
    return _DatasetScores(rows=rows, per_image=per_image, crops=crops)


def _panel_line(image: ReportImage) -> str:
    parts = [f"{image.psnr_y:.2f} dB"]
    if image.niqe is not None:
        parts.append(f"NIQE {image.niqe:.2f}")
    if image.lpips is not None:
        parts.append(f"LPIPS {image.lpips:.3f}")
    return ", ".join(parts)


def _write_csv(path: Path, rows: Sequence[object], cls: type) -> None:
    import csv

    with atomic_write(path, text=True) as f:
        writer = csv.DictWriter(f, fieldnames=list(cls.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)  # type: ignore[call-overload]


def write_report(report: Report, out: str | os.PathLike[str], *, crop_size: int = 96) -> list[Path]:
    """Write every file of the report into the new folder ``out``; returns the paths written.

    The files are written into a temporary folder beside ``out``, which is renamed to ``out``
    only when all of them exist: an interrupted run leaves no half report behind.

    Raises:
        ReportOutputError: ``out`` exists and is not an empty folder.
        OutputPathError: a file where ``out`` or one of its parents should be (missing parents
            are made).
    """
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ReportOutputError(
            f"--out {str(target)!r} already exists and is not an empty folder; choose a new "
            "folder or delete this one first (reports are never merged into old files)"
        )
    make_output_folder(target.parent, "--out")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        atomic_write_text(tmp / "report.md", format_report_markdown(report))
        atomic_write_text(tmp / "report.json", json.dumps(report.to_dict(), indent=2) + "\n")
        _write_csv(tmp / "scores.csv", report.rows, ReportRow)
        _write_csv(tmp / "per_image.csv", report.per_image, ReportImage)
        figures = tmp / "figures"
        figures.mkdir()
        for panel in report.crops:
            size = min(crop_size, *panel.hr.shape[-2:])
            top, left = select_crop(panel.hr, size)
            title = f"{get_dataset_info(panel.dataset).label} {panel.image}, x{report.scale}"
            comparison_figure(
                panel.hr,
                panel.outputs,
                crop=(top, left, size),
                path=tmp / figure_file(panel),
                title=title,
                scores=panel.scores,
            )
        if has_plot(report):
            perception_distortion_plot(report, tmp / PLOT_FILE)
        if target.exists():
            target.rmdir()
        # mkdtemp creates the folder 0700; give it the permissions a plain mkdir() would.
        for folder in (tmp, figures):
            folder.chmod(0o777 & ~current_umask())
        tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(p for p in target.rglob("*") if p.is_file())


__all__ = [
    "HR_ROW",
    "METRICS",
    "PLOT_FILE",
    "CropPanel",
    "Report",
    "ReportImage",
    "ReportOutputError",
    "ReportRow",
    "build_report",
    "default_lpips",
    "default_niqe",
    "figure_file",
    "figure_files",
    "format_report_markdown",
    "left_out",
    "perception_distortion_plot",
    "write_report",
]
