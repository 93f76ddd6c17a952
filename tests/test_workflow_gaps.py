"""Issue 21, items 4 and 5: commands that crashed, kept stale state, or left gaps in eval/report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import tiny_model
from superres.cli import main
from superres.data.prepare import MANIFEST_NAME, StaleSubimagesError, extract_subimages
from superres.inference import Upscaler
from superres.inference.options import UpscaleOptions
from superres.inference.tiling import plan_tiles, run_tiled

# --- 4. crashes and stale state ---------------------------------------------------------------


def _nearest_x2(batch: torch.Tensor) -> torch.Tensor:
    return batch.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


@pytest.mark.parametrize("overlap", [0, 1, 2])
def test_tiles_that_abut_are_a_legal_plan(overlap: int) -> None:
    # `--tile 48 --overlap 0` on 160 px: balanced 40 px tiles at (0, 40, 80, 120) abut exactly.
    plan = plan_tiles(160, 160, 48, overlap, balance=True)
    assert plan.ys[0] == 0
    assert plan.ys[-1] + plan.tile_h == 160
    x = torch.rand(3, 160, 150)
    tiled = run_tiled(_nearest_x2, x, scale=2, tile=48, overlap=overlap)
    torch.testing.assert_close(tiled, _nearest_x2(x[None])[0], atol=1e-6, rtol=0)


def test_upscaler_runs_with_overlap_zero() -> None:
    torch.manual_seed(0)
    model = tiny_model("srresnet", scale=2)
    x = torch.rand(1, 3, 160, 160)
    options = UpscaleOptions(tile=48, overlap=0, precision="fp32", device="cpu")
    out = Upscaler(model, options=options)(x)
    assert out.shape == (1, 3, 320, 320)
    assert bool(torch.isfinite(out).all())


@pytest.fixture
def big_images(tmp_path: Path) -> Path:
    folder = tmp_path / "hr"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"a": (96, 120), "b": (80, 80)}.items():
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{name}.png")
    return folder


def test_subimages_with_a_new_crop_size_are_refused_not_kept(
    big_images: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sub"
    first = extract_subimages(big_images, out, crop_size=48, step=24)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert (manifest["crop_size"], manifest["step"], manifest["thresh_size"]) == (48, 24, 0)
    assert set(manifest["sources"]) == {"a.png", "b.png"}
    assert {"bytes", "mtime_ns", "sha256"} <= set(manifest["sources"]["a.png"])
    # Same parameters: everything is skipped, nothing (not even the manifest) rewritten.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert extract_subimages(big_images, out, crop_size=48, step=24) == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # A new crop size used to report "0 written, N already present" and keep the 48 px crops.
    with pytest.raises(StaleSubimagesError, match=r"crop_size=48.*crop_size=32.*--overwrite"):
        extract_subimages(big_images, out, crop_size=32, step=16)
    assert len(list(out.glob("*.png"))) == first
    written = extract_subimages(big_images, out, crop_size=32, step=16, overwrite=True)
    crops = sorted(out.glob("*.png"))
    assert written == len(crops) > first
    assert {Image.open(p).size for p in crops} == {(32, 32)}
    assert json.loads((out / MANIFEST_NAME).read_text())["crop_size"] == 32


def test_subimages_of_a_changed_source_are_refused(big_images: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub"
    extract_subimages(big_images, out, crop_size=48, step=24)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(big_images / "b.png")
    with pytest.raises(StaleSubimagesError, match=r"b\.png.*changed"):
        extract_subimages(big_images, out, crop_size=48, step=24)
    # A new image beside unchanged ones is simply added.
    out2 = tmp_path / "sub2"
    extract_subimages(big_images, out2, crop_size=48, step=24)
    Image.fromarray(np.zeros((50, 50, 3), np.uint8)).save(big_images / "c.png")
    assert extract_subimages(big_images, out2, crop_size=48, step=24) == 4  # c.png only


def test_cli_names_the_option_that_redoes_the_subimages(
    big_images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub"
    base = ["data", "extract-subimages", str(big_images), str(out), "-q", "--step", "16"]
    assert main([*base, "--crop-size", "48"]) == 0
    assert main([*base, "--crop-size", "48"]) == 0
    capsys.readouterr()
    assert main([*base, "--crop-size", "32"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--overwrite" in err
    assert "crop_size=48" in err
    assert main([*base, "--crop-size", "32", "--overwrite"]) == 0
    assert {Image.open(p).size for p in out.glob("*.png")} == {(32, 32)}
