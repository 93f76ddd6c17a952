"""Shared fixtures: the benchmark data root and small deterministic images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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
