"""Cached, hash-checked file downloads (weights, backbones) and local-path pass-through.

:func:`fetch` turns a URL or a local path into a local :class:`~pathlib.Path`:

* a **local path** is returned as it is (after a sha256 check when a hash is given); nothing is
  copied;
* an **http(s) URL** is downloaded once into the cache folder (``SUPERRES_CACHE``, else the
  platform's user cache + ``superres``; files go to ``<cache>/hub/``), and later calls return the
  cached file without touching the network.

A download streams into ``.NAME.part`` beside its destination; only a file whose hash matches is
renamed into place (``os.replace``, atomic on one file system), so an interrupted or corrupted
download never leaves a file that a later call would trust. A connection that drops or times out,
or an HTTP 5xx, is retried with exponential backoff (:class:`RetryPolicy`), each try resuming the
partial file with an HTTP ``Range`` request (a server that ignores it answers 200 and the file is
sent again from byte 0); a partial file left by a failed call is resumed by the next call. Several
processes (e.g. DDP ranks) downloading the same file take turns through a lock file beside it.

``SUPERRES_OFFLINE=1`` refuses every download with :class:`OfflineError`; cached files and local
paths still work. Every failure is a named :class:`HubError` whose message says which file to put
where, so a user behind a firewall can download it by other means.

This module imports only :mod:`superres.errors`, and :mod:`superres.data.catalog` lazily for the
default cache folder.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from superres.errors import SuperresError
from superres.io.files import current_umask, user_cache_dir

__all__ = [
    "ChecksumMismatchError",
    "DownloadError",
    "HubError",
    "MissingFileError",
    "OfflineError",
    "RetryPolicy",
    "default_cache_dir",
    "fetch",
    "sha256_file",
]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB: large enough to keep hashing near disk speed
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MD5_RE = re.compile(r"[0-9a-f]{32}")

#: Expected digests of one file, by hashlib algorithm name (``"sha256"``, ``"md5"``).
Digests = Mapping[str, str]
_OFFLINE_VALUES = ("1", "true", "yes", "on")


class HubError(SuperresError):
    """A file could not be provided by :func:`fetch` (base class of the errors below)."""


class MissingFileError(HubError, FileNotFoundError):
    """A local path given to :func:`fetch` does not exist or is not a file."""

    def __str__(self) -> str:  # FileNotFoundError would otherwise format an errno message
        return str(self.args[0])


class ChecksumMismatchError(HubError, ValueError):
    """A file's sha256 differs from the expected one (a corrupt, truncated or wrong file)."""

    def __init__(
        self, source: str, expected: str, actual: str, advice: str, *, algorithm: str = "sha256"
    ) -> None:
        self.source = source
        self.expected = expected
        self.actual = actual
        self.algorithm = algorithm
        super().__init__(
            f"{algorithm} mismatch for {source}: expected {expected}, got {actual}. {advice}"
        )


class DownloadError(HubError, OSError):
    """A download failed (no network, HTTP error, refused connection, interrupted transfer)."""

    def __str__(self) -> str:
        return str(self.args[0])


class OfflineError(DownloadError):
    """A download was needed but ``SUPERRES_OFFLINE`` forbids network access."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How :func:`fetch` retries a download that failed on the way (a dropped or timed-out
    connection, an HTTP 5xx): ``retries`` more tries, the n-th after ``backoff * 2**n`` seconds,
    each resuming where the last one stopped. ``sleep`` waits (tests pass a recorder)."""

    retries: int = 3
    backoff: float = 1.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


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


def _check_md5(md5: str | None) -> str | None:
    if md5 is None:
        return None
    normalized = md5.strip().lower()
    if not _MD5_RE.fullmatch(normalized):
        raise ValueError(f"md5 must be 32 hexadecimal characters; got {md5!r}")
    return normalized


def _digests(sha256: str | None, md5: str | None) -> dict[str, str]:
    pinned = {"sha256": _check_sha256(sha256), "md5": _check_md5(md5)}
    return {algorithm: value for algorithm, value in pinned.items() if value is not None}


def _hash_file(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """The hex digests of ``path`` for each algorithm, read once in 1 MiB chunks."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def _verify_digests(path: Path, expected: Digests, source: str, advice: str = "") -> None:
    """Raise :class:`ChecksumMismatchError` unless ``path`` has every ``expected`` digest."""
    if not expected:
        return
    actual = _hash_file(path, tuple(expected))
    for algorithm, value in expected.items():
        if actual[algorithm] != value:
            raise ChecksumMismatchError(
                source, value, actual[algorithm], advice, algorithm=algorithm
            )


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
    md5: str | None = None,
    retry: RetryPolicy | None = None,
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
        md5: an expected hex md5 as well (what many dataset pages publish), checked like
            ``sha256``.
        retry: how a download that fails on the way is retried (default :class:`RetryPolicy`:
            3 more tries after 1, 2 and 4 s). Every try resumes the partial file
            ``.NAME.part`` with an HTTP Range request; a server that ignores Range sends the whole
            file again. A partial file left by a failed call is resumed by the next one.

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
    expected = _digests(sha256, md5)
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
        return _cached(dest, expected, source)

    pins = ", ".join(f"{a} {v}" for a, v in expected.items()) or "sha256 not pinned"
    manual = (
        f"Download {source} manually to {dest} ({pins}), or pass the local path of the file "
        "instead of the URL."
    )
    if _offline():
        raise OfflineError(
            f"{dest.name} is not in the cache and SUPERRES_OFFLINE is set, so it will not be "
            f"downloaded. {manual} Or unset SUPERRES_OFFLINE to allow the download."
        )
    if not expected:
        logger.warning(
            "downloading %s without a pinned sha256; its content is not verified", source
        )
    _download(
        source,
        dest,
        expected,
        progress=progress,
        timeout=timeout,
        manual=manual,
        retry=retry or RetryPolicy(),
    )
    return dest


def _cached(dest: Path, expected: Digests, source: str) -> Path:
    """``dest``, a file already in the cache, after checking its digests."""
    _verify_digests(
        dest,
        expected,
        str(dest),
        f"The cached file is corrupt or not the one published at {source}; delete {dest} to "
        "download it again, or replace it with the right file.",
    )
    logger.debug("using cached %s", dest)
    return dest


def _local(path: Path, expected: Digests) -> Path:
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise MissingFileError(
            f"{str(path)!r} {what}; expected an existing file. Check the path, or pass the "
            "http(s) URL of the file to download it."
        )
    _verify_digests(
        path,
        expected,
        str(path),
        "The file is corrupt, truncated or a different file; download it again, or pass "
        "sha256=None if you deliberately use another file.",
    )
    return path


def _part_path(dest: Path) -> Path:
    """Where the download of ``dest`` grows: ``.NAME.part`` beside it, the same on every try, so
    an interrupted download is resumed by the next call."""
    return dest.with_name(f".{dest.name}.part")


def _retryable(exc: BaseException) -> bool:
    """A failure worth another try: a dropped or timed-out connection, or a server error (5xx).
    A refused connection, a 4xx answer or a local error is final."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code >= 500
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, ConnectionRefusedError):
        return False
    return isinstance(
        exc, (_CutShortError, TimeoutError, ConnectionError, http.client.HTTPException)
    )


class _CutShortError(OSError):
    """The server closed the connection before the announced number of bytes arrived."""


def _open_part(part: Path, response: http.client.HTTPResponse, offset: int) -> tuple[int, int]:
    """Prepare ``part`` for the body of ``response``: keep its first ``offset`` bytes when the
    server resumed there (206), else empty it. Returns (bytes kept, total size or -1)."""
    length = response.headers.get("Content-Length")
    body = int(length) if length and length.isdigit() else -1
    content_range = response.headers.get("Content-Range", "")
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", content_range.strip())
    if offset and response.status == 206 and match and int(match.group(1)) == offset:
        total = int(match.group(2)) if match.group(2) != "*" else -1
        with open(part, "r+b") as out:
            out.truncate(offset)
        return offset, total
    # A server that ignores Range answers 200 with the whole file: start again from byte 0.
    if offset:
        logger.info("the server did not resume %s; downloading it from the start", part.name)
    part.write_bytes(b"")
    return 0, body


def _stream(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """One try: append the rest of ``url`` to ``part`` (resuming with a Range request)."""
    from tqdm import tqdm  # a dependency; only needed when something is downloaded

    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "superres"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        start, total = _open_part(part, response, offset)
        received = start  # counted here: a disabled tqdm counts nothing
        with (
            open(part, "ab") as out,
            tqdm(
                total=total if total >= 0 else None,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name[1:-5],
                disable=not progress or None,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total >= 0 and received < total:
            raise _CutShortError(f"got {received} of {total} bytes")


def _fetch_part(
    url: str, part: Path, *, progress: bool, timeout: float, retry: RetryPolicy, manual: str
) -> None:
    """Get the whole of ``url`` into ``part``, retrying with exponential backoff."""
    for attempt in range(retry.retries + 1):
        try:
            _stream(url, part, progress=progress, timeout=timeout)
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # the part is not a prefix of the file any more: start over
                part.unlink(missing_ok=True)
            if exc.code != 416 and (not _retryable(exc) or attempt == retry.retries):
                raise DownloadError(
                    f"cannot download {url}: HTTP {exc.code} {exc.reason}. {manual}"
                ) from exc
            if exc.code == 416 and attempt == retry.retries:
                raise DownloadError(f"cannot download {url}: HTTP 416. {manual}") from exc
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if not _retryable(exc) or attempt == retry.retries:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                kept = part.stat().st_size if part.is_file() else 0
                resume = f" The {kept} bytes received are kept in {part}; run again to resume."
                raise DownloadError(
                    f"cannot download {url}: {reason}.{resume if kept else ''} {manual}"
                ) from exc
        delay = retry.backoff * (2**attempt)
        logger.warning("download of %s failed; retrying in %.1f s", url, delay)
        retry.sleep(delay)


def _download(
    url: str,
    dest: Path,
    expected: Digests,
    *,
    progress: bool,
    timeout: float,
    manual: str,
    retry: RetryPolicy,
) -> None:
    """Download ``url`` into ``.NAME.part`` beside ``dest`` (resuming what an earlier try left),
    check it, and rename it into place only if it matches."""
    part = _part_path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock = open(dest.with_name(f".{dest.name}.lock"), "a+b")  # noqa: SIM115 - held below
    except OSError as exc:
        raise DownloadError(
            f"cannot write to the cache folder {dest.parent}: {exc}. Set SUPERRES_CACHE to a "
            f"writable folder, or pass cache_dir=. {manual}"
        ) from exc
    with lock:
        _lock(lock)  # several processes (DDP ranks) downloading one file take turns
        try:
            if dest.is_file():  # another process installed it while we waited
                return
            logger.info("downloading %s to %s", url, dest)
            _fetch_part(url, part, progress=progress, timeout=timeout, retry=retry, manual=manual)
            _install_part(part, dest, expected, url, manual)
        finally:
            Path(lock.name).unlink(missing_ok=True)


def _install_part(part: Path, dest: Path, expected: Digests, url: str, manual: str) -> None:
    """Rename the complete ``part`` to ``dest`` if it has the ``expected`` digests; else delete
    it and raise :class:`ChecksumMismatchError`."""
    try:
        _verify_digests(part, expected, url)
    except ChecksumMismatchError as exc:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            url,
            exc.expected,
            exc.actual,
            "The download was deleted. The server may have served an error page or another "
            f"version of the file; try again later, or {manual[0].lower()}{manual[1:]}",
            algorithm=exc.algorithm,
        ) from None
    part.chmod(0o666 & ~current_umask())  # a shared SUPERRES_CACHE stays readable to others
    os.replace(part, dest)


def _lock(handle: IO[bytes]) -> None:
    """Hold an exclusive lock on ``handle`` until it is closed (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: concurrent downloads are not serialised
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
