"""The import graph follows docs/ARCHITECTURE.md: no circle, no upward import, no other arrow;
the command line starts without the optional heavy libraries."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "superres"


def allowed_arrows() -> dict[str, set[str]]:
    """``layer -> the layers it may import``, from the ```arrows block of ARCHITECTURE.md."""
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    match = re.search(r"```arrows\n(.*?)```", text, re.S)
    assert match is not None, "docs/ARCHITECTURE.md lost its ```arrows block"
    arrows: dict[str, set[str]] = {}
    for line in match.group(1).strip().splitlines():
        layer, _, targets = line.partition(":")
        arrows[layer.strip()] = {t.strip() for t in targets.split(",") if t.strip()}
    return arrows


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return "superres" if len(parts) == 1 else parts[1]


def imports(source: str, module: str, *, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every ``superres`` name ``source`` (the text of ``module``) imports, at any depth (lazy
    imports in functions included), with its line."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "superres":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "superres":
                continue
            yield base, node.lineno
            for alias in node.names:  # `from superres.x import y` where y is a module
                yield f"{base}.{alias.name}", node.lineno


def graph() -> dict[str, dict[str, int]]:
    """``module -> {imported module: line}`` over every module of the package."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, dict[str, int]] = {}
    for module, path in files.items():
        found: dict[str, int] = {}
        text = path.read_text()
        for target, line in imports(text, module, is_package=path.name == "__init__.py"):
            # `from superres.x import name`: the module is superres.x unless name is a module.
            while target not in files and "." in target:
                target = target.rpartition(".")[0]
            # A module's own packages run first anyway: importing them is no edge; but the
            # top-level package (the public shortcuts) sits above everything.
            own = module.startswith(target + ".") and target != "superres"
            if target != module and not own:
                found.setdefault(target, line)
        edges[module] = found
    return edges


def test_the_table_names_every_layer() -> None:
    arrows = allowed_arrows()
    layers = {layer_of(m) for m in graph()}
    assert layers <= set(arrows), f"layers missing from ARCHITECTURE.md: {layers - set(arrows)}"
    for layer, targets in arrows.items():
        assert targets <= set(arrows), f"{layer}: unknown layers {targets - set(arrows)}"
        assert layer not in targets


def test_every_import_follows_the_arrows() -> None:
    arrows = allowed_arrows()
    wrong = []
    for module, targets in graph().items():
        source = layer_of(module)
        for target, line in targets.items():
            if layer_of(target) != source and layer_of(target) not in arrows[source]:
                wrong.append(f"{module}:{line} imports {target} ({source} -> {layer_of(target)})")
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(wrong)


def test_the_allowed_arrows_have_no_circle() -> None:
    """Layer by layer the arrows point one way (so no import can form a circle across layers)."""
    arrows = allowed_arrows()
    seen: dict[str, str] = {}

    def visit(layer: str, path: tuple[str, ...]) -> None:
        if seen.get(layer) == "done":
            return
        assert seen.get(layer) != "open", f"circle: {' -> '.join((*path, layer))}"
        seen[layer] = "open"
        for target in arrows[layer]:
            visit(target, (*path, layer))
        seen[layer] = "done"

    for layer in arrows:
        visit(layer, ())


def test_no_module_imports_itself_through_others() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def connect(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in edges.get(module, {}):
            if target not in index:
                connect(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in edges:
        if module not in index:
            connect(module)
    assert not circles, f"import circles: {circles}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from superres.io.files import atomic_write", "superres.io.files"),
        ("from superres.io import files", "superres.io.files"),
        ("import superres.metrics.niqe as n", "superres.metrics.niqe"),
        ("from . import niqe", "superres.metrics.niqe"),
        ("from .luma import lumas_255", "superres.metrics.luma"),
        ("def f():\n    from superres.training import trainer", "superres.training.trainer"),
    ],
)
def test_the_graph_sees_every_form_of_import(source: str, expected: str) -> None:
    """The checker itself: a test that cannot see an import cannot fail on it."""
    found = {t for t, _ in imports(source, "superres.metrics.probe", is_package=False)}
    assert expected in found


def test_the_command_line_starts_without_the_optional_heavy_libraries() -> None:
    """`superres COMMAND` imports every command's parser: none may import SciPy (the MOS
    statistics), FastAPI (the MOS server), PyAV or ONNX at start-up; the command that needs
    one imports it when it runs."""
    code = (
        "import sys, superres.cli; "
        "print(sorted(m for m in ('scipy', 'fastapi', 'uvicorn', 'av', 'onnx', 'onnxruntime') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout


#: A module or function past these sizes is split (docs/ARCHITECTURE.md); none is exempt.
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80


def _oversized(path: Path, root: Path) -> list[str]:
    """``path``'s file and functions over the limits (a function's lines include its docstring)."""
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(root)
    found = []
    if (lines := len(text.splitlines())) > MAX_FILE_LINES:
        found.append(f"{name}: {lines} lines")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(f"{name}:{node.lineno} {node.name}: {length} lines")
    return found


def test_no_module_or_function_is_too_long() -> None:
    found = [line for path in sorted(PACKAGE.rglob("*.py")) for line in _oversized(path, REPO)]
    assert not found, "\n".join(found)


def test_the_size_check_sees_a_long_file_and_a_long_method(tmp_path: Path) -> None:
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    filler = "\n" * MAX_FILE_LINES
    (tmp_path / "m.py").write_text(f"class A:\n    def long(self):\n{body}\n{filler}")
    assert _oversized(tmp_path / "m.py", tmp_path) == [
        f"m.py: {MAX_FUNCTION_LINES + 2 + MAX_FILE_LINES} lines",
        f"m.py:2 long: {MAX_FUNCTION_LINES + 1} lines",
    ]
