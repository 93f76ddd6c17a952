"""Our NIQE against BasicSR's ``calculate_niqe`` (a port that matches MATLAB R2021a), per image.

BasicSR is not a dependency: give a checkout of it (``git clone
https://github.com/XPixelGroup/BasicSR``); only its ``basicsr/metrics/niqe.py`` and the numpy,
SciPy, OpenCV and torch helpers it imports are loaded, without ``basicsr/__init__.py`` (which
would import torchvision). Both read the same PNG files; BasicSR as OpenCV does (BGR, gray
files as three equal channels), we through :func:`superres.io.image.read_image`.

    python benchmarks/niqe_conformance.py --basicsr ~/src/BasicSR --data-root ../shared/data \\
        --datasets set5 set14 bsd100 --sr srgan-x4:set5 esrgan-6b-x4:set14

``--sr MODEL:SET`` also scores that model's 8-bit outputs on the set (the images a report scores,
written to a temporary folder as PNG and read back by both). Prints every image with both values
and the relative difference, then the worst per group; ``--json`` keeps them.

``--float64`` adds a column "BasicSR in float64": the same BasicSR code computing in float64 as
MATLAB does (BasicSR casts the image to float32, so its MSCN, and its torch ``imresize``, run in
float32): the image and MSCN in float64, its ``imresize`` source with its float32 tensors made
float64, and a local mean within 1e-9 of the pixel taken as the pixel itself, as exact
arithmetic gives it on a constant 7x7 neighbourhood or a pixel equal to its weighted mean
(float64 ``convolve`` leaves ~1e-14 there, which the AGGD fit counts as coefficients; see
BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from superres.data.datasets import BenchmarkSet
from superres.io.files import atomic_write_text
from superres.io.image import read_image, write_image
from superres.metrics.niqe import niqe


def load_basicsr_niqe(checkout: Path) -> Any:
    """BasicSR's ``calculate_niqe`` from a checkout, without running ``basicsr/__init__.py``."""
    root = checkout / "basicsr"
    if not (root / "metrics" / "niqe.py").is_file():
        raise SystemExit(f"{checkout} is not a BasicSR checkout (no basicsr/metrics/niqe.py)")
    for name, folder in (("basicsr", root), ("basicsr.metrics", root / "metrics")):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package
    utils = types.ModuleType("basicsr.utils")
    utils.__path__ = [str(root / "utils")]
    sys.modules["basicsr.utils"] = utils

    def load(name: str, path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    color = load("basicsr.utils.color_util", root / "utils" / "color_util.py")
    utils.bgr2ycbcr = color.bgr2ycbcr  # pyright: ignore[reportAttributeAccessIssue]
    load("basicsr.utils.registry", root / "utils" / "registry.py")
    load("basicsr.utils.matlab_functions", root / "utils" / "matlab_functions.py")
    load("basicsr.metrics.metric_util", root / "metrics" / "metric_util.py")
    return load("basicsr.metrics.niqe", root / "metrics" / "niqe.py").calculate_niqe


def float64_resize(checkout: Path) -> Callable[..., np.ndarray]:
    """BasicSR's MATLAB ``imresize`` in float64: its source with the float32 tensors it makes
    (``.float()``, ``torch.FloatTensor``) made float64, run with torch's default dtype float64
    (its kernel weights come from ``torch.linspace``)."""
    import torch

    path = checkout / "basicsr" / "utils" / "matlab_functions.py"
    source = path.read_text().replace(".float()", ".double()")
    source = source.replace("torch.FloatTensor", "torch.DoubleTensor")
    module = types.ModuleType("basicsr_matlab_functions_float64")
    exec(compile(source, str(path), "exec"), vars(module))  # the checkout the user named

    def resize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
        saved = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            return module.imresize(np.asarray(img, np.float64), scale, antialiasing)
        finally:
            torch.set_default_dtype(saved)

    return resize


def float64_basicsr(reference: Any, checkout: Path) -> Callable[..., float]:
    """BasicSR's ``calculate_niqe`` (as loaded by :func:`load_basicsr_niqe`) in float64, as
    MATLAB computes: the image, the MSCN and the half-size image (:func:`float64_resize`)."""
    module = sys.modules["basicsr.metrics.niqe"]
    convolve, niqe_gray = module.convolve, module.niqe

    def exact_convolve(x: np.ndarray, window: np.ndarray, mode: str) -> np.ndarray:
        out = convolve(x, window, mode=mode)
        # a local mean within rounding of the pixel is the pixel (MATLAB: exact on flat areas)
        close = np.abs(out - x) < 1e-9
        out[close] = x[close]
        return out

    patched = {
        "convolve": exact_convolve,
        "imresize": float64_resize(checkout),
        "niqe": lambda img, *args: niqe_gray(img.astype(np.float64), *args),
    }

    def calculate(img: np.ndarray, crop_border: int, **kwargs: Any) -> float:
        saved = {name: getattr(module, name) for name in patched}
        vars(module).update(patched)
        try:
            return float(reference(img, crop_border, **kwargs))
        finally:
            vars(module).update(saved)

    return calculate


def compare(
    paths: list[Path], reference: Any, params: Path | None, float64: Callable[..., float] | None
) -> list[dict[str, Any]]:
    import cv2

    rows = []
    for path in paths:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        theirs = float(reference(bgr, 0, input_order="HWC"))
        ours = float(niqe(read_image(path).rgb, params=params))
        rel = abs(ours - theirs) / abs(theirs)
        row = {"image": str(path), "ours": ours, "basicsr": theirs, "relative": rel}
        line = f"  {path.name:28s} ours {ours:9.5f}  BasicSR {theirs:9.5f}  {100 * rel:7.4f}%"
        if float64 is not None:
            wide = float64(bgr, 0, input_order="HWC")
            row |= {"basicsr_float64": wide, "relative_float64": abs(ours - wide) / abs(wide)}
            line += f"  in float64 {wide:9.5f}  {100 * row['relative_float64']:7.4f}%"
        rows.append(row)
        print(line)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="a BasicSR checkout")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--datasets", nargs="*", default=["set5", "set14", "bsd100"])
    parser.add_argument("--sr", nargs="*", default=[], metavar="MODEL:SET")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--float64", action="store_true", help='add the column "BasicSR in float64"'
    )
    args = parser.parse_args(argv)
    reference = load_basicsr_niqe(args.basicsr)
    float64 = float64_basicsr(reference, args.basicsr) if args.float64 else None
    params = args.data_root / "niqe" / "niqe_pris_params.npz" if args.data_root else None
    params = params if params is not None and params.is_file() else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in args.datasets:
        bench = BenchmarkSet(name, 4, root=args.data_root)
        print(f"{bench.info.name} HR:")
        groups[f"{name} HR"] = compare(list(bench.files), reference, params, float64)
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.sr:
            model_name, _, name = item.partition(":")
            from superres.evaluation.protocol import super_resolve
            from superres.models.weights import load_model

            model = load_model(model_name).eval()
            scale = int(getattr(model, "scale", 4))
            files = []
            for pair in BenchmarkSet(name, scale, root=args.data_root):
                target = Path(tmp) / f"{model_name}_{pair.name}.png"
                write_image(target, super_resolve(model, pair.lq, scale))
                files.append(target)
            print(f"{model_name} on {name}:")
            groups[item] = compare(files, reference, params, float64)
    wide = float64 is not None
    print(
        "\n| images | count | worst relative difference | image |"
        + (" worst vs BasicSR in float64 | image |" if wide else "")
        + "\n|---|---:|---:|---|"
        + ("---:|---|" if wide else "")
    )
    for group, rows in groups.items():
        line = f"| {group} | {len(rows)} | {_worst(rows, 'relative')}"
        print(line + (f" {_worst(rows, 'relative_float64')}" if wide else ""))
    for key, label in (("relative", "BasicSR"), ("relative_float64", "BasicSR in float64")):
        every = [r[key] for rows in groups.values() for r in rows if key in r]
        if every:
            print(
                f"all {len(every)} images vs {label}: worst {100 * max(every):.4f}%, "
                f"mean {100 * float(np.mean(every)):.4f}%, "
                f"{sum(e <= 0.001 for e in every)} within 0.1%"
            )
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(groups, indent=1) + "\n")
    every = [r["relative"] for rows in groups.values() for r in rows]
    return 0 if math.isfinite(max(every)) else 1


def _worst(rows: list[dict[str, Any]], key: str) -> str:
    """``worst% | image |``: the group's largest relative difference under ``key``."""
    worst = max(rows, key=lambda r: r[key])
    return f"{100 * worst[key]:.4f}% | {Path(worst['image']).name} |"


if __name__ == "__main__":
    sys.exit(main())
