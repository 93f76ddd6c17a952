"""benchmarks/speed.py sets us beside the engines a CPU user would pick instead (issue: inference
speed, item 1): ONNX Runtime and OpenVINO run the same exported network as extra paths, and an
engine that is not installed is one "unavailable" line, not the end of the run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import load_script

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
def test_each_engine_is_a_row_or_an_unavailable_line(
    engine: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    speed = load_script(BENCHMARKS / "speed.py", monkeypatch)
    argv = ["--models", "srcnn-x4", "--sizes", "16", "--paths", "eager", engine, "--large", "0x0"]
    assert speed.main([*argv, "--repeats", "1", "--warmup", "0", "--no-quality"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(f"| srcnn-x4 | {engine} |")]
    if importlib.util.find_spec(engine) is None:
        assert f"srcnn-x4 {engine}: unavailable (" in out  # the import error, with its fix
        assert not rows
    else:
        assert len(rows) == 1, out
    assert any(line.startswith("| srcnn-x4 | eager |") for line in out.splitlines())
