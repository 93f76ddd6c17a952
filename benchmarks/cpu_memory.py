"""What fresh memory costs a CPU forward pass: page faults against transparent huge pages.

For 4 KiB pages (``THP_MEM_ALLOC_ENABLE=0``) and huge pages (``=1``, what ``import superres``
sets), each in a fresh interpreter because PyTorch reads the setting once: medians of
``--repeats`` milliseconds to allocate and fill a 256 MiB tensor, to fill one already mapped, and
to pixel-shuffle a ``(1, 256, 512, 512)`` channels_last tensor into a fresh tensor and into a
reused one (the copy every SR upsampler makes).

    python benchmarks/cpu_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable

_HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"  # superres.runtime.HUGE_PAGES_ENV, read before torch


def _probe(repeats: int) -> dict[str, float]:
    """The allocation rows, in this process (its huge-page setting as the environment says)."""
    import torch

    from speed import time_runs  # imports torch: only here, in the probe's own interpreter
    from superres.inference.fusion import PixelShuffleNHWC

    def ms(f: Callable[[], object]) -> float:
        return 1000 * statistics.median(time_runs(f, warmup=1, repeats=repeats))

    shape = (1, 256, 512, 512)  # 256 MiB of float32
    reused = torch.empty(shape)
    x = torch.rand(shape).contiguous(memory_format=torch.channels_last)
    shuffle = PixelShuffleNHWC(2)
    n, c, h, w, r = 1, 64, 512, 512, 2
    out = torch.empty(n, h * r, w * r, c)

    def into_buffer() -> torch.Tensor:
        src = x.permute(0, 2, 3, 1).reshape(n, h, w, r, r, c).permute(0, 1, 3, 2, 4, 5)
        return out.view(n, h, r, w, r, c).copy_(src)

    return {
        "allocate + fill 256 MiB": ms(lambda: torch.empty(shape).fill_(0.0)),
        "fill 256 MiB already mapped": ms(lambda: reused.fill_(0.0)),
        "pixel shuffle into a fresh tensor": ms(lambda: shuffle(x)),
        "pixel shuffle into a reused tensor": ms(into_buffer),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(_probe(args.repeats)))
        return 0
    env = dict(os.environ)
    columns = {}
    for value in ("0", "1"):
        run = subprocess.run(
            [sys.executable, __file__, "--probe", "--repeats", str(args.repeats)],
            env=env | {_HUGE_PAGES_ENV: value},
            capture_output=True,
            text=True,
            check=True,
        )
        columns[value] = json.loads(run.stdout.strip().splitlines()[-1])
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print("| ms | 4 KiB pages | huge pages |")
    print("|---|---:|---:|")
    for row in columns["0"]:
        print(f"| {row} | {columns['0'][row]:.1f} | {columns['1'][row]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
