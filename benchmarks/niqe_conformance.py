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
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import types
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


def compare(paths: list[Path], reference: Any, params: Path | None) -> list[dict[str, Any]]:
    import cv2

    rows = []
    for path in paths:
        theirs = float(reference(cv2.imread(str(path), cv2.IMREAD_COLOR), 0, input_order="HWC"))
        ours = float(niqe(read_image(path).rgb, params=params))
        rel = abs(ours - theirs) / abs(theirs)
        rows.append({"image": str(path), "ours": ours, "basicsr": theirs, "relative": rel})
        print(f"  {path.name:28s} ours {ours:9.5f}  BasicSR {theirs:9.5f}  {100 * rel:7.4f}%")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--basicsr", type=Path, required=True, help="a BasicSR checkout")
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--datasets", nargs="*", default=["set5", "set14", "bsd100"])
    parser.add_argument("--sr", nargs="*", default=[], metavar="MODEL:SET")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    reference = load_basicsr_niqe(args.basicsr)
    params = args.data_root / "niqe" / "niqe_pris_params.npz" if args.data_root else None
    params = params if params is not None and params.is_file() else None
    groups: dict[str, list[dict[str, Any]]] = {}
    for name in args.datasets:
        bench = BenchmarkSet(name, 4, root=args.data_root)
        print(f"{bench.info.name} HR:")
        groups[f"{name} HR"] = compare(list(bench.files), reference, params)
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
            groups[item] = compare(files, reference, params)
    print("\n| images | count | worst relative difference | image |\n|---|---:|---:|---|")
    for group, rows in groups.items():
        worst = max(rows, key=lambda r: r["relative"])
        print(
            f"| {group} | {len(rows)} | {100 * worst['relative']:.4f}% | "
            f"{Path(worst['image']).name} |"
        )
    every = [r["relative"] for rows in groups.values() for r in rows]
    print(
        f"all {len(every)} images: worst {100 * max(every):.4f}%, "
        f"mean {100 * float(np.mean(every)):.4f}%"
    )
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(groups, indent=1) + "\n")
    return 0 if math.isfinite(max(every)) else 1


if __name__ == "__main__":
    sys.exit(main())
