"""benchmarks/train_speed.py runs end to end on the CPU (tiny data, one step per path) and writes
a complete table. Correctness of the table only: speed is never asserted here."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from conftest import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script(BENCHMARKS / "train_speed.py", monkeypatch)  # it imports speed.py


@pytest.fixture
def tiny_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for folder, count in (("T91", 3), ("BSD200", 2)):
        hr = tmp_path / "data" / folder / "HR"
        hr.mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
            Image.fromarray(image).save(hr / f"im{i}.png")
    return tmp_path / "data"


def test_train_speed_on_the_cpu(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(monkeypatch)
    target = tmp_path / "train_speed.json"
    argv = ["--data-root", str(tiny_root), "--models", "srcnn", "--batches", "2", "--steps", "1"]
    argv += ["--warmup", "0", "--workers", "0", "--device", "cpu", "--json", str(target)]
    assert script.main(argv) == 0
    doc = json.loads(target.read_text())
    rows = {row["path"]: row for row in doc["rows"]}
    assert set(rows) == {"loader-nchw", "loader", "device"}
    assert set(doc["ceilings_gflops"]) == {"fp32", "bf16"}
    for row in rows.values():
        assert row["batch"] == 2
        assert row["patch"] == 96  # the zoo recipe's HR patch
        assert row["patches_per_s"] > 0
        assert 0 <= row["data_ms"] <= row["ms_per_step"]
        # SRCNN 9-5-5 runs at the HR size (on the bicubic of its 24x24 Y input): 96x96, batch
        # 2; forward + backward counted as three forward passes
        macs = 2 * 96 * 96 * (64 * 81 + 32 * 64 * 25 + 32 * 25)
        assert row["tflops"] * 1e12 * row["ms_per_step"] / 1e3 == pytest.approx(3 * 2 * macs)
    assert rows["loader-nchw"]["speedup"] == 1.0


def test_the_loss_curve_compares_batches_and_precisions(
    tiny_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(monkeypatch)
    argv = ["--data-root", str(tiny_root), "--models", "srcnn", "--batches", "2", "4"]
    argv += ["--curve", "2", "--device", "cpu"]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("| patches seen"))
    assert header.count("batch 2") == 2
    assert header.count("batch 4") == 2
