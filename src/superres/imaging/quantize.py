"""Rounding float images onto the integer grid of an 8- or 16-bit file, as MATLAB does."""

from __future__ import annotations

import torch


def quantize(x: torch.Tensor, bit_depth: int = 8) -> torch.Tensor:
    """Clamp to [0, 1] and round onto the ``k / (2**bit_depth - 1)`` grid.

    Rounding is half-up (``floor(v + 0.5)``), the rule of MATLAB's ``uint8()`` for non-negative
    values, so scores match the field's scripts. Returns the same float dtype; not differentiable
    in any useful way (use it at the edges: writing files, scoring benchmarks).
    """
    peak = float(2**bit_depth - 1)
    return torch.floor(x.clamp(0.0, 1.0) * peak + 0.5) / peak


def to_integer(x: torch.Tensor, bit_depth: int = 8) -> torch.Tensor:
    """Float in [0, 1] -> ``uint8`` (8 bit) or ``int32`` (16 bit: 0..65535), rounded half-up."""
    peak = float(2**bit_depth - 1)
    v = torch.floor(x.clamp(0.0, 1.0) * peak + 0.5)
    return v.to(torch.uint8 if bit_depth == 8 else torch.int32)
