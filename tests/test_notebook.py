"""notebooks/demo.ipynb: committed with its outputs, which its code reproduces, on the README's API.

The test executes a copy of the notebook from top to bottom and compares what it shows with the
outputs committed in the file (the metric table within 0.02 in every figure, the printed lines,
two figures), so a reader on GitHub sees what the code gives. Regenerate the committed outputs with
``SUPERRES_WRITE_NOTEBOOK=1 .venv/bin/python -m pytest tests/test_notebook.py``.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT, find_data_root

NOTEBOOK = REPO_ROOT / "notebooks" / "demo.ipynb"
MODELS = ("bicubic", "srcnn-x4", "srresnet-x4", "edsr-baseline-x4", "srgan-x4")


def _execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    root = find_data_root()
    if root is not None:  # LPIPS and NIQE read their files from the data root
        # Absolute: the kernel runs in tmp_path, where a relative SUPERRES_DATA points elsewhere.
        monkeypatch.setenv("SUPERRES_DATA", str(root.resolve()))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        record_timing=False,  # no timestamps in the committed file
        resources={"metadata": {"path": tmp_path}},
    )
    client.execute(env=dict(os.environ))  # a failing cell raises CellExecutionError
    return notebook


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


def _table(notebook: nbformat.NotebookNode) -> dict[str, list[str]]:
    """The metric table's rows: model -> its cells."""
    text = next(
        o["data"]["text/markdown"]
        for o in _outputs(notebook)
        if "text/markdown" in o.get("data", {})
    )
    rows = [line.strip("|").split("|") for line in text.splitlines()[2:]]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def _printed(notebook: nbformat.NotebookNode) -> list[str]:
    """The printed lines. The kernel flushes stdout on a timer, so one ``print`` may arrive as
    two stream outputs on a loaded machine: the texts are joined before they are split."""
    texts: list[str] = [o["text"] for o in _outputs(notebook) if o.get("name") == "stdout"]
    return "".join(texts).splitlines()


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def _same_within(a: list[str], b: list[str], tolerance: float) -> bool:
    """Equal, except that decimal numbers may differ by ``tolerance`` (another CPU's rounding)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if re.sub(r"-?\d+\.\d+", "#", x) != re.sub(r"-?\d+\.\d+", "#", y):
            return False
        if any(abs(p - q) > tolerance for p, q in zip(_numbers(x), _numbers(y), strict=True)):
            return False
    return True


def test_demo_notebook_reproduces_its_committed_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = nbformat.read(NOTEBOOK, as_version=4)
    fresh = _execute(tmp_path, monkeypatch)
    assert not [o for o in _outputs(fresh) if o.get("output_type") == "error"]
    images = [o for o in _outputs(fresh) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the comparison figure and the realism slider
    table = _table(fresh)
    assert set(MODELS) <= set(table)
    if find_data_root() is not None:
        assert "-" not in [c for row in table.values() for c in row]  # every metric computed
    if os.environ.get("SUPERRES_WRITE_NOTEBOOK") == "1":
        nbformat.write(fresh, NOTEBOOK)
        return
    # What a reader sees on GitHub is what the code gives.
    assert len([o for o in _outputs(committed) if "image/png" in o.get("data", {})]) == 2
    assert _table(committed).keys() == table.keys()
    for name, cells in table.items():
        assert _same_within(cells, _table(committed)[name], 0.02), (name, cells)
    assert _same_within(_printed(fresh), _printed(committed), 0.02), _printed(fresh)


def test_a_print_split_across_two_stream_outputs_is_one_line() -> None:
    """On a loaded machine the kernel's flush timer may cut a printed line in two outputs."""
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('a', 'b')")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="a"),
        nbformat.v4.new_output("stream", name="stdout", text=" b\n"),
        nbformat.v4.new_output("stream", name="stderr", text="warning\n"),
    ]
    notebook.cells.append(cell)
    assert _printed(notebook) == ["a b"]


def _readme_python() -> str:
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return "\n".join(re.findall(r"```python\n(.*?)```", text, flags=re.S))


def test_demo_notebook_uses_only_the_api_the_readme_shows() -> None:
    """Every ``superres`` import in the notebook is one the README's Python examples make."""
    shown: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(_readme_python())):
        if isinstance(node, ast.ImportFrom) and node.module:
            shown |= {(node.module, alias.name) for alias in node.names}
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    used: set[tuple[str, str]] = set()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("superres"):
                used |= {(str(node.module), alias.name) for alias in node.names}
    assert used, "the notebook imports nothing from superres"
    assert used <= shown, sorted(used - shown)


def test_demo_notebook_text_matches_its_code() -> None:
    """The sizes and names the markdown states are those the code uses and prints."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    printed = "\n".join(_printed(notebook))
    assert "192x192" in markdown
    assert "select_crop(photo, 192)" in code
    assert "(48x48)" in markdown
    assert "-> LR (3, 48, 48)" in printed
    assert "HR (3, 192, 192)" in printed
    for name in re.findall(r"`(\w[\w-]*-x4)`", markdown):  # models the text names are loaded
        assert name in printed or name in code, name


def test_the_readme_block_the_notebook_follows_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (REPO_ROOT / "README.md").read_text(), flags=re.S)
    block = next(b for b in blocks if "super_resolve(" in b)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})  # the project's own README
    assert (tmp_path / "c.png").stat().st_size > 0
