"""Realism: blending a GAN model with its PSNR-oriented parent, in weight space or in pixel space.

``superres upscale --realism R`` (:func:`superres.models.weights.load_model` with ``realism=``)
trades fidelity for texture without retraining: ``"weights"`` interpolates the two networks'
parameters (one network's cost), ``"pixels"`` their output images (two networks' cost).
"""

from __future__ import annotations

import math
import numbers
import typing
from typing import Literal

import torch
from torch import nn

from superres.errors import IncompatibleWeightsError, SuperresError
from superres.models.descriptor import describe_network, record_network

__all__ = [
    "REALISM_SPACES",
    "OutputBlend",
    "RealismSpace",
    "blend_outputs",
    "check_realism_space",
    "check_strength",
    "interpolate_models",
]

#: How ``realism`` blends a GAN model with its PSNR parent: their weights (network interpolation,
#: one network's cost) or their output images (two networks' cost; PSNR-Y never below the lower
#: end's, since the squared error is convex).
RealismSpace = Literal["weights", "pixels"]
REALISM_SPACES: tuple[RealismSpace, ...] = typing.get_args(RealismSpace)


def interpolate_models(
    smooth: nn.Module,
    textured: nn.Module,
    realism: float,
    *,
    pair: str = "realism needs a GAN model and its PSNR-oriented parent",
) -> nn.Module:
    """Network interpolation (Wang et al., ESRGAN, section 3.4): ``(1 - r) * smooth + r * textured``
    for every floating-point parameter and buffer; ``textured`` is updated in place and returned.

    ``realism`` 0 gives the PSNR-oriented model, 1 the GAN model; values in between trade fidelity
    for texture without retraining. Both networks must be the same architecture. The same blend
    serves ``denoise`` (a real-world model and its weak-degradation variant); ``pair`` says in the
    error which two networks the caller needs.

    Raises:
        SuperresError: ``realism`` outside [0, 1]. IncompatibleWeightsError: different networks.
    """
    realism = check_strength(realism)
    a, b = smooth.state_dict(), textured.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        raise IncompatibleWeightsError(
            f"cannot interpolate networks of different architectures or sizes; {pair}"
        )
    blended = {
        k: torch.lerp(a[k].float(), b[k].float(), float(realism)).to(b[k].dtype)
        if b[k].is_floating_point()
        else b[k]
        for k in b
    }
    textured.load_state_dict(blended)
    return textured


class OutputBlend(nn.Module):
    """Image interpolation of two networks: ``(1 - realism) * smooth(x) + realism * textured(x)``.

    For a GAN model whose weights do not interpolate smoothly with its parent's. Inference only:
    it has no constructor record, so :func:`save_weights` refuses it (save either network).

    Attributes:
        smooth, textured: the PSNR-oriented parent and the GAN model.
        realism: the blend factor in [0, 1].
        scale, in_channels, size_multiple: as the networks' (the multiple is their lcm).
    """

    def __init__(self, smooth: nn.Module, textured: nn.Module, realism: float) -> None:
        super().__init__()
        smooth_net, textured_net = describe_network(smooth), describe_network(textured)
        shape = [(d.scale, d.in_channels) for d in (smooth_net, textured_net)]
        if shape[0] != shape[1]:
            raise IncompatibleWeightsError(
                f"cannot blend the outputs of networks of different scales or channels {shape}; "
                "realism needs a GAN model and its PSNR-oriented parent"
            )
        self.smooth = smooth
        self.textured = textured
        self.realism = check_strength(realism)
        self.scale = textured_net.scale
        self.in_channels = textured_net.in_channels
        self.size_multiple = math.lcm(smooth_net.size_multiple, textured_net.size_multiple)
        # The architecture (both networks share it) selects the verified bf16 path; no "config".
        record_network(self, architecture=textured_net.architecture)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.lerp(self.smooth(x), self.textured(x), self.realism)

    def extra_repr(self) -> str:
        return f"realism={self.realism}"


def check_strength(value: float, what: str = "realism") -> float:
    """``value`` as a float when it is a number in [0, 1] (a blend's strength: ``realism``,
    ``denoise``), else :class:`SuperresError` naming ``what``."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (real and 0.0 <= float(value) <= 1.0):
        raise SuperresError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def blend_outputs(smooth: nn.Module, textured: nn.Module, realism: float) -> nn.Module:
    """Image interpolation (:class:`OutputBlend`); at 0 or 1 the one network itself."""
    r = check_strength(realism)
    if r in (0.0, 1.0):
        return textured if r == 1.0 else smooth
    return OutputBlend(smooth, textured, r)


def check_realism_space(space: object) -> RealismSpace:
    """``space`` if it is one of :data:`REALISM_SPACES`, else :class:`SuperresError`."""
    if space not in REALISM_SPACES:
        raise SuperresError(
            f"realism space must be one of {', '.join(REALISM_SPACES)}, got {space!r}"
        )
    return typing.cast(RealismSpace, space)
