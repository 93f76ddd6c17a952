"""The asset catalog and its one resolver: found, verified, downloaded only when asked."""

from __future__ import annotations

import dataclasses
import hashlib
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import FileServer
from superres import assets
from superres.assets import Asset, asset_path, get_asset, list_assets
from superres.cli import main
from superres.errors import AssetNotFoundError
from superres.io.hub import ChecksumMismatchError


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No copy of anything anywhere: empty package folder, data root, caches; no network."""
    monkeypatch.setattr(assets, "PACKAGE_DIR", tmp_path / "package")
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("SUPERRES_OFFLINE", raising=False)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    return tmp_path


def _record(url: str, body: bytes, **changes: object) -> Asset:
    fields: dict[str, object] = {
        "name": "test/blob",
        "filename": "blob.bin",
        "summary": "a test blob",
        "needed_by": "the test",
        "licence": "-",
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "urls": (url,),
        "data_paths": ("blobs/blob.bin",),
        "option": "--blob",
    }
    fields.update(changes)
    return Asset(**fields)  # type: ignore[arg-type]


Publish = Callable[[bytes], None]


@pytest.fixture
def publish(server: FileServer, replace_asset: Callable[[Asset], None]) -> Publish:
    """Serve ``body`` as ``/blob.bin`` on the local server and pin the catalog's ``test/blob``
    to it (its sha256 and size)."""

    def publish_(body: bytes) -> None:
        server.files["/blob.bin"] = body
        replace_asset(_record(server.url("/blob.bin"), body))

    return publish_


# --- the catalog ----------------------------------------------------------------------------------


def test_every_asset_is_pinned_or_never_downloaded() -> None:
    names = list_assets()
    assert len(names) == len(set(names)) >= 20
    for name in names:
        asset = get_asset(name)
        assert asset.licence
        assert asset.needed_by
        assert asset.summary
        assert all(url.startswith("https://") for url in asset.urls), name
        if asset.sha256 is None:
            assert not asset.downloadable, name
    # The one file we could not pin is the Ma model: it is never downloaded.
    assert [n for n in names if get_asset(n).sha256 is None] == ["ma/model"]
    kinds = {name.split("/")[0] for name in names}
    assert kinds == {"zoo", "imagenet", "lpips", "niqe", "ma"}


def test_records_are_checked() -> None:
    with pytest.raises(ValueError, match="64 lower-case hex"):
        _record("https://x/y", b"", sha256="ABC")
    with pytest.raises(ValueError, match="no URL"):
        _record("https://x/y", b"", urls=(), data_paths=())
    with pytest.raises(ValueError, match="lower-case"):
        _record("https://x/y", b"", name="Test/Blob")


# --- one error for every missing asset ------------------------------------------------------------


@pytest.mark.parametrize("name", list_assets())
def test_a_missing_asset_is_one_named_error(name: str, empty: Path) -> None:
    asset = get_asset(name)
    with pytest.raises(AssetNotFoundError) as info:
        asset_path(name)
    message = str(info.value)
    assert asset.filename in message
    assert asset.needed_by in message
    for place in assets.places(asset):
        assert str(place) in message
    if asset.packaged is not None:
        assert "reinstall superres" in message
    elif asset.downloadable:
        assert f"superres assets get {name}" in message
        assert str(asset.sha256) in message
    elif asset.urls:
        assert "no pinned sha256" in message
        assert asset.urls[0] in message
    else:
        assert "not published for download" in message
    if asset.option is not None and asset.packaged is None:
        assert asset.option in message
    assert "\n" not in message
    assert isinstance(info.value, FileNotFoundError)


def test_nothing_downloads_unless_asked(empty: Path, server: FileServer, publish: Publish) -> None:
    publish(b"pinned bytes")
    with pytest.raises(AssetNotFoundError, match="superres assets get test/blob"):
        asset_path("test/blob")
    assert server.requests == []


# --- finding, verifying, downloading --------------------------------------------------------------


def test_search_order_and_verification(empty: Path, replace_asset: Callable[[Asset], None]) -> None:
    body = b"the right bytes"
    replace_asset(_record("https://example.invalid/blob.bin", body))
    cached = empty / "cache" / "hub" / "blob.bin"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(body)
    assert asset_path("test/blob") == cached
    local = empty / "data" / "blobs" / "blob.bin"
    local.parent.mkdir(parents=True)
    local.write_bytes(body)
    assert asset_path("test/blob") == local  # the data root comes before the cache
    local.write_bytes(b"edited")
    with pytest.raises(ChecksumMismatchError, match=r"blobs/blob\.bin"):
        asset_path("test/blob")
    assert local.read_bytes() == b"edited"  # never replaced
    assert assets.asset_state(get_asset("test/blob")) == ("wrong sha256", local)
    # The user's own copy is used as it is.
    own = empty / "own.bin"
    own.write_bytes(b"anything")
    assert asset_path("test/blob", path=own) == own
    with pytest.raises(AssetNotFoundError, match="does not exist"):
        asset_path("test/blob", path=empty / "missing.bin")


def test_several_assets_for_one_purpose(
    empty: Path, replace_asset: Callable[[Asset], None]
) -> None:
    body = b"features only"
    replace_asset(_record("https://example.invalid/a", body, name="test/full", filename="a"))
    replace_asset(_record("", body, name="test/part", filename="b", urls=()))
    with pytest.raises(AssetNotFoundError) as info:
        asset_path(("test/part", "test/full"))
    assert "blobs/blob.bin" in str(info.value)
    assert "superres assets get test/full" in str(info.value)
    part = empty / "data" / "blobs" / "blob.bin"
    part.parent.mkdir(parents=True)
    part.write_bytes(body)
    assert asset_path(("test/part", "test/full")) == part


@pytest.fixture
def online(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty cache and data root, downloads allowed (to the local server only)."""
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SUPERRES_OFFLINE", raising=False)
    return tmp_path


def test_download_when_asked(
    online: Path, server: FileServer, publish: Publish, replace_asset: Callable[[Asset], None]
) -> None:
    tmp_path = online
    body = b"published bytes" * 100
    publish(body)
    path = asset_path("test/blob", download=True, progress=False)
    assert path == tmp_path / "cache" / "hub" / "blob.bin"
    assert path.read_bytes() == body
    assert asset_path("test/blob") == path  # now cached: no second request
    assert server.requests == ["/blob.bin"]
    # A server that serves other bytes: refused, nothing left behind.
    path.unlink()
    server.files["/blob.bin"] = b"tampered"
    with pytest.raises(ChecksumMismatchError):
        asset_path("test/blob", download=True, progress=False)
    assert list((tmp_path / "cache" / "hub").iterdir()) == []
    # An unpinned asset is never downloaded, even when asked.
    replace_asset(_record(server.url("/blob.bin"), body, sha256=None))
    with pytest.raises(AssetNotFoundError, match="no pinned sha256"):
        asset_path("test/blob", download=True)
    assert server.requests == ["/blob.bin", "/blob.bin"]


# --- the command ----------------------------------------------------------------------------------


def test_assets_command_lists_every_asset_with_its_sha256(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["assets"]) == 0
    out = capsys.readouterr().out
    for name in list_assets():
        asset = get_asset(name)
        line = next(row for row in out.splitlines() if row.startswith(f"| {name} |"))
        assert (asset.sha256 or "not pinned") in line
        assert "| missing |" in line
    assert main(["assets", "list", "lpips/*"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| lpips/")]
    assert len(rows) == 6


def test_assets_get(
    online: Path,
    publish: Publish,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tmp_path = online
    publish(b"x" * 1000)
    assert main(["assets", "get", "test/*", "--quiet"]) == 0
    assert f"test/blob: {tmp_path / 'cache' / 'hub' / 'blob.bin'}" in capsys.readouterr().out
    assert main(["assets", "get", "test/blod"]) == 2
    assert "Did you mean 'test/blob'" in capsys.readouterr().err
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache2"))
    assert main(["assets", "get", "ma/model"]) == 1
    err = capsys.readouterr().err
    assert "no pinned sha256" in err
    assert len(err.strip().splitlines()) == 1


def _sample_png(path: Path) -> Path:
    yy, xx = np.mgrid[0:128, 0:128]
    image = np.stack([np.sin(xx / 5) * 90 + 120, np.cos(yy / 7) * 70 + 110, (xx + yy) * 0.8], -1)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.data
def test_metrics_never_touch_the_network_unless_asked(
    empty: Path,
    data_root: Path,
    server: FileServer,
    replace_asset: Callable[[Asset], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = _sample_png(empty / "a.png")
    assert main(["metrics", str(image), str(image)]) == 0
    out = capsys.readouterr().out
    assert "skipped niqe:" in out
    assert "superres assets get niqe/pristine" in out
    assert "skipped lpips:" in out
    # With --download, NIQE's file comes from its (here: local) URL, verified, and scores.
    monkeypatch.undo()  # the real urlopen again; keep the empty folders
    monkeypatch.setattr(assets, "PACKAGE_DIR", empty / "package")
    monkeypatch.setenv("SUPERRES_DATA", str(empty / "data"))
    monkeypatch.setenv("SUPERRES_CACHE", str(empty / "cache"))
    params = (data_root / get_asset("niqe/pristine").data_paths[0]).read_bytes()
    server.files["/niqe.npz"] = params
    replace_asset(dataclasses.replace(get_asset("niqe/pristine"), urls=(server.url("/niqe.npz"),)))
    assert main(["metrics", str(image), "--download"]) == 0
    out = capsys.readouterr().out
    assert "niqe" in out.splitlines()[1]
    assert "skipped niqe" not in out
    assert server.requests == ["/niqe.npz"]
