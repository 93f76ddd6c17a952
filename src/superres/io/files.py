"""Atomic file writes: a reader sees the old file or the complete new one, never a half file."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from superres.errors import OutputPathError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], *, text: bool = False) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success fsync it and rename it over ``path``.

    On any exception the temporary file is removed and an existing file at ``path`` is untouched.
    The parent folder must exist (commands create it first, see :func:`make_output_folder`).

    Example::

        with atomic_write("results.json", text=True) as f:
            json.dump(data, f)
    """
    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        f: IO = os.fdopen(fd, "w", encoding="utf-8", newline="") if text else os.fdopen(fd, "wb")
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give the result the permissions a plain open() would.
        tmp.chmod(0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def current_umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path, text=True) as f:
        f.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path) as f:
        f.write(data)


def check_output_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """Raise :class:`OutputPathError` unless ``path`` is a folder or can be made one.

    The one rule of every command's outputs: a missing output folder is created, parents
    included (:func:`make_output_folder`); a file where it or one of its parents should be is an
    error naming that file. ``flag`` names the option in the message (``--out``, ``-o``).
    Commands call this before any work, so a bad path fails before a long run.
    """
    folder = Path(path).expanduser()
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return folder
        if candidate.exists() or candidate.is_symlink():
            what = "is a file" if candidate.is_file() else "is not a folder"
            where = "" if candidate == folder else f" (a folder of {str(folder)!r})"
            raise OutputPathError(
                f"{flag} {str(folder)!r}: {str(candidate)!r}{where} {what}; an output folder "
                "goes there: give another path, or move that file away"
            )
    return folder


def make_output_folder(path: str | os.PathLike[str], flag: str) -> Path:
    """Create the output folder ``path`` and its missing parents (see
    :func:`check_output_folder`, which it applies first); returns it."""
    folder = check_output_folder(path, flag)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def resolve_data_root(root: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``root`` if given, else ``SUPERRES_DATA``, else ``<user cache>/data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("SUPERRES_DATA")
    if env:
        return Path(env).expanduser()
    return user_cache_dir() / "data"


def user_cache_dir() -> Path:
    """``SUPERRES_CACHE``, else the platform's per-user cache folder + ``superres``."""
    env = os.environ.get("SUPERRES_CACHE")
    if env:
        return Path(env)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "superres"
