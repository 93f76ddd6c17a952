"""The blockiness measure of the real-photo issue (superres.metrics.blockiness): about 1 without
block structure, growing as the JPEG quality falls, tied to the grid's phase, and following the
grid through an upscale; bad inputs are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from conftest import load_script
from superres.io.samples import load_sample
from superres.metrics.blockiness import blockiness

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
Jpeg = Callable[[torch.Tensor, int], torch.Tensor]


@pytest.fixture
def jpeg(monkeypatch: pytest.MonkeyPatch) -> Jpeg:
    """The benchmark's Pillow JPEG round trip."""
    return load_script(BENCHMARKS / "jpeg_blockiness.py", monkeypatch).jpeg_round_trip


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return load_sample("chelsea").rgb


def test_a_clean_photo_has_no_block_structure(photo: torch.Tensor) -> None:
    assert 0.9 < blockiness(photo) < 1.1


def test_lower_jpeg_quality_is_blockier(photo: torch.Tensor, jpeg: Jpeg) -> None:
    values = [blockiness(jpeg(photo, q)) for q in (95, 60, 30, 10)]
    assert values == sorted(values)
    assert values[0] < 1.2
    assert values[-1] > 2.0


def test_the_measure_follows_the_jpeg_grid(photo: torch.Tensor, jpeg: Jpeg) -> None:
    blocky = jpeg(photo, 20)
    assert blockiness(blocky) > 1.5
    assert blockiness(blocky[:, 3:, 5:]) < 1.0  # the grid moved: its lines are no longer at 8k
    # Nearest-neighbour x4 keeps every step on the grid of 32 output pixels.
    upscaled = blocky.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)
    assert blockiness(upscaled, block=32) > 1.5
    assert blockiness(upscaled, block=32) > blockiness(upscaled, block=8)


def test_gray_and_batched_images_are_accepted(photo: torch.Tensor) -> None:
    gray = photo.mean(0, keepdim=True)
    assert blockiness(gray[None]) == pytest.approx(blockiness(gray))
    assert blockiness(photo[None]) == pytest.approx(blockiness(photo))


@pytest.mark.parametrize(
    ("image", "block", "message"),
    [
        (torch.rand(3, 15, 40), 8, "fewer than 2x2 blocks"),
        (torch.rand(3, 64, 64), 1, "at least 2"),
        (torch.rand(2, 64, 64), 8, "expected a"),
        (torch.full((3, 64, 64), 0.5), 8, "flat"),
    ],
)
def test_bad_inputs_are_refused(image: torch.Tensor, block: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        blockiness(image, block=block)
