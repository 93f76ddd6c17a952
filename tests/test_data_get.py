"""``superres data get / list / verify``: real archives served from 127.0.0.1 (never the internet).

The archives are built here from small PNGs (zip and tar.gz) and served by a handler that can drop
the connection mid-file, ignore Range requests or serve other bytes. Malicious archives (``../``,
absolute paths, links, a device file, a zip bomb) are refused with nothing left behind. Then the
real sets are imported from the shared data root and scored: the golden bicubic rows.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.data.archives import ExtractLimits, UnsafeArchiveError, extract_archive
from superres.data.catalog import DATASETS
from superres.data.sources import SOURCES, Archive, DataSource, get_source, reference_sha256
from superres.data.store import TermsNotAcceptedError, get_dataset, verify_dataset
from superres.io.hub import ChecksumMismatchError, OfflineError, RetryPolicy, fetch

STEMS = ("a", "b", "c")


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _tar_gz(members: dict[str, bytes], extra: tuple[tarfile.TarInfo, ...] = ()) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return out.getvalue()


IMAGES = {f"tiny_release/images/{s}.png": _png(i) for i, s in enumerate(STEMS)}
ARCHIVES = {"/tiny.zip": _zip(IMAGES), "/tiny.tar.gz": _tar_gz(IMAGES)}


class Server:
    """Serves ``files`` on 127.0.0.1 with Range support; ``drop_after`` cuts the next response
    after that many bytes, ``ignore_range`` answers 200 to Range requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = dict(ARCHIVES)
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: int | None = None
        self.ignore_range = False
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                wanted = self.headers.get("Range")
                outer.requests.append((self.path, wanted))
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if wanted and not outer.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                rest = body[start:]
                if outer.drop_after is not None:
                    rest, outer.drop_after = rest[: outer.drop_after], None
                    self.wfile.write(rest)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(rest)

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def _network_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SUPERRES_OFFLINE", raising=False)


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _tiny(server: Server, path: str, *, sha256: str | None = None) -> DataSource:
    body = server.files[path]
    archive = Archive(
        url=server.url(path),
        sha256=sha256 or hashlib.sha256(body).hexdigest(),
        layout=(("tiny_release/images", "Tiny/HR"),),
    )
    return DataSource(
        name="tiny",
        image_dir="Tiny/HR",
        summary="three test images",
        terms="for tests only",
        num_images=3,
        archives=(archive,),
    )


def _leftovers(root: Path) -> list[str]:
    """Files and folders under ``root`` that a refused get must not leave (the download cache
    holds nothing but accepted terms)."""
    found = [p.relative_to(root).as_posix() for p in root.rglob("*")]
    return [f for f in found if f not in (".downloads", ".downloads/tiny.terms-accepted")]


def _yes(source: DataSource) -> bool:
    del source
    return True


@pytest.mark.parametrize("path", ["/tiny.zip", "/tiny.tar.gz"])
def test_full_download_extracts_the_layout(server: Server, tmp_path: Path, path: str) -> None:
    root = tmp_path / "root"
    shown: list[str] = []

    def accept(source: DataSource) -> bool:
        shown.append(source.terms)
        return True

    (report,) = get_dataset(_tiny(server, path), root, accept_terms=accept, progress=False)
    assert report.ok
    assert report.found == 3
    assert sorted(p.name for p in (root / "Tiny" / "HR").iterdir()) == ["a.png", "b.png", "c.png"]
    assert (root / "Tiny" / "HR" / "a.png").read_bytes() == IMAGES["tiny_release/images/a.png"]
    assert shown == ["for tests only"]
    assert not list(root.rglob("*.part"))
    assert not list(root.glob(".extract-*"))
    # The terms are asked once; the set in place is not downloaded again.
    get_dataset(_tiny(server, path), root, accept_terms=None, progress=False)
    assert len(server.requests) == 1


def test_terms_refused_downloads_nothing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(TermsNotAcceptedError, match="for tests only"):
        get_dataset(_tiny(server, "/tiny.zip"), tmp_path / "root", progress=False)
    assert server.requests == []


def test_resume_after_the_connection_drops(server: Server, tmp_path: Path) -> None:
    body = server.files["/tiny.zip"]
    server.drop_after = len(body) // 2
    sleeps = Sleeps()
    retry = RetryPolicy(retries=2, backoff=0.5, sleep=sleeps)
    root = tmp_path / "root"
    (report,) = get_dataset(
        _tiny(server, "/tiny.zip"), root, accept_terms=_yes, progress=False, retry=retry
    )
    assert report.ok
    assert server.requests == [("/tiny.zip", None), ("/tiny.zip", f"bytes={len(body) // 2}-")]
    assert sleeps == [0.5]
    assert (root / ".downloads" / "tiny.zip").read_bytes() == body


def test_partial_file_left_by_a_failed_call_is_resumed(server: Server, tmp_path: Path) -> None:
    body = server.files["/tiny.tar.gz"]
    sha = hashlib.sha256(body).hexdigest()
    server.drop_after = 100
    no_retry = RetryPolicy(retries=0, sleep=Sleeps())
    with pytest.raises(OSError, match="run again to resume"):
        fetch(
            server.url("/tiny.tar.gz"),
            sha256=sha,
            cache_dir=tmp_path,
            progress=False,
            retry=no_retry,
        )
    assert (tmp_path / ".tiny.tar.gz.part").stat().st_size == 100
    path = fetch(server.url("/tiny.tar.gz"), sha256=sha, cache_dir=tmp_path, progress=False)
    assert path.read_bytes() == body
    assert server.requests[-1] == ("/tiny.tar.gz", "bytes=100-")
    assert not (tmp_path / ".tiny.tar.gz.part").exists()


def test_server_that_ignores_range_restarts_from_zero(server: Server, tmp_path: Path) -> None:
    body = server.files["/tiny.zip"]
    server.drop_after = 50
    server.ignore_range = True
    retry = RetryPolicy(retries=1, sleep=Sleeps())
    path = fetch(
        server.url("/tiny.zip"),
        sha256=hashlib.sha256(body).hexdigest(),
        cache_dir=tmp_path,
        progress=False,
        retry=retry,
    )
    assert path.read_bytes() == body  # not the first 50 bytes twice
    assert server.requests[-1] == ("/tiny.zip", "bytes=50-")


def test_md5_is_checked(server: Server, tmp_path: Path) -> None:
    body = server.files["/tiny.zip"]
    with pytest.raises(ChecksumMismatchError, match="md5 mismatch"):
        fetch(
            server.url("/tiny.zip"), sha256=None, md5="0" * 32, cache_dir=tmp_path, progress=False
        )
    good = fetch(
        server.url("/tiny.zip"),
        sha256=None,
        md5=hashlib.md5(body).hexdigest(),
        cache_dir=tmp_path,
        progress=False,
    )
    assert good.read_bytes() == body


def test_checksum_mismatch_is_refused_with_nothing_left(server: Server, tmp_path: Path) -> None:
    root = tmp_path / "root"
    source = _tiny(server, "/tiny.zip", sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ChecksumMismatchError, match="deleted"):
        get_dataset(source, root, accept_terms=_yes, progress=False)
    assert _leftovers(root) == []


def test_wrong_bytes_from_the_server_are_refused(server: Server, tmp_path: Path) -> None:
    root = tmp_path / "root"
    source = _tiny(server, "/tiny.zip")
    server.files["/tiny.zip"] = b"<html>maintenance</html>"
    with pytest.raises(ChecksumMismatchError):
        get_dataset(source, root, accept_terms=_yes, progress=False)
    assert _leftovers(root) == []


def test_offline_names_the_url_and_the_from_alternative(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    source = _tiny(server, "/tiny.zip")
    with pytest.raises(OfflineError) as info:
        get_dataset(source, tmp_path / "root", accept_terms=_yes, progress=False)
    message = str(info.value)
    assert server.url("/tiny.zip") in message
    assert "--from" in message
    assert "SUPERRES_OFFLINE" in message
    assert server.requests == []


def _symlink(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def _zip_symlink() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        info = zipfile.ZipInfo("tiny_release/images/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    return out.getvalue()


_GOOD = {"tiny_release/images/a.png": _png(0)}
MALICIOUS = {
    "zip-dotdot": (_zip({**_GOOD, "../evil.txt": b"x"}), "climbs"),
    "tar-dotdot": (_tar_gz({**_GOOD, "tiny_release/../../evil.txt": b"x"}), "climbs"),
    "zip-absolute": (_zip({**_GOOD, "/tmp/evil.txt": b"x"}), "absolute"),
    "tar-absolute": (_tar_gz({**_GOOD, "/tmp/evil.txt": b"x"}), "absolute"),
    "zip-symlink": (_zip_symlink(), "symbolic link"),
    "tar-symlink": (_tar_gz(_GOOD, (_symlink("tiny_release/x", "/etc/passwd"),)), "symbolic"),
    "tar-hardlink": (
        _tar_gz(_GOOD, (_symlink("tiny_release/x", "/etc/passwd", tarfile.LNKTYPE),)),
        "hard link",
    ),
    "tar-device": (_tar_gz(_GOOD, (_device("tiny_release/null"),)), "device"),
    "zip-bomb": (_zip({"tiny_release/images/zeros.png": bytes(5 << 20)}), "declare more than"),
    "tar-bomb": (_tar_gz({"tiny_release/images/zeros.png": bytes(5 << 20)}), "declare more than"),
    "too-many-files": (_zip({f"tiny_release/{i}.png": b"x" for i in range(50)}), "more than 40"),
}
LIMITS = ExtractLimits(max_bytes=1 << 20, max_files=40)


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_archive_is_refused_with_nothing_left(tmp_path: Path, case: str) -> None:
    data, reason = MALICIOUS[case]
    archive = tmp_path / "in" / "evil.bin"
    archive.parent.mkdir()
    archive.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UnsafeArchiveError, match=reason):
        extract_archive(archive, out / "tree", limits=LIMITS)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/evil.txt").exists()


def test_malicious_download_leaves_nothing_in_the_root(server: Server, tmp_path: Path) -> None:
    server.files["/tiny.zip"] = MALICIOUS["zip-dotdot"][0]
    root = tmp_path / "root"
    with pytest.raises(UnsafeArchiveError):
        get_dataset(_tiny(server, "/tiny.zip"), root, accept_terms=_yes, progress=False)
    assert [p for p in _leftovers(root) if p != ".downloads/tiny.zip"] == []


def test_sources_agree_with_the_catalog() -> None:
    for name in DATASETS:
        assert get_source(name).folder == DATASETS.get(name).folder, name
        assert get_source(name).num_images == DATASETS.get(name).num_images, name
    for name in SOURCES:
        source = get_source(name)
        assert source.terms
        assert source.archives or source.parts or source.request, name
        for archive in source.archives:
            assert archive.layout
            assert archive.url.startswith(("http://", "https://"))
    assert {"df2k", "pirm-test", "ade20k", "div2k-valid-unknown-x3"} <= set(SOURCES)
    assert len(reference_sha256("Urban100")) == 100


# --- the real sets ------------------------------------------------------------------------------

GOLDEN_X4 = {"set5": 28.4302, "set14": 26.0914, "bsd100": 25.9620, "urban100": 23.1406}


@pytest.mark.data
@pytest.mark.slow  # about 2 minutes: Urban100 is scored
def test_get_from_the_shared_root_then_eval_gives_the_golden_bicubic_rows(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    names = ["set5", "set14", "bsd100", "urban100", "t91", "bsd200"]
    assert main(["data", "get", *names, "--from", str(data_root), "--root", str(root), "-q"]) == 0
    out = capsys.readouterr().out
    assert out.count("sha256 checked") == len(names)
    assert main(["data", "verify", *names, "--root", str(root)]) == 0
    result = tmp_path / "eval.json"
    argv = ["eval", "--models", "bicubic", "--datasets", *GOLDEN_X4, "--scales", "4"]
    assert main([*argv, "--data-root", str(root), "-q", "--output-json", str(result)]) == 0
    rows = {r["dataset"]: r for r in json.loads(result.read_text())["results"]}
    for name, golden in GOLDEN_X4.items():
        assert rows[name]["psnr_y"] == pytest.approx(golden, abs=5e-5), name


@pytest.mark.data
def test_list_shows_every_set_with_its_count(
    data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "list", "--root", str(data_root)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert set(lines) == set(SOURCES)
    for name, count in {"set5": 5, "set14": 14, "bsd100": 100, "urban100": 100, "t91": 91}.items():
        assert f"{count}/{count} images" in lines[name]
    assert "missing" in lines["manga109"]


@pytest.mark.data
def test_verify_catches_removed_extra_and_modified_files(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    shutil.copytree(data_root / "Set5", root / "Set5")
    assert verify_dataset("set5", root).ok
    (root / "Set5" / "HR" / "head.png").unlink()
    shutil.copy(root / "Set5" / "HR" / "bird.png", root / "Set5" / "HR" / "extra.png")
    with open(root / "Set5" / "LR_bicubic_x4" / "baby.png", "ab") as handle:
        handle.write(b"\0")
    report = verify_dataset("set5", root)
    assert report.missing == ("HR/head.png",)
    assert report.extra == ("HR/extra.png",)
    assert report.modified == ("LR_bicubic_x4/baby.png",)
    assert main(["data", "verify", "set5", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS" in out
    assert "head.png" in out
    assert "extra.png" in out
    assert "baby.png" in out


@pytest.mark.data
def test_from_a_modified_copy_places_nothing(data_root: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(data_root / "Set5", copy / "Set5")
    (copy / "Set5" / "HR" / "head.png").unlink()
    root = tmp_path / "root"
    with pytest.raises(Exception, match="not the set5 release"):
        get_dataset("set5", root, from_path=copy)
    assert not (root / "Set5").exists()
    assert [p.name for p in root.iterdir()] == []


def test_eval_scores_div2k_valid_in_the_layout_data_get_makes(tmp_path: Path) -> None:
    """`superres eval --datasets div2k-valid` reads `DIV2K_valid/HR` and the official LR that
    `data get div2k-valid-bicubic-x4` puts in `LR_bicubic/X4/0801x4.png` (issue: datasets, 5)."""
    source = get_source("div2k-valid")
    lr_source = get_source("div2k-valid-bicubic-x4")
    hr_dir = tmp_path / source.image_dir
    lr_dir = tmp_path / lr_source.image_dir
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    rng = np.random.default_rng(5)
    stems = DATASETS.get("div2k-valid").stems
    assert stems is not None
    for stem in stems:
        Image.fromarray(rng.integers(0, 256, (24, 28, 3), dtype=np.uint8)).save(
            hr_dir / f"{stem}.png"
        )
        # The "official" LR is black, unlike a bicubic of the noise: its score shows it is read.
        Image.fromarray(np.zeros((6, 7, 3), np.uint8)).save(lr_dir / f"{stem}x4.png")
    scores = {}
    for name, root in (("official", tmp_path), ("generated", tmp_path / "hr-only")):
        if name == "generated":
            shutil.copytree(hr_dir, root / source.image_dir)
        out = tmp_path / f"{name}.json"
        argv = ["eval", "--models", "bicubic", "--datasets", "div2k-valid", "--scales", "4"]
        assert main([*argv, "--data-root", str(root), "--output-json", str(out), "-q"]) == 0
        (result,) = json.loads(out.read_text())["results"]
        assert result["images"] == 100
        scores[name] = result["psnr_y"]
    assert abs(scores["official"] - scores["generated"]) > 0.5, scores
