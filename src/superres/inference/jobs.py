"""What to upscale into what: the inputs a batch expands to, and every output path, checked first.

The rules (also in ``superres upscale --help``):

* **Inputs** are image files, folders (their image files, sorted by name; ``recursive=True``
  descends into sub-folders), glob patterns (expanded here, so a quoted ``"photos/*.jpg"`` works
  on every shell, ``**`` included) and bundled samples (``sample:NAME``). Entries of a folder or
  glob that are not images (by extension), hidden files and, without ``recursive``, sub-folders
  are not processed and are reported in one warning with their count. A missing file, a pattern that
  matches nothing or a folder without images is an error before anything runs.
* **Outputs** are named ``{stem}_x{scale}.png`` (``x{outscale}`` with ``outscale``; ``suffix``
  replaces the ``_x{scale}`` part, ``""`` for none; ``fmt`` picks another extension, ``"auto"``
  keeps each input's own, PNG for a GIF or a sample). Without ``output`` they go beside each
  input (samples: the current folder);
  a folder input then is an error, because results would land among the inputs and be upscaled
  again by the next run. ``output`` is a file (a name with an extension) for one input, or else a
  folder, created if missing, parents included (every command's rule, see
  :func:`superres.io.files.make_output_folder`); with ``recursive`` the sub-folders below it
  mirror the input's. Every output path is resolved and checked before the first image is read:
  a file where a folder must be, two inputs mapping to one output, or an output that would
  overwrite an input is an error and nothing is written.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from superres.errors import OutputPathError, SuperresError
from superres.io.files import check_output_folder
from superres.io.image import SUPPORTED_EXTENSIONS, check_image_file
from superres.io.samples import SAMPLE_PREFIX, check_sample

__all__ = [
    "AUTO_FORMAT",
    "IMAGE_EXTENSIONS",
    "BatchReport",
    "InputNotFoundError",
    "InputSet",
    "Job",
    "OutputPathError",
    "Source",
    "collect_inputs",
    "output_tag",
    "plan_jobs",
    "shard",
]

#: Extensions taken from folders and globs: the formats we read and write, and GIF (read only:
#: a still GIF is upscaled into a PNG, an animated one is refused with its frame count).
IMAGE_EXTENSIONS = (*SUPPORTED_EXTENSIONS, ".gif")
_SAME_FORMAT = {".jpeg": ".jpg", ".tiff": ".tif"}
#: ``fmt`` that keeps each input's own format (Real-ESRGAN's ``--ext auto``).
AUTO_FORMAT = "auto"


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


class InputNotFoundError(SuperresError, FileNotFoundError):
    """An input file does not exist, a pattern matches no image, or a folder holds none."""


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
        ImageReadError: a dangling symlink or a symlink loop.
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
        elif p.is_symlink():  # dangling, or a loop: refused here, with the reason
            check_image_file(p)
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
    suffix: str | None = None,
) -> list[Job]:
    """Resolve every output path and check it before any work (see the module for the rules).

    Args:
        sources: from :func:`collect_inputs`.
        output: output file (one input) or folder (made if missing), or ``None`` (beside the
            inputs).
        tag: inserted in derived names, ``{stem}_{tag}.{fmt}`` (see :func:`output_tag`).
        fmt: extension of derived names without the dot (default ``png``); ``"auto"``: each
            input's own extension where we can write it, else ``png``.
        suffix: put after the stem instead of ``_{tag}`` (``""``: the input's own stem).

    Raises:
        OutputPathError: any of the problems listed in the module docstring.
    """
    auto = fmt is not None and fmt.lower() == AUTO_FORMAT
    ext = _output_extension(None if auto else fmt)
    check_suffix(suffix)
    end = f"_{tag}" if suffix is None else suffix
    out = Path(output) if output is not None else None
    roots = sorted({s.root for s in sources if s.root is not None})
    single_file = out is not None and _names_a_file(out, several=len(sources) != 1 or bool(roots))
    if out is None and roots:
        raise OutputPathError(
            f"a folder input ({str(roots[0])!r}) needs -o OUTPUT_FOLDER: writing beside the inputs "
            "would mix the results into the input folder, and the next run would upscale them "
            "again; create an output folder and pass it with -o"
        )
    if out is not None and single_file:
        _check_output_file(out, None if auto else fmt, ext)
    if out is not None and not single_file:
        check_output_folder(out, "-o")
        _check_outside_inputs(out, roots)
    jobs = [
        Job(s, _destination(s, out, single_file, f"{s.stem}{end}{_source_ext(s) if auto else ext}"))
        for s in sources
    ]
    _check_no_clash(jobs, sources)
    return jobs


def _output_extension(fmt: str | None) -> str:
    """``".png"`` for ``fmt`` ``"png"``/``None``; an unknown format is an error."""
    ext = "." + (fmt or "png").lower().lstrip(".")
    if ext not in SUPPORTED_EXTENSIONS:
        raise OutputPathError(
            f"unknown output format {fmt!r}; use one of "
            f"{', '.join(e.lstrip('.') for e in SUPPORTED_EXTENSIONS)}"
        )
    return ext


def check_suffix(suffix: str | None) -> None:
    """``suffix`` goes into a file name: no folder separators."""
    if suffix is not None and ("/" in suffix or "\\" in suffix or suffix in (".", "..")):
        raise OutputPathError(
            f"--suffix {suffix!r} must be a plain part of a file name (no '/' or '\\'); it is "
            "put after each input's stem, e.g. _x4 or '' for none"
        )


def _source_ext(source: Source) -> str:
    """The input's own extension when we can write that format (``fmt="auto"``), else ``.png``."""
    ext = source.path.suffix.lower() if source.path is not None else ".png"
    return ext if ext in SUPPORTED_EXTENSIONS else ".png"


def _names_a_file(out: Path, *, several: bool) -> bool:
    """Whether ``-o`` is an output file: not a folder, and named with an extension. With several
    inputs it must be a folder (made if missing), so a file name there is an error."""
    if out.is_dir() or not out.suffix:
        return False
    if several:
        raise OutputPathError(
            f"-o {str(out)!r} names a file, but several images are upscaled; give a folder "
            "(created if missing), e.g. -o out/"
        )
    return True


def _check_output_file(out: Path, fmt: str | None, ext: str) -> None:
    """``-o FILE`` for one input: a known extension that agrees with ``fmt``, and a folder that
    exists or can be made."""
    if out.suffix.lower() not in SUPPORTED_EXTENSIONS:
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
    check_output_folder(out.parent, "-o")


def _check_outside_inputs(out: Path, roots: Sequence[Path]) -> None:
    """``-o FOLDER`` must not lie inside an input folder (results would be inputs next time)."""
    for root in roots:
        inside = out.resolve() == root.resolve() or root.resolve() in out.resolve().parents
        if inside:
            raise OutputPathError(
                f"-o {str(out)!r} is inside the input folder {str(root)!r}: results would be "
                "taken as inputs by the next run; choose a folder outside it"
            )


def _destination(source: Source, out: Path | None, single_file: bool, name: str) -> Path:
    """Where ``source``'s result goes: ``-o FILE``, mirrored below ``-o FOLDER``, or beside it."""
    if out is not None and single_file:
        return out
    if out is not None:
        sub = source.relative.parent if source.relative is not None else Path()
        return out / sub / name
    if source.path is None:
        return Path.cwd() / name
    return source.path.parent / name


def _check_no_clash(jobs: Sequence[Job], sources: Sequence[Source]) -> None:
    """No output written twice, and none over an input."""
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


def shard(jobs: Sequence[Job], rank: int, world_size: int) -> list[Job]:
    """Rank ``rank``'s share of ``jobs``: every ``world_size``-th job from ``rank``."""
    return list(jobs[rank::world_size])


@dataclass
class BatchReport:
    """What a run did. ``failed`` holds ``(input, message)`` pairs; merged over ranks (under
    ``torchrun``, ``main_process`` is true on rank 0 only, which should print the summary)."""

    total: int = 0
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    main_process: bool = True

    def merge(self, other: BatchReport) -> None:
        self.written += other.written
        self.skipped += other.skipped
        self.failed += other.failed
