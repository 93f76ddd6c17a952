"""Layers shared by several architectures: "same" convolutions, the pixel-shuffle upsampler, init.

The sub-pixel convolution upsampler is from Shi et al., "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016
(arXiv:1609.05158); SRResNet and EDSR both use it, with and without an activation after each stage.
The scaled Kaiming initialisation is the one ESRGAN/BasicSR apply to residual branches.
:func:`records_config` lets every SR model report the constructor arguments it was built with, so a
checkpoint can carry them and rebuild the model (see :mod:`superres.models.weights`).

Nothing here is specific to one paper; blocks used by a single architecture live in its file.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch
from torch import nn

from superres.errors import ConfigError, UnsupportedScaleError, check_positive
from superres.models.descriptor import record_network


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: int,
    *,
    stride: int = 1,
    bias: bool = True,
) -> nn.Conv2d:
    """A 2-D convolution with "same" padding (``kernel_size // 2``) for odd kernels.

    With ``stride=1`` the output keeps the input's ``(H, W)``; with ``stride=2`` it is
    ``(ceil(H / 2), ceil(W / 2))``. Even kernels are refused: they cannot be padded symmetrically.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ConfigError(
            f"kernel_size must be a positive odd integer for 'same' padding, got {kernel_size!r}; "
            "use e.g. 3, 5 or 9"
        )
    return nn.Conv2d(
        in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias
    )


ModuleT = TypeVar("ModuleT", bound=type[nn.Module])


def records_config(arch_name: str) -> Callable[[ModuleT], ModuleT]:
    """Class decorator: after ``__init__``, store the constructor arguments on the instance.

    The decorated class's instances get ``config`` (a new ``dict`` of every keyword argument, with
    the defaults filled in, e.g. ``{"scale": 4, "in_channels": 3, ..., "num_blocks": 16}``) and
    ``arch_name`` (the registry name, e.g. ``"srresnet"``), so that
    ``create_model(model.arch_name, **model.config)`` rebuilds the same network whether the model
    was built by name or directly (``SRResNet(num_blocks=5)``). :func:`superres.create_model`
    overwrites ``arch_name`` with the name it was called with (``"edsr-baseline"`` builds an
    :class:`~superres.models.EDSR`). Read them typed with
    :func:`~superres.models.descriptor.describe_network`.

    A subclass that adds constructor arguments must be decorated too; the outermost ``__init__``
    runs last, so its arguments win.
    """

    def decorate(cls: ModuleT) -> ModuleT:
        init: Callable[..., None] = cls.__init__
        signature = inspect.signature(init)

        @functools.wraps(init)
        def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:  # noqa: N807
            init(self, *args, **kwargs)
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))  # ``self``
            record_network(self, architecture=arch_name, config=arguments)

        setattr(cls, "__init__", __init__)  # noqa: B010 - assigning a method is what we mean
        return cls

    return decorate


def check_scale_supported(model: str, scale: object, supported: tuple[int, ...]) -> int:
    """Return ``scale`` if it is in ``supported``, else raise :class:`UnsupportedScaleError`.

    Called in every constructor so a wrong scale fails when the model is built, not mid-forward.
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in supported:
        allowed = ", ".join(map(str, supported))
        raise UnsupportedScaleError(
            f"{model} does not support scale {scale!r}; supported scales: {allowed}"
        )
    return scale


class SRNetwork(nn.Module):
    """The base of the SR networks: the scale and channel counts, checked when the model is built.

    The contract every subclass keeps: keyword-only ``scale``, ``in_channels`` and
    ``out_channels`` (``None``: as ``in_channels``) among its constructor's arguments, and a
    forward pass from ``(N, in_channels, H, W)`` float in [0, 1] (the low-resolution image) to
    ``(N, out_channels, H * scale, W * scale)``, not clamped, for any ``H`` and ``W`` that are
    multiples of ``size_multiple``.

    Args:
        name: the architecture's name in messages (``"EDSR"``).
        scales: the scales it supports; another raises :class:`UnsupportedScaleError`.
        io: ``(scale, in_channels, out_channels)`` as the constructor got them;
            ``out_channels`` ``None`` means ``in_channels``.
        check_channels: checks each channel count (default: a positive ``int``).

    Sets ``scale``, ``in_channels``, ``out_channels`` and ``size_multiple`` (1: any input size),
    the attributes :func:`~superres.models.descriptor.describe_network` reads.
    """

    def __init__(
        self,
        *,
        name: str,
        scales: tuple[int, ...],
        io: tuple[object, object, object],
        check_channels: Callable[[str, object], int] = check_positive,
    ) -> None:
        super().__init__()
        scale, in_channels, out_channels = io
        self.scale = check_scale_supported(name, scale, scales)
        self.in_channels = check_channels("in_channels", in_channels)
        self.out_channels = check_channels(
            "out_channels", in_channels if out_channels is None else out_channels
        )
        self.size_multiple = 1

    def extra_repr(self) -> str:
        return f"scale={self.scale}, in_channels={self.in_channels}"


class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel convolution upsampling by 2, 3, 4, 8 (any power of two) or 3.

    Powers of two use ``log2(scale)`` stages of ``conv3x3(F -> 4F) -> PixelShuffle(2) -> act``;
    scale 3 uses one ``conv3x3(F -> 9F) -> PixelShuffle(3) -> act`` stage. Stacking x2 stages
    (rather than one ``PixelShuffle(4)``) is what SRResNet and EDSR do, so their weights load.

    The modules are kept flat (``0`` conv, ``1`` shuffle, ``2`` act, ...; without an activation
    ``0`` conv, ``1`` shuffle, ``2`` conv, ...), the layout of the official EDSR ``Upsampler``, so
    its checkpoints map key for key.

    Args:
        scale: 3 or a power of two >= 2.
        num_features: channels in and out (``F``).
        activation: factory called once per stage (``nn.PReLU`` for SRResNet: each stage gets its
            own parameters), or ``None`` for no activation (EDSR).
        kernel_size: kernel of the convolution before each shuffle.

    Shapes: ``(N, F, H, W) -> (N, F, H * scale, W * scale)``.
    """

    def __init__(
        self,
        *,
        scale: int,
        num_features: int,
        activation: Callable[[], nn.Module] | None = None,
        kernel_size: int = 3,
    ) -> None:
        if scale == 3:
            factors = [3]
        elif isinstance(scale, int) and scale >= 2 and scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        else:
            raise UnsupportedScaleError(
                f"pixel-shuffle upsampling supports scale 3 or a power of two >= 2, got {scale!r}"
            )
        layers: list[nn.Module] = []
        for factor in factors:
            layers.append(conv(num_features, num_features * factor * factor, kernel_size))
            layers.append(nn.PixelShuffle(factor))
            if activation is not None:
                layers.append(activation())
        super().__init__(*layers)
        self.scale = scale


@torch.no_grad()
def default_init_weights(
    modules: nn.Module | Iterable[nn.Module], scale: float = 0.1, bias_fill: float = 0.0
) -> None:
    """Kaiming-normal initialisation scaled by ``scale``, in place (as ESRGAN/BasicSR).

    Every ``Conv2d``/``Linear`` inside ``modules`` gets ``kaiming_normal_`` weights multiplied by
    ``scale`` and biases set to ``bias_fill``; ``BatchNorm2d`` gets weight 1 and bias ``bias_fill``.
    A small ``scale`` (0.1) makes each residual branch start close to zero, so a deep stack of
    residual blocks starts close to the identity and trains stably without batch norm.
    """
    roots = [modules] if isinstance(modules, nn.Module) else list(modules)
    for root in roots:
        for m in root.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.fill_(bias_fill)
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                nn.init.constant_(m.weight, 1.0)
                m.bias.fill_(bias_fill)


__all__ = [
    "PixelShuffleUpsampler",
    "SRNetwork",
    "check_scale_supported",
    "conv",
    "default_init_weights",
    "records_config",
]
