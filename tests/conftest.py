"""Shared fixtures: the benchmark data root, and both answers of the CPU's bf16 question."""

from __future__ import annotations

import http.server
import importlib.util
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

import superres.runtime as runtime
from superres import assets
from superres.assets import Asset
from superres.errors import UnknownAssetError
from superres.registry import Registry

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The suite's first lines say what it runs on, so a failure names its CPU kind."""
    del config
    return [f"machine: {runtime.describe_machine()}"]


@pytest.fixture(params=[False, True], ids=["emulated-bf16", "native-bf16"])
def native_bf16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run the test as on a CPU without native bf16 and as on one with it, whatever this CPU is.

    :func:`superres.runtime.cpu_has_native_bf16` is the one detection every CPU choice
    asks (the Upscaler's and the trainer's ``auto`` precision, and through them the tile
    planner's memory model); answering it both ways runs both branches on any machine. Where
    the answer is "native" but the CPU emulates bf16, the bf16 kernels are slow but correct.
    """
    answer = bool(request.param)
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: answer)
    return answer


def find_data_root() -> Path | None:
    """``SUPERRES_DATA`` if set, else ``../shared/data`` beside the checkout, else ``None``."""
    env = os.environ.get("SUPERRES_DATA")
    if env:
        return Path(env)
    candidate = REPO_ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real benchmark data (Set5, Set14, BSD100, Urban100, ...); skips the test when absent."""
    root = find_data_root()
    if root is None or not (root / "Set5").is_dir():
        pytest.skip(
            "benchmark data not found: set SUPERRES_DATA to a folder holding Set5/, Set14/, ..."
        )
    return root


def load_script(path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A script of benchmarks/ or scripts/ as a module: its folder on sys.path (scripts import
    their neighbours) and the module in sys.modules (dataclasses look their module up)."""
    monkeypatch.syspath_prepend(str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def replace_asset(monkeypatch: pytest.MonkeyPatch) -> Callable[[Asset], None]:
    """Swap one record of the asset catalog (or add one) for this test."""

    def replace(asset: Asset) -> None:
        registry: Registry[Asset] = Registry("asset", UnknownAssetError)
        for name in assets.list_assets():
            registry.add(name, asset if name == asset.name else assets.get_asset(name))
        if asset.name not in registry:
            registry.add(asset.name, asset)
        monkeypatch.setattr(assets, "ASSETS", registry)

    return replace


class FileServer:
    """Serves ``files`` (URL path -> bytes) on 127.0.0.1 and records every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"


@pytest.fixture
def server() -> Iterator[FileServer]:
    """A local HTTP server (127.0.0.1, a free port): downloads are tested against it only."""
    srv = FileServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(timeout=5)


@pytest.fixture
def study(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the test module's ``template`` MOS study: each test rates its own."""
    path = tmp_path / "study.db"
    shutil.copyfile(template, path)
    return path
