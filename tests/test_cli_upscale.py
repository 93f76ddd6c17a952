"""`superres upscale` end to end: formats, depths, alpha, samples, batches, failures, torchrun."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.errors import SuperresError
from superres.imaging import imresize
from superres.io import read_image


def _rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


# The README's main job: the shipped default on 512x512 (about a minute on 2 cores).
@pytest.mark.slow
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
    assert main(["upscale", "--model", "bicubic", str(src), "--scale", "3", "-q"]) == 0
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
    assert (
        main(
            [
                "upscale",
                "--model",
                "bicubic",
                str(deep),
                str(gray),
                str(rgba),
                "-o",
                str(outdir),
                "-q",
            ]
        )
        == 0
    )
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
    assert main(["upscale", "--model", "bicubic", str(src), "-q"]) == 1
    err = capsys.readouterr().err
    assert needle in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_missing_input_unknown_sample_and_missing_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["upscale", "--model", "bicubic", str(tmp_path / "nope.png"), "-q"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["upscale", "sample:astronot", "-q"]) == 2  # a bad value
    assert "astronaut" in capsys.readouterr().err  # close match suggested
    taken = tmp_path / "taken"
    taken.write_text("a file where -o wants a folder")
    assert main(["upscale", "sample:camera", "-o", str(taken / "x.png"), "-q"]) == 1
    assert "is a file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [taken]


def test_max_pixels_guard_zero_lifts_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(_rgb(10, 12)).save(src)
    argv = ["upscale", "--model", "bicubic", "--scale", "2", str(src), "-q"]
    assert main([*argv, "--max-pixels", "100"]) == 1
    assert "--max-pixels N, 0 for no limit" in capsys.readouterr().err
    assert main([*argv, "--max-pixels", "-1"]) == 2
    assert "--max-pixels must be >= 0" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]
    assert main([*argv, "--max-pixels", "0"]) == 0
    assert (tmp_path / "in_x2.png").exists()


def test_existing_output_survives_a_failed_run(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(b"garbage")
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    assert main(["upscale", "--model", "bicubic", str(src), "-o", str(out), "-q"]) == 1
    assert out.read_bytes() == b"precious"


# --- batches: folders, globs, failures, reruns ----------------------------------------------------


def _write_rgb(path: Path, h: int = 6, w: int = 7, seed: int = 0) -> Path:
    Image.fromarray(_rgb(h, w, seed)).save(path)
    return path


def _image_folder(parent: Path, *names: str, seeded: bool = False) -> Path:
    """``parent/in`` holding an RGB image per name (all alike, or each seeded by its position)."""
    folder = parent / "in"
    folder.mkdir()
    for i, name in enumerate(names):
        _write_rgb(folder / name, seed=i if seeded else 0)
    return folder


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_sixteen_bit_rgb_png_and_rgba_png(tmp_path: Path) -> None:
    import cv2

    deep = tmp_path / "deep.png"
    values = np.random.default_rng(2).integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    cv2.imwrite(str(deep), values)
    rgba = tmp_path / "rgba.png"
    pixels = np.concatenate(
        [_rgb(5, 6), np.random.default_rng(3).integers(0, 256, (5, 6, 1), dtype=np.uint8)], axis=2
    )
    Image.fromarray(pixels, "RGBA").save(rgba)
    assert main(["upscale", "--model", "bicubic", str(deep), str(rgba), "--scale", "2", "-q"]) == 0
    d = read_image(tmp_path / "deep_x2.png")
    assert (d.bit_depth, d.grayscale, d.alpha, d.rgb.shape) == (16, False, None, (3, 10, 12))
    r = read_image(tmp_path / "rgba_x2.png")
    assert r.alpha is not None
    assert r.rgb.shape == (3, 10, 12)


def test_grayscale_jpeg_gives_a_gray_png(tmp_path: Path) -> None:
    src = tmp_path / "scan.jpg"
    Image.fromarray(_rgb(8, 8)[..., 0]).save(src, quality=95)
    assert main(["upscale", "--model", "bicubic", str(src), "--scale", "2", "-q"]) == 0
    out = Image.open(tmp_path / "scan_x2.png")
    assert (out.mode, out.size) == ("L", (16, 16))


def test_folder_input_with_a_warning_for_non_images(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _image_folder(tmp_path, "b.png", "a.jpg", "c.bmp")
    (src / "notes.txt").write_text("not an image")
    (src / "sub").mkdir()
    _write_rgb(src / "sub" / "d.png")
    out = tmp_path / "out"
    out.mkdir()
    with caplog.at_level("WARNING"):
        assert (
            main(["upscale", "--model", "bicubic", str(src), "-o", str(out), "--scale", "2", "-q"])
            == 0
        )
    assert _files(out) == ["a_x2.png", "b_x2.png", "c_x2.png"]
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "2 entries" in warning
    assert "notes.txt" in warning
    assert "sub/" in warning

    mirrored = tmp_path / "mirrored"
    mirrored.mkdir()
    assert (
        main(
            [
                "upscale",
                "--model",
                "bicubic",
                str(src),
                "-o",
                str(mirrored),
                "--recursive",
                "--scale",
                "2",
                "-q",
            ]
        )
        == 0
    )
    assert _files(mirrored) == ["a_x2.png", "b_x2.png", "c_x2.png", "sub/d_x2.png"]


def test_folder_input_needs_an_output_folder_outside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _image_folder(tmp_path, "a.png")
    assert main(["upscale", "--model", "bicubic", str(src), "-q"]) == 1
    assert "needs -o" in capsys.readouterr().err
    assert main(["upscale", "--model", "bicubic", str(src), "-o", str(src), "-q"]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert _files(src) == ["a.png"]


def test_glob_is_expanded_by_us(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("x1.png", "x2.png", "y.png"):
        _write_rgb(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main(["upscale", "x*.png", "--scale", "2", "--format", "jpg", "-q"]) == 0
    assert _files(tmp_path) == ["x1.png", "x1_x2.jpg", "x2.png", "x2_x2.jpg", "y.png"]
    assert main(["upscale", "z*.png", "-q"]) == 1  # matches nothing: an error, not a no-op


def test_skip_existing_resumes_without_rewriting(tmp_path: Path) -> None:
    src = _image_folder(tmp_path, "0.png", "1.png", "2.png", seeded=True)
    out = tmp_path / "out"
    out.mkdir()
    args = [
        "upscale",
        "--model",
        "bicubic",
        str(src),
        "-o",
        str(out),
        "--scale",
        "2",
        "--skip-existing",
        "-q",
    ]
    assert main(args) == 0
    first = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "1_x2.png").unlink()  # as if the first run had stopped before this image
    assert main(args) == 0
    second = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert sorted(second) == sorted(first)
    assert second["0_x2.png"] == first["0_x2.png"]
    assert second["2_x2.png"] == first["2_x2.png"]
    assert main(args) == 0  # and a third run writes nothing
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == second


def test_unreadable_file_fails_the_run_but_not_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _image_folder(tmp_path, "a.png", "c.png")
    (src / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(["upscale", "--model", "bicubic", str(src), "-o", str(out), "--scale", "2", "-q"]) == 1
    )
    err = capsys.readouterr().err
    assert "1 of 3 image(s) failed" in err
    assert "b.png" in err
    assert _files(out) == ["a_x2.png", "c_x2.png"]  # no partial or temporary file


def test_alpha_into_jpeg_falls_back_to_png_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "rgba.png"
    a = np.concatenate([_rgb(4, 4), np.full((4, 4, 1), 9, np.uint8)], axis=2)
    Image.fromarray(a, "RGBA").save(src)
    assert main(["upscale", "--model", "bicubic", str(src), "--format", "jpg", "-q"]) == 0
    assert "written as PNG" in caplog.text
    assert (tmp_path / "rgba_x4.png").exists()


def test_unknown_model_and_unsupported_scale(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _write_rgb(tmp_path / "a.png")
    assert main(["upscale", "--model", "bicubic", str(src), "--model", "srresnt", "-q"]) == 2
    assert "'srresnet'" in capsys.readouterr().err  # close match suggested
    assert (
        main(["upscale", "--model", "bicubic", str(src), "--model", "srcnn", "--scale", "8", "-q"])
        == 2
    )
    err = capsys.readouterr().err
    assert "scale 8" in err
    assert "2, 3, 4" in err
    assert _files(tmp_path) == ["a.png"]


def test_output_problems_are_found_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write_rgb(tmp_path / "a.png")
    b = _write_rgb(tmp_path / "a.jpg")
    assert main(["upscale", "--model", "bicubic", str(a), str(b), "-q"]) == 1  # both -> a_x4.png
    err = capsys.readouterr().err
    assert "written twice" in err
    assert "a_x4.png" in err
    assert (
        main(["upscale", "--model", "bicubic", str(a), str(b), "-o", str(a / "missing"), "-q"]) == 1
    )
    assert "is a file" in capsys.readouterr().err
    assert (
        main(
            [
                "upscale",
                "--model",
                "bicubic",
                str(a),
                "-o",
                str(a / "missing" / "a.png"),
                "-q",
            ]
        )
        == 1
    )
    assert "is a file" in capsys.readouterr().err
    assert main(["upscale", "--model", "bicubic", str(a), "-o", str(a), "-q"]) == 1
    assert "input file" in capsys.readouterr().err
    assert _files(tmp_path) == ["a.jpg", "a.png"]


def test_outscale_tile_and_backproject_options(tmp_path: Path) -> None:
    src = _write_rgb(tmp_path / "a.png", 10, 13)
    args = [
        "upscale",
        "--model",
        "bicubic",
        str(src),
        "--outscale",
        "3.5",
        "--tile",
        "8",
        "--overlap",
        "4",
    ]
    assert main([*args, "--backproject", "1", "-q"]) == 0
    out = read_image(tmp_path / "a_x3.5.png")
    assert out.rgb.shape == (3, 35, 46)
    assert (
        main(
            [
                "upscale",
                str(src),
                "--tile",
                "0",
                "--scale",
                "2",
                "-q",
                "-o",
                str(tmp_path / "b.png"),
            ]
        )
        == 0
    )
    assert read_image(tmp_path / "b.png").rgb.shape == (3, 20, 26)


def test_tile_argument_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["upscale", "sample:camera", "--tile", "big"])
    assert "auto or 0" in capsys.readouterr().err


# --- models and weights files ---------------------------------------------------------------------


def _small_edsr_file(folder: Path) -> Path:
    from superres.models import create_model
    from superres.models.weights_file import save_weights

    torch.manual_seed(0)
    net = create_model("edsr-baseline", scale=2, num_features=8, num_blocks=1)
    return save_weights(net, folder / "edsr_x2.safetensors")


def test_weights_file_alone_picks_its_own_model(tmp_path: Path) -> None:
    from superres.inference import UpscaleOptions, Upscaler
    from superres.models.weights_file import load_weights

    weights = _small_edsr_file(tmp_path)
    src = _write_rgb(tmp_path / "a.png", 9, 11)
    out = tmp_path / "out"
    out.mkdir()
    assert main(["upscale", str(src), "--weights", str(weights), "-o", str(out), "-q"]) == 0
    written = np.asarray(Image.open(out / "a_x2.png"))
    assert written.shape == (18, 22, 3)  # the file's x2 EDSR, not the default x4 bicubic
    expected = Upscaler(load_weights(weights), options=UpscaleOptions(device="cpu"))(
        read_image(src)
    )
    diff = np.abs(written.astype(int) - np.round(expected.rgb.permute(1, 2, 0).numpy() * 255))
    assert diff.max() <= 1
    # Naming the architecture as well is allowed (and checked).
    named = tmp_path / "named.png"
    args = ["upscale", str(src), "--weights", str(weights), "--model", "edsr-baseline"]
    assert main([*args, "-o", str(named), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(named)), written)


def test_no_model_and_no_weights_is_the_shipped_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")  # the shipped default needs no network
    src = _write_rgb(tmp_path / "a.png", 5, 6)
    assert main(["upscale", str(src), "-q"]) == 0
    with Image.open(tmp_path / "a_x4.png") as im:
        assert im.size == (24, 20)
    # x2 has its own shipped model; x3 runs the x4 default and resizes exactly when asked.
    assert main(["upscale", str(src), "--scale", "2", "-q"]) == 0
    with Image.open(tmp_path / "a_x2.png") as im:
        assert im.size == (12, 10)
    assert main(["upscale", str(src), "--scale", "3", "-q"]) == 2  # no x3 model: refused
    assert main(["upscale", str(src), "--scale", "3", "--outscale", "3", "-q"]) == 0
    with Image.open(tmp_path / "a_x3.png") as im:
        assert im.size == (18, 15)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--model", "srcnn"], "holds a edsr-baseline model, not 'srcnn'"),  # wrong architecture
        (["--scale", "3"], "scale 3 was asked for"),  # the file is x2
        (["--model", "edsr-basline"], "'edsr-baseline'"),  # typo: close match suggested
    ],
)
def test_incompatible_weights_exit_nonzero_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    weights = _small_edsr_file(tmp_path)
    src = _write_rgb(tmp_path / "a.png")
    # A file of another model exits 1; a scale it lacks or an unknown name is a bad value, 2.
    assert main(["upscale", str(src), "--weights", str(weights), *extra, "-q"]) == (
        1 if extra[0] == "--model" and extra[1] == "srcnn" else 2
    )
    err = capsys.readouterr().err
    assert needle in err
    assert _files(tmp_path) == ["a.png", "edsr_x2.safetensors"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"", "empty"), (b"PK\x03\x04 no checkpoint", "weights file"), (b"\x00" * 64, "weights")],
)
def test_unreadable_weights_exit_nonzero_without_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, needle: str
) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(content)
    src = _write_rgb(tmp_path / "a.png")
    assert main(["upscale", str(src), "--weights", str(weights), "-q"]) == 1
    assert needle in capsys.readouterr().err
    assert _files(tmp_path) == ["a.png", "w.pth"]


def test_each_bad_input_is_a_named_error_before_any_output(tmp_path: Path) -> None:
    from superres.errors import (
        ImageReadError,
        IncompatibleWeightsError,
        UnknownModelError,
        UnsupportedScaleError,
    )
    from superres.inference.batch import upscale_files
    from superres.inference.jobs import InputNotFoundError, OutputPathError

    weights = _small_edsr_file(tmp_path)
    src = _write_rgb(tmp_path / "a.png")
    with pytest.raises(InputNotFoundError, match="does not exist"):
        upscale_files([str(tmp_path / "nope.png")])
    with pytest.raises(UnknownModelError, match="srresnet"):
        upscale_files([str(src)], model="srresnt")
    with pytest.raises(IncompatibleWeightsError, match="srcnn"):
        upscale_files([str(src)], model="srcnn", weights=weights)
    with pytest.raises(UnsupportedScaleError, match="scale 8"):
        upscale_files([str(src)], model="srcnn", scale=8)
    with pytest.raises(OutputPathError, match="is a file"):
        upscale_files([str(src)], output=src / "missing" / "a.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    report = upscale_files([str(bad)])
    assert [name for name, _ in report.failed] == [str(bad)]
    assert "cannot read image" in report.failed[0][1]
    assert issubclass(ImageReadError, SuperresError)
    assert _files(tmp_path) == ["a.png", "bad.png", "edsr_x2.safetensors"]


def test_output_modes_and_depths(tmp_path: Path) -> None:
    """PNG, 16-bit PNG (gray and RGB), RGBA PNG and gray JPEG: size, mode and depth kept."""
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(_rgb(5, 7)).save(src / "rgb.png")
    cv2.imwrite(
        str(src / "deep.png"),
        np.random.default_rng(4).integers(0, 65536, (5, 7, 3), dtype=np.uint16),
    )
    Image.fromarray(np.random.default_rng(5).integers(0, 65536, (5, 7), dtype=np.uint16)).save(
        src / "deepgray.png"
    )
    rgba = np.concatenate([_rgb(5, 7), np.full((5, 7, 1), 200, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(src / "rgba.png")
    Image.fromarray(_rgb(5, 7)[..., 1]).save(src / "gray.jpg", quality=95)
    out = tmp_path / "out"
    out.mkdir()
    assert (
        main(["upscale", "--model", "bicubic", str(src), "-o", str(out), "--scale", "3", "-q"]) == 0
    )
    assert _files(out) == [
        "deep_x3.png", "deepgray_x3.png", "gray_x3.png", "rgb_x3.png", "rgba_x3.png",
    ]  # fmt: skip
    deep = cv2.imread(str(out / "deep_x3.png"), cv2.IMREAD_UNCHANGED)
    assert deep is not None
    assert (deep.dtype, deep.shape) == (np.uint16, (15, 21, 3))
    deepgray = cv2.imread(str(out / "deepgray_x3.png"), cv2.IMREAD_UNCHANGED)
    assert deepgray is not None
    assert (deepgray.dtype, deepgray.shape) == (np.uint16, (15, 21))
    for name, mode in (("rgb", "RGB"), ("rgba", "RGBA"), ("gray", "L")):
        with Image.open(out / f"{name}_x3.png") as im:
            assert (im.mode, im.size) == (mode, (21, 15)), name
    with Image.open(out / "rgba_x3.png") as im:
        assert set(np.asarray(im)[..., 3].ravel().tolist()) == {200}  # flat alpha stays flat
