"""superres.io.hub.fetch against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from conftest import FileServer
from superres.io.files import current_umask
from superres.io.hub import (
    ChecksumMismatchError,
    DownloadError,
    HubError,
    MissingFileError,
    OfflineError,
    default_cache_dir,
    fetch,
    sha256_file,
)

PAYLOAD = b"superres test weights\n" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(server: FileServer) -> FileServer:
    """The shared local server, serving :data:`PAYLOAD` at ``/w.bin`` (404 elsewhere)."""
    server.files["/w.bin"] = PAYLOAD
    return server


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own cache and network access allowed."""
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SUPERRES_OFFLINE", raising=False)


def _no_temp_files(folder: Path) -> bool:
    return not folder.exists() or not any(p.name.endswith(".part") for p in folder.iterdir())


def test_download_then_cached_without_a_request(server: FileServer, tmp_path: Path) -> None:
    path = fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA, progress=False)
    assert path == tmp_path / "cache" / "hub" / "w.bin"
    assert path == default_cache_dir() / "w.bin"
    assert path.read_bytes() == PAYLOAD
    assert server.requests == ["/w.bin"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # not mkstemp's 0600

    again = fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA.upper(), progress=False)
    assert again == path
    assert server.requests == ["/w.bin"]  # served from the cache: no second request
    assert _no_temp_files(path.parent)


def test_cache_dir_and_filename_options(server: FileServer, tmp_path: Path) -> None:
    path = fetch(
        server.url("/w.bin"),
        sha256=None,
        cache_dir=tmp_path / "mine",
        filename="renamed.pth",
        progress=False,
    )
    assert path == tmp_path / "mine" / "renamed.pth"
    assert sha256_file(path) == PAYLOAD_SHA


def test_bad_hash_deletes_the_download(server: FileServer, tmp_path: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(ChecksumMismatchError) as info:
        fetch(server.url("/w.bin"), sha256=wrong, progress=False)
    message = str(info.value)
    assert wrong in message  # both hashes named
    assert PAYLOAD_SHA in message
    assert info.value.expected == wrong
    assert info.value.actual == PAYLOAD_SHA
    folder = tmp_path / "cache" / "hub"
    assert not (folder / "w.bin").exists()
    assert _no_temp_files(folder)
    assert isinstance(info.value, ValueError)


def test_corrupt_cached_file_is_reported_not_trusted(server: FileServer, tmp_path: Path) -> None:
    folder = tmp_path / "cache" / "hub"
    folder.mkdir(parents=True)
    (folder / "w.bin").write_bytes(b"truncated")
    with pytest.raises(ChecksumMismatchError, match=r"delete .*w\.bin"):
        fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA, progress=False)
    assert server.requests == []


def test_http_404_names_the_manual_fix(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        fetch(server.url("/missing.pth"), sha256=PAYLOAD_SHA, progress=False)
    message = str(info.value)
    assert "HTTP 404" in message
    assert "manually" in message
    assert str(tmp_path / "cache" / "hub" / "missing.pth") in message
    assert "local path" in message
    assert _no_temp_files(tmp_path / "cache" / "hub")


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and now has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DownloadError, match="manually") as info:
        fetch(f"http://127.0.0.1:{port}/w.bin", sha256=None, progress=False, timeout=5)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, HubError)
    assert not (tmp_path / "cache" / "hub" / "w.bin").exists()


def test_offline_refuses_downloads_but_serves_the_cache(
    server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    with pytest.raises(OfflineError, match="SUPERRES_OFFLINE"):
        fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA, progress=False)
    assert server.requests == []

    monkeypatch.delenv("SUPERRES_OFFLINE")
    path = fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA, progress=False)
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    assert fetch(server.url("/w.bin"), sha256=PAYLOAD_SHA, progress=False) == path


def test_local_path(tmp_path: Path) -> None:
    local = tmp_path / "weights.pth"
    local.write_bytes(PAYLOAD)
    assert fetch(local, sha256=PAYLOAD_SHA) == local
    assert fetch(str(local), sha256=None) == local
    with pytest.raises(ChecksumMismatchError, match=PAYLOAD_SHA):
        fetch(local, sha256="f" * 64)
    assert local.exists()  # a user's own file is never deleted
    with pytest.raises(MissingFileError, match="does not exist"):
        fetch(tmp_path / "nope.pth", sha256=None)
    with pytest.raises(MissingFileError, match="folder"):
        fetch(tmp_path, sha256=None)


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "0" * 63])
def test_malformed_sha256_is_rejected(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="64 hexadecimal"):
        fetch(tmp_path, sha256=bad)


def test_unsupported_scheme_and_bad_filename() -> None:
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        fetch("ftp://example.org/w.bin", sha256=None)
    with pytest.raises(ValueError, match="file name"):
        fetch("http://127.0.0.1:9/", sha256=None)
