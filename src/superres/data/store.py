"""Getting datasets into the data root, and checking what is there.

* :func:`get_dataset` downloads a set's archives (:func:`superres.io.hub.fetch`: resumed, retried,
  checksum-checked before extraction), unpacks them safely (:mod:`superres.data.archives`) and moves
  each folder of the layout into place with one rename; or imports a copy the user has
  (``from_path``: a data-root-like folder, the set's own folder, or an archive), verified before it
  is placed. Downloads are kept in ``ROOT/.downloads``; a set's terms are shown once (the caller's
  ``accept_terms``) and the acceptance is recorded in ``ROOT/.downloads/NAME.terms-accepted``.
* :func:`dataset_status` says whether a set is there, with its image count and size on disk.
* :func:`verify_dataset` compares a set with its release: the image count, the catalog's names and,
  where a reference manifest is pinned (:func:`superres.data.sources.reference_sha256`), every
  file's sha256: it names missing, extra and modified files.

This module imports :mod:`superres.errors`, :mod:`superres.io` and :mod:`superres.data` only.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from superres.data.archives import ExtractLimits, extract_archive
from superres.data.catalog import DATASETS, IMAGE_EXTENSIONS, check_hr_files, list_image_files
from superres.data.sources import Archive, DataSource, get_source, list_sources, reference_sha256
from superres.errors import DatasetModifiedError, DatasetNotFoundError, SuperresError
from superres.io.files import make_output_folder, resolve_data_root
from superres.io.hub import DownloadError, OfflineError, RetryPolicy, fetch, sha256_file

__all__ = [
    "SetStatus",
    "TermsNotAcceptedError",
    "VerifyReport",
    "all_statuses",
    "dataset_status",
    "get_dataset",
    "verify_dataset",
]

logger = logging.getLogger(__name__)

_SHOWN = 5


class TermsNotAcceptedError(SuperresError):
    """A set's licence or terms were not accepted, so it was not downloaded."""


@dataclass(frozen=True, kw_only=True)
class SetStatus:
    """What of one set is in the data root: its image folder, image count and size in bytes."""

    name: str
    image_dir: Path
    images: int
    expected: int
    size: int

    @property
    def present(self) -> bool:
        return self.images > 0


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """How a set on disk compares with its release.

    ``missing``, ``extra`` and ``modified`` are paths relative to the set's folder (or, without a
    reference manifest, image names); ``pinned`` says whether contents were checked.
    """

    name: str
    folder: Path
    expected: int
    found: int
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    pinned: bool = False

    @property
    def ok(self) -> bool:
        return self.found == self.expected and not (self.missing or self.extra or self.modified)

    def describe(self) -> str:
        """One line: what differs, with up to five names of each kind."""
        what = [f"{self.found}/{self.expected} images"]
        for label, names in (
            ("missing", self.missing),
            ("extra", self.extra),
            ("modified", self.modified),
        ):
            if names:
                more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
                what.append(f"{len(names)} {label}: {', '.join(names[:_SHOWN])}{more}")
        what.append("sha256 checked" if self.pinned else "no reference checksums: names only")
        return "; ".join(what)


def _source(name: str | DataSource) -> DataSource:
    return name if isinstance(name, DataSource) else get_source(name)


def _images_in(folder: Path) -> list[Path]:
    return list_image_files(folder) if folder.is_dir() else []


def _tree_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def dataset_status(name: str | DataSource, root: str | os.PathLike[str] | None = None) -> SetStatus:
    """Whether ``name`` is under the data root: its image folder, count and size on disk (the
    whole set folder when the images are its ``HR/``, else the image folder)."""
    source = _source(name)
    data_root = resolve_data_root(root)
    image_dir = data_root / source.image_dir
    measured = image_dir.parent if image_dir.name == "HR" else image_dir
    return SetStatus(
        name=source.name,
        image_dir=image_dir,
        images=len(_images_in(image_dir)),
        expected=source.num_images,
        size=_tree_size(measured),
    )


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def verify_dataset(
    name: str | DataSource,
    root: str | os.PathLike[str] | None = None,
    *,
    folder: Path | None = None,
) -> VerifyReport:
    """Compare set ``name`` (in ``folder``, default ``ROOT/<its folder>``) with its release."""
    source = _source(name)
    base = folder if folder is not None else resolve_data_root(root) / source.folder
    image_dir = base.joinpath(*PurePosixPath(source.image_dir).parts[1:])
    found = len(_images_in(image_dir))
    reference = reference_sha256(source.folder)
    if reference:
        on_disk = {
            p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file() and _is_image(p)
        }
        missing = tuple(sorted(set(reference) - on_disk))
        extra = tuple(sorted(on_disk - set(reference)))
        modified = tuple(
            rel
            for rel in sorted(set(reference) & on_disk)
            if sha256_file(base / rel) != reference[rel]
        )
        return VerifyReport(
            name=source.name,
            folder=base,
            expected=source.num_images,
            found=found,
            missing=missing,
            extra=extra,
            modified=modified,
            pinned=True,
        )
    if source.name in DATASETS and image_dir.is_dir() and image_dir.name == "HR":
        check = check_hr_files(source.name, image_dir)
        return VerifyReport(
            name=source.name,
            folder=base,
            expected=source.num_images,
            found=found,
            missing=check.missing,
            extra=check.extra,
        )
    return VerifyReport(name=source.name, folder=base, expected=source.num_images, found=found)


def _download_archive(
    source: DataSource, archive: Archive, root: Path, *, progress: bool, retry: RetryPolicy | None
) -> Path:
    """The verified local copy of ``archive``, from its URL or, failing that, a mirror."""
    alternative = (
        f"Or download {archive.filename} by other means and run `superres data get "
        f"{source.name} --from FILE`, or import a copy you already have with `--from DIR`."
    )
    failures: list[str] = []
    for url in (archive.url, *archive.mirrors):
        try:
            return fetch(
                url,
                sha256=archive.sha256,
                md5=archive.md5,
                cache_dir=root / ".downloads",
                filename=archive.filename,
                progress=progress,
                retry=retry,
            )
        except OfflineError as exc:
            raise OfflineError(
                f"{source.name} needs {url}, but SUPERRES_OFFLINE is set, so it will not be "
                f"downloaded. Unset SUPERRES_OFFLINE to allow the download. {alternative}"
            ) from exc
        except DownloadError as exc:
            failures.append(str(exc))
    raise DownloadError(f"cannot get {source.name}: {' | '.join(failures)} {alternative}")


def _install(archive: Archive, path: Path, root: Path, limits: ExtractLimits | None) -> None:
    """Extract ``path`` and move each folder of ``archive.layout`` into place with one rename."""
    with tempfile.TemporaryDirectory(prefix=".extract-", dir=root) as tmp:
        tree = extract_archive(path, Path(tmp) / "tree", limits=limits)
        for inside, dest in archive.layout:
            found = tree / inside
            target = root / dest
            if not found.is_dir():
                raise DatasetNotFoundError(
                    f"{path} has no folder {inside!r}; expected the official archive "
                    f"({archive.url}). Delete it and download it again."
                )
            if target.exists():
                raise FileExistsError(f"{target} exists already; remove it to install it again")
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(found, target)


def _set_folder_in(tree: Path, folder: str) -> Path | None:
    """The set's own folder inside a user's copy: ``tree/folder``, ``tree/*/folder``, or ``tree``
    itself when it holds ``HR/``."""
    for candidate in (tree / folder, *sorted(tree.glob(f"*/{folder}"))):
        if candidate.is_dir():
            return candidate
    return tree if (tree / "HR").is_dir() else None


def _import(source: DataSource, root: Path, origin: Path, limits: ExtractLimits | None) -> None:
    """Place the user's copy ``origin`` (folder or archive), verified before it is placed."""
    target = root / source.folder
    if target.exists():
        raise FileExistsError(f"{target} exists already; remove it to import {origin}")
    with tempfile.TemporaryDirectory(prefix=".import-", dir=root) as tmp:
        if origin.is_file():
            known = next((a for a in source.archives if a.filename == origin.name), None)
            if known is not None:  # the official archive: its checksum and its layout
                fetch(origin, sha256=known.sha256, md5=known.md5)
                _install(known, origin, root, limits)
                return
            tree = extract_archive(origin, Path(tmp) / "tree", limits=limits)
        elif origin.is_dir():
            tree = origin
        else:
            raise DatasetNotFoundError(f"--from {origin}: no such file or folder")
        found = _set_folder_in(tree, source.folder)
        if found is None:
            raise DatasetNotFoundError(
                f"--from {origin}: no {source.folder}/ folder (nor HR/) in it; expected a data "
                f"root holding {source.folder}/, the {source.folder} folder itself, or an archive "
                "of either."
            )
        staged = Path(tmp) / source.folder
        shutil.copytree(found, staged)
        report = verify_dataset(source, folder=staged)
        if not report.ok:
            raise DatasetModifiedError(
                f"--from {found} is not the {source.name} release ({report.describe()}); nothing "
                "was placed. Restore the copy, or import the official archive."
            )
        os.replace(staged, target)


def _accept(
    source: DataSource, root: Path, accept_terms: Callable[[DataSource], bool] | None
) -> None:
    marker = root / ".downloads" / f"{source.name}.terms-accepted"
    if marker.is_file():
        return
    if accept_terms is None or not accept_terms(source):
        raise TermsNotAcceptedError(
            f"{source.name} was not downloaded: its terms were not accepted. Terms: "
            f"{source.terms} Pass --yes (accept_terms=) to accept them."
        )
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(source.terms + "\n", encoding="utf-8")


def get_dataset(
    name: str | DataSource,
    root: str | os.PathLike[str] | None = None,
    *,
    from_path: str | os.PathLike[str] | None = None,
    accept_terms: Callable[[DataSource], bool] | None = None,
    progress: bool = True,
    retry: RetryPolicy | None = None,
    limits: ExtractLimits | None = None,
) -> list[VerifyReport]:
    """Put set ``name`` (a composite: each of its parts) under the data root, verified.

    Args:
        from_path: import this copy instead of downloading: a folder (a data root, or the set's
            folder) or an archive (the official one is checked against its pinned checksum).
        accept_terms: called with the source before its first download; ``False`` (or no
            callable) refuses it with :class:`TermsNotAcceptedError`.

    Returns:
        One :class:`VerifyReport` per set placed or found in place.

    Raises:
        DatasetNotFoundError: a set that cannot be downloaded (the message says how to get it),
            or a ``from_path`` without it.
        DatasetModifiedError: the set in place, or the copy imported, differs from the release.
        OfflineError, DownloadError, ChecksumMismatchError: see :func:`superres.io.hub.fetch`;
            the message names the URL and the ``--from`` alternative.
        UnsafeArchiveError: see :func:`superres.data.archives.extract_archive`.
    """
    source = _source(name)
    if source.parts:
        return [
            report
            for part in source.parts
            for report in get_dataset(
                part,
                root,
                from_path=from_path,
                accept_terms=accept_terms,
                progress=progress,
                retry=retry,
                limits=limits,
            )
        ]
    data_root = resolve_data_root(root)
    make_output_folder(data_root, "--root")
    if dataset_status(source, data_root).present:
        report = verify_dataset(source, data_root)
        if report.found != report.expected:  # `superres data verify` says more
            raise DatasetModifiedError(
                f"{source.name} is in {report.folder} but differs from the release "
                f"({report.describe()}). Remove {report.folder} and get it again."
            )
        logger.info("%s is already in %s (%s)", source.name, report.folder, report.describe())
        return [report]
    if from_path is not None:
        _import(source, data_root, Path(from_path).expanduser(), limits)
    elif not source.archives:
        raise DatasetNotFoundError(
            f"{source.name} cannot be downloaded directly. {source.request or source.terms}"
        )
    else:
        _accept(source, data_root, accept_terms)
        for archive in source.archives:
            path = _download_archive(source, archive, data_root, progress=progress, retry=retry)
            _install(archive, path, data_root, limits)
    report = verify_dataset(source, data_root)
    logger.info("%s placed in %s: %s", source.name, report.folder, report.describe())
    return [report]


def all_statuses(root: str | os.PathLike[str] | None = None) -> list[SetStatus]:
    """:func:`dataset_status` of every known set."""
    return [dataset_status(name, root) for name in list_sources()]
