"""Models x datasets x scales -> the paper-style PSNR/SSIM table.

Every image is scored by :mod:`superres.evaluation.protocol` (the ``default`` and ``legacy``
protocols are described there and in README "Evaluation protocols"). Scores are means over the
images of a set; per-image scores are kept.
"""

from __future__ import annotations

import csv
import itertools
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from superres.data.catalog import get_dataset_info
from superres.data.datasets import BenchmarkSet
from superres.errors import SuperresError, UnknownModelError, UnsupportedScaleError
from superres.evaluation.protocol import (
    PROTOCOLS,
    Protocol,
    evaluate_image,
    prepare_network,
    set_mean,
)
from superres.evaluation.published import published_score
from superres.io.files import (
    atomic_write,
    atomic_write_text,
    check_output_folder,
    make_output_folder,
)
from superres.io.image import write_image
from superres.models import MODELS
from superres.models.catalog import WEIGHTS
from superres.models.descriptor import describe_network
from superres.models.weights import load_model
from superres.models.weights_file import load_weights

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageScore:
    """PSNR-Y (dB) and SSIM-Y of one model on one image."""

    model: str
    dataset: str
    scale: int
    image: str
    psnr_y: float
    ssim_y: float


@dataclass(frozen=True)
class SetScore:
    """Mean PSNR-Y (dB) and SSIM-Y of one model on one dataset at one scale.

    ``modified``: the set's HR folder differs from the official release (scored only with
    ``allow_modified``); ``images`` is then the count actually scored. ``limited``: only the
    first ``images`` files (sorted by name) were scored (``limit``). ``published_*``: the
    published figure set beside this row (:func:`~superres.evaluation.published.published_score`),
    ``None`` where there is none.
    """

    model: str
    dataset: str
    scale: int
    psnr_y: float
    ssim_y: float
    images: int
    modified: bool = False
    limited: bool = False
    published_row: str | None = None
    published_psnr_y: float | None = None
    published_ssim_y: float | None = None


@dataclass(frozen=True)
class BenchmarkReport:
    """All scores of one evaluation run; ``limit``: at most this many images per set."""

    protocol: str
    results: list[SetScore] = field(default_factory=list)
    per_image: list[ImageScore] = field(default_factory=list)
    limit: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The JSON document: ``{"protocol", "limit", "results": [...], "per_image": [...]}``."""
        return {
            "protocol": self.protocol,
            "limit": self.limit,
            "results": [asdict(r) for r in self.results],
            "per_image": [asdict(r) for r in self.per_image],
        }


ModelFactory = Callable[[str, int], nn.Module | None]
"""``(model, scale) -> nn.Module``, or ``None`` when that model has no row at that scale."""


def default_model_factory(name: str, scale: int) -> nn.Module:
    """The model ``name`` at ``scale`` via :func:`superres.models.weights.load_model`.

    A pretrained catalog name loads its weights; a registry name builds a parameter-free model
    (``bicubic``); a learned architecture without weights is refused (it would score random
    weights).
    """
    return load_model(name, scale=scale)


class BenchmarkModels:
    """The rows of a benchmark: model names and weights files, usable as ``model_factory``.

    Args:
        names: registry names (parameter-free models such as ``bicubic``, at every scale) and
            pretrained catalog names (at their own scale).
        weights: weights files (see :func:`superres.models.weights.load_weights`), loaded here,
            before any image is read; each is a row named by its file stem (``srgan_x4.pth`` ->
            ``srgan_x4``; the parent folder is prefixed when two stems collide) and runs at the
            file's own scale only.
        map_location: the device the weights are loaded to.

    Example::

        rows = BenchmarkModels(["bicubic"], ["runs/srresnet_x4.safetensors"])
        scales = rows.default_scales()
        rows.check_scales(scales)
        report = run_benchmark(rows.labels, ["set5"], scales, model_factory=rows)
    """

    def __init__(
        self,
        names: Sequence[str] = (),
        weights: Sequence[str | os.PathLike[str]] = (),
        *,
        map_location: str | torch.device = "cpu",
    ) -> None:
        if not names and not weights:
            raise SuperresError("no models to evaluate: give model names and/or weights files")
        self.labels: list[str] = []
        self._map_location = map_location
        self._fixed: dict[str, int | None] = {}
        self._loaded: dict[str, nn.Module] = {}
        self._sources: dict[str, str] = {}
        self._files: set[str] = set()  # the rows given as weights files, not names
        for name in names:
            if name in WEIGHTS:  # pretrained: loaded now, runs at its own scale
                self._loaded[name] = load_model(name, map_location=map_location)
                self._fixed[name] = WEIGHTS.get(name).scale
            elif name in MODELS:  # built per scale by load_model
                self._fixed[name] = None
            else:
                raise UnknownModelError(name, [*MODELS, *WEIGHTS])
            self._add(name, name)
        for path in weights:
            model = load_weights(path, map_location=map_location)
            label = self._label_for(Path(path))
            self._loaded[label] = model
            self._fixed[label] = describe_network(model).scale
            self._files.add(label)
            self._add(label, str(path))

    def _add(self, label: str, source: str) -> None:
        self.labels.append(label)
        self._sources[label] = source

    def _label_for(self, path: Path) -> str:
        for label in (path.stem, f"{path.parent.name}/{path.stem}", str(path)):
            if label not in self._sources:
                return label
        raise SuperresError(f"weights file {str(path)!r} is given twice")

    def default_scales(self) -> list[int]:
        """The scales of the weights files and catalog models, or ``[4]`` when none has one."""
        fixed = sorted({s for s in self._fixed.values() if s is not None})
        return fixed or [4]

    def check_scales(self, scales: Sequence[int]) -> None:
        """Raise :class:`UnsupportedScaleError` for a row that would run at none of ``scales``."""
        for label, fixed in self._fixed.items():
            if fixed is not None and fixed not in scales:
                source = self._sources[label]
                asked = ", ".join(f"x{s}" for s in scales)
                if label in self._files:
                    raise UnsupportedScaleError(
                        f"weights file {source!r} upscales x{fixed}, but the scales asked for are "
                        f"{asked}; add {fixed} to --scales, or leave --scales out to use the "
                        "weights' own scales"
                    )
                raise UnsupportedScaleError(
                    f"model {source!r} has no {asked} (it upscales x{fixed} only); add {fixed} "
                    f"to --scales, leave --scales out, or pick a model of that scale "
                    "(`superres models` lists them)"
                )

    def __call__(self, label: str, scale: int) -> nn.Module | None:
        fixed = self._fixed.get(label)
        if fixed is not None and fixed != scale:
            return None
        if label in self._loaded:
            return self._loaded[label]
        return load_model(label, scale=scale, map_location=self._map_location)


def _build_rows(
    models: Sequence[str],
    scales: Sequence[int],
    model_factory: ModelFactory,
    *,
    device: torch.device,
    fused: bool,
) -> dict[tuple[str, int], nn.Module]:
    """Every ``(model, scale)`` row's network, ready to run; a model with no row is an error."""
    built: dict[tuple[str, int], nn.Module] = {}
    for name in models:
        for s in scales:
            model = model_factory(name, s)
            if model is not None:
                built[(name, s)] = prepare_network(model, device, fused=fused)
        if not any((name, s) in built for s in scales):
            raise UnsupportedScaleError(
                f"model {name!r} runs at none of the scales {', '.join(map(str, scales))}"
            )
    return built


def run_benchmark(
    models: Sequence[str],
    datasets: Sequence[str],
    scales: Sequence[int],
    *,
    root: str | os.PathLike[str] | None = None,
    protocol: Protocol = "default",
    device: torch.device | None = None,
    model_factory: ModelFactory = default_model_factory,
    progress: bool = True,
    fused: bool = True,
    allow_modified: bool = False,
    limit: int | None = None,
    save_images: str | os.PathLike[str] | None = None,
) -> BenchmarkReport:
    """Evaluate every model on every dataset at every scale.

    Everything that can be checked up front is checked before any work (unknown models and
    datasets, missing data, unsupported scales, unreadable weights), so a long run never dies half
    way on a typo. Each HR/LR pair is loaded once and shared by all models.

    Args:
        models: row names, passed to ``model_factory``.
        model_factory: ``(name, scale) -> nn.Module``; :func:`default_model_factory` takes
            registry and catalog names, :class:`BenchmarkModels` also weights files. It may return
            ``None`` for a model that has no row at that scale (weights trained for another
            scale); a model with no row at any scale is an error.
        fused: on the CPU, run each network as :func:`superres.inference.fast.fast_network`
            rewrites it in float32 (the exact path of ``superres upscale --precision fp32``:
            outputs equal to the module's within 1e-5, so scores agree to about 1e-4 dB, at a
            fraction of the time); ``False`` runs the modules as they are.
        allow_modified: score a set whose HR folder differs from the catalog's release (another
            image count or other names); its results say ``modified`` and the table shows the
            count. By default such a set is a :class:`~superres.errors.DatasetModifiedError`,
            raised before any work.
        limit: score only the first ``limit`` images of each set, sorted by file name (the
            table and the results say so); ``None``: all of them.
        save_images: a folder to write every scored output into, as
            :func:`output_image_path` names them (created with its subfolders).

    Datasets are catalog names or folders of HR images
    (:func:`~superres.data.catalog.is_folder_dataset`).

    Returns:
        A :class:`BenchmarkReport` with per-set means and per-image scores.
    """
    if protocol not in PROTOCOLS:
        raise SuperresError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SuperresError(f"limit must be a whole number >= 1 (images per set), got {limit!r}")
    if save_images is not None:
        check_output_folder(save_images, "--save-images")  # made as the first image is written
    device = device or torch.device("cpu")
    # Models first: the factory raises for unknown names, unsupported scales and bad weights.
    built = _build_rows(models, scales, model_factory, device=device, fused=fused)
    sets = [
        (BenchmarkSet(d, s, root=root, allow_modified=allow_modified), s)
        for d in datasets
        for s in scales
    ]

    report = BenchmarkReport(protocol=protocol, limit=limit)
    total = sum(
        min(len(bs), limit or len(bs)) * sum((m, s) in built for m in models) for bs, s in sets
    )
    with tqdm(total=total, desc="eval", unit="img", disable=not progress or None) as bar:
        for bench, s in sets:
            _score_set(
                report,
                bench,
                s,
                built,
                protocol=protocol,
                device=device,
                bar=bar,
                save_images=_as_path(save_images),
            )
    return report


def _as_path(path: str | os.PathLike[str] | None) -> Path | None:
    return None if path is None else Path(path).expanduser()


def _score_set(
    report: BenchmarkReport,
    bench: BenchmarkSet,
    scale: int,
    built: dict[tuple[str, int], nn.Module],
    *,
    protocol: Protocol,
    device: torch.device,
    bar: tqdm,
    save_images: Path | None,
) -> None:
    """Score every row that runs at ``scale`` on ``bench`` (its first ``report.limit`` images);
    append the per-image and per-set scores to ``report``; write the outputs if asked."""
    dataset = bench.info.name
    present = [m for m, s in built if s == scale]
    scores: dict[str, list[tuple[float, float]]] = {m: [] for m in present}
    for pair in itertools.islice(bench, report.limit):
        for name in present:
            bar.set_postfix_str(f"{name} {dataset} x{scale} {pair.name}", refresh=False)
            scored = evaluate_image(
                built[(name, scale)], pair, scale, protocol=protocol, device=device
            )
            scores[name].append((scored.psnr_y, scored.ssim_y))
            report.per_image.append(
                ImageScore(name, dataset, scale, pair.name, scored.psnr_y, scored.ssim_y)
            )
            if save_images is not None:
                _save_output(save_images, name, bench, scale, pair.name, scored.sr)
            bar.update(1)
    for name in present:
        values = scores[name]
        ref = published_score(name, scale, dataset, protocol)
        report.results.append(
            SetScore(
                model=name,
                dataset=dataset,
                scale=scale,
                psnr_y=set_mean([v[0] for v in values]),
                ssim_y=set_mean([v[1] for v in values]),
                images=len(values),
                modified=bench.modified,
                limited=len(values) < len(bench),
                published_row=None if ref is None else ref.row,
                published_psnr_y=None if ref is None else ref.psnr_y,
                published_ssim_y=None if ref is None else ref.ssim_y,
            )
        )


def output_image_path(
    folder: str | os.PathLike[str], model: str, dataset: str, scale: int, image: str
) -> Path:
    """Where ``save_images`` writes one output: ``FOLDER/MODEL/DATASET_xSCALE/IMAGE.png``
    (``DATASET`` the set's folder name, e.g. ``Set5``; a ``/`` in a row name becomes ``_``)."""
    row = model.replace("/", "_").replace(os.sep, "_")
    return Path(folder) / row / f"{get_dataset_info(dataset).label}_x{scale}" / f"{image}.png"


def _save_output(
    folder: Path, model: str, bench: BenchmarkSet, scale: int, image: str, sr: torch.Tensor
) -> None:
    """Write the scored output (8-bit PNG; one channel where the protocol scored Y only)."""
    path = output_image_path(folder, model, bench.info.name, scale, image)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, sr.to(torch.float32), grayscale=sr.shape[0] == 1)


def format_markdown(report: BenchmarkReport, *, digits: tuple[int, int] = (4, 5)) -> str:
    """The paper-style table: a row per model and scale, a ``PSNR / SSIM`` column per dataset."""
    datasets = list(dict.fromkeys(r.dataset for r in report.results))
    rows = list(dict.fromkeys((r.model, r.scale) for r in report.results))
    cell = {(r.model, r.scale, r.dataset): r for r in report.results}
    header = ["Model", "Scale", *(_column(report, d) for d in datasets)]
    lines = [
        f"PSNR (dB) / SSIM on Y, border of `scale` px cropped, protocol: {report.protocol}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * len(datasets)) + "|",
    ]
    if report.limit is not None:
        lines[1:1] = [
            "",
            f"limit {report.limit}: only the first {report.limit} images of each set (sorted by "
            "file name) are scored; the means are not the sets' published figures",
        ]
    p, q = digits
    for model, scale in rows:
        cells = []
        for d in datasets:
            r = cell.get((model, scale, d))
            cells.append("-" if r is None else f"{r.psnr_y:.{p}f} / {r.ssim_y:.{q}f}")
        lines.append("| " + " | ".join([model, f"x{scale}", *cells]) + " |")
    return "\n".join(lines) + "\n"


def _column(report: BenchmarkReport, dataset: str) -> str:
    """A dataset's column title: its folder, and its image count when the set was modified or
    cut short by ``limit``."""
    folder = get_dataset_info(dataset).label
    mine = [r for r in report.results if r.dataset == dataset]
    notes = []
    if any(r.limited for r in mine):
        notes.append(f"first {max(r.images for r in mine)} images")
    elif any(r.modified for r in mine):
        notes.append(f"{mine[0].images} images")
    if any(r.modified for r in mine):
        notes.append("modified")
    return f"{folder} ({', '.join(notes)})" if notes else folder


def format_published(report: BenchmarkReport) -> str:
    """Ours beside the published figures of each row (see ``published.py``): the shipped models'
    counterparts, and under ``legacy`` the papers' bicubic row."""
    lines = [
        f"PSNR-Y (dB) / SSIM-Y: ours, published, difference (protocol: {report.protocol})",
        "",
        "| Model | Scale | Dataset | ours | published | row | difference |",
        "|---|---|---|---:|---:|---|---:|",
    ]
    for r in report.results:
        if r.published_psnr_y is None:
            continue
        ours, theirs = f"{r.psnr_y:.2f}", f"{r.published_psnr_y:.2f}"
        diff = f"{round(r.psnr_y - r.published_psnr_y, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"
        if r.published_ssim_y is not None:
            ours += f" / {r.ssim_y:.4f}"
            theirs += f" / {r.published_ssim_y:.4f}"
            diff += f" / {round(r.ssim_y - r.published_ssim_y, 4) + 0.0:+.4f}"
        lines.append(
            f"| {r.model} | x{r.scale} | {get_dataset_info(r.dataset).label} | {ours} "
            f"| {theirs} | {r.published_row} | {diff} |"
        )
    if len(lines) == 4:
        lines.append("| (no published counterpart for these models) | | | | | | |")
    if report.protocol == "default" and any(r.model == "bicubic" for r in report.results):
        lines += [
            "",
            "bicubic: the papers' bicubic rows were made by the older scripts; run with "
            "--protocol legacy to set them beside ours (README, Evaluation protocols)",
        ]
    if report.limit is not None:
        lines += ["", f"limit {report.limit}: our means cover only the first images of each set"]
    return "\n".join(lines) + "\n"


def write_json(report: BenchmarkReport, path: str | os.PathLike[str]) -> None:
    """Write the report as JSON (atomically; its folder is made if missing)."""
    make_output_folder(Path(path).parent, "--output-json")
    atomic_write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")


def per_image_csv_path(path: str | os.PathLike[str]) -> Path:
    """``results.csv`` -> ``results_per_image.csv``: where the per-image rows go."""
    p = Path(path)
    return p.with_name(f"{p.stem}_per_image{p.suffix or '.csv'}")


def write_csv(report: BenchmarkReport, path: str | os.PathLike[str]) -> Path:
    """Per-set rows to ``path`` and per-image rows beside it (the folder is made if missing);
    returns the per-image file's path."""
    make_output_folder(Path(path).parent, "--output-csv")
    per_image = per_image_csv_path(path)
    for target, rows, cls in (
        (Path(path), report.results, SetScore),
        (per_image, report.per_image, ImageScore),
    ):
        with atomic_write(target, text=True) as f:
            writer = csv.DictWriter(f, fieldnames=list(cls.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(r) for r in rows)
    return per_image
