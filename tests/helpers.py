"""Helpers shared by test modules: registered models at test widths."""

from __future__ import annotations

from torch import nn

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
