"""benchmarks/speed_gpu.py runs on the CPU (the CUDA-only paths skipped, not failed) and keeps to
its time budget. Correctness of the table only: speed is never asserted here."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "speed_gpu.py"


def _script(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return load_script(SCRIPT, monkeypatch)


def test_speed_gpu_on_the_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = _script(monkeypatch)
    target = tmp_path / "speed_gpu.json"
    argv = [
        "--device", "cpu", "--models", "srresnet-x4", "--sizes", "16",
        "--paths", "fp32", "bf16", "bf16_cl", "fp16", "--repeats", "1", "--warmup", "0",
        "--no-quality", "--json", str(target),
    ]  # fmt: skip
    assert script.main(argv) == 0
    rows = {row["path"]: row for row in json.loads(target.read_text())["rows"]}
    assert set(rows) == {"fp32", "bf16", "bf16_cl", "fp16"}
    assert rows["fp32"]["speedup"] == 1.0
    assert rows["fp32"]["max_abs_diff"] == 0.0
    for path in ("bf16", "bf16_cl"):
        row = rows[path]
        assert row["size"] == "16x16"
        assert row["note"] == ""
        assert math.isfinite(row["max_abs_diff"])
        assert 0.0 < row["max_abs_diff"] < 0.1
        assert row["ms_per_mp"] > 0
        assert row["gflops"] > 0
    assert rows["fp16"]["note"] == "skipped: needs CUDA"
    assert "| srresnet-x4 | fp16 | - |" in capsys.readouterr().out


def test_speed_gpu_past_its_budget_skips_rather_than_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = _script(monkeypatch)
    target = tmp_path / "speed_gpu.json"
    argv = [
        "--device", "cpu", "--models", "srresnet-x4", "--sizes", "16", "--paths", "fp32",
        "--no-quality", "--budget-s", "0", "--json", str(target),
    ]  # fmt: skip
    assert script.main(argv) == 0
    rows = json.loads(target.read_text())["rows"]
    assert all(row["note"].startswith(("skipped", "interrupted")) for row in rows), rows
