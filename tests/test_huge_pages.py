"""``import superres`` puts PyTorch's large CPU tensors on transparent huge pages (runtime.py).

Checked in fresh processes, because PyTorch reads the setting once: the variable is set unless
the user set it, and where the kernel allows huge pages on request (THP ``madvise`` or
``always``) a 64 MiB tensor made after ``import superres`` really lies on them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")

_PROBE = """
import os, re, superres, torch
t = torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB, touched
rollup = open("/proc/self/smaps_rollup").read()
kib = int(re.search(r"AnonHugePages:\\s+(\\d+) kB", rollup).group(1))
print(os.environ.get("THP_MEM_ALLOC_ENABLE"), kib)
"""


def _probe(**env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"} | env
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], env=environ, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


def _kernel_mode() -> str | None:
    if not _THP.is_file() or not Path("/proc/self/smaps_rollup").is_file():
        return None
    text = _THP.read_text()
    return text[text.index("[") + 1 : text.index("]")]


def test_import_asks_for_huge_pages_and_keeps_a_users_choice() -> None:
    assert _probe()[0] == "1"
    assert _probe(THP_MEM_ALLOC_ENABLE="0")[0] == "0"


def test_large_tensors_lie_on_huge_pages() -> None:
    mode = _kernel_mode()
    if mode not in ("madvise", "always"):
        pytest.skip(f"the kernel gives no transparent huge pages on request here (THP: {mode})")
    _, kib = _probe()
    assert kib >= 32 * 1024, f"only {kib} KiB of a 64 MiB tensor on huge pages"
    if mode == "madvise":  # without the request, none
        _, off = _probe(THP_MEM_ALLOC_ENABLE="0")
        assert off < 8 * 1024, off
