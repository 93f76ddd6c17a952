"""Helpers shared by test modules: registered models at test widths, tiny data roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from superres.io.image import write_image
from superres.models import create_model

# Tiny widths so each model builds, runs and exports in milliseconds to a second on a CPU; an
# architecture missing here is built with its default widths (slower, but covered).
TINY: dict[str, dict[str, object]] = {
    "srcnn": {"num_features": (8, 4)},
    "srresnet": {"num_features": 8, "num_blocks": 2},
    "edsr": {"num_features": 8, "num_blocks": 2},
    "edsr-baseline": {"num_features": 8, "num_blocks": 2},
    "rrdbnet": {"num_features": 8, "num_blocks": 1, "num_grow_ch": 4},
}


def tiny_model(name: str, *, scale: int, **extra: object) -> nn.Module:
    """``create_model(name, scale=scale)`` at the :data:`TINY` widths, ``extra`` on top."""
    return create_model(name, scale=scale, **{**TINY.get(name, {}), **extra})


def random_set5(root: Path, names: Sequence[str], *, seed: int, size: int = 32) -> Path:
    """``root`` as a data root whose Set5 holds one uniform-noise RGB PNG per name (``size`` px
    square; not the catalog's files, so commands need ``--allow-modified``). Returns ``root``."""
    hr = root / "Set5" / "HR"
    hr.mkdir(parents=True)
    gen = torch.Generator().manual_seed(seed)
    for name in names:
        write_image(hr / f"{name}.png", torch.rand(3, size, size, generator=gen))
    return root
