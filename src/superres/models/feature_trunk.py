"""Frozen ImageNet feature trunks with torchvision's key names, returning named intermediate maps.

One shape for every trunk (AlexNet, VGG16, VGG19, SqueezeNet 1.1): a :class:`TrunkLayout` (the
layers of torchvision's ``<arch>().features``, their names, the ImageNet checkpoint assets) and
one behaviour, :class:`FrozenTrunk`: a ``features`` ``nn.Sequential`` indexed exactly like
torchvision's (so its state dict loads with strict key matching, without importing torchvision),
truncated after the deepest requested layer, frozen, always in eval mode. :class:`FeatureTrunk`
returns ``{layer name: (N, C, h, w)}`` for the requested layers; an architecture module only
declares its layout.

:func:`read_state_dict` reads a local state dict without unpickling code: ``.safetensors``, or
``.pth``/``.pt`` through ``torch.load(..., weights_only=True)`` (which also reads the legacy,
pre-1.6 non-zip format).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from superres.assets import asset_path
from superres.errors import (
    ConfigError,
    IncompatibleWeightsError,
    WeightsNotFoundError,
    WeightsReadError,
)

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "FeatureTrunk",
    "FrozenTrunk",
    "TrunkLayout",
    "read_state_dict",
]

#: torchvision's ImageNet normalisation of [0, 1] RGB input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state_dict(path: str | os.PathLike[str], *, what: str) -> dict[str, torch.Tensor]:
    """Read a tensor-only state dict from ``path`` (``.safetensors``, or ``.pth``/``.pt``).

    ``.pth`` files go through ``torch.load(map_location="cpu", weights_only=True)``: tensors,
    ``OrderedDict`` and the storage rebuild functions only, never arbitrary code.

    Args:
        path: the file.
        what: what the file should hold, for messages (``"torchvision alexnet weights"``).

    Raises:
        WeightsNotFoundError: ``path`` does not exist or is a folder.
        WeightsReadError: the file cannot be read as a state dict (corrupt, truncated, pickled
            code, not a mapping of names to tensors).
    """
    file = Path(path)
    if not file.is_file():
        what_is = "is a folder" if file.is_dir() else "does not exist"
        raise WeightsNotFoundError(file, f"{what_is}; expected a file with {what}")
    if file.suffix == ".safetensors":
        from safetensors import SafetensorError  # only needed for this format
        from safetensors.torch import load_file

        try:
            return load_file(str(file), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise WeightsReadError(
                file, f"not a valid .safetensors file with {what} ({exc})"
            ) from exc
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or code-carrying pickles
        raise WeightsReadError(
            file,
            f"cannot load it as a tensor-only state dict with {what} ({exc}); re-save it with "
            "torch.save(model.state_dict(), path) or convert it to .safetensors",
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsReadError(
            file,
            f"holds a {type(state).__name__} that is not a mapping of names to tensors; expected "
            f"a state dict with {what}",
        )
    return dict(state)


@dataclass(frozen=True, kw_only=True)
class TrunkLayout:
    """One ImageNet trunk as torchvision lays it out.

    Attributes:
        arch: its name in messages (``"VGG19"``).
        layer_names: the name of ``features[i]``, in order, over the whole trunk.
        default_layers: the layers returned when none are asked for (LPIPS's taps).
        build: ``count -> the first count modules of features``, freshly initialised.
        key_hint: the state-dict keys it expects, for messages.
        assets: the torchvision checkpoints of :mod:`superres.assets`, best first.
        layer_hint: what an unknown layer name is told to be; default the list of names.
    """

    arch: str
    layer_names: tuple[str, ...]
    default_layers: tuple[str, ...]
    build: Callable[[int], list[nn.Module]]
    key_hint: str
    assets: tuple[str, ...]
    layer_hint: str = ""

    def index(self, layer: str) -> int:
        """Index in ``features`` of ``layer`` (any case); :class:`ConfigError` if unknown."""
        name = layer.lower() if isinstance(layer, str) else layer
        if name not in self.layer_names:
            expected = self.layer_hint or f"one of {', '.join(self.layer_names)}"
            raise ConfigError(f"unknown {self.arch} layer {layer!r}; expected {expected}.")
        return self.layer_names.index(name)


class FrozenTrunk(nn.Module):
    """A frozen, truncated ImageNet trunk of :attr:`layout` (see the module docstring).

    Args:
        layers: names from ``layout.layer_names`` to tap; the trunk is truncated after the
            deepest one. Default ``layout.default_layers``.
        normalize_input: apply the ImageNet normalisation (mean (0.485, 0.456, 0.406), std
            (0.229, 0.224, 0.225)) to a [0, 1] RGB input, as torchvision's weights expect. LPIPS
            passes ``False`` and applies its own scaling of [-1, 1] input.
        weights: a local torchvision-format state dict (``.pth`` read with ``weights_only=True``,
            or ``.safetensors``), loaded with strict key matching; ``None`` leaves random weights
            and logs a warning. :meth:`asset_weights` finds the ImageNet checkpoint.

    Parameters never require grad and the module stays in eval mode; gradients flow to the
    input. Every ReLU is out-of-place, so a tapped map is never overwritten by a later layer.
    """

    layout: ClassVar[TrunkLayout]

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        *,
        layers: Sequence[str] | None = None,
        normalize_input: bool = True,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        owner, layout = type(self).__name__, self.layout
        layers = layout.default_layers if layers is None else layers
        if isinstance(layers, str) or not layers:
            raise ConfigError(
                f"{owner}: layers must be a non-empty list of layer names; got {layers!r}, "
                f"e.g. {list(layout.default_layers[:2])!r}."
            )
        indices = sorted({layout.index(name) for name in layers})
        self.layers = tuple(layout.layer_names[i] for i in indices)
        self.last_index = indices[-1]
        self.normalize_input = normalize_input
        # Truncated: later layers would cost compute and memory for nothing.
        self.features = nn.Sequential(*layout.build(self.last_index + 1))
        # Constants, not weights: not in the state dict, so torchvision's keys match exactly.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.pretrained = False
        if weights is not None:
            self.load_state_dict(read_state_dict(weights, what=f"{layout.arch} weights"))
            self.pretrained = True
        else:
            logging.getLogger(type(self).__module__).warning(
                "%s has random weights (no weights= file given): its features are meaningless "
                "until a torchvision-format %s state dict is loaded",
                owner,
                layout.arch,
            )
        self.requires_grad_(False)
        self.train(False)

    @classmethod
    def asset_weights(
        cls,
        weights: str | os.PathLike[str] | None = None,
        *,
        data_root: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> Path:
        """The local ImageNet checkpoint: ``weights`` as given, else the first of
        ``layout.assets`` present (sha256-checked; downloaded only with ``download=True``).

        Raises:
            AssetNotFoundError: not here (the message names the file and how to get it).
        """
        return asset_path(cls.layout.assets, path=weights, data_root=data_root, download=download)

    def train(self, mode: bool = True) -> Self:
        """Always eval: a frozen feature extractor must not switch to training behaviour."""
        del mode
        return super().train(False)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load a torchvision state dict (whole network or ``features`` only).

        ``classifier.*`` keys and ``features.N.*`` past the truncation point are dropped first;
        the rest must match exactly (with ``strict=True``), else
        :class:`~superres.errors.IncompatibleWeightsError` naming the missing and unexpected keys.
        """
        kept: dict[str, Any] = {}
        for key, value in state_dict.items():
            if key.startswith("classifier."):
                continue
            match = re.fullmatch(r"features\.(\d+)\..+", key)
            if match is not None and int(match.group(1)) > self.last_index:
                continue
            kept[key] = value
        try:
            return super().load_state_dict(kept, strict=strict, assign=assign)
        except RuntimeError as exc:
            raise IncompatibleWeightsError(
                f"not a torchvision {self.layout.arch} state dict: {exc}; expected keys "
                f"{self.layout.key_hint}"
            ) from None

    def tap(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, 3, H, W)`` -> ``{name: (N, C, h, w)}`` for :attr:`layers`, in trunk order."""
        if self.normalize_input:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            name = self.layout.layer_names[index]
            if name in self.layers:
                out[name] = x
        return out

    def extra_repr(self) -> str:
        return f"layers={self.layers}, pretrained={self.pretrained}"


class FeatureTrunk(FrozenTrunk):
    """A :class:`FrozenTrunk` whose ``forward(x)`` returns every tapped layer,
    ``{name: (N, C, h, w)}`` (what LPIPS and the feature-matching losses take)."""

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.tap(x)
