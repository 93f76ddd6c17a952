"""Dataset preparation: overlapping sub-images of large training images (as for DIV2K).

Training reads random patches; decoding a 2K PNG for each 128-pixel patch is wasted work, so the
large images are cut once into overlapping ``crop_size`` tiles, exactly as BasicSR's
``scripts/data_preparation/extract_subimages.py`` does: tiles start every ``step`` pixels, and one
more tile, aligned to the bottom/right border, is added when the pixels left over exceed
``thresh_size``. Tiles are written as ``<stem>_s001.png``, ``<stem>_s002.png``, ... (row-major),
each atomically, and existing tiles are skipped, so an interrupted run continues where it stopped.

The parameters and the source files (name, size, modification time, SHA-256) are recorded in
``subimages.json`` in the output folder before any tile is cut. A rerun with the same parameters
on unchanged sources skips what exists; a rerun with other parameters, or on a source that has
changed since, is refused (:class:`StaleSubimagesError`) unless ``overwrite=True``, which deletes
the old sub-images and cuts again: old crops are never silently kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from superres.data.catalog import IMAGE_EXTENSIONS, list_image_files
from superres.errors import (
    ConfigError,
    ImageReadError,
    ImageWriteError,
    OutputPathError,
    SuperresError,
)
from superres.io.files import atomic_write, atomic_write_text, make_output_folder, user_cache_dir
from superres.io.image import quantize_image, read_image, write_array

__all__ = [
    "MANIFEST_NAME",
    "InputFolderError",
    "StaleSubimagesError",
    "SubimageError",
    "crop_starts",
    "extract_subimages",
    "prepared_subimages",
]

logger = logging.getLogger(__name__)

#: The file in the output folder that records how its sub-images were cut.
MANIFEST_NAME = "subimages.json"
_MANIFEST_FORMAT = 1


class InputFolderError(SuperresError, FileNotFoundError):
    """The input of a preparation step is missing, not a folder, or holds no images."""

    def __str__(self) -> str:  # FileNotFoundError would otherwise format an errno message
        return str(self.args[0])


class SubimageError(SuperresError, RuntimeError):
    """Some images could not be cut into sub-images (the others were written)."""


class StaleSubimagesError(SuperresError, ValueError):
    """The output folder holds sub-images cut with other parameters or from changed sources."""


def crop_starts(length: int, crop_size: int, step: int, thresh_size: int) -> list[int]:
    """Start offsets of the crops along one side, as BasicSR computes them.

    ``0, step, 2*step, ...`` while a whole crop fits, plus ``length - crop_size`` when more than
    ``thresh_size`` pixels would otherwise be left uncovered. Empty when ``length < crop_size``.
    """
    if length < crop_size:
        return []
    starts = list(range(0, length - crop_size + 1, step))
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


@dataclass(frozen=True)
class _Job:
    path: Path
    output_dir: Path
    crop_size: int
    step: int
    thresh_size: int
    compression: int


@dataclass(frozen=True)
class _Result:
    name: str
    written: int
    existing: int
    too_small: bool
    error: str | None


def _write_png(path: Path, array: np.ndarray, compression: int) -> None:
    """8-bit PNGs at the requested zlib level; other depths through the io module's writer."""
    if array.dtype.name != "uint8":
        write_array(path, array)
        return
    from PIL import Image

    channels = array.shape[2]
    im = Image.fromarray(array[..., 0] if channels == 1 else array)
    buf = BytesIO()
    im.save(buf, "PNG", compress_level=compression)
    try:
        with atomic_write(path) as f:
            f.write(buf.getvalue())
    except OSError as exc:
        raise ImageWriteError(path, f"writing failed ({type(exc).__name__}: {exc})") from exc


def _process(job: _Job) -> _Result:
    name = job.path.name
    try:
        decoded = read_image(job.path)
        h, w = int(decoded.rgb.shape[-2]), int(decoded.rgb.shape[-1])
        rows = crop_starts(h, job.crop_size, job.step, job.thresh_size)
        cols = crop_starts(w, job.crop_size, job.step, job.thresh_size)
        if not rows or not cols:
            return _Result(name, 0, 0, too_small=True, error=None)
        # The file's own integer pixels (bit depth, gray, alpha kept), cut without resampling.
        array = quantize_image(
            decoded.rgb,
            alpha=decoded.alpha,
            bit_depth=decoded.bit_depth,
            grayscale=decoded.grayscale,
        )
        written = existing = 0
        index = 0
        for top in rows:
            for left in cols:
                index += 1
                out = job.output_dir / f"{job.path.stem}_s{index:03d}.png"
                if out.exists():
                    existing += 1
                    continue
                tile = array[top : top + job.crop_size, left : left + job.crop_size]
                _write_png(out, tile, job.compression)
                written += 1
        return _Result(name, written, existing, too_small=False, error=None)
    except (ImageReadError, ImageWriteError) as exc:
        return _Result(name, 0, 0, too_small=False, error=str(exc))


def _check_input_dir(input_dir: Path) -> list[Path]:
    if not input_dir.exists():
        raise InputFolderError(
            f"input folder {str(input_dir)!r} does not exist; give the folder of HR images "
            "(e.g. DIV2K/DIV2K_train_HR)"
        )
    if not input_dir.is_dir():
        raise InputFolderError(
            f"input {str(input_dir)!r} is a file, expected a folder of images; give its folder"
        )
    files = list_image_files(input_dir)
    if not files:
        raise InputFolderError(
            f"input folder {str(input_dir)!r} holds no images (looked for "
            f"{', '.join(IMAGE_EXTENSIONS)} files directly inside it)"
        )
    return files


def extract_subimages(
    input_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    workers: int = 1,
    compression: int = 3,
    overwrite: bool = False,
) -> int:
    """Cut every image of ``input_dir`` into overlapping ``crop_size`` squares in ``output_dir``.

    Args:
        input_dir: folder of images (files directly inside it; PNG, JPEG, BMP, TIFF, ...).
        output_dir: created if missing (with its parents); must not be ``input_dir``.
        crop_size: side of the square sub-images in pixels (BasicSR: 480 for DIV2K HR,
            120/160/240 for its x4/x3/x2 LR).
        step: distance between crop starts (BasicSR: 240).
        thresh_size: a last, border-aligned crop is added when more than this many pixels
            remain (BasicSR: 0, i.e. always cover the whole image).
        workers: images processed in parallel, by threads (1: none).
        compression: PNG zlib level 0-9 (BasicSR: 3); 16-bit tiles use the default level.
        overwrite: delete sub-images cut earlier with other parameters or from sources that
            have changed since (see ``subimages.json``), and cut them again.

    Returns:
        The number of sub-images written by this call (existing ones are skipped and counted in
        the log). Images smaller than ``crop_size`` give no sub-image and are logged.

    Raises:
        InputFolderError: ``input_dir`` is missing, a file, or holds no images.
        ConfigError: bad sizes, ``workers < 1``, ``compression`` outside 0..9.
        OutputPathError: ``output_dir == input_dir``, or a file where it should be.
        SubimageError: some images could not be read or written (listed); all the others were
            processed, so a rerun after fixing them only does the rest.
        StaleSubimagesError: ``output_dir`` holds sub-images cut with other parameters, from
            sources changed since, or with no record of how; ``overwrite=True`` redoes them.
    """
    _check_options(crop_size, step, thresh_size, workers, compression)
    src = Path(input_dir).expanduser()
    dst = Path(output_dir).expanduser()
    files = _check_input_dir(src)
    if dst.resolve() == src.resolve():
        raise OutputPathError(
            f"output folder {str(dst)!r} is the input folder; the sub-images would be mixed "
            "with the originals. Give another folder"
        )
    make_output_folder(dst, "OUTPUT")
    params = {"crop_size": crop_size, "step": step, "thresh_size": thresh_size}
    _claim_output(dst, files, params, overwrite=overwrite)
    jobs = [_Job(p, dst, crop_size, step, thresh_size, compression) for p in files]
    results = _run(jobs, workers)
    return _report(results, src=src, dst=dst, crop_size=crop_size)


def prepared_subimages(
    source: str | os.PathLike[str],
    *,
    crop_size: int = 480,
    step: int = 240,
    thresh_size: int = 0,
    workers: int = 1,
    cache: str | os.PathLike[str] | None = None,
) -> Path:
    """The folder of ``source``'s sub-images, cut now if they are missing or stale.

    They live in ``<cache>/subimages/<set>-<hash of the source path>/c<crop>-s<step>-t<thresh>``
    (``cache``: the user cache, ``SUPERRES_CACHE``), so each source and parameter set has its
    own folder; a rerun reuses them, and a source changed since is cut again (the cache is
    ours to redo; :func:`extract_subimages` records and checks the sources). Processes that
    prepare the same folder at once write the same tiles, each atomically.
    """
    src = Path(source).expanduser().resolve()
    label = src.parent.name if src.name.upper() == "HR" else src.name
    digest = hashlib.sha256(str(src).encode("utf-8")).hexdigest()[:12]
    root = Path(cache).expanduser() if cache is not None else user_cache_dir()
    dst = root / "subimages" / f"{label}-{digest}" / f"c{crop_size}-s{step}-t{thresh_size}"
    written = extract_subimages(
        src, dst, crop_size=crop_size, step=step, thresh_size=thresh_size, workers=workers,
        overwrite=True,
    )  # fmt: skip
    logger.info("training on the sub-images of %s in %s (%d cut now)", src, dst, written)
    return dst


def _check_options(
    crop_size: object, step: object, thresh_size: object, workers: object, compression: object
) -> None:
    """Refuse bad sizes, worker counts and PNG levels before any file is touched."""
    for name, value, low in (
        ("crop_size", crop_size, 1),
        ("step", step, 1),
        ("workers", workers, 1),
        ("thresh_size", thresh_size, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    if (
        isinstance(compression, bool)
        or not isinstance(compression, int)
        or not 0 <= compression <= 9
    ):
        raise ConfigError(f"compression must be a PNG zlib level 0..9, got {compression!r}")


def _run(jobs: list[_Job], workers: int) -> list[_Result]:
    """Process every job, in order, on ``workers`` threads."""
    if workers == 1 or len(jobs) == 1:
        return [_process(job) for job in jobs]
    # Threads, not processes: decoding, PNG encoding and torch release the GIL, and forking a
    # process that has used torch's OpenMP pool can deadlock (spawning re-imports torch).
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        return list(pool.map(_process, jobs))


def _report(results: list[_Result], *, src: Path, dst: Path, crop_size: int) -> int:
    """Log what was done; raise :class:`SubimageError` listing the failed images; the count."""
    written = sum(r.written for r in results)
    existing = sum(r.existing for r in results)
    small = [r.name for r in results if r.too_small]
    failed = [(r.name, r.error) for r in results if r.error is not None]
    if small:
        logger.warning(
            "%d image(s) smaller than crop_size=%d gave no sub-image: %s",
            len(small),
            crop_size,
            ", ".join(small[:10]) + (f" and {len(small) - 10} more" if len(small) > 10 else ""),
        )
    logger.info(
        "%s -> %s: %d sub-images written, %d already present, from %d image(s)",
        src,
        dst,
        written,
        existing,
        len(results),
    )
    if failed:
        lines = "".join(f"\n  {name}: {error}" for name, error in failed)
        raise SubimageError(
            f"{len(failed)} of {len(results)} image(s) failed ({written} sub-images written, "
            f"{existing} already present); fix or remove them and rerun:{lines}"
        )
    return written


def _fingerprint(path: Path, *, digest: bool) -> dict[str, object]:
    stat = path.stat()
    entry: dict[str, object] = {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if digest:
        with path.open("rb") as f:
            entry["sha256"] = hashlib.file_digest(f, "sha256").hexdigest()
    return entry


def _unchanged(path: Path, recorded: object) -> bool:
    """Same size and time, or same size and content (a copy that did not keep the time)."""
    if not isinstance(recorded, dict):
        return False
    now = _fingerprint(path, digest=False)
    if now["bytes"] != recorded.get("bytes"):
        return False
    if now["mtime_ns"] == recorded.get("mtime_ns"):
        return True
    return _fingerprint(path, digest=True)["sha256"] == recorded.get("sha256")


def _read_manifest(dst: Path) -> dict[str, object] | None:
    try:
        data = json.loads((dst / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as a record of unknown parameters
    return data if isinstance(data, dict) else {}


def _old_subimages(dst: Path, stems: set[str]) -> list[Path]:
    """The ``<stem>_sNNN.png`` files of ``dst`` whose stem is one of ``stems``."""
    pattern = re.compile(r"(.+)_s\d{3,}\.png")
    found = []
    for path in dst.iterdir():
        match = pattern.fullmatch(path.name)
        if match and match.group(1) in stems:
            found.append(path)
    return sorted(found)


def _stale_reason(
    dst: Path, files: list[Path], params: dict[str, int], manifest: dict[str, object] | None
) -> str | None:
    """Why the sub-images already in ``dst`` cannot be kept for this run (``None``: they can)."""
    if manifest is None:
        old = _old_subimages(dst, {p.stem for p in files})
        if old:
            return (
                f"holds sub-images (e.g. {old[0].name}) with no {MANIFEST_NAME} saying how "
                "they were cut"
            )
        return None
    recorded = {k: manifest.get(k) for k in params}
    if recorded != params:

        def show(values: Mapping[str, object]) -> str:
            return ", ".join(f"{k}={v}" for k, v in values.items())

        return f"holds sub-images cut with {show(recorded)}; this run asks {show(params)}"
    sources = manifest.get("sources")
    sources = sources if isinstance(sources, dict) else {}
    for path in files:
        if path.name in sources and not _unchanged(path, sources[path.name]):
            return f"holds sub-images of {path.name}, which has changed since they were cut"
    return None


def _claim_output(dst: Path, files: list[Path], params: dict[str, int], *, overwrite: bool) -> None:
    """Check (or, with ``overwrite``, clear) what ``dst`` holds; record this run's manifest."""
    manifest = _read_manifest(dst)
    reason = _stale_reason(dst, files, params, manifest)
    if reason is not None and not overwrite:
        raise StaleSubimagesError(
            f"output folder {str(dst)!r} {reason}; pass --overwrite (overwrite=True) to delete "
            "them and cut again, or give another output folder"
        )
    old_sources = manifest.get("sources") if manifest else None
    old_sources = old_sources if isinstance(old_sources, dict) else {}
    kept = dict(old_sources) if reason is None else {}
    if reason is not None:
        stems = {p.stem for p in files} | {Path(str(n)).stem for n in old_sources}
        old = _old_subimages(dst, stems)
        for path in old:
            path.unlink()
        logger.warning("deleted %d old sub-image(s) in %s: %s", len(old), dst, reason)
    new = {p.name: _fingerprint(p, digest=True) for p in files if p.name not in kept}
    if manifest and not new and reason is None:
        return  # nothing to record: the manifest already says all of it
    record = {"format": _MANIFEST_FORMAT, **params, "sources": {**kept, **new}}
    atomic_write_text(dst / MANIFEST_NAME, json.dumps(record, indent=1, sort_keys=True) + "\n")
