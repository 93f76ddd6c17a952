"""Cached, hash-checked file downloads (weights, backbones) and local-path pass-through.

:func:`fetch` turns a URL or a local path into a local :class:`~pathlib.Path`:

* a **local path** is returned as it is (after a sha256 check when a hash is given); nothing is
  copied;
* an **http(s) URL** is downloaded once into the cache folder (``SUPERRES_CACHE``, else the
  platform's user cache + ``superres``; files go to ``<cache>/hub/``), and later calls return the
  cached file without touching the network.

A download streams into a temporary file beside its destination while its sha256 is computed; only
a file whose hash matches is renamed into place (``os.replace``, atomic on one file system), so an
interrupted or corrupted download never leaves a file that a later call would trust. Several
processes (e.g. DDP ranks) may download the same file at once: each writes its own temporary file
and the renames all install identical bytes.

``SUPERRES_OFFLINE=1`` refuses every download with :class:`OfflineError`; cached files and local
paths still work. Every failure is a named :class:`HubError` whose message says which file to put
where, so a user behind a firewall can download it by other means.

This module imports only :mod:`superres.errors`, and :mod:`superres.data.catalog` lazily for the
default cache folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from superres.errors import SuperresError
from superres.io.files import current_umask, user_cache_dir

__all__ = [
    "ChecksumMismatchError",
    "DownloadError",
    "HubError",
    "MissingFileError",
    "OfflineError",
    "default_cache_dir",
    "fetch",
    "sha256_file",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB: large enough to keep hashing near disk speed
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_OFFLINE_VALUES = ("1", "true", "yes", "on")


class HubError(SuperresError):
    """A file could not be provided by :func:`fetch` (base class of the errors below)."""


class MissingFileError(HubError, FileNotFoundError):
    """A local path given to :func:`fetch` does not exist or is not a file."""

    def __str__(self) -> str:  # FileNotFoundError would otherwise format an errno message
        return str(self.args[0])


class ChecksumMismatchError(HubError, ValueError):
    """A file's sha256 differs from the expected one (a corrupt, truncated or wrong file)."""

    def __init__(self, source: str, expected: str, actual: str, advice: str) -> None:
        self.source = source
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"sha256 mismatch for {source}: expected {expected}, got {actual}. {advice}"
        )


class DownloadError(HubError, OSError):
    """A download failed (no network, HTTP error, refused connection, interrupted transfer)."""

    def __str__(self) -> str:
        return str(self.args[0])


class OfflineError(DownloadError):
    """A download was needed but ``SUPERRES_OFFLINE`` forbids network access."""


def default_cache_dir() -> Path:
    """``<user cache>/hub``: where :func:`fetch` stores downloads (``SUPERRES_CACHE`` moves it)."""
    return user_cache_dir() / "hub"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The lower-case hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _check_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    normalized = sha256.strip().lower()
    if not _SHA256_RE.fullmatch(normalized):
        raise ValueError(
            f"sha256 must be 64 hexadecimal characters; got {sha256!r}. Pass the full hash "
            "(e.g. from `sha256sum FILE`) or sha256=None to skip the check."
        )
    return normalized


def _offline() -> bool:
    return os.environ.get("SUPERRES_OFFLINE", "").strip().lower() in _OFFLINE_VALUES


def _filename_for(url: str, filename: str | None) -> str:
    name = filename if filename is not None else Path(urllib.parse.urlparse(url).path).name
    name = urllib.parse.unquote(name)
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(
            f"cannot derive a file name from {url!r} (got {name!r}); pass filename='name.ext' "
            "(a plain file name, no folders)."
        )
    return name


def fetch(
    url_or_path: str | os.PathLike[str],
    *,
    sha256: str | None,
    cache_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """A local path for ``url_or_path``: the path itself, or the cached download of the URL.

    Args:
        url_or_path: an ``http://``/``https://`` URL, or a local file path (anything else).
        sha256: the expected hex sha256 (64 characters, any case), checked on local files, on
            cached files and on every download; ``None`` skips the check (trust on first use).
            A check reads the whole file (about 1 s per 500 MB).
        cache_dir: folder for downloads; default :func:`default_cache_dir` (``<cache>/hub``).
        filename: name of the cached file; default the last component of the URL path.
        progress: show a tqdm progress bar on stderr while downloading.
        timeout: seconds to wait for the connection and for each read.

    Returns:
        The path of an existing file whose hash (when given) matches.

    Raises:
        MissingFileError: a local path that is not an existing file.
        ChecksumMismatchError: the local, cached or downloaded file has another sha256. A bad
            download is deleted; a local or cached file is left alone for the user to inspect.
        OfflineError: a download is needed while ``SUPERRES_OFFLINE=1``.
        DownloadError: the network request failed (HTTP error, refused connection, timeout,
            interrupted transfer); the message names the file to download manually and where.
        ValueError: a malformed ``sha256``, an unsupported URL scheme or no usable file name.
    """
    expected = _check_sha256(sha256)
    source = os.fspath(url_or_path)
    if not _is_url(source):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", source):
            raise ValueError(
                f"unsupported URL scheme in {source!r}; expected an http(s) URL or a local path. "
                "Download the file yourself and pass its local path."
            )
        return _local(Path(source).expanduser(), expected)

    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    dest = folder / _filename_for(source, filename)
    if dest.is_file():
        _verify(
            dest,
            expected,
            f"The cached file is corrupt or not the one published at {source}; delete {dest} to "
            "download it again, or replace it with the right file.",
        )
        logger.debug("using cached %s", dest)
        return dest

    manual = (
        f"Download {source} manually to {dest} (sha256 {expected or 'not pinned'}), or pass the "
        "local path of the file instead of the URL."
    )
    if _offline():
        raise OfflineError(
            f"{dest.name} is not in the cache and SUPERRES_OFFLINE is set, so it will not be "
            f"downloaded. {manual} Or unset SUPERRES_OFFLINE to allow the download."
        )
    if expected is None:
        logger.warning(
            "downloading %s without a pinned sha256; its content is not verified", source
        )
    _download(source, dest, expected, progress=progress, timeout=timeout, manual=manual)
    return dest


def _local(path: Path, expected: str | None) -> Path:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise MissingFileError(
            f"{str(path)!r} {what}; expected an existing file. Check the path, or pass the "
            "http(s) URL of the file to download it."
        )
    _verify(
        path,
        expected,
        "The file is corrupt, truncated or a different file; download it again, or pass "
        "sha256=None if you deliberately use another file.",
    )
    return path


def _verify(path: Path, expected: str | None, advice: str) -> None:
    """Raise :class:`ChecksumMismatchError` (ending with ``advice``) unless ``path`` hashes to
    ``expected``; an unpinned file (``expected=None``) is not read."""
    if expected is None:
        return
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumMismatchError(str(path), expected, actual, advice)


def _download(
    url: str, dest: Path, expected: str | None, *, progress: bool, timeout: float, manual: str
) -> None:
    """Stream ``url`` into a temporary file beside ``dest``; rename it into place if it matches."""
    from tqdm import tqdm  # a dependency; only needed when something is downloaded

    request = urllib.request.Request(url, headers={"User-Agent": "superres"})
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise DownloadError(
            f"cannot write to the cache folder {dest.parent}: {exc}. Set SUPERRES_CACHE to a "
            f"writable folder, or pass cache_dir=. {manual}"
        ) from exc
    tmp = Path(tmp_name)
    installed = False
    try:
        digest = hashlib.sha256()
        logger.info("downloading %s to %s", url, dest)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(request, timeout=timeout) as response,
            ):
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                    leave=False,
                ) as bar:
                    received = 0  # counted here: a disabled tqdm counts nothing
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if total is not None and received != total:
                    raise DownloadError(
                        f"download of {url} was cut short: got {received} of {total} bytes. "
                        f"{manual}"
                    )
        except urllib.error.HTTPError as exc:
            raise DownloadError(
                f"cannot download {url}: HTTP {exc.code} {exc.reason}. {manual}"
            ) from exc
        except urllib.error.URLError as exc:
            raise DownloadError(f"cannot download {url}: {exc.reason}. {manual}") from exc
        except (OSError, ValueError) as exc:
            if isinstance(exc, DownloadError):
                raise
            raise DownloadError(f"cannot download {url}: {exc}. {manual}") from exc
        actual = digest.hexdigest()
        if expected is not None and actual != expected:
            raise ChecksumMismatchError(
                url,
                expected,
                actual,
                "The download was deleted. The server may have served an error page or another "
                f"version of the file; try again later, or {manual[0].lower()}{manual[1:]}",
            )
        tmp.chmod(0o666 & ~current_umask())  # a shared SUPERRES_CACHE stays readable to others
        os.replace(tmp, dest)
        installed = True
    finally:
        if not installed:
            tmp.unlink(missing_ok=True)
