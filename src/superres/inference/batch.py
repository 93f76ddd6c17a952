"""Upscaling files: the batch loop over planned jobs, and sharding across ``torchrun`` ranks.

Inputs and output names are planned by :mod:`superres.inference.jobs` (its rules, also in
``superres upscale --help``); here:

* **Failures** of single images (unreadable, undecodable, out of memory, unwritable) do not stop a
  batch: the rest is processed, the failures are listed at the end, and the run fails (CLI exit
  code 1). Outputs are written atomically (temporary file + rename, see
  :func:`superres.io.write_image`), so a failed or interrupted image leaves no partial file and
  ``skip_existing=True`` resumes a run where it stopped.
* **torchrun**: with ``WORLD_SIZE > 1`` in the environment the job list is sharded (rank ``r`` of
  ``N`` takes jobs ``r::N``), each rank runs on ``cuda:LOCAL_RANK`` (CPU without CUDA), and
  ``torch.distributed`` (NCCL on GPU, Gloo on CPU) is used only to gather the reports at the end.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from superres.errors import ConfigError, ImageReadError, SuperresError
from superres.inference.jobs import (
    BatchReport,
    InputSet,
    Job,
    Source,
    collect_inputs,
    output_tag,
    plan_jobs,
    shard,
)
from superres.inference.options import UpscaleOptions
from superres.inference.upscaler import Upscaler
from superres.inference.video import check_video_request, is_video_input, upscale_video_to
from superres.io.image import (
    DEFAULT_MAX_PIXELS,
    ImageData,
    ImageMetadata,
    frame_count,
    quantize_image,
    read_image,
    read_text_record,
    write_array,
)
from superres.io.samples import SAMPLE_PREFIX, load_sample
from superres.runtime import DistributedEnv

if TYPE_CHECKING:
    import torch
    from torch import nn

    from superres.models.realism import RealismSpace

__all__ = ["load_network", "run_jobs", "upscale_files"]

logger = logging.getLogger(__name__)

_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
_ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
# Formats whose 8-bit files hold the record of what made them (see superres.io.image_metadata).
_RECORD_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
#: The text key under which outputs record the model, scale and outscale that made them.
RECORD_KEY = "superres"
# How long ranks wait for each other at the end of a sharded run: shards finish at different times.
_DISTRIBUTED_TIMEOUT = datetime.timedelta(hours=24)


# --- running --------------------------------------------------------------------------------------


def _load(source: Source, max_pixels: int | None, upscaler: Upscaler) -> ImageData:
    if source.path is None:
        return load_sample(source.name[len(SAMPLE_PREFIX) :])
    frames = frame_count(source.path)
    if frames > 1:
        raise ImageReadError(
            source.path,
            f"animated ({frames} frames); superres upscale takes still images: extract the "
            f"frames first (e.g. ffmpeg -i {source.path.name} frames/%04d.png) and upscale the "
            "folder",
        )
    # An output that cannot fit in memory is refused from the header, before decoding.
    return read_image(source.path, max_pixels=max_pixels, check_size=upscaler.check_canvas)


def _upscale_one(
    job: Job, upscaler: Upscaler, *, max_pixels: int | None, quality: int, record: str | None
) -> Path:
    """Upscale one job; returns the file written (a PNG where JPEG/BMP cannot hold the alpha)."""
    dst = job.output
    image = _load(job.source, max_pixels, upscaler)
    suffix = dst.suffix.lower()
    if image.alpha is not None and suffix not in _ALPHA_SUFFIXES:
        logger.warning(
            "%s: the input has an alpha channel and %s cannot hold one; written as PNG instead",
            dst,
            suffix,
        )
        dst, suffix = dst.with_suffix(".png"), ".png"
    bit_depth = image.bit_depth
    if bit_depth == 16 and suffix not in _SIXTEEN_BIT_SUFFIXES:
        logger.warning("%s: 16-bit input reduced to 8 bit (%s holds 8 bits)", dst, suffix)
        bit_depth = 8
    result = upscaler(image)
    del image
    metadata = ImageMetadata(
        text={RECORD_KEY: record} if record else {},
        icc_profile=result.icc_profile,
        exif=result.exif,
    )
    # Quantise, then drop the float canvas before encoding: the encoder's buffers come on top of
    # the integer array only, not of the 4-bytes-per-channel canvas.
    pixels = quantize_image(
        result.rgb, alpha=result.alpha, bit_depth=bit_depth, grayscale=result.grayscale
    )
    del result
    dst.parent.mkdir(parents=True, exist_ok=True)  # -o's folder, or a mirrored one below it
    write_array(dst, pixels, quality=quality, metadata=metadata)
    logger.info("wrote %s (%dx%d)", dst, pixels.shape[1], pixels.shape[0])
    return dst


def run_record(model: str, scale: int, outscale: float | None) -> str:
    """The text an output records about the run that made it (JSON: model, scale, outscale)."""
    return json.dumps({"model": model, "scale": scale, "outscale": outscale}, sort_keys=True)


def _keep_existing(output: Path, record: str | None) -> bool:
    """``skip_existing``: keep ``output`` only when this run's model and scale made it.

    A file in a format that holds no record (WebP, BMP) is kept as it is; any other is redone,
    with a line in the log, when its record is missing or names another model or scale.
    """
    if not output.exists():
        return False
    if record is None or output.suffix.lower() not in _RECORD_SUFFIXES:
        return True
    found = read_text_record(output).get(RECORD_KEY)
    if found == record:
        return True
    logger.info(
        "%s exists but was made %s; redoing it (--skip-existing keeps only files made by this "
        "model and scale)",
        output,
        f"by another run ({found})" if found else "without a superres record",
    )
    return False


def _check_max_pixels(max_pixels: int | None) -> None:
    """``max_pixels`` is a positive pixel count, or ``None`` for no limit."""
    if max_pixels is not None and max_pixels < 1:
        raise ConfigError(
            f"max_pixels must be a positive number of pixels or None (no limit), got "
            f"{max_pixels} (command line: --max-pixels must be >= 0, 0 for no limit)"
        )


def run_jobs(
    jobs: Sequence[Job],
    upscaler: Upscaler,
    *,
    skip_existing: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int = 95,
    progress: bool = True,
    record: str | None = None,
) -> BatchReport:
    """Upscale every job; a failing image is logged, recorded and skipped, never fatal.

    ``record`` (:func:`run_record`) is written into each output's metadata; with
    ``skip_existing``, an existing output is kept only when it holds the same record.

    Only :class:`~superres.errors.SuperresError` counts as a per-image failure (unreadable or
    corrupt file, too large, out of memory, unwritable); anything else is a bug and propagates.
    """
    _check_max_pixels(max_pixels)
    report = BatchReport(total=len(jobs))
    bar = tqdm(jobs, desc="upscale", unit="img", disable=not progress or len(jobs) < 2 or None)
    with logging_redirect_tqdm(), bar:
        for job in bar:
            if skip_existing and _keep_existing(job.output, record):
                report.skipped.append(job.output)
                continue
            try:
                written = _upscale_one(
                    job, upscaler, max_pixels=max_pixels, quality=quality, record=record
                )
            except SuperresError as exc:
                if len(jobs) > 1:  # said as it happens; a lone image's failure is the report's
                    logger.error("%s", exc)
                report.failed.append((job.source.name, str(exc)))
            else:
                report.written.append(written)
    if report.skipped:
        logger.info(
            "skipped %d image(s) whose output exists (--skip-existing)", len(report.skipped)
        )
    return report


# --- torchrun -------------------------------------------------------------------------------------


def _gather(env: DistributedEnv, report: BatchReport) -> BatchReport:
    """Every rank's report merged (on every rank), after a barrier; leaves the group."""
    import torch.distributed as dist

    reports: list[BatchReport | None] = [None] * env.world_size
    dist.all_gather_object(reports, report)
    dist.barrier()
    dist.destroy_process_group()
    merged = BatchReport(total=sum(r.total for r in reports if r is not None))
    for r in reports:
        if r is not None:
            merged.merge(r)
    merged.main_process = env.is_main
    return merged


# --- all of it ------------------------------------------------------------------------------------


def _describe(paths: Sequence[Path], limit: int = 5) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def load_network(
    *,
    model: str | None,
    weights: str | Path | None,
    scale: int | None,
    realism: float | None,
    realism_space: RealismSpace | None,
    options: UpscaleOptions,
    denoise: float | None = None,
    denoise_weights: str | Path | None = None,
) -> tuple[nn.Module, str, UpscaleOptions]:
    """The network a command asked for, its label for logs and output records, and ``options``
    with the outscale the shipped default needs: a weights file names its own model; the shipped
    default for ``scale`` (:func:`default_model`) only when neither is given."""
    from superres.models.catalog import default_model
    from superres.models.weights import load_model

    if model is None and weights is None:
        model, scale, outscale = default_model(scale, options.outscale)
        options = replace(options, outscale=outscale)
    net = load_model(
        model,
        weights=weights,
        scale=scale,
        realism=realism,
        realism_space=realism_space,
        denoise=denoise,
        denoise_weights=denoise_weights,
    )
    label = model if model is not None else Path(str(weights)).name
    if realism is not None:
        label += f" (realism {realism:g})"
    if denoise is not None:
        label += f" (denoise {denoise:g})"
    return net, label, options


def upscale_files(
    inputs: Sequence[str],
    *,
    output: str | Path | None = None,
    model: str | None = None,
    weights: str | Path | None = None,
    scale: int | None = None,
    options: UpscaleOptions | None = None,
    realism: float | None = None,
    realism_space: RealismSpace | None = None,
    fmt: str | None = None,
    recursive: bool = False,
    skip_existing: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int = 95,
    suffix: str | None = None,
    denoise: float | None = None,
    denoise_weights: str | Path | None = None,
) -> BatchReport:
    """Expand ``inputs``, build the model, plan every output, then upscale (see the module).

    ``model``: a registered or pretrained name; ``None``, the model ``weights`` describes, else
    the shipped default for ``scale`` (:func:`default_model`; another scale needs an
    ``options.outscale``). Outputs record model, scale and outscale (:func:`run_record`), which
    ``skip_existing`` compares; ``fmt`` and ``suffix`` name them (:func:`plan_jobs`),
    ``quality`` is the JPEG/WebP quality; ``realism``, ``denoise`` as in ``load_model``;
    ``options`` run it (``progress``: image and tile bars, on rank 0 only). Under ``torchrun``
    each rank runs its shard; the report covers all ranks. One video input (``clip.mp4``) goes
    to :mod:`superres.inference.video` (``fmt``, ``recursive`` refused).

    Raises:
        SuperresError: problems found before any image is processed (inputs, model, weights,
            scale, device, outputs). Per-image failures are in ``report.failed`` instead.
    """
    options = UpscaleOptions() if options is None else options
    _check_max_pixels(max_pixels)  # before the model loads
    _check_scale(scale, model, weights, options.outscale)
    env = DistributedEnv.from_env()
    main = env is None or env.rank == 0
    found = _collect(inputs, fmt=fmt, recursive=recursive, suffix=suffix, log=main)
    net, label, options = load_network(
        model=model,
        weights=weights,
        scale=scale,
        realism=realism,
        realism_space=realism_space,
        options=options,
        denoise=denoise,
        denoise_weights=denoise_weights,
    )
    if found is None:  # one video (video.py): its frame bar is the one bar
        return upscale_video_to(
            Path(inputs[0]),
            Upscaler(net, options=replace(options, progress=False)),
            output=output,
            suffix=suffix,
            skip_existing=skip_existing,
            max_pixels=max_pixels,
            progress=options.progress,
        )
    device = env.device(str(options.device)) if env is not None else options.device
    upscaler = Upscaler(
        net, options=replace(options, device=device, progress=options.progress and main)
    )
    if main:
        logger.info("running on %s: %s", upscaler.device, upscaler.execution_path)
        logger.info("model: %s", describe_plan(label, upscaler.scale, options.outscale))
    tag = output_tag(upscaler.scale, options.outscale)
    jobs = plan_jobs(found.sources, output=output, tag=tag, fmt=fmt, suffix=suffix)
    report = run_jobs(
        _this_rank_jobs(env, jobs, upscaler.device),
        upscaler,
        skip_existing=skip_existing,
        max_pixels=max_pixels,
        quality=quality,
        progress=upscaler.options.progress,
        record=run_record(label, upscaler.scale, options.outscale),
    )
    return report if env is None else _gather(env, report)


def _collect(
    inputs: Sequence[str], *, fmt: str | None, recursive: bool, suffix: str | None, log: bool
) -> InputSet | None:
    """The images ``inputs`` name (what was left out logged where ``log``), or ``None`` for one
    video, checked as :mod:`superres.inference.video` asks before the model loads."""
    if is_video_input(inputs):
        check_video_request(inputs, fmt=fmt, recursive=recursive, suffix=suffix)
        return None
    found = collect_inputs(inputs, recursive=recursive)
    if log:
        _log_input_notes(found)
    return found


def _this_rank_jobs(env: DistributedEnv | None, jobs: list[Job], device: torch.device) -> list[Job]:
    """All of ``jobs`` in one process; under ``torchrun``, this rank's shard (after joining)."""
    if env is None:
        return jobs
    env.init(device, timeout=_DISTRIBUTED_TIMEOUT)
    mine = shard(jobs, env.rank, env.world_size)
    logger.info("rank %d of %d: %d of %d image(s)", env.rank, env.world_size, len(mine), len(jobs))
    return mine


def describe_plan(model: str, scale: int, outscale: float | None) -> str:
    """``"edsr-baseline-x4 x4, then bicubic to x8"``: what runs, in the log's words."""
    plan = f"{model} x{scale}"
    if outscale is not None and outscale != scale:
        plan += f", then bicubic to x{outscale:g}"
    return plan


def _check_scale(
    scale: object, model: str | None, weights: str | Path | None, outscale: float | None
) -> None:
    """A positive integer scale; without a model, one a shipped default has (or an outscale)."""
    from superres.models.catalog import DEFAULT_MODELS

    if scale is None:
        return
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(
            f"scale must be a positive integer (the network's factor), got {scale!r} (command "
            "line: --scale; --outscale takes any positive size factor)"
        )
    if model is None and weights is None and scale not in DEFAULT_MODELS and outscale is None:
        shipped = ", ".join(f"x{s} {name}" for s, name in sorted(DEFAULT_MODELS.items()))
        raise ConfigError(
            f"no shipped default model upscales x{scale} (shipped: {shipped}); for the x4 "
            f"model followed by a bicubic resize, ask for it: --outscale {scale} (or pick a "
            "model of that scale with --model/-n, e.g. --model bicubic)"
        )


def _log_input_notes(found: InputSet) -> None:
    """Say what the expansion of the inputs left out or merged."""
    if found.ignored:
        logger.warning(
            "%d entries in the input folders/patterns were not processed (not image files, "
            "hidden, or sub-folders without --recursive): %s",
            len(found.ignored),
            _describe(found.ignored),
        )
    if found.duplicates:
        logger.info("%d input(s) given more than once are processed once", found.duplicates)
