"""`superres data extract-subimages`: BasicSR's overlapping crops, names, reruns, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.data.prepare import InputFolderError, crop_starts, extract_subimages


def _pixels(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(_pixels(100, 120, 0)).save(folder / "big.png")
    Image.fromarray(_pixels(60, 50, 1)).save(folder / "mid.jpg", quality=95)
    Image.fromarray(_pixels(30, 30, 2)).save(folder / "tiny.png")  # smaller than a crop
    Image.fromarray(_pixels(52, 49, 3)[..., 0]).save(folder / "gray.png")
    return folder


def _basicsr_starts(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """BasicSR's scripts/data_preparation/extract_subimages.py, written out with numpy."""
    space = np.arange(0, length - crop + 1, step)
    if length - (space[-1] + crop) > thresh:
        space = np.append(space, length - crop)
    return space.tolist()


@pytest.mark.parametrize(
    ("length", "crop", "step", "thresh"),
    [(100, 48, 24, 0), (100, 48, 24, 4), (100, 48, 24, 3), (96, 48, 24, 0), (48, 48, 10, 0)],
)
def test_crop_starts_match_basicsr(length: int, crop: int, step: int, thresh: int) -> None:
    assert crop_starts(length, crop, step, thresh) == _basicsr_starts(length, crop, step, thresh)


def test_crop_starts_examples() -> None:
    assert crop_starts(100, 48, 24, 0) == [0, 24, 48, 52]
    assert crop_starts(100, 48, 24, 10) == [0, 24, 48]
    assert crop_starts(2040, 480, 240, 0) == [0, 240, 480, 720, 960, 1200, 1440, 1560]
    assert crop_starts(40, 48, 24, 0) == []


def test_extract_subimages_counts_names_and_pixels(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "x"  # parents are created
    written = extract_subimages(images, out, crop_size=48, step=24)
    # big 100x120: rows 0,24,48,52 x cols 0,24,48,72 -> 16; mid 60x50: rows 0,12 x cols 0,2 -> 4;
    # gray 52x49: rows 0,4 x cols 0,1 -> 4; tiny: none.
    assert written == 24
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == sorted(
        [f"big_s{i:03d}.png" for i in range(1, 17)]
        + [f"mid_s{i:03d}.png" for i in range(1, 5)]
        + [f"gray_s{i:03d}.png" for i in range(1, 5)]
    )
    big = np.asarray(Image.open(images / "big.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(out / "big_s001.png")), big[:48, :48])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "big_s002.png")), big[:48, 24:72])
    np.testing.assert_array_equal(np.asarray(Image.open(out / "big_s016.png")), big[52:, 72:])
    mid = np.asarray(Image.open(images / "mid.jpg"))  # the decoded JPEG, cut losslessly
    np.testing.assert_array_equal(np.asarray(Image.open(out / "mid_s004.png")), mid[12:, 2:])
    gray = Image.open(out / "gray_s003.png")
    assert gray.mode == "L"
    expected = np.asarray(Image.open(images / "gray.png"))[4:52, 0:48]
    np.testing.assert_array_equal(np.asarray(gray), expected)
    assert not list(out.glob(".*"))  # no temporary files left


def test_rerun_skips_existing_and_continues(images: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub"
    assert extract_subimages(images, out, crop_size=48, step=24, thresh_size=100) == 14
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert extract_subimages(images, out, crop_size=48, step=24, thresh_size=100) == 0
    (out / "big_s003.png").unlink()
    assert extract_subimages(images, out, crop_size=48, step=24, thresh_size=100) == 1
    after = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert after.keys() == before.keys()
    assert all(after[n] == before[n] for n in before if n != "big_s003.png")


def test_workers_give_the_same_files(images: Path, tmp_path: Path) -> None:
    serial, parallel = tmp_path / "a", tmp_path / "b"
    assert extract_subimages(images, serial, crop_size=32, step=16, compression=0) == (
        extract_subimages(images, parallel, crop_size=32, step=16, workers=2, compression=9)
    )
    names = sorted(p.name for p in serial.glob("*.png"))
    assert names == sorted(p.name for p in parallel.glob("*.png"))
    for name in names:
        np.testing.assert_array_equal(
            np.asarray(Image.open(serial / name)), np.asarray(Image.open(parallel / name))
        )


def test_input_errors(tmp_path: Path, images: Path) -> None:
    with pytest.raises(InputFolderError, match="does not exist"):
        extract_subimages(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(InputFolderError, match="is a file"):
        extract_subimages(images / "big.png", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(InputFolderError, match="holds no images"):
        extract_subimages(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ValueError, match="is the input folder"):
        extract_subimages(images, images)
    with pytest.raises(ValueError, match="crop_size"):
        extract_subimages(images, tmp_path / "out", crop_size=0)
    with pytest.raises(ValueError, match="compression"):
        extract_subimages(images, tmp_path / "out", compression=10)
    assert not (tmp_path / "out").exists()  # nothing created before the checks pass


def test_cli_extract_subimages(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = ["data", "extract-subimages", str(images), str(out), "--crop-size", "48"]
    assert main([*args, "--step", "24", "--workers", "2", "-q"]) == 0
    assert len(list(out.glob("*.png"))) == 24
    assert main([*args, "--step", "24", "--thresh-size", "0", "-q"]) == 0  # rerun: no-op
    assert len(list(out.glob("*.png"))) == 24

    assert main(["data", "extract-subimages", str(tmp_path / "nope"), str(out)]) == 1
    err = capsys.readouterr().err
    assert "superres data extract-subimages: error: input folder" in err
    assert "does not exist" in err
    assert main(["data", "extract-subimages", str(images / "big.png"), str(out)]) == 1
    assert "is a file, expected a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "extract-subimages", str(tmp_path / "empty"), str(out)]) == 1
    assert "holds no images" in capsys.readouterr().err
    assert main([*args, "--step", "0"]) == 2  # a bad value
    assert "step must be an integer >= 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["data"])  # a data command is required: argparse usage error
    assert exit_info.value.code == 2
