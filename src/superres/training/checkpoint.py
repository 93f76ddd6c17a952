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

A resume continues the run folder's state (``--resume auto``) or a named one, and refuses a
state written by another experiment: only the keys of
:data:`~superres.training.config.RESUMABLE_KEYS` (the length of the run and its cadences) may
change.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from superres.errors import ConfigError, SuperresError
from superres.io.files import atomic_write, make_output_folder
from superres.models import save_weights
from superres.training.config import (
    RESUMABLE_KEYS,
    Recipe,
    RunOptions,
    recipe_changes,
    recipe_from_checkpoint,
)

logger = logging.getLogger(__name__)

STATE_FILE = "state_last.pt"
WEIGHTS_LAST = "weights_last.safetensors"
WEIGHTS_BEST = "weights_best.safetensors"
#: The resolved recipe of the run folder's latest run, readable (the checkpoints embed it too).
RECIPE_FILE = "recipe.yaml"


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
    """Write ``state`` with ``torch.save`` to ``path`` atomically.

    Raises:
        OSError: the write failed (disk full, read-only, ...). ``torch.save``'s zip writer turns
            such an error into a ``RuntimeError`` as it closes the archive; the ``OSError`` it
            was handling is raised instead.
    """
    with atomic_write(path) as handle:
        try:
            torch.save(state, handle)
        except RuntimeError as exc:
            if isinstance(exc.__context__, OSError):
                raise exc.__context__ from None
            raise


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


def save_run_weights(
    model: nn.Module, path: Path, *, recipe: Recipe, step: int, metrics: dict[str, float] | None
) -> None:
    """``model``'s weights at iteration ``step`` in our format, with the resolved recipe."""
    meta = {
        "recipe_yaml": recipe.to_yaml(),
        "iterations": str(step),
        "source": recipe.source,
        "backproject": str(recipe.inference.backproject),
    }
    save_weights(model, path, recipe=recipe.name, metrics=metrics, metadata=meta)


def open_run_folder(out_dir: Path, resume: str | Path, *, is_main: bool) -> Path:
    """``out_dir``, created by rank 0; refuses to start a new run (``--resume never``) in a
    folder that holds one. A resumed run first removes what a killed one's writes left."""
    if is_main:
        make_output_folder(out_dir, "--out")
        if resume != "never":
            remove_temporaries(out_dir)
    if resume == "never" and (out_dir / STATE_FILE).exists():
        raise SuperresError(
            f"{out_dir} already holds a run ({STATE_FILE}); continue it with "
            "--resume auto, or pick another --out folder (nothing was overwritten)"
        )
    return out_dir


#: A temporary file of :func:`superres.io.files.atomic_write` (``mkstemp``'s 8 random characters).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that a killed run's atomic writes left in ``folder``.

    Only hidden ``.<name>.<8 characters>.tmp`` files directly in ``folder`` (what
    :func:`~superres.io.files.atomic_write` creates) are removed; the removed paths are returned.
    """
    removed = []
    for path in sorted(folder.glob(".*.tmp")):
        if _TEMPORARY.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        logger.info(
            "removed %d temporary file(s) of an interrupted run in %s", len(removed), folder
        )
    return removed


def first_non_finite(state: object, prefix: str = "") -> str | None:
    """The key of the first floating tensor holding NaN or infinity in a nested ``state``.

    ``state`` is a tensor or any nesting of mappings and sequences of them (a model's or a
    training state's ``state_dict``); ``None`` when every floating tensor is finite.
    """
    if isinstance(state, torch.Tensor):
        finite = not state.is_floating_point() or bool(torch.isfinite(state).all())
        return None if finite else prefix or "tensor"
    items: Sequence[tuple[object, object]] = ()
    if isinstance(state, Mapping):
        items = list(state.items())
    elif isinstance(state, list | tuple):
        items = list(enumerate(state))
    for key, value in items:
        found = first_non_finite(value, f"{prefix}.{key}" if prefix else str(key))
        if found is not None:
            return found
    return None


def state_bytes(state: object) -> int:
    """The bytes of the tensors in a nested ``state`` (about the size of its file)."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, Mapping):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(state_bytes(v) for v in state)
    return 0


def describe_last_good(folder: Path, step: int | None) -> str:
    """Where the run's last good training state is, for a message."""
    if step is None:
        return "no training state was saved yet"
    return f"the last good state is {folder / STATE_FILE} (iteration {step})"


def _megabytes(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def write_failed(
    folder: Path, exc: OSError, *, needed: int | None, last_good: str, what: str = "the checkpoint"
) -> CheckpointError:
    """The one-line error of ``what`` (a checkpoint, a log, a sample) not written to ``folder``."""
    try:
        free = f"{_megabytes(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    if needed is not None:
        free += f", about {_megabytes(needed)} needed"
    reason = exc.strerror or str(exc)
    return CheckpointError(
        f"cannot write {what} to {folder}: {reason} ({free}); {last_good}: make room or make "
        "the folder writable, then continue with --resume auto"
    )


def find_resume(options: RunOptions) -> Path | None:
    """The state file ``--resume auto|never|PATH`` names (``auto``: the run folder's, if any)."""
    if options.resume == "never":
        return None
    if options.resume == "auto":
        path = options.out_dir / STATE_FILE
        return path if path.is_file() else None
    path = Path(options.resume)
    if not path.is_file():
        raise CheckpointError(f"--resume {path}: no such file; pass auto or a {STATE_FILE} path")
    return path


def check_resumed_recipe(path: Path, stored: object, recipe: Recipe) -> None:
    """Refuse a checkpoint (at ``path``, holding the recipe text ``stored``) of another
    experiment than ``recipe``; allow (and log) a longer or shorter run and other logging
    cadences (:data:`~superres.training.config.RESUMABLE_KEYS`)."""
    fix = (
        "resume with the same YAML and --set options (only "
        f"{', '.join(sorted(RESUMABLE_KEYS))} may change), or start a new run in another "
        "--out folder"
    )
    if not isinstance(stored, str):
        raise CheckpointError(f"{path} holds no recipe; {fix}")
    try:
        old = recipe_from_checkpoint(stored, source=str(path))
    except (ConfigError, yaml.YAMLError) as exc:
        raise CheckpointError(
            f"{path} holds a recipe this version cannot read ({exc}); {fix}"
        ) from None
    changes = recipe_changes(old, recipe)
    fixed = {k: v for k, v in changes.items() if k not in RESUMABLE_KEYS}
    if fixed:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in fixed.items())
        raise CheckpointError(f"{path} was written by a different recipe ({listed}); {fix}")
    for key, (before, after) in changes.items():
        logger.warning("resuming with %s changed from %r to %r", key, before, after)


__all__ = [
    "STATE_FILE",
    "WEIGHTS_BEST",
    "WEIGHTS_LAST",
    "CheckpointError",
    "check_resumed_recipe",
    "describe_last_good",
    "find_resume",
    "first_non_finite",
    "load_state",
    "open_run_folder",
    "remove_temporaries",
    "rng_state",
    "save_run_weights",
    "save_state",
    "set_rng_state",
    "state_bytes",
    "write_failed",
]
