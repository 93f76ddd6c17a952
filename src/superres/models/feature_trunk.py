"""Frozen ImageNet feature trunks with torchvision's key names, returning named intermediate maps.

:class:`FeatureTrunk` is the common part of :class:`~superres.models.alexnet.AlexNetFeatures` and
:class:`~superres.models.vgg.VGG16Features`: a ``features`` ``nn.Sequential`` indexed exactly like
torchvision's ``<arch>().features`` (so its state dict loads with strict key matching, without
importing torchvision), truncated after the deepest requested layer, frozen, always in eval mode,
and returning ``{layer name: (N, C, h, w)}`` for the requested layers. A subclass only names its
layers and builds them.

:func:`read_state_dict` reads a local state dict without unpickling code: ``.safetensors``, or
``.pth``/``.pt`` through ``torch.load(..., weights_only=True)`` (which also reads the legacy,
pre-1.6 non-zip format).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from torch import nn

from superres.errors import (
    ConfigError,
    IncompatibleWeightsError,
    WeightsNotFoundError,
    WeightsReadError,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "FeatureTrunk", "read_state_dict"]

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


class FeatureTrunk(nn.Module):
    """Frozen ``features`` trunk returning a dict of named intermediate outputs.

    Subclasses set :attr:`arch` (for messages), :attr:`layer_names` (the name of ``features[i]``,
    in order, over the whole torchvision trunk) and :attr:`key_hint` (the expected keys, for
    messages), and implement :meth:`build_layers`.

    Args:
        layers: names from :attr:`layer_names` to return; the trunk is truncated after the
            deepest one.
        normalize_input: apply the ImageNet normalisation (mean (0.485, 0.456, 0.406), std
            (0.229, 0.224, 0.225)) to a [0, 1] RGB input, as torchvision's weights expect. LPIPS
            passes ``False`` and applies its own scaling of [-1, 1] input.
        weights: a local torchvision-format state dict (``.pth`` read with ``weights_only=True``,
            or ``.safetensors``), loaded with strict key matching; ``None`` leaves random weights
            and logs a warning.

    ``forward(x)``, ``x`` of shape ``(N, 3, H, W)``, returns ``{name: (N, C, h, w)}`` for the
    requested layers in trunk order. Parameters never require grad and the module stays in eval
    mode; gradients flow to the input. Every ReLU is out-of-place, so a returned map is never
    overwritten by a later layer.
    """

    arch: ClassVar[str] = ""
    layer_names: ClassVar[tuple[str, ...]] = ()
    key_hint: ClassVar[str] = ""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        *,
        layers: Sequence[str],
        normalize_input: bool = True,
        weights: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        if isinstance(layers, str) or not layers:
            raise ConfigError(
                f"{owner}: layers must be a non-empty list of layer names; got {layers!r}, "
                f"e.g. {list(self.layer_names[:2])!r}."
            )
        indices: list[int] = []
        for name in layers:
            if name not in self.layer_names:
                raise ConfigError(
                    f"unknown {self.arch} layer {name!r}; expected one of "
                    f"{', '.join(self.layer_names)}."
                )
            indices.append(self.layer_names.index(name))
        self.layers = tuple(self.layer_names[i] for i in sorted(set(indices)))
        self.last_index = max(indices)
        self.normalize_input = normalize_input
        # Truncated: later layers would cost compute and memory for nothing.
        self.features = nn.Sequential(*self.build_layers(self.last_index + 1))
        # Constants, not weights: not in the state dict, so torchvision's keys match exactly.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.pretrained = False
        if weights is not None:
            self.load_state_dict(read_state_dict(weights, what=f"{self.arch} weights"))
            self.pretrained = True
        else:
            logging.getLogger(type(self).__module__).warning(
                "%s has random weights (no weights= file given): its features are meaningless "
                "until a torchvision-format %s state dict is loaded",
                owner,
                self.arch,
            )
        self.requires_grad_(False)
        self.train(False)

    @classmethod
    def build_layers(cls, count: int) -> list[nn.Module]:
        """The first ``count`` modules of torchvision's ``features`` trunk, freshly initialised."""
        raise NotImplementedError

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
                f"not a torchvision {self.arch} state dict: {exc}; expected keys {self.key_hint}"
            ) from None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.normalize_input:
            x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.features):
            x = layer(x)
            name = self.layer_names[index]
            if name in self.layers:
                out[name] = x
        return out

    def extra_repr(self) -> str:
        return f"layers={self.layers}, pretrained={self.pretrained}"
