"""`superres upscale` end to end: formats, bit depths, alpha, samples and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.cli import main
from superres.imaging import imresize
from superres.io import read_image


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_sample_main_job(tmp_path: Path) -> None:
    out = tmp_path / "astronaut_x4.png"
    assert main(["upscale", "sample:astronaut", "-o", str(out), "-q"]) == 0
    image = read_image(out)
    assert image.rgb.shape == (3, 2048, 2048)
    assert image.bit_depth == 8


def test_png_matches_matlab_bicubic(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    pixels = _rgb(12, 17)
    Image.fromarray(pixels).save(src)
    assert main(["upscale", str(src), "--scale", "3", "-q"]) == 0
    out = np.asarray(Image.open(tmp_path / "in_x3.png"))
    assert out.shape == (36, 51, 3)
    # MATLAB imresize in floating point, clamped and rounded once when written.
    expected = np.clip(np.round(imresize(pixels / 255.0, 3) * 255.0), 0, 255)
    assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1


def test_sixteen_bit_gray_and_alpha_are_preserved(tmp_path: Path) -> None:
    deep = tmp_path / "deep.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 65536, (8, 9), dtype=np.uint16)).save(deep)
    gray = tmp_path / "gray.png"
    Image.fromarray(_rgb(8, 9)[..., 0]).save(gray)
    rgba = tmp_path / "rgba.png"
    a = np.concatenate([_rgb(8, 9), np.full((8, 9, 1), 128, np.uint8)], axis=2)
    Image.fromarray(a, "RGBA").save(rgba)
    outdir = tmp_path / "out"
    outdir.mkdir()
    assert main(["upscale", str(deep), str(gray), str(rgba), "-o", str(outdir), "-q"]) == 0
    d = read_image(outdir / "deep_x4.png")
    assert (d.bit_depth, d.grayscale, d.rgb.shape) == (16, True, (3, 32, 36))
    g = read_image(outdir / "gray_x4.png")
    assert (g.bit_depth, g.grayscale) == (8, True)
    r = read_image(outdir / "rgba_x4.png")
    assert r.alpha is not None
    assert r.alpha.shape == (1, 32, 36)
    assert abs(float(r.alpha.mean()) - 128 / 255) < 1e-3


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty"), (b"not an image at all", "in.png"), (b"\x89PNG\r\n\x1a\n\x00\x00", "in.png")],
)
def test_bad_input_exits_nonzero_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, needle: str
) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(content)
    assert main(["upscale", str(src), "-q"]) == 1
    err = capsys.readouterr().err
    assert needle in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_missing_input_unknown_sample_and_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upscale", str(tmp_path / "nope.png"), "-q"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["upscale", "sample:astronot", "-q"]) == 1
    assert "astronaut" in capsys.readouterr().err  # close match suggested
    out = tmp_path / "missing" / "x.png"
    assert main(["upscale", "sample:camera", "-o", str(out), "-q"]) == 1
    assert "create it first" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_survives_a_failed_run(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"garbage")
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    assert main(["upscale", str(src), "-o", str(out), "-q"]) == 1
    assert out.read_bytes() == b"precious"
