"""Issue 21, items 4 and 5: commands that crashed, kept stale state, or left gaps in eval/report."""

from __future__ import annotations

import csv
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


# --- 5. eval: any folder, --limit, --save-images, published figures ------------------------------


def _smooth_folder(folder: Path, names: tuple[str, ...] = ("c", "a", "b")) -> Path:
    """Smooth RGB images (bicubic-enlarged noise) of odd sizes, so mod-crop is exercised."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i, name in enumerate(names):
        coarse = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8))
        coarse.resize((45 + i, 50), Image.Resampling.BICUBIC).save(folder / f"{name}.png")
    return folder


def _eval(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[dict, str]:
    capsys.readouterr()  # what came before
    js = Path(args[args.index("--output-json") + 1])
    assert main(["eval", "--models", "bicubic", "-q", *args]) == 0
    return json.loads(js.read_text()), capsys.readouterr().out


def test_eval_takes_any_folder_of_hr_images(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = _smooth_folder(tmp_path / "my" / "HR")
    js = str(tmp_path / "r.json")
    doc, table = _eval(capsys, "--datasets", str(hr), "--scales", "2", "--output-json", js)
    assert [r["images"] for r in doc["results"]] == [3]
    assert [r["image"] for r in doc["per_image"]] == ["a", "b", "c"]
    assert "| Model | Scale | my |" in table
    generated = doc["per_image"][0]["psnr_y"]
    # An LR folder beside it, in a layout the catalog uses, is taken instead of bicubic.
    for layout in ("LR_bicubic_x2", "LR"):
        lr = tmp_path / "my" / layout
        lr.mkdir()
        for path in hr.iterdir():
            with Image.open(path) as im:
                Image.new("RGB", (im.width // 2, im.height // 2)).save(lr / path.name)
        doc, _ = _eval(capsys, "--datasets", str(hr), "--scales", "2", "--output-json", js)
        assert doc["per_image"][0]["psnr_y"] < generated - 10  # a black LR scores badly
        for path in lr.iterdir():
            path.unlink()
        lr.rmdir()
    # An `LR` folder holding another scale's files is not taken for this one.
    (tmp_path / "my" / "LR").mkdir()
    for path in hr.iterdir():
        Image.new("RGB", (5, 5)).save(tmp_path / "my" / "LR" / path.name)
    doc, _ = _eval(capsys, "--datasets", str(hr), "--scales", "2", "--output-json", js)
    assert doc["per_image"][0]["psnr_y"] == pytest.approx(generated)


def test_eval_refuses_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope" / "HR"
    assert main(["eval", "--models", "bicubic", "--datasets", str(missing), "-q"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err
    assert str(missing) in err


def test_eval_limit_scores_the_first_images_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = _smooth_folder(tmp_path / "set" / "HR")
    js = str(tmp_path / "r.json")
    args = ("--datasets", str(hr), "--scales", "2", "--output-json", js)
    full, _ = _eval(capsys, *args)
    doc, table = _eval(capsys, *args, "--limit", "2")
    assert doc["limit"] == 2
    assert [r["image"] for r in doc["per_image"]] == ["a", "b"]
    assert doc["results"][0]["images"] == 2
    assert doc["results"][0]["limited"] is True
    assert doc["per_image"] == full["per_image"][:2]
    assert "first 2 images" in table
    assert "limit 2" in table
    with pytest.raises(SystemExit):
        main(["eval", "--models", "bicubic", "--datasets", str(hr), "--limit", "0"])


def test_eval_save_images_writes_the_scored_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from superres.evaluation.benchmark import output_image_path
    from superres.metrics.fidelity import psnr

    hr = _smooth_folder(tmp_path / "photos")
    js, saved = str(tmp_path / "r.json"), tmp_path / "sr"
    doc, _ = _eval(
        capsys,
        "--datasets",
        str(hr),
        "--scales",
        "2",
        "--output-json",
        js,
        "--save-images",
        str(saved),
    )
    files = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*.png"))
    assert files == [
        "bicubic/photos_x2/a.png",
        "bicubic/photos_x2/b.png",
        "bicubic/photos_x2/c.png",
    ]
    assert output_image_path(saved, "bicubic", str(hr), 2, "a") == saved / files[0]
    # The file is what was scored: its PSNR against the mod-cropped HR is the table's.
    sr = torch.from_numpy(np.array(Image.open(saved / files[0]))).permute(2, 0, 1) / 255.0
    with Image.open(hr / "a.png") as im:
        ref = (
            torch.from_numpy(np.array(im)).permute(2, 0, 1)[:, :50, :46] / 255.0
        )  # a.png is 46 x 50
    value = float(psnr(sr[None].double(), ref[None].double(), crop_border=2, y_channel=True)[0])
    assert value == pytest.approx(doc["per_image"][0]["psnr_y"], abs=1e-9)


def test_published_rows_under_the_legacy_protocol_and_in_the_files(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    js, cs = str(tmp_path / "r.json"), tmp_path / "r.csv"
    args = ("--datasets", "set5", "--data-root", str(data_root), "--output-json", js)
    doc, out = _eval(capsys, *args, "--protocol", "legacy", "--published", "--output-csv", str(cs))
    # The README's promise: --protocol legacy reproduces the papers' 28.42 / 0.8104.
    row = next(line for line in out.splitlines() if line.startswith("| bicubic | x4 | Set5 |"))
    assert "28.42 / 0.8104 | 28.42 / 0.8104 | Bicubic" in row
    result = doc["results"][0]
    assert (result["published_row"], result["published_psnr_y"]) == ("Bicubic", 28.42)
    assert result["published_ssim_y"] == 0.8104
    with cs.open() as f:
        (csv_row,) = list(csv.DictReader(f))
    assert (csv_row["published_psnr_y"], csv_row["published_ssim_y"]) == ("28.42", "0.8104")
    # Under the default protocol the papers' bicubic row is not ours to compare: it says so.
    doc, out = _eval(capsys, *args, "--published")
    assert doc["results"][0]["published_psnr_y"] is None
    assert "--protocol legacy" in out


# --- 5. report: figures linked, what was left out listed, crops shown as they are --------------


def test_report_links_its_figures_and_lists_what_was_left_out(tmp_path: Path) -> None:
    from superres.evaluation.report import build_report, write_report

    hr = _smooth_folder(tmp_path / "mine" / "HR")
    report = build_report(
        ["bicubic"], [str(hr)], scale=2, niqe_metric=False, lpips_metric=False, crops=5,
        crop_size=32, progress=False,
    )  # fmt: skip
    out = tmp_path / "rep"
    written = {p.relative_to(out).as_posix() for p in write_report(report, out, crop_size=32)}
    text = (out / "report.md").read_text()
    figures = sorted(n for n in written if n.startswith("figures/"))
    assert figures == ["figures/mine_a.png", "figures/mine_b.png", "figures/mine_c.png"]
    for name in figures:
        assert f"]({name})" in text  # a link, and an image, per figure
        assert f"![mine {Path(name).stem[5:]}, x2]({name})" in text
    left = text[text.index("## Left out") :]
    assert "NIQE left out: not asked for" in left
    assert "LPIPS left out: not asked for" in left
    assert "MS-SSIM-Y not measured on 3 image(s)" in left
    assert "perception_distortion.png left out" in left
    assert "2 of the 5 crop figures asked for left out" in left
    doc = json.loads((out / "report.json").read_text())
    assert doc["figures"] == figures
    assert any("MS-SSIM" in line for line in doc["left_out"])


def test_crop_figures_show_the_textured_region_pixel_for_pixel(tmp_path: Path) -> None:
    from superres.evaluation.figures import comparison_figure, select_crop

    # A flat HR with one patch of fine texture; a "GAN" output with a 2-px lattice all over.
    gen = torch.Generator().manual_seed(0)
    hr = torch.full((3, 160, 200), 0.5)
    hr[:, 90:130, 120:160] = torch.rand(3, 40, 40, generator=gen)
    lattice = ((torch.arange(160)[:, None] // 2 + torch.arange(200)[None, :] // 2) % 2).float()
    gan = (0.25 + 0.5 * lattice).expand(3, 160, 200).clone()
    top, left = select_crop(hr, 32)
    assert 90 <= top <= 98  # on the texture, at HR resolution
    assert 120 <= left <= 128
    fig = comparison_figure(hr, {"gan": gan}, crop=(top, left, 32), path=tmp_path / "f.png")
    pixels = np.asarray(Image.open(fig.path).convert("RGB")).astype(int)
    region = gan[:, top : top + 32, left : left + 32].permute(1, 2, 0).numpy()
    expected = np.repeat(np.repeat(np.round(region * 255), fig.zoom, 0), fig.zoom, 1).astype(int)
    side = expected.shape[0]
    # The panel is the one place in the figure that shows exactly these blocks, pixel for pixel.
    ys, xs = np.nonzero((pixels == expected[0, 0]).all(axis=2))
    found = any(
        np.array_equal(pixels[y : y + side, x : x + side], expected)
        for y, x in zip(ys.tolist(), xs.tolist(), strict=True)
        if y + side <= pixels.shape[0] and x + side <= pixels.shape[1]
    )
    assert found, "the GAN panel is not the nearest-neighbour enlargement of its region"
