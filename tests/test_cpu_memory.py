"""How superres's CPU tensors get their memory (runtime.py), checked in fresh processes.

* ``import superres`` puts PyTorch's large CPU tensors on transparent huge pages (PyTorch reads
  the setting once): the variable is set unless the user set it, and where the kernel allows
  huge pages on request (THP ``madvise`` or ``always``) a 64 MiB tensor made after ``import
  superres`` really lies on them.
* The Upscaler and the trainer on the CPU make glibc keep freed memory for the next tensors
  (``retain_freed_memory``): a freed 256 MiB tensor stays in the process, and the next one of
  that size reuses it; a user's ``SUPERRES_RETAIN_MEMORY=0`` or own glibc tuning wins.
"""

from __future__ import annotations

import os
import platform
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


_RETAIN_PROBE = """
import superres, torch
from superres.runtime import retain_freed_memory

def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

retained = retain_freed_memory()
before = resident_mib()
t = torch.empty(64 * 2**20).fill_(1.0)  # 256 MiB, touched
del t
after_free = resident_mib()
print(retained, round(after_free - before))
"""


def _retain_probe(**env: str) -> tuple[bool, float]:
    names = ("SUPERRES_RETAIN_MEMORY", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
    environ = {k: v for k, v in os.environ.items() if k not in names} | env
    out = subprocess.run(
        [sys.executable, "-c", _RETAIN_PROBE],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0] == "True", float(out[1])


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="retain_freed_memory tunes glibc's malloc only",
)
def test_freed_cpu_memory_is_kept_for_the_next_tensor_unless_the_user_says_no() -> None:
    retained, kept_mib = _retain_probe()
    assert retained
    assert kept_mib > 200, f"only {kept_mib} MiB of a freed 256 MiB tensor stayed mapped"
    for env in ({"SUPERRES_RETAIN_MEMORY": "0"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}):
        retained, kept_mib = _retain_probe(**env)
        assert not retained, env
        assert kept_mib < 64, (env, kept_mib)  # glibc unmapped it, as without superres


def test_the_upscaler_on_the_cpu_asks_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from superres.inference import upscaler as module
    from superres.inference.options import UpscaleOptions
    from superres.models import create_model

    calls: list[str] = []
    monkeypatch.setattr(module, "retain_freed_memory", lambda: calls.append("cpu") or True)
    module.Upscaler(create_model("bicubic", scale=2), options=UpscaleOptions(device="cpu"))
    assert calls == ["cpu"]
