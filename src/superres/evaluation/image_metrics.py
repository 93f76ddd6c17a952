"""Every metric that applies to one image, or to an image and its reference: ``superres metrics``.

Full-reference metrics (an image and its reference of the same size): MSE, RMSE, PSNR, SSIM,
MS-SSIM on BT.601 Y in float on the 0-255 scale (the field's convention; ``y_channel=False``
scores RGB on the 0-255 scale instead) and LPIPS v0.1 on RGB in [0, 1]. No-reference metrics
(the image alone): NIQE on the 8-bit Y, and Ma (NRQM) with the Perceptual Index when their model
file is available. A metric whose files are unavailable or that does not apply (MS-SSIM and NIQE
need a minimum size) is reported as skipped with the reason, never as a number.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from superres.data.catalog import list_image_files
from superres.errors import ConfigError, ImageTooSmallError, InvalidImageError, SuperresError
from superres.io.image import read_image
from superres.metrics.fidelity import ms_ssim, mse, psnr, rmse, ssim
from superres.metrics.fidelity_inputs import FidelityOptions
from superres.metrics.niqe import NiqeParams, load_niqe_params, niqe
from superres.metrics.table import IMAGE_METRICS, metric_spec

#: Metric name -> (unit or range, True when higher is better), in column order: a view of
#: :data:`superres.metrics.table.METRIC_TABLE`.
METRIC_INFO: dict[str, tuple[str, bool]] = {
    name: (metric_spec(name).unit, metric_spec(name).higher_better) for name in IMAGE_METRICS
}


#: ``NAME_x4`` / ``NAME_x3.5``: the scale suffix ``superres upscale`` gives its outputs.
_SCALE_SUFFIX = re.compile(r"(.+)_x\d+(?:\.\d+)?")


class MetricsInputError(SuperresError):
    """The images given to ``superres metrics`` cannot be scored together."""


@dataclass
class ImageMetrics:
    """The scores of one image (against its reference when it has one)."""

    image: str
    reference: str | None
    scores: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class MetricOptions:
    """How to score: border, colour space and where the metrics' model files are."""

    crop_border: int = 0
    y_channel: bool = True
    niqe_params: NiqeParams | None = None
    niqe_error: str | None = None
    lpips_net: str = "squeeze"
    lpips: Callable[[torch.Tensor, torch.Tensor], float] | None = None
    lpips_error: str | None = None
    ma: Callable[[torch.Tensor, int], float] | None = None
    ma_error: str | None = None


def prepare_options(
    *,
    crop_border: int = 0,
    y_channel: bool = True,
    niqe_params: str | os.PathLike[str] | None = None,
    lpips_net: str = "squeeze",
    lpips_trunk: str | os.PathLike[str] | None = None,
    ma_model: str | os.PathLike[str] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    full_reference: bool = True,
    download: bool = False,
) -> MetricOptions:
    """Resolve the metrics' model files once; an unavailable one becomes a skip reason.

    The files are assets of :mod:`superres.assets`; nothing is downloaded unless ``download``.
    """
    if crop_border < 0:
        raise ConfigError(
            f"--crop-border must be >= 0 (crop_border={crop_border}); 0 scores the whole image"
        )
    options = MetricOptions(crop_border=crop_border, y_channel=y_channel, lpips_net=lpips_net)
    try:
        options.niqe_params = load_niqe_params(niqe_params, data_root=data_root, download=download)
    except SuperresError as exc:
        options.niqe_error = str(exc)
    if full_reference:
        try:
            from superres.metrics.lpips import LPIPS

            module = LPIPS(
                net=lpips_net, trunk_weights=lpips_trunk, data_root=data_root, download=download
            )

            def score(a: torch.Tensor, b: torch.Tensor) -> float:
                with torch.inference_mode():
                    return float(module(a.float(), b.float())[0])

            options.lpips = score
        except SuperresError as exc:
            options.lpips_error = str(exc)
    from superres.metrics.nrqm import load_ma_model, ma_score

    try:
        trained = load_ma_model(ma_model, data_root=data_root)  # once, not per image
    except SuperresError as exc:
        options.ma_error = str(exc)
    else:

        def ma(image: torch.Tensor, border: int) -> float:
            return float(ma_score(image, crop_border=border, model=trained)[0])

        options.ma = ma
    return options


def _read(path: Path) -> torch.Tensor:
    return read_image(path).rgb.to(torch.float64)[None]


def score_pair(
    image: torch.Tensor,
    reference: torch.Tensor | None,
    options: MetricOptions,
    *,
    names: tuple[str, str | None] = ("image", None),
) -> ImageMetrics:
    """Every applicable metric of ``image`` ((1, 3, H, W) float in [0, 1]), vs ``reference``."""
    result = ImageMetrics(names[0], names[1])
    border = options.crop_border
    if reference is not None:
        if image.shape[-2:] != reference.shape[-2:]:
            raise MetricsInputError(
                f"{names[0]} is {tuple(image.shape[-2:])} (H, W) but its reference {names[1]} is "
                f"{tuple(reference.shape[-2:])}; full-reference metrics need images of one size "
                "(mod-crop the reference to the scale, or compare the right files)"
            )
        # Y in [0, 1] (scored on 0-255 by y_channel), or RGB scaled to 0-255 here.
        kwargs = FidelityOptions(
            crop_border=border,
            y_channel=options.y_channel,
            data_range=None if options.y_channel else 255.0,
        )
        a, b = (image, reference) if options.y_channel else (image * 255.0, reference * 255.0)
        result.scores["mse"] = float(mse(a, b, **kwargs)[0])
        result.scores["rmse"] = float(rmse(a, b, **kwargs)[0])
        result.scores["psnr"] = float(psnr(a, b, **kwargs)[0])
        for name, metric in (("ssim", ssim), ("ms_ssim", ms_ssim)):
            try:
                result.scores[name] = float(metric(a, b, **kwargs)[0])
            except ImageTooSmallError as exc:  # too small for the window (or MS-SSIM's scales)
                result.skipped[name] = _reason(name, exc).split(".")[0]
        if options.lpips is not None:
            h, w = image.shape[-2:]
            crop = (..., slice(border, h - border), slice(border, w - border))
            result.scores["lpips"] = options.lpips(image[crop], reference[crop])
        else:
            result.skipped["lpips"] = options.lpips_error or "not available"
    if options.niqe_params is None:
        result.skipped["niqe"] = options.niqe_error or "not available"
    else:
        try:
            result.scores["niqe"] = float(
                niqe(image, crop_border=border, params=options.niqe_params)[0]
            )
        except ImageTooSmallError as exc:
            result.skipped["niqe"] = _reason("niqe", exc)
    if options.ma is not None:
        result.scores["ma"] = options.ma(image, border)
        if "niqe" in result.scores:
            result.scores["pi"] = ((10.0 - result.scores["ma"]) + result.scores["niqe"]) / 2.0
    else:
        result.skipped["ma"] = options.ma_error or "not available"
        result.skipped["pi"] = "needs Ma (see above)"
    return result


def _reason(metric: str, exc: Exception) -> str:
    """An exception's message as a skip reason, without the metric's own name in front."""
    text = str(exc)
    return text.removeprefix(f"{metric}: ")


def pair_paths(image: Path, reference: Path | None) -> list[tuple[Path, Path | None]]:
    """Files to score: one file (and its reference), or two folders matched by file stem.

    In folders, ``NAME_x4`` (any ``_x{N}`` suffix, as ``superres upscale`` names its outputs)
    also matches the reference ``NAME`` when there is no reference of its own stem.

    Raises:
        MetricsInputError: a missing path, a file beside a folder, or folders with no common stem.
    """
    for path in (image, reference):
        if path is not None and not path.exists():
            raise MetricsInputError(f"{str(path)!r} does not exist; give an image file or folder")
        if path is not None and not (path.is_file() or path.is_dir()):
            raise MetricsInputError(
                f"{str(path)!r} is neither a regular file nor a folder (a FIFO, device or "
                "socket); give an image file or folder"
            )
    if image.is_file():
        if reference is not None and not reference.is_file():
            raise MetricsInputError(
                f"{str(image)!r} is a file but the reference {str(reference)!r} is not; give two "
                "files or two folders"
            )
        return [(image, reference)]
    files = list_image_files(image)
    if not files:
        raise MetricsInputError(f"folder {str(image)!r} holds no images")
    if reference is None:
        return [(f, None) for f in files]
    if not reference.is_dir():
        raise MetricsInputError(
            f"{str(image)!r} is a folder but the reference {str(reference)!r} is not; give two "
            "folders (files are matched by name) or two files"
        )
    return _match_by_name(files, list_image_files(reference), image, reference)


def _match_by_name(
    files: Sequence[Path], references: Sequence[Path], image: Path, reference: Path
) -> list[tuple[Path, Path | None]]:
    """Each file with the reference of its stem, or of its stem without an ``_x{N}`` suffix.

    ``baby_x4.png`` (what ``superres upscale`` writes) pairs with ``baby.png`` when the reference
    folder holds no ``baby_x4``; two files reaching one reference are an error naming both.
    """
    by_stem = {f.stem: f for f in references}
    pairs: list[tuple[Path, Path | None]] = []
    taken: dict[Path, Path] = {}
    missing: list[str] = []
    for f in files:
        match = by_stem.get(f.stem)
        if match is None:
            bare = _SCALE_SUFFIX.fullmatch(f.stem)
            match = by_stem.get(bare.group(1)) if bare else None
        if match is None:
            missing.append(f.name)
            continue
        if match in taken:
            raise MetricsInputError(
                f"{str(taken[match])!r} and {str(f)!r} both match the reference {str(match)!r}; "
                "keep one of them in the folder (or score them separately)"
            )
        taken[match] = f
        pairs.append((f, match))
    if not pairs:
        raise MetricsInputError(
            f"no file of {str(image)!r} has a namesake in {str(reference)!r}; files are matched "
            "by name without extension (baby.png <-> baby.bmp), and baby_x4.png (superres "
            "upscale's naming, any _x{N} suffix) <-> baby.png"
        )
    if missing:
        raise MetricsInputError(
            f"{len(missing)} file(s) of {str(image)!r} have no reference in {str(reference)!r} "
            f"(e.g. {sorted(missing)[0]}); add them or score a folder holding only matched files"
        )
    return pairs


def score_pairs(
    pairs: Sequence[tuple[Path, Path | None]],
    options: MetricOptions,
    *,
    failures: list[tuple[str, str]] | None = None,
) -> list[ImageMetrics]:
    """Score the files of :func:`pair_paths` (each against its reference, if any).

    With a ``failures`` list, a file that cannot be scored (unreadable, a size that does not match
    its reference, ...) is appended to it as ``(path, message)`` and the others are still scored,
    as ``superres upscale`` goes on past a bad image; without one, the first such file raises.
    """
    results = []
    for a, b in pairs:
        try:
            results.append(
                score_pair(
                    _read(a),
                    None if b is None else _read(b),
                    options,
                    names=(str(a), None if b is None else str(b)),
                )
            )
        except SuperresError as exc:
            error = MetricsInputError(f"{a}: {exc}") if isinstance(exc, InvalidImageError) else exc
            if failures is None:
                raise error from exc
            failures.append((str(a), str(error)))
    return results


def mean_scores(results: Sequence[ImageMetrics]) -> dict[str, float]:
    """Mean of each metric over the images that have it (finite values only)."""
    names = list(dict.fromkeys(m for r in results for m in r.scores))
    out = {}
    for name in names:
        values = [r.scores[name] for r in results if name in r.scores]
        finite = [v for v in values if math.isfinite(v)]
        out[name] = math.fsum(finite) / len(finite) if finite else math.inf
    return out


__all__ = [
    "METRIC_INFO",
    "ImageMetrics",
    "MetricOptions",
    "MetricsInputError",
    "mean_scores",
    "pair_paths",
    "prepare_options",
    "score_pair",
    "score_pairs",
]
