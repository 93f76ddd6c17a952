"""The stages the degradation pipelines are made of: blur, resize, noise, JPEG.

Pure functions on float ``(N, 3, H, W)`` tensors on any device and in any float dtype; the
random noise fields come from an explicit :class:`torch.Generator` on the image's device and are
drawn in float32 whatever the image's dtype (so a float64 run sees the same noise as a float32
one). The pipelines that chain them are in :mod:`superres.data.degradations`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from superres.imaging.quantize import quantize

__all__ = [
    "RESIZE_MODES",
    "ResizeMode",
    "correlated_gaussian_noise",
    "filter2d",
    "gaussian_noise",
    "poisson_noise",
    "resize",
]

ResizeMode = Literal["area", "bilinear", "bicubic"]
#: The interpolations Real-ESRGAN and BSRGAN choose from (torch's, not antialiased).
RESIZE_MODES: tuple[ResizeMode, ...] = ("area", "bilinear", "bicubic")


def filter2d(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Blur each image with its own kernel: ``image`` ``(N, C, H, W)``, ``kernels`` ``(N, k, k)``
    or ``(1, k, k)`` (odd ``k``); borders reflected (mirrored about the edge pixel), as
    Real-ESRGAN's ``filter2D`` pads. An image too small to reflect ``k // 2`` pixels has its
    edge pixels replicated instead. Correlation, not convolution: the kernels here are
    symmetric about their centre or, for :func:`~superres.data.degradation_kernels.
    shifted_gaussian`, meant as written."""
    n, c, h, w = image.shape
    k = kernels.shape[-1]
    pad = k // 2
    mode = "reflect" if pad < min(h, w) else "replicate"
    padded = F.pad(image, (pad, pad, pad, pad), mode=mode)
    weight = kernels.to(image.dtype).to(image.device).expand(n, k, k)
    weight = weight.repeat_interleave(c, 0).unsqueeze(1)  # (N*C, 1, k, k)
    out = F.conv2d(padded.reshape(1, n * c, h + 2 * pad, w + 2 * pad), weight, groups=n * c)
    return out.view(n, c, h, w)


def resize(image: torch.Tensor, size: tuple[int, int], mode: ResizeMode) -> torch.Tensor:
    """``F.interpolate`` to ``size`` (each at least 1) with ``mode`` (``align_corners=False``)."""
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if mode == "area":
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


def _expand(values: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``(N,)`` -> ``(N, 1, 1, 1)`` in the image's dtype and device."""
    return torch.as_tensor(values).to(image.device, image.dtype).view(-1, 1, 1, 1)


def gaussian_noise(
    image: torch.Tensor, *, sigma: torch.Tensor, gray: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """A zero-mean Gaussian noise field for ``image`` (not added), std ``sigma / 255``.

    Args:
        image: ``(N, 3, H, W)``; only its shape, dtype and device are used.
        sigma: ``(N,)`` standard deviations on the 0-255 scale.
        gray: ``(N,)`` bool: the same noise in all three channels (luma noise) where true,
            independent noise per channel (colour noise) where false.
        generator: on ``image``'s device.
    """
    n, c, h, w = image.shape
    opts = {"generator": generator, "device": image.device, "dtype": torch.float32}
    colour = torch.randn(n, c, h, w, **opts).to(image.dtype)
    luma = torch.randn(n, 1, h, w, **opts).to(image.dtype).expand(n, c, h, w)
    field = torch.where(_expand(gray, image).bool(), luma, colour)
    return field * _expand(sigma, image) / 255.0


def _poisson_field(levels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``poisson(x * v) / v - x`` per image, ``v`` the number of distinct values in the image
    rounded up to a power of two (Real-ESRGAN's stand-in for the photon count per level)."""
    counts = [torch.unique(levels[i]).numel() for i in range(levels.shape[0])]
    vals = _expand(torch.tensor([2.0 ** math.ceil(math.log2(n)) for n in counts]), levels)
    rate = (levels * vals).to(torch.float32)
    return torch.poisson(rate, generator=generator).to(levels.dtype) / vals - levels


def poisson_noise(
    image: torch.Tensor, *, scale: torch.Tensor, gray: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Real-ESRGAN's Poisson (shot) noise field for ``image`` in [0, 1], not added.

    The image is rounded to 8 bits, its values scaled by ``v`` (see :func:`_poisson_field`),
    Poisson-sampled, scaled back; the difference is the noise, times ``scale`` (``(N,)``). Where
    ``gray`` is true the noise is drawn on the luma (0.2989 R + 0.587 G + 0.114 B, rounded)
    and shared by the three channels. Variance is ``scale^2 x / v``: brighter is noisier.
    """
    levels = quantize(image)
    colour = _poisson_field(levels, generator)
    luma = (0.2989 * image[:, 0] + 0.587 * image[:, 1] + 0.114 * image[:, 2]).unsqueeze(1)
    luma_noise = _poisson_field(quantize(luma), generator).expand_as(image)
    field = torch.where(_expand(gray, image).bool(), luma_noise, colour)
    return field * _expand(scale, image)


def correlated_gaussian_noise(
    image: torch.Tensor, *, sigma: float, generator: torch.Generator
) -> torch.Tensor:
    """BSRGAN's third noise kind: Gaussian noise whose three channels are correlated, covariance
    ``(sigma / 255)^2 U^T D U`` with ``D`` uniform random diagonal and ``U`` a random rotation.

    BSRGAN takes the entries' absolute values of that matrix, which can leave it indefinite;
    this uses the matrix itself (always a valid covariance). ``image`` ``(1, 3, H, W)``.
    """
    _, c, h, w = image.shape
    opts = {"generator": generator, "device": image.device, "dtype": torch.float32}
    d = torch.rand(c, **opts)
    u, _ = torch.linalg.qr(torch.rand(c, c, **opts))
    root = u.T @ torch.diag(d.sqrt()) @ u  # symmetric, root @ root = U^T D U
    z = torch.randn(1, h, w, c, **opts) @ root
    return (z.permute(0, 3, 1, 2) * (sigma / 255.0)).to(image.dtype)
