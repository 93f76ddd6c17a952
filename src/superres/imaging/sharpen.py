"""Unsharp masking with a soft threshold: the sharpened targets Real-ESRGAN trains towards.

Real-ESRGAN (Wang et al., ICCVW 2021, section 4.3) sharpens the HR images before they are degraded
and uses them as the pixel and perceptual targets, which gives sharper outputs without the halos
of sharpening the outputs afterwards. :func:`usm_sharpen` is that operation, batched on any device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from superres.errors import InvalidImageError

__all__ = ["gaussian_kernel_1d", "usm_sharpen"]


#: OpenCV's fixed kernels for sizes up to 7 (``getGaussianKernel`` with sigma <= 0 uses these).
_SMALL_KERNELS = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}


def gaussian_kernel_1d(size: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel(size, 0)``: its fixed table up to size 7, else sigma
    ``0.3 * ((size - 1) / 2 - 1) + 0.8``, normalised to sum 1; ``size`` odd."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the kernel size must be odd and positive, got {size}")
    if size in _SMALL_KERNELS:
        return torch.tensor(_SMALL_KERNELS[size], dtype=dtype)
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).to(dtype)


def _blur(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Separable blur of ``(N, C, H, W)`` with reflect-101 borders (OpenCV's default)."""
    n, c, h, w = image.shape
    r = kernel.numel() // 2
    flat = image.reshape(n * c, 1, h, w)
    flat = F.pad(flat, (r, r, r, r), mode="reflect")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    return flat.view(n, c, h, w)


def usm_sharpen(
    image: torch.Tensor, *, radius: int = 50, weight: float = 0.5, threshold: float = 10.0
) -> torch.Tensor:
    """Unsharp mask of ``image`` where its detail exceeds ``threshold`` (in 8-bit levels),
    blended in through a blurred mask so there is no hard edge: Real-ESRGAN's ``USMSharp``.

    ``sharp = clamp(image + weight * (image - blur(image)), 0, 1)``, ``mask = |image -
    blur(image)| * 255 > threshold``, result ``blur(mask) * sharp + (1 - blur(mask)) * image``; the
    blur is a Gaussian of ``radius`` (made odd, 51 by default; OpenCV's sigma rule).

    Args:
        image: float ``(N, C, H, W)`` in [0, 1]; each side more than ``radius // 2`` pixels
            (the reflected border).
        radius, weight, threshold: Real-ESRGAN's defaults.

    Returns:
        The sharpened batch, same shape, dtype and device, in [0, 1].
    """
    if image.ndim != 4 or not image.is_floating_point():
        raise InvalidImageError(
            f"usm_sharpen needs a float (N, C, H, W) batch, got {image.dtype} {tuple(image.shape)}"
        )
    size = radius + 1 if radius % 2 == 0 else radius
    if min(image.shape[-2:]) <= size // 2:
        raise InvalidImageError(
            f"usm_sharpen with radius {radius} needs sides over {size // 2} px, got "
            f"{tuple(image.shape[-2:])}; use a smaller radius or a larger crop"
        )
    kernel = gaussian_kernel_1d(size, dtype=image.dtype).to(image.device)
    residual = image - _blur(image, kernel)
    mask = (residual.abs() * 255 > threshold).to(image.dtype)
    soft = _blur(mask, kernel)
    sharp = (image + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * image
