"""A benchmark set is scored only as the official release, unless the user says otherwise.

Real Set5 (copied from the data root into ``tmp_path``; the shared copy is never touched) with an
extra, a removed or a renamed image is one error naming the folder, the counts and the names;
``--allow-modified`` scores it and the table says so. A corrupt cached LR image is regenerated,
never used, and a 2x2 HR image is an error naming the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import superres.data.datasets as datasets
from superres.cli import main
from superres.data.catalog import DATASETS, benchmark_hr_files, check_hr_files
from superres.data.datasets import BenchmarkSet, min_hr_side
from superres.errors import DatasetModifiedError, ImageTooSmallError
from superres.evaluation.benchmark import run_benchmark
from superres.metrics.fidelity import SSIM_WINDOW_SIZE

pytestmark = pytest.mark.data

SET5_X4 = 28.4302  # bicubic, default protocol (DESIGN.md)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private LR cache for each test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUPERRES_CACHE", str(cache))
    return cache


def _copy_set5(data_root: Path, tmp_path: Path, *, official_lr: bool = True) -> Path:
    """A data root in ``tmp_path`` holding a copy of the real Set5 (HR, and its official x4 LR)."""
    root = tmp_path / "root"
    shutil.copytree(data_root / "Set5" / "HR", root / "Set5" / "HR")
    if official_lr:
        shutil.copytree(data_root / "Set5" / "LR_bicubic_x4", root / "Set5" / "LR_bicubic_x4")
    return root


def _eval(root: Path, *args: str) -> int:
    argv = ["eval", "--models", "bicubic", "--datasets", "set5", "--scales", "4"]
    return main([*argv, "--data-root", str(root), "-q", *args])


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The CLI's error: exactly one line on stderr."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("superres eval: error: ")
    return lines[0]


# --- the catalog ----------------------------------------------------------------------------------


def test_catalog_names_agree_with_counts_and_the_real_sets(data_root: Path) -> None:
    for name in DATASETS:
        info = DATASETS.get(name)
        if info.stems is not None:
            assert len(info.stems) == len(set(info.stems)) == info.num_images, name
            assert list(info.stems) == sorted(info.stems), name
    assert DATASETS.get("set5").stems == ("baby", "bird", "butterfly", "head", "woman")
    for name in ("set5", "set14", "bsd100", "urban100", "t91", "bsd200"):
        folder = data_root / DATASETS.get(name).folder / "HR"
        check = check_hr_files(name, folder)
        assert not check.modified, (name, check.missing, check.extra)
        assert len(check.files) == DATASETS.get(name).num_images


def test_count_only_entries_check_the_count(tmp_path: Path) -> None:
    hr = tmp_path / "Manga109" / "HR"
    hr.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (24, 24)).save(hr / f"m{i}.png")
    with pytest.raises(DatasetModifiedError, match=r"expected 109 HR images, found 2 \(the"):
        benchmark_hr_files("manga109", tmp_path)
    assert benchmark_hr_files("manga109", tmp_path, allow_modified=True).modified


# --- modified sets --------------------------------------------------------------------------------


def test_extra_image_is_one_error_naming_folder_counts_names_and_fix(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set5(data_root, tmp_path)
    shutil.copy(root / "Set5" / "HR" / "bird.png", root / "Set5" / "HR" / "extra.png")
    assert _eval(root) == 1
    line = _one_error(capsys)
    assert str(root / "Set5" / "HR") in line
    assert "expected 5 HR images, found 6; 1 extra: extra.png" in line
    assert "missing:" not in line
    assert "--allow-modified" in line
    assert "re-download" in line
    with pytest.raises(DatasetModifiedError):
        BenchmarkSet("set5", 4, root=root)


def test_extra_image_error_from_a_real_process(data_root: Path, tmp_path: Path) -> None:
    root = _copy_set5(data_root, tmp_path)
    shutil.copy(root / "Set5" / "HR" / "bird.png", root / "Set5" / "HR" / "extra.png")
    argv = ["eval", "--models", "bicubic", "--datasets", "set5", "--data-root", str(root)]
    done = subprocess.run(
        [sys.executable, "-m", "superres", *argv, "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "SUPERRES_CACHE": str(tmp_path / "cache")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "found 6; 1 extra: extra.png" in lines[0]


def test_allow_modified_scores_the_set_and_the_table_names_the_count(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set5(data_root, tmp_path)
    clean_json, modified_json = tmp_path / "clean.json", tmp_path / "modified.json"
    assert _eval(root, "--output-json", str(clean_json)) == 0
    clean_table = capsys.readouterr().out
    assert "| Model | Scale | Set5 |" in clean_table
    # A small extra image (its LR is generated): the mean is no longer Set5's.
    image = Image.open(root / "Set5" / "HR" / "bird.png").crop((0, 0, 64, 64))
    image.save(root / "Set5" / "HR" / "extra.png")
    assert _eval(root, "--allow-modified", "--output-json", str(modified_json)) == 0
    table = capsys.readouterr().out
    assert "| Model | Scale | Set5 (6 images, modified) |" in table
    clean = json.loads(clean_json.read_text())["results"][0]
    modified = json.loads(modified_json.read_text())["results"][0]
    assert (clean["images"], clean["modified"]) == (5, False)
    assert (modified["images"], modified["modified"]) == (6, True)
    assert clean["psnr_y"] == pytest.approx(SET5_X4, abs=0.005)
    assert abs(modified["psnr_y"] - clean["psnr_y"]) > 0.01


def test_removed_image_names_what_is_missing(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set5(data_root, tmp_path)
    (root / "Set5" / "HR" / "head.png").unlink()
    assert _eval(root) == 1
    line = _one_error(capsys)
    assert "expected 5 HR images, found 4; 1 missing: head." in line
    assert "extra:" not in line


def test_renamed_image_names_both_sides(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set5(data_root, tmp_path)
    hr = root / "Set5" / "HR"
    (hr / "woman.png").rename(hr / "woman_GT.png")
    assert _eval(root) == 1
    line = _one_error(capsys)
    assert "expected 5 HR images, found 5; 1 extra: woman_GT.png; 1 missing: woman." in line


def test_a_repeated_stem_is_extra(tmp_path: Path, data_root: Path) -> None:
    root = _copy_set5(data_root, tmp_path)
    Image.open(root / "Set5" / "HR" / "baby.png").save(root / "Set5" / "HR" / "baby.bmp")
    with pytest.raises(DatasetModifiedError, match=r"found 6; 1 extra: baby\.png\."):
        BenchmarkSet("set5", 4, root=root)


# --- the LR cache ---------------------------------------------------------------------------------


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
    path.write_bytes(bytes(data))


def test_corrupt_cached_lr_is_regenerated_and_the_score_is_unchanged(
    data_root: Path, tmp_path: Path, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _copy_set5(data_root, tmp_path, official_lr=False)
    clean = run_benchmark(["bicubic"], ["set5"], [4], root=root, progress=False)
    cached = sorted(cache_dir.rglob("*.png"))
    assert len(cached) == 5
    for png in cached:  # every cached file has its checksum beside it
        sidecar = png.with_name(png.name + ".sha256")
        assert sidecar.read_text().strip() == hashlib.sha256(png.read_bytes()).hexdigest()
    good = {png: png.read_bytes() for png in cached}
    # Flipped bytes; an undecodable file whose checksum matches; a file without a checksum.
    _flip_bytes(cached[0])
    cached[1].write_bytes(b"not a PNG at all")
    cached[1].with_name(cached[1].name + ".sha256").write_text(
        hashlib.sha256(b"not a PNG at all").hexdigest()
    )
    cached[2].with_name(cached[2].name + ".sha256").unlink()
    with caplog.at_level(logging.INFO, logger="superres.data.datasets"):
        again = run_benchmark(["bicubic"], ["set5"], [4], root=root, progress=False)
    assert again.results == clean.results  # exactly equal, not approximately
    assert again.per_image == clean.per_image
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert f"regenerating cached LR {cached[0]}: its sha256 does not match" in messages
    assert f"regenerating cached LR {cached[1]}: cannot read image" in messages
    assert f"regenerating cached LR {cached[2]}: cannot check it" in messages
    for png in cached[:3]:  # rewritten, with their checksums
        assert png.read_bytes() == good[png]
        assert png.with_name(png.name + ".sha256").is_file()
    assert clean.results[0].psnr_y == pytest.approx(SET5_X4, abs=0.005)


# --- too-small images -----------------------------------------------------------------------------


def test_min_side_keeps_the_protocols_window() -> None:
    assert datasets._SCORED_WINDOW == SSIM_WINDOW_SIZE
    assert [min_hr_side(s) for s in (2, 3, 4)] == [16, 18, 20]


def test_2x2_hr_image_is_one_error_naming_the_file_and_the_minimum(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _copy_set5(data_root, tmp_path)
    tiny = root / "Set5" / "HR" / "head.png"
    Image.fromarray(np.full((2, 2, 3), 128, dtype=np.uint8)).save(tiny)
    assert _eval(root) == 1
    line = _one_error(capsys)
    assert str(tiny) in line
    assert "2x2" in line
    assert "at least 20x20 pixels" in line
    with pytest.raises(ImageTooSmallError, match=r"head\.png"):
        list(BenchmarkSet("set5", 4, root=root))
