"""Upscaling files: inputs, output names, the batch loop, and sharding across ``torchrun`` ranks.

The rules (also in ``superres upscale --help``):

* **Inputs** are image files, folders (their image files, sorted by name; ``recursive=True``
  descends into sub-folders), glob patterns (expanded here, so a quoted ``"photos/*.jpg"`` works
  on every shell, ``**`` included) and bundled samples (``sample:NAME``). Entries of a folder or
  glob that are not images (by extension), hidden files and, without ``recursive``, sub-folders
  are not processed and are reported in one warning with their count. A missing file, a pattern that
  matches nothing or a folder without images is an error before anything runs.
* **Outputs** are named ``{stem}_x{scale}.png`` (``x{outscale}`` with ``outscale``; ``fmt`` picks
  another extension). Without ``output`` they go beside each input (samples: the current folder);
  a folder input then is an error, because results would land among the inputs and be upscaled
  again by the next run. ``output`` is a file for one input, or else an **existing** folder (it is
  not created: a typo must not silently create a tree elsewhere); with ``recursive`` the
  sub-folders below it mirror the input's and are created. Every output path is resolved and
  checked before the first image is read: a missing folder, two inputs mapping to one output, or an
  output that would overwrite an input is an error and nothing is written.
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
import glob
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from superres.errors import ConfigError, ImageWriteError, SuperresError
from superres.inference.upscaler import DEFAULT_OVERLAP, TileArg, Upscaler
from superres.io.image import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ImageData,
    quantize_image,
    read_image,
    write_array,
)
from superres.io.samples import SAMPLE_PREFIX, check_sample, load_sample

if TYPE_CHECKING:
    from superres.models.weights import RealismSpace

__all__ = [
    "IMAGE_EXTENSIONS",
    "BatchReport",
    "DistributedEnv",
    "DistributedEnvError",
    "InputNotFoundError",
    "InputSet",
    "Job",
    "OutputPathError",
    "Source",
    "collect_inputs",
    "output_tag",
    "plan_jobs",
    "run_jobs",
    "shard",
    "upscale_files",
]

logger = logging.getLogger(__name__)

#: Extensions taken from folders and globs (the formats we read and write).
IMAGE_EXTENSIONS = SUPPORTED_EXTENSIONS
_SIXTEEN_BIT_SUFFIXES = (".png", ".tif", ".tiff")
_SAME_FORMAT = {".jpeg": ".jpg", ".tiff": ".tif"}
_ALPHA_SUFFIXES = (".png", ".tif", ".tiff", ".webp")
# How long ranks wait for each other at the end of a sharded run: shards finish at different times.
_DISTRIBUTED_TIMEOUT = datetime.timedelta(hours=24)


@dataclass(frozen=True)
class Source:
    """One input image.

    Attributes:
        name: as the user gave it or as found (a path, or ``sample:NAME``).
        path: the file, or ``None`` for a sample.
        root: the folder input it was found in (``None`` for files, globs and samples).
        relative: its path below ``root`` (mirrored below the output folder with ``recursive``).
    """

    name: str
    path: Path | None
    root: Path | None = None
    relative: Path | None = None

    @property
    def stem(self) -> str:
        if self.path is None:
            return self.name[len(SAMPLE_PREFIX) :]
        return self.path.stem


@dataclass
class InputSet:
    """The expanded inputs, and what was found but not taken (reported, never silently dropped)."""

    sources: list[Source] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True)
class Job:
    """Upscale ``source`` into ``output``."""

    source: Source
    output: Path


@dataclass
class BatchReport:
    """What a run did. ``failed`` holds ``(input, message)`` pairs; merged over ranks."""

    total: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    main_process: bool = True

    def merge(self, other: BatchReport) -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.failed += other.failed


class InputNotFoundError(SuperresError, FileNotFoundError):
    """An input file does not exist, a pattern matches no image, or a folder holds none."""


class OutputPathError(SuperresError, ValueError):
    """An output path cannot be used: missing folder, unknown extension, two inputs writing one
    output, an output overwriting an input or inside an input folder."""


class DistributedEnvError(SuperresError, ValueError):
    """``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the launcher are malformed."""


# --- inputs ---------------------------------------------------------------------------------------


def _is_image_file(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _scan_folder(folder: Path, *, recursive: bool) -> tuple[list[Path], list[Path]]:
    """Image files in ``folder`` (sorted; below it too if ``recursive``) and the other entries.

    Hidden entries are not taken; hidden sub-folders are not descended into (``.git``,
    ``.thumbnails``) but listed once among the other entries.
    """
    images: list[Path] = []
    ignored: list[Path] = []
    pending = [folder]
    while pending:
        current = pending.pop()
        for entry in sorted(current.iterdir()):
            if entry.is_dir() and recursive and not entry.name.startswith("."):
                pending.append(entry)
            elif _is_image_file(entry):
                images.append(entry)
            else:
                ignored.append(entry)
    return sorted(images), sorted(ignored)


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def collect_inputs(inputs: Sequence[str], *, recursive: bool = False) -> InputSet:
    """Expand files, folders, globs and ``sample:NAME`` into a list of sources (see the module).

    The order is the arguments' order, each folder or glob sorted by path; duplicates (the same
    file reached twice) are dropped and counted.

    Raises:
        InputNotFoundError: a missing input, a glob matching nothing, a folder without images.
        SuperresError: an unknown sample name (with close matches).
    """
    found = InputSet()
    seen: set[Path] = set()

    def add(source: Source) -> None:
        key = source.path.resolve() if source.path is not None else Path(source.name)
        if key in seen:
            found.duplicates += 1
            return
        seen.add(key)
        found.sources.append(source)

    for arg in inputs:
        if arg.startswith(SAMPLE_PREFIX):
            check_sample(arg[len(SAMPLE_PREFIX) :])
            add(Source(arg, None))
            continue
        p = Path(arg)
        if p.is_dir():
            images, ignored = _scan_folder(p, recursive=recursive)
            found.ignored += ignored
            if not images:
                raise InputNotFoundError(
                    f"folder {arg!r} holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
                    + ("" if recursive else "; add --recursive to search its sub-folders")
                )
            for e in images:
                add(Source(str(e), e, root=p, relative=e.relative_to(p)))
        elif p.exists():
            add(Source(arg, p))
        elif _has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            images = [m for m in matches if _is_image_file(m)]
            found.ignored += [m for m in matches if m not in images]
            if not images:
                raise InputNotFoundError(
                    f"the pattern {arg!r} matches no image files"
                    + (f" ({len(matches)} other entries)" if matches else "")
                    + "; check the pattern and the current folder"
                )
            for m in images:
                add(Source(str(m), m))
        else:
            raise InputNotFoundError(
                f"input {arg!r} does not exist; check the path (inputs are files, folders, "
                "glob patterns such as 'photos/*.jpg', or sample:NAME, see `superres samples`)"
            )
    return found


# --- outputs --------------------------------------------------------------------------------------


def output_tag(scale: int, outscale: float | None) -> str:
    """The ``x4`` / ``x3.5`` part of output names."""
    return f"x{scale}" if outscale is None else f"x{outscale:g}"


def plan_jobs(
    sources: Sequence[Source],
    *,
    output: str | Path | None,
    tag: str,
    fmt: str | None = None,
) -> list[Job]:
    """Resolve every output path and check it before any work (see the module for the rules).

    Args:
        sources: from :func:`collect_inputs`.
        output: output file (one input) or existing folder, or ``None`` (beside the inputs).
        tag: inserted in derived names, ``{stem}_{tag}.{fmt}`` (see :func:`output_tag`).
        fmt: extension of derived names without the dot (default ``png``).

    Raises:
        OutputPathError: any of the problems listed in the module docstring.
    """
    ext = "." + (fmt or "png").lower().lstrip(".")
    if ext not in SUPPORTED_EXTENSIONS:
        raise OutputPathError(
            f"unknown output format {fmt!r}; use one of "
            f"{', '.join(e.lstrip('.') for e in SUPPORTED_EXTENSIONS)}"
        )
    out = Path(output) if output is not None else None
    roots = sorted({s.root for s in sources if s.root is not None})
    if out is None and roots:
        raise OutputPathError(
            f"a folder input ({str(roots[0])!r}) needs -o OUTPUT_FOLDER: writing beside the inputs "
            "would mix the results into the input folder, and the next run would upscale them "
            "again; create an output folder and pass it with -o"
        )
    single_file = out is not None and not out.is_dir()
    if out is not None and single_file:
        if len(sources) != 1 or roots:
            raise OutputPathError(
                f"-o {str(out)!r} must be an existing folder when upscaling several images or a "
                f"folder; create it first (mkdir {str(out)!r})"
            )
        if out.suffix.lower() not in SUPPORTED_EXTENSIONS:
            if not out.suffix:
                raise OutputPathError(f"output folder {str(out)!r} does not exist; create it first")
            raise OutputPathError(
                f"-o {str(out)!r}: unknown extension {out.suffix!r}; use one of "
                f"{', '.join(SUPPORTED_EXTENSIONS)}"
            )
        if fmt is not None and _SAME_FORMAT.get(out.suffix.lower(), out.suffix.lower()) != (
            _SAME_FORMAT.get(ext, ext)
        ):
            raise OutputPathError(
                f"-o {str(out)!r} ends in {out.suffix!r} but --format is {fmt!r}; drop one"
            )
        if not out.parent.is_dir():
            raise OutputPathError(
                f"-o {str(out)!r}: folder {str(out.parent)!r} does not exist; create it first"
            )
    if out is not None and not single_file:
        for root in roots:
            inside = out.resolve() == root.resolve() or root.resolve() in out.resolve().parents
            if inside:
                raise OutputPathError(
                    f"-o {str(out)!r} is inside the input folder {str(root)!r}: results would be "
                    "taken as inputs by the next run; choose a folder outside it"
                )

    jobs = []
    for s in sources:
        name = f"{s.stem}_{tag}{ext}"
        if out is not None and single_file:
            dst = out
        elif out is not None:
            sub = s.relative.parent if s.relative is not None else Path()
            dst = out / sub / name
        elif s.path is None:
            dst = Path.cwd() / name
        else:
            dst = s.path.parent / name
        jobs.append(Job(s, dst))

    by_output: dict[Path, list[Source]] = {}
    for job in jobs:
        by_output.setdefault(job.output.resolve(), []).append(job.source)
    clashes = [(dst, srcs) for dst, srcs in by_output.items() if len(srcs) > 1]
    if clashes:
        lines = "; ".join(
            f"{' and '.join(repr(s.name) for s in srcs)} -> {str(dst)!r}"
            for dst, srcs in clashes[:5]
        )
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise OutputPathError(
            f"{len(clashes)} output name(s) would be written twice: {lines}{more}; rename the "
            "inputs or upscale them into separate -o folders"
        )
    inputs = {s.path.resolve() for s in sources if s.path is not None}
    for job in jobs:
        if job.output.resolve() in inputs:
            raise OutputPathError(
                f"the output {str(job.output)!r} is an input file; refusing to overwrite it "
                "(choose another -o or --format)"
            )
    return jobs


def shard(jobs: Sequence[Job], rank: int, world_size: int) -> list[Job]:
    """Rank ``rank``'s share of ``jobs``: every ``world_size``-th job from ``rank``."""
    return list(jobs[rank::world_size])


# --- running --------------------------------------------------------------------------------------


def _load(source: Source, max_pixels: int | None) -> ImageData:
    if source.path is None:
        return load_sample(source.name[len(SAMPLE_PREFIX) :])
    return read_image(source.path, max_pixels=max_pixels)


def _upscale_one(job: Job, upscaler: Upscaler, *, max_pixels: int | None, quality: int) -> None:
    dst = job.output
    image = _load(job.source, max_pixels)
    suffix = dst.suffix.lower()
    if image.alpha is not None and suffix not in _ALPHA_SUFFIXES:
        raise ImageWriteError(
            dst,
            f"the input has an alpha channel and {suffix} cannot hold one; use --format png "
            "(or webp/tif)",
        )
    bit_depth = image.bit_depth
    if bit_depth == 16 and suffix not in _SIXTEEN_BIT_SUFFIXES:
        logger.warning("%s: 16-bit input written as 8-bit (%s holds 8 bits)", dst, suffix)
        bit_depth = 8
    result = upscaler(image)
    del image
    # Quantise, then drop the float canvas before encoding: the encoder's buffers come on top of
    # the integer array only, not of the 4-bytes-per-channel canvas.
    pixels = quantize_image(
        result.rgb, alpha=result.alpha, bit_depth=bit_depth, grayscale=result.grayscale
    )
    del result
    if job.source.relative is not None:
        dst.parent.mkdir(parents=True, exist_ok=True)  # mirrored sub-folder below -o
    write_array(dst, pixels, quality=quality)
    logger.info("wrote %s (%dx%d)", dst, pixels.shape[1], pixels.shape[0])


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
) -> BatchReport:
    """Upscale every job; a failing image is logged, recorded and skipped, never fatal.

    Only :class:`~superres.errors.SuperresError` counts as a per-image failure (unreadable or
    corrupt file, too large, out of memory, unwritable); anything else is a bug and propagates.
    """
    _check_max_pixels(max_pixels)
    report = BatchReport(total=len(jobs))
    bar = tqdm(jobs, desc="upscale", unit="img", disable=not progress or len(jobs) < 2)
    with logging_redirect_tqdm(), bar:
        for job in bar:
            if skip_existing and job.output.exists():
                report.skipped.append(job.output)
                continue
            try:
                _upscale_one(job, upscaler, max_pixels=max_pixels, quality=quality)
            except SuperresError as exc:
                logger.error("%s", exc)
                report.failed.append((job.source.name, str(exc)))
            else:
                report.written.append(job.output)
    if report.skipped:
        logger.info(
            "skipped %d image(s) whose output exists (--skip-existing)", len(report.skipped)
        )
    return report


# --- torchrun -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistributedEnv:
    """``torchrun``'s ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_env(cls) -> DistributedEnv | None:
        """The launcher's environment, or ``None`` outside ``torchrun`` (or with one process)."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise DistributedEnvError(f"bad torchrun environment: {exc}") from None
        if world <= 1:
            return None
        if not 0 <= rank < world:
            raise DistributedEnvError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
        return cls(rank, world, local)

    def device(self, requested: str) -> str:
        """``auto``/``cuda`` -> ``cuda:LOCAL_RANK`` when CUDA is there (``auto``: else CPU)."""
        if requested in ("auto", "cuda"):
            if torch.cuda.is_available():
                return f"cuda:{self.local_rank % torch.cuda.device_count()}"
            return "cpu" if requested == "auto" else requested
        return requested

    def init(self, device: torch.device) -> None:
        """Join the process group: NCCL for CUDA devices, Gloo otherwise."""
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=_DISTRIBUTED_TIMEOUT)

    def gather(self, report: BatchReport) -> BatchReport:
        """Every rank's report merged (on every rank), after a barrier; leaves the group."""
        import torch.distributed as dist

        reports: list[BatchReport | None] = [None] * self.world_size
        dist.all_gather_object(reports, report)
        dist.barrier()
        dist.destroy_process_group()
        merged = BatchReport(total=sum(r.total for r in reports if r is not None))
        for r in reports:
            if r is not None:
                merged.merge(r)
        merged.main_process = self.rank == 0
        return merged


# --- all of it ------------------------------------------------------------------------------------


def _describe(paths: Sequence[Path], limit: int = 5) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in paths[:limit]]
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(names) + more


def upscale_files(
    inputs: Sequence[str],
    *,
    output: str | Path | None = None,
    model: str | None = None,
    weights: str | Path | None = None,
    scale: int | None = None,
    outscale: float | None = None,
    device: str = "auto",
    precision: str = "auto",
    tile: TileArg = "auto",
    overlap: int = DEFAULT_OVERLAP,
    backproject: int = 0,
    realism: float | None = None,
    realism_space: RealismSpace | None = None,
    fmt: str | None = None,
    recursive: bool = False,
    skip_existing: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int = 95,
    progress: bool = True,
) -> BatchReport:
    """Expand ``inputs``, build the model, plan every output, then upscale (see the module).

    ``model`` is a registered or pretrained name; ``None`` means the model ``weights`` describes,
    or the shipped default for ``scale`` (:func:`default_model`) when no weights file is given.

    Under ``torchrun`` each rank processes its shard and the returned report covers all ranks
    (``report.main_process`` is true on rank 0 only, which should print the summary).

    Raises:
        SuperresError: problems found before any image is processed (inputs, model, weights,
            scale, device, outputs). Per-image failures are in ``report.failed`` instead.
    """
    from superres.models.weights import default_model, load_model

    _check_max_pixels(max_pixels)  # before the model loads
    env = DistributedEnv.from_env()
    main = env is None or env.rank == 0
    found = collect_inputs(inputs, recursive=recursive)
    if found.ignored and main:
        logger.warning(
            "%d entries in the input folders/patterns were not processed (not image files, "
            "hidden, or sub-folders without --recursive): %s",
            len(found.ignored),
            _describe(found.ignored),
        )
    if found.duplicates and main:
        logger.info("%d input(s) given more than once are processed once", found.duplicates)
    # A weights file names its own model; the shipped default only when neither is given.
    if model is None and weights is None:
        model, scale, outscale = default_model(scale, outscale)
    net = load_model(
        model, weights=weights, scale=scale, realism=realism, realism_space=realism_space
    )
    upscaler = Upscaler(
        net,
        device=env.device(device) if env is not None else device,
        precision=precision,
        tile=tile,
        overlap=overlap,
        outscale=outscale,
        backproject=backproject,
        progress=progress and main,
    )
    if main:
        logger.info("running on %s: %s", upscaler.device, upscaler.execution_path)
    jobs = plan_jobs(
        found.sources, output=output, tag=output_tag(upscaler.scale, outscale), fmt=fmt
    )
    if env is not None:
        env.init(upscaler.device)
        mine = shard(jobs, env.rank, env.world_size)
        logger.info(
            "rank %d of %d: %d of %d image(s)", env.rank, env.world_size, len(mine), len(jobs)
        )
    else:
        mine = jobs
    report = run_jobs(
        mine,
        upscaler,
        skip_existing=skip_existing,
        max_pixels=max_pixels,
        quality=quality,
        progress=progress and main,
    )
    return report if env is None else env.gather(report)
