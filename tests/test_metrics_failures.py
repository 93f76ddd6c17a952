"""`superres metrics` on a folder goes on past a bad file, lists the failures and exits 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main


def _png(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


@pytest.fixture(autouse=True)
def _offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")


def _argv(tmp_path: Path, *paths: Path) -> list[str]:
    # An empty data root: NIQE, LPIPS and Ma are skipped, the fidelity metrics are scored.
    empty = tmp_path / "no-data"
    empty.mkdir(exist_ok=True)
    return ["metrics", *map(str, paths), "--data-root", str(empty)]


def test_a_bad_file_in_a_folder_is_listed_and_the_rest_scored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sr, hr = tmp_path / "sr", tmp_path / "hr"
    sr.mkdir()
    hr.mkdir()
    for i, name in enumerate(("a", "b")):
        _png(sr / f"{name}.png", 32, i)
        _png(hr / f"{name}.png", 32, 10 + i)
    (sr / "c.png").write_text("not an image")
    _png(hr / "c.png", 32, 3)
    out = tmp_path / "scores.json"
    code = main([*_argv(tmp_path, sr, hr), "--output-json", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert "1 of 3 image(s) could not be scored" in captured.err
    assert str(sr / "c.png") in captured.err
    doc = json.loads(out.read_text())
    assert sorted(Path(r["image"]).name for r in doc["images"]) == ["a.png", "b.png"]
    assert doc["failures"][0]["image"] == str(sr / "c.png")


def test_an_image_too_small_for_ssim_skips_it_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _png(tmp_path / "sr.png", 8, 0)
    _png(tmp_path / "hr.png", 8, 1)
    assert main(_argv(tmp_path, tmp_path / "sr.png", tmp_path / "hr.png")) == 0
    out = capsys.readouterr().out
    assert "psnr" in out.lower()
    assert "skipped ssim" in out


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    if kind == "fifo":
        path = tmp_path / "pipe.png"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    assert main(_argv(tmp_path, path)) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "neither a regular file nor a folder" in err
