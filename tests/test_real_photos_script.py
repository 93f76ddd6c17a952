"""benchmarks/real_photos.py: NIQE of each model's x4 output of the bundled photos."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import load_script
from superres.metrics.niqe import niqe

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.data
def test_the_table_scores_each_model_on_each_photo(
    data_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPERRES_DATA", str(data_root))
    script = load_script(BENCHMARKS / "real_photos.py", monkeypatch)
    assert (
        script.main(["--samples", "chelsea", "coffee", "--models", "bicubic", "--crop", "48"]) == 0
    )
    out = capsys.readouterr().out
    assert "| model | chelsea | coffee | mean |" in out
    row = next(line for line in out.splitlines() if line.startswith("| bicubic |"))
    values = [float(cell) for cell in row.strip("|").split("|")[1:]]
    assert len(values) == 3
    assert values[2] == pytest.approx((values[0] + values[1]) / 2, abs=1e-3)
    # The same number as NIQE of the bicubic x4 of that crop, computed here.
    from superres import load_model
    from superres.io.samples import load_sample

    crop = script.centre_crop(load_sample("chelsea").rgb, 48)
    with torch.inference_mode():
        up = load_model("bicubic", scale=4)(crop[None])[0].clamp(0, 1)
    assert values[0] == pytest.approx(float(niqe((up * 255 + 0.5).floor() / 255)), abs=1e-3)


def test_centre_crop(monkeypatch: pytest.MonkeyPatch) -> None:
    script = load_script(BENCHMARKS / "real_photos.py", monkeypatch)
    image = torch.arange(5 * 7, dtype=torch.float32).view(1, 5, 7)
    # Rows 1-3 and columns 2-4 of a 5 x 7 grid numbered row by row.
    expected = [[[9.0, 10.0, 11.0], [16.0, 17.0, 18.0], [23.0, 24.0, 25.0]]]
    assert script.centre_crop(image, 3).tolist() == expected
    assert script.centre_crop(image, 9).shape == (1, 5, 7)
