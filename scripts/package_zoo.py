"""Copy exported zoo weights (scripts/train_zoo.py --export) into the package.

    python scripts/package_zoo.py zoo_out/srresnet-x4.safetensors ... \\
        --wall srresnet-x4=546 --iterations-note srresnet-x4="two sittings: 9703 + 9716"

Each file keeps its metadata (recipe, iterations, validation metrics, hardware); ``--wall``
replaces the recorded wall time where a model was trained in several sittings, ``--hardware``
the recorded machine where the sitting's script described it too briefly. The script prints
each file's sha256 and size for the asset catalog in ``superres/assets.py`` (``_ZOO``).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from superres.models.catalog import PACKAGE_WEIGHTS_DIR
from superres.models.weights_file import read_metadata, resave_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--wall", action="append", default=[], metavar="NAME=SECONDS")
    parser.add_argument("--note", action="append", default=[], metavar="NAME=TEXT")
    parser.add_argument("--hardware", action="append", default=[], metavar="NAME=TEXT")
    args = parser.parse_args()
    walls = dict(item.split("=", 1) for item in args.wall)
    notes = dict(item.split("=", 1) for item in args.note)
    machines = dict(item.split("=", 1) for item in args.hardware)
    PACKAGE_WEIGHTS_DIR.mkdir(exist_ok=True)
    for source in args.files:
        name = read_metadata(source).get("name", source.stem)
        extra: dict[str, str] = {}
        if name in walls:
            extra["wall_time_s"] = walls[name]
        if name in notes:
            extra["training_note"] = notes[name]
        if name in machines:
            extra["hardware"] = machines[name]
        target = PACKAGE_WEIGHTS_DIR / f"{name}.safetensors"
        resave_weights(source, target, dtype=torch.float16, metadata=extra)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        print(f"{name}: {target.stat().st_size / 1e6:.2f} MB sha256 {digest}")


if __name__ == "__main__":
    main()
