"""notebooks/demo.ipynb runs from top to bottom (so the demo never rots)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT, find_data_root


def test_demo_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = find_data_root()
    if root is not None:  # LPIPS and NIQE read their files from the data root
        # Absolute: the kernel runs in notebooks/, where a relative SUPERRES_DATA points elsewhere.
        monkeypatch.setenv("SUPERRES_DATA", str(root.resolve()))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(REPO_ROOT / "notebooks" / "demo.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute(env=dict(os.environ))  # a failing cell raises CellExecutionError
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the comparison figure and the realism slider
    table = next(
        o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})
    )
    for name in ("bicubic", "srcnn-x4", "srresnet-x4", "edsr-baseline-x4", "srgan-x4"):
        assert f"| {name} |" in table
    if root is not None:
        assert "| - |" not in table  # every metric was computed
