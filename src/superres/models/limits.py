"""Hard upper bounds on every architecture's hyperparameters, checked before a file is built.

A weights file says which network to build (our metadata's ``kwargs``, or the shapes of a
third-party checkpoint). Those numbers come from the file, so they are bounded here, per
registered architecture and per constructor argument, before anything is built: a file asking
for 4000 blocks of 1024 features is refused in microseconds instead of taking gigabytes.

:data:`LIMITS` maps each registry name to ``{argument: limit}`` and names *every* constructor
argument (a test holds it to the builders' signatures), so a new argument needs its bound here.
The bounds are generous (several times the published configurations: EDSR's 32 blocks x 256
features, RRDBNet's 23 x 64, SRResNet's 16 x 64, SRVGGNetCompact's 32 x 64); the registry still
decides which scales a model supports (:func:`superres.models.check_scale`), the constructors the
rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LIMITS",
    "MAX_SCALE",
    "Choice",
    "IntTuple",
    "Limit",
    "Range",
    "Text",
    "check_hyperparameters",
]

#: The largest scale a weights file may ask for (the registry narrows it per architecture).
MAX_SCALE = 8


@dataclass(frozen=True)
class Range:
    """A number in ``low..high``: an integer (never a bool, nor a float such as ``64.0``) when
    ``integer``, else any finite int or float."""

    low: float
    high: float
    integer: bool = True

    def accepts(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if isinstance(value, float) and (self.integer or not math.isfinite(value)):
            return False
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"{'an integer' if self.integer else 'a number'} in {self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class IntTuple:
    """``length`` integers in ``low..high`` (JSON lists become tuples)."""

    length: int
    low: int
    high: int

    def accepts(self, value: object) -> bool:
        return (
            isinstance(value, list | tuple)
            and len(value) == self.length
            and all(Range(self.low, self.high).accepts(v) for v in value)
        )

    def describe(self) -> str:
        return f"{self.length} integers in {self.low}..{self.high}"


@dataclass(frozen=True)
class Choice:
    """One of ``values``, of the same type (``True`` is not ``1``, ``1.0`` is not ``1``)."""

    values: tuple[object, ...]

    def accepts(self, value: object) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Text:
    """A short string; the constructor checks which ones it takes."""

    max_length: int = 32

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and len(value) <= self.max_length

    def describe(self) -> str:
        return f"a string of at most {self.max_length} characters"


Limit = Range | IntTuple | Choice | Text

_SCALE = Range(1, MAX_SCALE)
_CHANNELS = Choice((1, 3))
_OUT_CHANNELS = Choice((None, 1, 3))
_FLAG = Choice((False, True))
_EDSR: dict[str, Limit] = {
    "scale": _SCALE,
    "in_channels": _CHANNELS,
    "out_channels": _OUT_CHANNELS,
    "num_features": Range(1, 512),
    "num_blocks": Range(1, 128),
    "res_scale": Range(0.0, 1.0, integer=False),
    "img_range": Range(1e-3, 65535.0, integer=False),
}

#: ``{registry name: {constructor argument: its limit}}``, every argument of every architecture.
LIMITS: Mapping[str, Mapping[str, Limit]] = {
    "bicubic": {"scale": _SCALE, "in_channels": _CHANNELS},
    "srcnn": {
        "scale": _SCALE,
        "in_channels": _CHANNELS,
        "out_channels": _OUT_CHANNELS,
        "kernel_sizes": IntTuple(3, 1, 15),
        "num_features": IntTuple(2, 1, 512),
    },
    "srresnet": {
        "scale": _SCALE,
        "in_channels": _CHANNELS,
        "out_channels": _OUT_CHANNELS,
        "num_features": Range(1, 256),
        "num_blocks": Range(1, 128),
        "use_batchnorm": _FLAG,
        "conv_bias": _FLAG,
        "body_tail": Text(),
        "output_activation": Text(),
    },
    "edsr": _EDSR,
    "edsr-baseline": _EDSR,
    "rrdbnet": {
        "scale": _SCALE,
        "in_channels": _CHANNELS,
        "out_channels": _OUT_CHANNELS,
        "num_features": Range(1, 256),
        "num_blocks": Range(1, 64),
        "num_grow_ch": Range(1, 256),
        "pixel_unshuffle": Choice((None, False, True)),
    },
    "compact": {
        "scale": _SCALE,
        "in_channels": _CHANNELS,
        "out_channels": _OUT_CHANNELS,
        "num_features": Range(1, 256),
        "num_convs": Range(1, 128),
        "activation": Choice(("prelu", "relu", "leakyrelu")),
    },
}


def check_hyperparameters(architecture: str, kwargs: Mapping[str, object]) -> dict[str, Any]:
    """``kwargs`` checked against :data:`LIMITS` and normalised (JSON lists -> tuples).

    Args:
        architecture: a registry name (case-insensitive).
        kwargs: constructor arguments as a weights file gives them.

    Returns:
        the arguments to build with.

    Raises:
        ValueError: an unknown architecture or argument, or a value out of its bounds; the
            message says which and what is allowed (the caller names the file).
    """
    limits = LIMITS.get(architecture.lower())
    if limits is None:
        raise ValueError(f"architecture {architecture!r} has no hyperparameter limits")
    unknown = sorted(str(k) for k in kwargs if k not in limits)
    if unknown:
        raise ValueError(
            f"{architecture} takes no argument {', '.join(repr(k) for k in unknown[:3])} "
            f"(it takes {', '.join(limits)})"
        )
    checked: dict[str, Any] = {}
    for name, value in kwargs.items():
        limit = limits[name]
        if not limit.accepts(value):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise ValueError(
                f"{architecture} {name} = {shown} ({type(value).__name__}) is out of bounds: "
                f"expected {limit.describe()}"
            )
        checked[name] = tuple(value) if isinstance(value, list) else value  # type: ignore[arg-type]
    return checked
