"""Training state on disk: written atomically, read without unpickling code.

A run folder holds

* ``weights_last.safetensors`` / ``weights_best.safetensors`` — the generator (its EMA when the
  recipe keeps one) in our weights format, with the resolved recipe in the metadata, so
  ``superres upscale --weights`` and ``superres eval --weights`` take them directly;
* ``state_last.pt`` — everything else a resume needs: raw model weights, optimizers, schedulers,
  gradient scaler, EMA, iteration, data order, and the RNG states of Python, NumPy and torch.

The state file only holds tensors and plain Python values (the NumPy RNG state is converted to
lists), so it loads with ``torch.load(weights_only=True)``. Both files are written to a temporary
name and renamed, so a run killed at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from superres.errors import SuperresError
from superres.io.files import atomic_write

STATE_FILE = "state_last.pt"
WEIGHTS_LAST = "weights_last.safetensors"
WEIGHTS_BEST = "weights_best.safetensors"


class CheckpointError(SuperresError, OSError):
    """A training state file is missing, unreadable or from an incompatible run."""


def rng_state() -> dict[str, Any]:
    """The RNG states of Python, NumPy and torch (CPU and every CUDA device)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002  # the global stream users seed
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [
            str(kind),
            torch.from_numpy(np.asarray(keys).copy()),
            int(pos),
            int(has_gauss),
            float(cached),
        ],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` with ``torch.save`` to ``path`` atomically."""
    with atomic_write(path) as handle:
        torch.save(state, handle)


def load_state(path: Path) -> dict[str, Any]:
    """Read a state file written by :func:`save_state` (``weights_only=True``: no code runs).

    Raises:
        CheckpointError: missing or unreadable file.
    """
    if not path.is_file():
        raise CheckpointError(
            f"no training state at {path}; start without --resume, or point --resume at a "
            f"{STATE_FILE} written by superres train"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read training state {path}: {exc}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} is not a superres training state (no 'step')")
    return state


__all__ = [
    "STATE_FILE",
    "WEIGHTS_BEST",
    "WEIGHTS_LAST",
    "CheckpointError",
    "load_state",
    "rng_state",
    "save_state",
    "set_rng_state",
]
