"""Crop selection and paper-style comparison figures (superres.evaluation.figures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.errors import ImageTooSmallError, ImageWriteError, InvalidImageError
from superres.evaluation.figures import comparison_figure, select_crop


def flat_with_noisy_square(
    height: int = 120, width: int = 160, top: int = 72, left: int = 88, side: int = 32
) -> torch.Tensor:
    """A flat gray image with one square of uniform noise: the only texture in the picture."""
    image = torch.full((3, height, width), 0.5)
    noise = torch.rand((3, side, side), generator=torch.Generator().manual_seed(1))
    image[:, top : top + side, left : left + side] = noise
    return image


def test_texture_crop_finds_the_noisy_square() -> None:
    image = flat_with_noisy_square(top=72, left=88, side=32)
    top, left = select_crop(image, 32, method="texture")
    # The search grid has stride size // 8 = 4 and the square sits on it: exact hit.
    assert (top, left) == (72, 88)
    # Off the grid, the chosen window still covers most of the square.
    image = flat_with_noisy_square(top=37, left=53, side=32)
    top, left = select_crop(image, 32, method="texture")
    overlap = max(0, 32 - abs(top - 37)) * max(0, 32 - abs(left - 53))
    assert overlap >= 0.75 * 32 * 32


def test_texture_crop_is_deterministic_and_ignores_the_seed() -> None:
    image = torch.rand((3, 64, 80), generator=torch.Generator().manual_seed(0))
    first = select_crop(image, 24)
    assert select_crop(image.clone(), 24) == first
    assert select_crop(image, 24, seed=123) == first


def test_texture_crop_reaches_the_bottom_right_corner() -> None:
    image = flat_with_noisy_square(height=50, width=61, top=50 - 16, left=61 - 16, side=16)
    assert select_crop(image, 16) == (34, 45)


def test_texture_crop_on_a_gray_image() -> None:
    image = flat_with_noisy_square(top=8, left=100, side=20)[:1]
    assert select_crop(image, 20) == (8, 100)


def test_seeded_crop_is_reproducible_and_inside_the_image() -> None:
    image = torch.zeros((3, 50, 70))
    corners = {select_crop(image, 20, method="seeded", seed=s) for s in range(20)}
    assert len(corners) > 1  # the seed matters
    for seed in range(20):
        corner = select_crop(image, 20, method="seeded", seed=seed)
        assert corner == select_crop(image, 20, method="seeded", seed=seed)
        top, left = corner
        assert 0 <= top <= 30
        assert 0 <= left <= 50
    assert select_crop(torch.zeros((3, 20, 20)), 20, method="seeded", seed=5) == (0, 0)


def test_select_crop_rejects_bad_arguments() -> None:
    image = torch.zeros((3, 40, 30))
    with pytest.raises(ImageTooSmallError, match="at most 30"):
        select_crop(image, 31)
    with pytest.raises(ValueError, match="positive integer"):
        select_crop(image, 0)
    with pytest.raises(ValueError, match="unknown crop method"):
        select_crop(image, 8, method="busy")  # type: ignore[arg-type]
    with pytest.raises(InvalidImageError, match=r"\(C, H, W\)"):
        select_crop(image[None], 8)
    with pytest.raises(InvalidImageError, match="floating point"):
        select_crop(torch.zeros((3, 40, 30), dtype=torch.uint8), 8)


def outputs_for(hr: torch.Tensor, count: int) -> dict[str, torch.Tensor]:
    return {f"method-{i}": (hr * (0.5 + 0.1 * i)).clamp(0, 1) for i in range(count)}


@pytest.mark.parametrize("count", [1, 2, 5])
def test_figure_is_a_png_with_one_panel_per_method(tmp_path: Path, count: int) -> None:
    hr = flat_with_noisy_square()
    outputs = outputs_for(hr, count)
    crop = (*select_crop(hr, 32), 32)
    path = tmp_path / "figure.png"
    result = comparison_figure(
        hr,
        outputs,
        crop=crop,
        path=path,
        title="synthetic",
        scores={"method-0": "PSNR-Y 30.1 dB", "HR": "reference"},
        panel_px=128,
    )
    assert result.path == path
    assert result.panels == ("HR", *outputs)
    assert result.zoom == 4
    assert result.crop == (72, 88, 32)
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert png.size == result.size
        png.load()
        pixels = np.asarray(png.convert("RGB"))
    # Panels: up to three in one row, more in two rows of ceil(n / 2) columns.
    panels = count + 1
    rows = 1 if panels <= 3 else 2
    cols = -(-panels // rows)
    width, height = result.size
    assert width > cols * 128
    assert height > rows * 128
    assert height < rows * (128 + 60) + 60
    # The red zoom box is drawn on the overview.
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 80)
    assert red.sum() > 4 * 32
    # The only files in the folder are the figure: no temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]


def test_figure_panels_are_nearest_neighbour_enlargements(tmp_path: Path) -> None:
    # A crop of a 2x2 checkerboard of pure colours, enlarged 8x, must show 8x8 uniform blocks.
    hr = torch.zeros((3, 16, 16))
    hr[0, ::2, ::2] = 1.0
    hr[2, 1::2, 1::2] = 1.0
    result = comparison_figure(
        hr, {"copy": hr.clone()}, crop=(4, 4, 4), path=tmp_path / "f.png", panel_px=32
    )
    assert result.zoom == 8
    with Image.open(result.path) as png:
        pixels = np.asarray(png.convert("RGB")).astype(int)
    # Pure-blue pixels exist only inside the crop panels (the overview is antialiased when
    # shrunk, but here it is enlarged); each panel holds 4 blue blocks of about 8x8 pixels.
    blue = (pixels[..., 2] > 250) & (pixels[..., 0] < 5) & (pixels[..., 1] < 5)
    assert blue.sum() >= 2 * 4 * 7 * 7


def test_figure_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    hr = flat_with_noisy_square()
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")
    comparison_figure(hr, outputs_for(hr, 1), crop=(0, 0, 16), path=path)
    with Image.open(path) as png:
        assert png.format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]


@pytest.mark.parametrize(
    "crop",
    [(-1, 0, 16), (0, -1, 16), (110, 0, 16), (0, 150, 16), (0, 0, 121), (0, 0, 0)],
)
def test_figure_rejects_a_crop_outside_the_image(
    tmp_path: Path, crop: tuple[int, int, int]
) -> None:
    hr = flat_with_noisy_square()  # 120 x 160
    path = tmp_path / "figure.png"
    with pytest.raises(ValueError, match="not inside the image of height 120 and width 160"):
        comparison_figure(hr, outputs_for(hr, 1), crop=crop, path=path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_figure_rejects_bad_inputs(tmp_path: Path) -> None:
    hr = flat_with_noisy_square()
    path = tmp_path / "figure.png"
    crop = (0, 0, 16)
    with pytest.raises(InvalidImageError, match="must have the HR image's size"):
        comparison_figure(hr, {"small": hr[:, :60]}, crop=crop, path=path)
    with pytest.raises(ValueError, match="outputs is empty"):
        comparison_figure(hr, {}, crop=crop, path=path)
    with pytest.raises(ValueError, match="ground-truth label"):
        comparison_figure(hr, {"HR": hr}, crop=crop, path=path)
    with pytest.raises(ValueError, match="without a panel"):
        comparison_figure(hr, {"a": hr}, crop=crop, path=path, scores={"b": "1 dB"})
    with pytest.raises(ValueError, match="three integers"):
        comparison_figure(hr, {"a": hr}, crop=(0, 0), path=path)  # type: ignore[arg-type]
    with pytest.raises(ImageWriteError, match="does not exist"):
        comparison_figure(hr, {"a": hr}, crop=crop, path=tmp_path / "missing" / "f.png")
    assert list(tmp_path.iterdir()) == []
