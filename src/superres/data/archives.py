"""Safe extraction of the zip and tar (``.tar``, ``.tar.gz``, ``.tgz``) archives datasets ship in.

:func:`extract_archive` unpacks an archive into a new folder and refuses, before anything is placed,
every member that could write outside that folder or be something else than a plain file:

* names that are absolute (``/etc/x``, ``C:\\x``, ``\\\\host\\x``) or climb with ``..``;
* symbolic and hard links, device files, FIFOs (anything but files and folders);
* archives whose declared sizes add up to more than :attr:`ExtractLimits.max_bytes`, or with more
  than :attr:`ExtractLimits.max_files` members (a zip bomb). The bytes actually written are
  counted as well, so an archive whose headers lie is stopped at the same limit.

Extraction goes into a hidden temporary folder beside the destination, which is renamed into place
(``os.replace``, atomic on one file system) only when every member is out; a refused or broken
archive leaves nothing behind.

This module imports only :mod:`superres.errors`.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from superres.errors import SuperresError

__all__ = ["ExtractLimits", "UnsafeArchiveError", "archive_kind", "extract_archive"]

_CHUNK = 1 << 20


class UnsafeArchiveError(SuperresError, ValueError):
    """An archive holds a member that extraction refuses (a path escape, a link, a device file) or
    exceeds the size or file-count limit; nothing of it was extracted."""


@dataclass(frozen=True, kw_only=True)
class ExtractLimits:
    """The most an archive may unpack to.

    Attributes:
        max_bytes: total size of all files, in bytes (default 64 GiB: Flickr2K with its LR images
            is about 20 GB).
        max_files: number of members, folders included (default 200,000; ADE20K has about 27,000).
    """

    max_bytes: int = 64 << 30
    max_files: int = 200_000


@dataclass
class _Budget:
    """What is left of the limits while one archive is extracted."""

    limits: ExtractLimits
    archive: Path
    declared: int = 0
    written: int = 0
    members: int = 0

    def count_member(self, declared_size: int) -> None:
        self.members += 1
        self.declared += declared_size
        if self.members > self.limits.max_files:
            self.refuse(f"it has more than {self.limits.max_files} members")
        if self.declared > self.limits.max_bytes:
            self.refuse(f"its files declare more than {self.limits.max_bytes} bytes in all")

    def count_bytes(self, n: int) -> None:
        self.written += n
        if self.written > self.limits.max_bytes:
            self.refuse(f"it unpacks to more than {self.limits.max_bytes} bytes")

    def refuse(self, why: str) -> None:
        raise UnsafeArchiveError(
            f"refusing to extract {self.archive}: {why} (limits: {self.limits.max_bytes} bytes, "
            f"{self.limits.max_files} files). Nothing was extracted. If you trust this archive "
            "and it really is that large, extract it yourself and import the folder with --from."
        )


def archive_kind(path: Path) -> str:
    """``"zip"`` or ``"tar"``, read from the file's content (not its name).

    Raises:
        UnsafeArchiveError: the file is neither.
    """
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    raise UnsafeArchiveError(
        f"{path} is neither a zip nor a tar archive; expected a .zip, .tar, .tar.gz or .tgz file "
        "(a download may have saved an error page instead: delete it and try again)."
    )


def _safe_name(name: str, archive: Path) -> PurePosixPath | None:
    """The member's relative path, or ``None`` for the archive's own root (``./``)."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: member {name!r} has an absolute path. Nothing was "
            "extracted; the archive is malformed or malicious, get it from the official source."
        )
    parts = [p for p in posix.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(
            f"refusing to extract {archive}: member {name!r} climbs out of the destination with "
            "'..'. Nothing was extracted; the archive is malformed or malicious, get it from the "
            "official source."
        )
    return PurePosixPath(*parts) if parts else None


def _refuse_kind(archive: Path, name: str, what: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"refusing to extract {archive}: member {name!r} is {what}, and only plain files and "
        "folders are extracted. Nothing was extracted; get the archive from the official source."
    )


def _copy(source: IO[bytes], target: Path, budget: _Budget) -> None:
    with open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            budget.count_bytes(len(chunk))
            out.write(chunk)


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, bool]]:
    """Every member with whether it is a folder; links and special files are refused."""
    for info in zf.infolist():
        mode = info.external_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise _refuse_kind(archive, info.filename, "a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise _refuse_kind(archive, info.filename, "a device file, FIFO or socket")
        yield info, info.is_dir()


def _extract_zip(archive: Path, tmp: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        members = list(_zip_members(archive, zf))
        for info, _ in members:  # the declared sizes, before anything is written
            budget.count_member(info.file_size)
        budget.declared = 0
        budget.members = 0
        for info, is_dir in members:
            budget.count_member(info.file_size)
            rel = _safe_name(info.filename, archive)
            if rel is None:
                continue
            target = tmp / rel
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as source:
                _copy(source, target, budget)


def _extract_tar(archive: Path, tmp: Path, budget: _Budget) -> None:
    with tarfile.open(archive, mode="r:*") as tf:
        for member in tf:  # streamed: a .tar.gz is read once
            if member.issym():
                raise _refuse_kind(archive, member.name, "a symbolic link")
            if member.islnk():
                raise _refuse_kind(archive, member.name, "a hard link")
            if not (member.isfile() or member.isdir()):
                raise _refuse_kind(archive, member.name, "a device file, FIFO or other special")
            budget.count_member(member.size if member.isfile() else 0)
            rel = _safe_name(member.name, archive)
            if rel is None:
                continue
            target = tmp / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tf.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                raise _refuse_kind(archive, member.name, "not readable")
            with source:
                _copy(source, target, budget)


def extract_archive(
    archive: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    limits: ExtractLimits | None = None,
) -> Path:
    """Unpack ``archive`` (zip or tar, compressed or not) into the new folder ``dest``.

    Args:
        archive: the archive file; its kind is read from its content.
        dest: the folder to create; it must not exist yet. Its parent is created.
        limits: the size and file-count limits (default :class:`ExtractLimits`).

    Returns:
        ``dest``, holding the archive's members with their relative paths.

    Raises:
        UnsafeArchiveError: a member is absolute, climbs with ``..``, is a link or a special
            file, or the archive exceeds ``limits``; nothing is left behind.
        FileExistsError: ``dest`` exists already.
    """
    source, target = Path(archive), Path(dest)
    if target.exists():
        raise FileExistsError(f"{target} exists already; extract into a new folder")
    kind = archive_kind(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".extracting", dir=target.parent))
    budget = _Budget(limits=limits or ExtractLimits(), archive=source)
    try:
        if kind == "zip":
            _extract_zip(source, tmp, budget)
        else:
            _extract_tar(source, tmp, budget)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
