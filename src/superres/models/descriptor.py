"""The typed contract of an SR network: what a caller must know to run it, and its one home.

Everything that runs, exports, saves or scores a network reads it through
:func:`describe_network`, which returns a frozen :class:`NetworkDescriptor` (architecture name,
constructor arguments, scale, channels, size multiple, precisions, weights-file metadata), as
spandrel's ``ImageModelDescriptor`` separates a network from how to call it. What superres itself
records about a network (the registry name, the constructor arguments, the metadata of the file
it was loaded from) is written only by :func:`record_network`.

The recorded facts are plain instance attributes (``model.arch_name``, ``model.config``,
``model.weights_metadata``), never ``nn.Module`` state, so they stay out of the state dict and
users keep reading them; ``scale``, ``in_channels``, ``out_channels`` and ``size_multiple`` are the
network's own attributes (a foreign module needs ``model.scale = N``; the rest have defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from torch import nn

from superres.errors import InvalidNetworkError

__all__ = ["PRECISIONS", "NetworkDescriptor", "describe_network", "record_network"]

#: Every precision an SR network may run in, unless its class narrows them with a
#: ``supported_precisions`` tuple.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

# The plain attributes record_network writes (their names are public: users read them).
_ARCH, _CONFIG, _METADATA = "arch_name", "config", "weights_metadata"


@dataclass(frozen=True, kw_only=True)
class NetworkDescriptor:
    """What a caller needs to know about an SR network, read once by :func:`describe_network`.

    Attributes:
        architecture: the registry name (``"srresnet"``, ``"edsr-baseline"``), ``None`` for a
            module superres did not build.
        config: every constructor argument, defaults filled in, so that
            ``create_model(architecture, **config)`` rebuilds it; ``None`` when not recorded.
        scale: the integer upscaling factor (>= 1).
        in_channels, out_channels: channels taken and returned (3: RGB, 1: Y).
        size_multiple: input sides must be a multiple of this (the network pads otherwise).
        precisions: the precisions it may run in (a subset of :data:`PRECISIONS`).
        weights_metadata: the metadata of the file the weights came from (empty when built).
    """

    architecture: str | None
    config: Mapping[str, object] | None
    scale: int
    in_channels: int
    out_channels: int
    size_multiple: int
    precisions: tuple[str, ...] = PRECISIONS
    weights_metadata: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def rebuildable(self) -> bool:
        """Whether the record rebuilds the network (what a weights file must hold)."""
        return self.architecture is not None and self.config is not None


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def describe_network(model: object) -> NetworkDescriptor:
    """The :class:`NetworkDescriptor` of ``model``: a superres network, or any ``nn.Module``
    with an integer ``scale`` attribute (``in_channels`` 3 and ``size_multiple`` 1 by default).

    Raises:
        InvalidNetworkError: ``model`` is not a module, or its scale, channels or size multiple
            are not positive integers.
    """
    if not isinstance(model, nn.Module):
        raise InvalidNetworkError(
            f"an SR network must be a torch.nn.Module, got {type(model).__name__}; build one with "
            "superres.create_model(...) or superres.models.weights.load_model(...)"
        )
    own = vars(model)
    scale = getattr(model, "scale", None)
    if not _positive_int(scale):
        raise InvalidNetworkError(
            f"the model {type(model).__name__} has no integer `scale` attribute (got "
            f"{scale!r}); build a superres model (superres.create_model(...)), or set "
            "model.scale = N on another network"
        )
    config = own.get(_CONFIG)
    config = MappingProxyType(dict(config)) if isinstance(config, Mapping) else None
    in_channels = getattr(model, "in_channels", 3)
    out_channels = getattr(model, "out_channels", (config or {}).get("out_channels", in_channels))
    multiple = getattr(model, "size_multiple", 1)
    for what, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if not _positive_int(value):
            raise InvalidNetworkError(f"the model's {what} must be a positive int, got {value!r}")
    if not _positive_int(multiple):
        raise InvalidNetworkError(
            f"the model's size_multiple must be a positive int, got {multiple!r}"
        )
    arch = own.get(_ARCH)
    metadata = own.get(_METADATA)
    return NetworkDescriptor(
        architecture=arch if isinstance(arch, str) else None,
        config=config,
        scale=int(scale),  # pyright: ignore[reportArgumentType]  # checked above
        in_channels=int(in_channels),  # pyright: ignore[reportArgumentType]
        out_channels=int(out_channels),  # pyright: ignore[reportArgumentType]
        size_multiple=int(multiple),  # pyright: ignore[reportArgumentType]
        precisions=tuple(getattr(type(model), "supported_precisions", PRECISIONS)),
        weights_metadata=MappingProxyType(dict(metadata) if isinstance(metadata, Mapping) else {}),
    )


def record_network(
    model: nn.Module,
    *,
    architecture: str | None = None,
    config: Mapping[str, object] | None = None,
    weights_metadata: Mapping[str, str] | None = None,
) -> None:
    """Record what superres knows about ``model``; each field given replaces the old one.

    Plain attributes, not ``nn.Module`` state: they never enter the state dict.
    """
    own = vars(model)
    if architecture is not None:
        own[_ARCH] = architecture
    if config is not None:
        own[_CONFIG] = dict(config)
    if weights_metadata is not None:
        own[_METADATA] = dict(weights_metadata)
