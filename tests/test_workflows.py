"""The workflows users come with (issue 21, items 1, 2, 3 and 6): upscale -> metrics -> eval."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shlex
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.errors import InvalidImageError
from superres.inference import Upscaler
from superres.io import read_image
from superres.metrics import psnr, ssim
from superres.models.weights import load_model

ROOT = Path(__file__).resolve().parents[1]


def _png(path: Path, h: int = 12, w: int = 16, mode: str = "RGB", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    Image.fromarray(rng.integers(0, 256, (h, w, channels), dtype=np.uint8), mode).save(path)
    return path


def _folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    lr, hr, sr = tmp_path / "lr", tmp_path / "hr", tmp_path / "sr"
    for d in (lr, hr, sr):
        d.mkdir()
    for i, name in enumerate(("a", "b")):
        _png(lr / f"{name}.png", seed=i)
        _png(hr / f"{name}.png", 48, 64, seed=i + 10)
    return lr, hr, sr


# --- item 1: upscale's names and metrics' pairing -------------------------------------------------


def test_item1_upscale_then_metrics_pairs_the_x4_names(tmp_path: Path) -> None:
    lr, hr, sr = _folders(tmp_path)
    assert main(["upscale", str(lr), "-o", str(sr), "--model", "bicubic", "-q"]) == 0
    assert sorted(p.name for p in sr.iterdir()) == ["a_x4.png", "b_x4.png"]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["metrics", str(sr), str(hr), "--crop-border", "4"]) == 0
    assert "| a_x4.png |" in out.getvalue()
    assert "| mean |" in out.getvalue()


@pytest.mark.parametrize(
    ("suffix", "names"), [("", ["a.png", "b.png"]), ("_sr", ["a_sr.png", "b_sr.png"])]
)
def test_item1_suffix(tmp_path: Path, suffix: str, names: list[str]) -> None:
    lr, _, sr = _folders(tmp_path)
    assert (
        main(["upscale", str(lr), "-o", str(sr), "--model", "bicubic", "--suffix", suffix, "-q"])
        == 0
    )
    assert sorted(p.name for p in sr.iterdir()) == names


def test_item1_ambiguous_pairs_name_both_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, hr, sr = _folders(tmp_path)
    _png(sr / "a.png", 48, 64)
    _png(sr / "a_x4.png", 48, 64)
    assert main(["metrics", str(sr), str(hr)]) == 1
    err = capsys.readouterr().err
    assert "a.png" in err
    assert "a_x4.png" in err
    assert "both match" in err


# --- item 2: out-of-range inputs ------------------------------------------------------------------


def test_item2_metrics_refuse_0_255_floats() -> None:
    rng = np.random.default_rng(0)
    hr = torch.from_numpy(rng.random((1, 3, 32, 32)))
    sr = (hr + 0.02 * torch.from_numpy(rng.standard_normal((1, 3, 32, 32)))).clamp(0, 1)
    for metric in (psnr, ssim):
        with pytest.raises(InvalidImageError, match=r"outside \[0, 1\].*divide by 255.*data_range"):
            metric(sr * 255, hr * 255, crop_border=4, y_channel=True)
        with pytest.raises(InvalidImageError, match=r"outside \[0, 1\]"):
            metric((sr[0] * 255).permute(1, 2, 0).numpy(), (hr[0] * 255).permute(1, 2, 0).numpy())
        # an explicit range scores them, and as [0, 1] gives the same value
        scaled = float(metric(sr * 255, hr * 255, data_range=255.0)[0])
        assert scaled == pytest.approx(float(metric(sr, hr)[0]), abs=1e-9)


def test_item2_upscaler_refuses_0_255_floats() -> None:
    upscaler = Upscaler(load_model("bicubic", scale=2))
    with pytest.raises(InvalidImageError, match=r"outside \[0, 1\].*divide"):
        upscaler(torch.rand(1, 3, 20, 24) * 255)
    assert upscaler(torch.rand(1, 3, 20, 24)).shape == (1, 3, 40, 48)


# --- item 3: say what runs ------------------------------------------------------------------------


def test_item3_the_log_names_model_and_plan(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _png(tmp_path / "p.png")
    with caplog.at_level(logging.INFO):
        assert main(["upscale", str(src), "-n", "bicubic", "--scale", "4", "-s", "8", "-q"]) == 0
    assert "bicubic x4, then bicubic to x8" in caplog.text
    assert Image.open(tmp_path / "p_x8.png").size == (128, 96)


def test_item3_scale_without_a_model_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = _png(tmp_path / "p.png")
    assert main(["upscale", str(src), "--scale", "3", "-q"]) == 2
    assert "--outscale 3" in capsys.readouterr().err
    assert not (tmp_path / "p_x3.png").exists()
    with pytest.raises(SystemExit) as exc:
        main(["upscale", str(src), "--scale", "0"])
    assert exc.value.code == 2
    assert "--scale" in capsys.readouterr().err


def test_item3_outputs_record_the_model_and_skip_existing_checks_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from superres.io.image import read_text_record

    src = _png(tmp_path / "p.png")
    out = tmp_path / "p_x4.png"
    _png(out, 48, 64, seed=5)
    with caplog.at_level(logging.INFO):
        assert main(["upscale", str(src), "-n", "bicubic", "--skip-existing", "-q"]) == 0
    assert "redoing it" in caplog.text
    record = json.loads(read_text_record(out)["superres"])
    assert record == {"model": "bicubic", "outscale": None, "scale": 4}
    before = out.stat().st_mtime_ns
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["upscale", str(src), "-n", "bicubic", "--skip-existing", "-q"]) == 0
    assert out.stat().st_mtime_ns == before  # same model: kept
    assert "redoing" not in caplog.text


# --- item 6: Real-ESRGAN / chaiNNer habits --------------------------------------------------------


def test_item6_flags(tmp_path: Path) -> None:
    src = tmp_path / "p.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
        src, quality=95
    )
    out = tmp_path / "out"
    out.mkdir()
    args = ["upscale", "-i", str(src), "-o", str(out), "-n", "bicubic", "-t", "0", "--fp32"]
    assert main([*args, "--ext", "auto", "--quality", "30", "-q"]) == 0
    small = (out / "p_x4.jpg").stat().st_size
    assert main([*args, "--ext", "auto", "--quality", "95", "--suffix", "_hq", "-q"]) == 0
    assert (out / "p_hq.jpg").stat().st_size > small
    assert main([*args, "--format", "png", "-q"]) == 0  # the old name still works
    assert (out / "p_x4.png").exists()


def test_item6_rgba_and_16_bit_to_jpeg(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rgba = _png(tmp_path / "t.png", mode="RGBA")
    deep = tmp_path / "d.png"
    Image.fromarray(np.full((12, 16), 40000, dtype=np.uint16)).save(deep)
    with caplog.at_level(logging.WARNING):
        assert main(["upscale", str(rgba), "-n", "bicubic", "--ext", "jpg", "-q"]) == 0
        assert main(["upscale", str(deep), "-n", "bicubic", "--ext", "jpg", "-q"]) == 0
    assert (tmp_path / "t_x4.png").exists()
    assert read_image(tmp_path / "t_x4.png").alpha is not None
    assert "written as PNG" in caplog.text
    assert "reduced to 8 bit" in caplog.text
    assert (tmp_path / "d_x4.jpg").exists()


def test_item6_icc_profile_and_exif_are_kept(tmp_path: Path) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "superres-test-camera"  # Make
    src = tmp_path / "c.jpg"
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    image.save(src, icc_profile=icc, exif=exif.tobytes())
    for ext in ("png", "jpg"):
        assert main(["upscale", str(src), "-n", "bicubic", "--ext", ext, "-q"]) == 0
        with Image.open(tmp_path / f"c_x4.{ext}") as out:
            assert out.info.get("icc_profile") == icc
            assert out.getexif().get(0x010F) == "superres-test-camera"


def test_item6_gifs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    out.mkdir()
    rng = np.random.default_rng(3)
    frames = [Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(folder / "still.gif")
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    assert main(["upscale", str(folder), "-o", str(out), "-n", "bicubic", "-q"]) == 1
    err = capsys.readouterr().err
    assert "anim.gif" in err
    assert "animated (3 frames)" in err
    assert (out / "still_x4.png").exists()  # a GIF in a folder is not skipped


# --- the pipeline, and the README's commands ------------------------------------------------------


def _readme_pipeline() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    using = text.split("## Using it", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.+?)\n```", using, flags=re.S)
    block = next(b for b in blocks if "superres metrics sr Set5" in b)
    return [line for line in block.splitlines() if line.strip()]


def _mean_psnr(stdout: str, row: str) -> tuple[float, float]:
    line = next(li for li in stdout.splitlines() if li.startswith(row))
    return tuple(float(v) for v in re.findall(r"\d+\.\d+", line)[-2:])  # type: ignore[return-value]


def test_pipeline_upscale_metrics_eval_agree(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's pipeline, command by command: metrics on upscale's files equals eval."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPERRES_DATA", str(data_root))
    shutil.copytree(data_root / "Set5", tmp_path / "Set5")
    outputs = []
    for line in _readme_pipeline():
        argv = shlex.split(line, comments=True)
        if argv[0] == "mkdir":
            os.makedirs(argv[1])
            continue
        assert argv[0] == "superres", line
        text = io.StringIO()
        with redirect_stdout(text):
            assert main(argv[1:]) == 0, line
        outputs.append(text.getvalue())
    metrics, evaluation = outputs[1], outputs[2]
    psnr_metrics = float(
        next(li for li in metrics.splitlines() if li.startswith("| mean")).split("|")[4]
    )
    ssim_metrics = float(
        next(li for li in metrics.splitlines() if li.startswith("| mean")).split("|")[5]
    )
    psnr_eval, ssim_eval = _mean_psnr(evaluation, "| edsr-baseline-x4")
    assert psnr_metrics == pytest.approx(psnr_eval, abs=1e-4)
    assert ssim_metrics == pytest.approx(ssim_eval, abs=1e-4)
