"""Peak memory and wall time of upscaling a 4000 x 3000 image on the CPU, tiled.

Each configuration runs in a fresh subprocess (peak RSS is a per-process high-water mark) and
reports the resident set before the upscale (Python + torch + the 144 MB float input), the peak
during it, and the wall time. The output canvas alone is ``3 * 16000 * 12000 * 4 B = 2.15 GiB`` at
x4; everything above canvas + baseline is per-tile working memory, which ``tile="auto"`` bounds.

    python benchmarks/upscale_memory.py                      # bicubic and a small SRResNet, x4
    python benchmarks/upscale_memory.py --models srresnet-small --write   # + quantise and PNG

``--write`` adds the file-writing path of ``superres upscale`` (quantise to uint8, free the float
canvas, encode PNG) to the measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = {
    "bicubic": {"name": "bicubic"},
    "srresnet-small": {"name": "srresnet", "num_features": 16, "num_blocks": 2},
}


def _rss_now() -> int:
    """Current resident set size in bytes (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return _rss_peak()


def _rss_peak() -> int:
    """Peak resident set size in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def synthetic_image(height: int, width: int):  # -> torch.Tensor, imported lazily
    """A deterministic, smooth-but-detailed RGB test image ``(3, H, W)`` in [0, 1]."""
    import torch

    y = torch.linspace(0, 1, height)[:, None]
    x = torch.linspace(0, 1, width)[None, :]
    r = 0.5 + 0.5 * torch.sin(40 * x + 7 * y)
    g = 0.5 + 0.5 * torch.cos(25 * y * (1 + x))
    b = (x + y) / 2
    return torch.stack([r, g, b]).clamp(0, 1).float()


def run_one(model_key: str, scale: int, height: int, width: int, tile: str, write: bool) -> dict:
    """Upscale once in this process; return the measurements."""
    import torch

    from superres.inference import UpscaleOptions, Upscaler
    from superres.io.image import quantize_image, write_array
    from superres.models import create_model

    torch.manual_seed(0)
    spec = dict(MODELS[model_key])
    net = create_model(str(spec.pop("name")), scale=scale, **spec)
    image = synthetic_image(height, width)
    tile_arg = None if tile == "0" else ("auto" if tile == "auto" else int(tile))
    upscaler = Upscaler(net, options=UpscaleOptions(device="cpu", tile=tile_arg))  # type: ignore[arg-type]
    used_tile = upscaler.tile_size()
    baseline = _rss_now()
    start = time.perf_counter()
    out = upscaler(image)
    upscale_s = time.perf_counter() - start
    shape = tuple(out.shape)
    write_s = 0.0
    if write:
        start = time.perf_counter()
        pixels = quantize_image(out)
        del out
        with tempfile.TemporaryDirectory() as folder:
            write_array(Path(folder) / "out.png", pixels)
        write_s = time.perf_counter() - start
    return {
        "model": model_key,
        "scale": scale,
        "input": f"{width}x{height}",
        "output": f"{shape[-1]}x{shape[-2]}",
        "tile": used_tile,
        "canvas_gib": 3 * shape[-1] * shape[-2] * 4 / 2**30,
        "baseline_gib": baseline / 2**30,
        "peak_gib": _rss_peak() / 2**30,
        "upscale_s": upscale_s,
        "write_s": write_s,
        "threads": torch.get_num_threads(),
    }


def measure(
    model_key: str, *, scale: int = 4, height: int = 3000, width: int = 4000, tile: str = "auto",
    write: bool = False, timeout: float = 3600,
) -> dict:  # fmt: skip
    """Run :func:`run_one` in a fresh interpreter and return its measurements."""
    command = [
        sys.executable, __file__, "--one", model_key, "--scale", str(scale),
        "--height", str(height), "--width", str(width), "--tile", tile,
    ]  # fmt: skip
    if write:
        command.append("--write")
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--tile", default="auto", help="pixels, auto, or 0 (off)")
    parser.add_argument("--write", action="store_true", help="also quantise and write a PNG")
    parser.add_argument("--one", choices=list(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = run_one(args.one, args.scale, args.height, args.width, args.tile, args.write)
        print(json.dumps(result))
        return
    rows = [
        measure(m, scale=args.scale, height=args.height, width=args.width, tile=args.tile,
                write=args.write)
        for m in args.models
    ]  # fmt: skip
    print(
        "| model | scale | input | output | tile | canvas GiB | before GiB | peak RSS GiB "
        "| upscale s | write s | threads |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | x{r['scale']} | {r['input']} | {r['output']} | {r['tile']} "
            f"| {r['canvas_gib']:.2f} | {r['baseline_gib']:.2f} | {r['peak_gib']:.2f} "
            f"| {r['upscale_s']:.1f} | {r['write_s']:.1f} | {r['threads']} |"
        )
    if not math.isfinite(sum(r["peak_gib"] for r in rows)):
        sys.exit(1)


if __name__ == "__main__":
    main()
