"""Checkpoint containers: the state dict inside what ``torch.load`` returns for anyone's file.

Containers unwrapped, outermost first: BasicSR's ``{"params_ema": ..., "params": ...}`` (the EMA
weights are preferred, as BasicSR/Real-ESRGAN do at inference), ``state_dict`` (PyTorch Lightning
and many trainers), ``model_state_dict``, ``model``, ``generator``, ``netG``, ``net_g``. A
``module.`` prefix on every key (``nn.DataParallel``/``DistributedDataParallel``) is stripped.

Also what every third-party layout in :mod:`superres.models.convert` is built from: the
:class:`Layout` record, its result (:class:`ConvertedWeights`) and the readers of key indices,
shapes (a missing key is a named error) and the scale of a pixel-shuffle chain.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from superres.errors import IncompatibleWeightsError

__all__ = [
    "CONTAINER_KEYS",
    "ConvertedWeights",
    "Layout",
    "StateDict",
    "describe_keys",
    "key_indices",
    "pixel_shuffle_scale",
    "tensor_shape",
    "unwrap_state_dict",
]

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


@dataclass(frozen=True)
class ConvertedWeights:
    """A third-party state dict translated to one of our architectures.

    Attributes:
        architecture: registry name (``"rrdbnet"``, ``"srresnet"``, ``"edsr"``, ...).
        kwargs: constructor arguments for ``create_model(architecture, **kwargs)``, always with
            ``scale`` and ``in_channels``.
        state_dict: tensors under our key names, loadable with ``strict=True``.
        layout: the layout recognised (a name from :data:`superres.models.convert.LAYOUTS`).
    """

    architecture: str
    kwargs: dict[str, Any]
    state_dict: StateDict
    layout: str


@dataclass(frozen=True)
class Layout:
    """A checkpoint layout: how to recognise it and how to convert it.

    Attributes:
        name: what error messages and ``ConvertedWeights.layout`` call it.
        description: its telltale keys, listed when a checkpoint is not recognised.
        matches: whether a flat state dict has this layout (key names only).
        convert: ``(state, scale_hint, source) -> ConvertedWeights``; raises
            :class:`IncompatibleWeightsError` when the tensors are inconsistent.
    """

    name: str
    description: str
    matches: Callable[[Mapping[str, torch.Tensor]], bool]
    convert: Callable[[StateDict, int | None, str], ConvertedWeights]


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


# --- reading a state dict's shapes ----------------------------------------------------------------


def describe_keys(state: Mapping[str, torch.Tensor], limit: int = 6) -> str:
    """``"conv1.weight (64, 3, 9, 9), conv1.bias (64,), ... (12 tensors)"`` for messages."""
    shown = ", ".join(f"{k} {tuple(v.shape)}" for k, v in list(state.items())[:limit])
    more = f", ... ({len(state)} tensors)" if len(state) > limit else ""
    return shown + more


def key_indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    """Sorted distinct integers N of the keys that fully match ``pattern`` (one ``(\\d+)``)."""
    regex = re.compile(pattern)
    found = {int(m.group(1)) for k in state if (m := regex.fullmatch(k))}
    return sorted(found)


def tensor_shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> tuple[int, ...]:
    """The shape of ``state[key]``; a missing key is an :class:`IncompatibleWeightsError`."""
    if key not in state:
        raise IncompatibleWeightsError(f"{source}: expected the key {key!r}, which is missing")
    return tuple(state[key].shape)


def pixel_shuffle_scale(
    state: Mapping[str, torch.Tensor], keys: list[str], num_features: int, source: str
) -> int:
    """The scale of a chain of sub-pixel convolutions (``F -> F * r^2`` then PixelShuffle(r))."""
    scale = 1
    for key in keys:
        out_ch = tensor_shape(state, key, source)[0]
        ratio = out_ch // num_features
        factor = round(ratio**0.5)
        if out_ch % num_features or factor * factor != ratio or factor < 2:
            raise IncompatibleWeightsError(
                f"{source}: upsampling convolution {key!r} has {out_ch} output channels, "
                f"expected {num_features} x r^2 for a pixel shuffle by r"
            )
        scale *= factor
    return scale
