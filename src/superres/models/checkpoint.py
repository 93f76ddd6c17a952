"""Checkpoint containers: the state dict inside what ``torch.load`` returns for anyone's file.

Containers unwrapped, outermost first: BasicSR's ``{"params_ema": ..., "params": ...}`` (the EMA
weights are preferred, as BasicSR/Real-ESRGAN do at inference), ``state_dict`` (PyTorch Lightning
and many trainers), ``model_state_dict``, ``model``, ``generator``, ``netG``, ``net_g``. A
``module.`` prefix on every key (``nn.DataParallel``/``DistributedDataParallel``) is stripped.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from superres.errors import IncompatibleWeightsError

__all__ = ["CONTAINER_KEYS", "StateDict", "unwrap_state_dict"]

StateDict = dict[str, torch.Tensor]

# Preferred first: BasicSR keeps the exponential moving average in ``params_ema``.
CONTAINER_KEYS = (
    "params_ema",
    "params",
    "state_dict",
    "model_state_dict",
    "model",
    "generator",
    "netG",
    "net_g",
)


def _is_state_dict(obj: object) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def unwrap_state_dict(obj: object, *, source: str = "the checkpoint") -> StateDict:
    """The tensors of a loaded checkpoint: containers unwrapped, ``module.`` prefixes stripped.

    Args:
        obj: what ``torch.load(..., weights_only=True)`` returned (or any mapping of tensors).
        source: how to name the checkpoint in error messages (usually its path).

    Raises:
        IncompatibleWeightsError: no mapping of names to tensors is found; the message lists the
            keys that were there.
    """
    current = obj
    path: list[str] = []
    while not _is_state_dict(current):
        if not isinstance(current, Mapping):
            where = f" under {'/'.join(path)!r}" if path else ""
            raise IncompatibleWeightsError(
                f"{source} holds a {type(current).__name__}{where}, expected a state dict (a "
                "mapping of parameter names to tensors); re-save it with "
                "torch.save(model.state_dict(), path)"
            )
        inner = next((k for k in CONTAINER_KEYS if isinstance(current.get(k), Mapping)), None)
        if inner is None:
            keys = ", ".join(repr(k) for k in list(current)[:8]) or "(none)"
            raise IncompatibleWeightsError(
                f"{source} is not a state dict and has none of the container keys "
                f"{', '.join(CONTAINER_KEYS)}; its top-level keys are {keys}. Extract the model's "
                "state dict and save it with torch.save(state_dict, path)"
            )
        path.append(inner)
        current = current[inner]
    state: StateDict = dict(current)  # type: ignore[arg-type]  # checked by _is_state_dict
    while state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state
