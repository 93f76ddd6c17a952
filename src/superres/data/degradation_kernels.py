"""Blur kernels of the Real-ESRGAN degradation model, as batched torch tensors.

Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic Data"
(ICCVW 2021), Sec. 3.2: a photo's blur is modelled by a mixture of

* Gaussian kernels, isotropic or anisotropic (``sigma_x``, ``sigma_y``, rotation ``theta``):
  ``k(p) ~ exp(-1/2 p^T S^-1 p)`` with ``S = R(theta) diag(sigma_x^2, sigma_y^2) R(theta)^T``;
* generalised Gaussians ``exp(-1/2 (p^T S^-1 p)^beta)`` (``beta < 1`` heavy-tailed, ``> 1``
  flat-topped);
* plateau kernels ``1 / (1 + (p^T S^-1 p)^beta)``;
* the 2-D sinc (ideal circular low-pass with cutoff ``omega`` rad/pixel),
  ``k(r) = omega J1(omega r) / (2 pi r)``, which rings like an over-sharpened or resampled photo.

``p = (x, y)`` is the offset from the centre in pixels, ``x`` along columns. Every kernel is odd
sized and sums to 1. The builders are pure functions of their parameters; the ``random_*``
functions draw per-sample parameters from an explicit :class:`torch.Generator` with the
published distributions (their defaults are Real-ESRGAN's training options), and return every
kernel zero-padded to one size so a batch stacks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch

from superres.errors import ConfigError

__all__ = [
    "KERNEL_TYPES",
    "KernelType",
    "anisotropic_gaussian",
    "circular_lowpass",
    "generalized_gaussian",
    "plateau",
    "random_mixed_kernels",
    "random_sinc_kernels",
    "shifted_gaussian",
    "uniform",
]

KernelType = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
#: The six families of Real-ESRGAN's mixture, in its order.
KERNEL_TYPES: tuple[KernelType, ...] = (
    "iso",
    "aniso",
    "generalized_iso",
    "generalized_aniso",
    "plateau_iso",
    "plateau_aniso",
)


#: A kernel parameter: one value for every kernel, or a ``(N,)`` tensor, one per kernel.
Param = torch.Tensor | float


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ConfigError(f"kernel size must be an odd positive integer (7, 9, ... 21), got {size}")


def _grid(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Column (x) and row (y) offsets from the centre, float64 ``(size, size)`` each."""
    ax = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    y, x = torch.meshgrid(ax, ax, indexing="ij")
    return x, y


def _params(*values: Param) -> list[torch.Tensor]:
    """Broadcast scalars and ``(N,)`` tensors to float64 ``(N, 1, 1)``."""
    tensors = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in values]
    device = next((t.device for t in tensors if t.device.type != "cpu"), tensors[0].device)
    tensors = torch.broadcast_tensors(*[t.to(device) for t in tensors])
    return [t.reshape(-1, 1, 1) for t in tensors]


def _quadratic(
    size: int,
    sigma_x: Param,
    sigma_y: Param,
    theta: Param,
) -> torch.Tensor:
    """``p^T S^-1 p`` on the grid, ``(N, size, size)`` float64."""
    sx, sy, th = _params(sigma_x, sigma_y, theta)
    if bool((sx <= 0).any() or (sy <= 0).any()):
        raise ConfigError(
            f"kernel sigmas must be positive, got {sx.flatten().tolist()}, {sy.flatten().tolist()}"
        )
    x, y = _grid(size, sx.device)
    # Rotate the offsets into the kernel's principal axes: S^-1 = R diag(1/sx^2, 1/sy^2) R^T.
    u = torch.cos(th) * x + torch.sin(th) * y
    v = -torch.sin(th) * x + torch.cos(th) * y
    return (u / sx) ** 2 + (v / sy) ** 2


def _normalise(k: torch.Tensor) -> torch.Tensor:
    return k / k.sum(dim=(-2, -1), keepdim=True)


def anisotropic_gaussian(
    size: int, *, sigma_x: Param, sigma_y: Param, theta: Param = 0.0
) -> torch.Tensor:
    """Gaussian kernels ``(N, size, size)`` float64; ``sigma_y = sigma_x`` is the isotropic one.

    Args:
        size: odd side in pixels.
        sigma_x, sigma_y: standard deviations in pixels along the kernel's axes (scalars or
            ``(N,)``), before the rotation.
        theta: rotation of the ``sigma_x`` axis from the x axis, radians.
    """
    _check_size(size)
    return _normalise(torch.exp(-0.5 * _quadratic(size, sigma_x, sigma_y, theta)))


def generalized_gaussian(
    size: int, *, sigma_x: Param, sigma_y: Param, theta: Param = 0.0, beta: Param
) -> torch.Tensor:
    """Generalised Gaussians ``exp(-1/2 q^beta)``, ``q = p^T S^-1 p``; ``beta = 1`` is Gaussian."""
    _check_size(size)
    (b,) = _params(beta)
    return _normalise(torch.exp(-0.5 * _quadratic(size, sigma_x, sigma_y, theta) ** b))


def plateau(
    size: int, *, sigma_x: Param, sigma_y: Param, theta: Param = 0.0, beta: Param
) -> torch.Tensor:
    """Plateau kernels ``1 / (1 + q^beta)``: flat near the centre, heavy tails (``beta`` > 0)."""
    _check_size(size)
    (b,) = _params(beta)
    return _normalise(1.0 / (_quadratic(size, sigma_x, sigma_y, theta) ** b + 1.0))


def circular_lowpass(size: int, *, cutoff: Param) -> torch.Tensor:
    """2-D sinc kernels: the ideal low-pass with circular pass band ``|w| < cutoff`` (rad/pixel),
    ``omega J1(omega r) / (2 pi r)`` sampled on the grid (its limit ``omega^2 / (4 pi)`` at the
    centre), truncated to ``size`` and normalised; ``(N, size, size)`` float64."""
    _check_size(size)
    (w,) = _params(cutoff)
    x, y = _grid(size, w.device)
    r = torch.sqrt(x**2 + y**2)
    safe_r = torch.where(r > 0, r, torch.ones_like(r))
    k = w * torch.special.bessel_j1(w * safe_r) / (2 * math.pi * safe_r)
    k = torch.where(r > 0, k, w**2 / (4 * math.pi))
    return _normalise(k)


def shifted_gaussian(size: int, *, sigma: float, shift: float) -> torch.Tensor:
    """An isotropic Gaussian ``(1, size, size)`` centred ``shift`` pixels right of and below the
    grid's centre: blurring with it and keeping every ``s``-th pixel (``shift = (s - 1) / 2``)
    samples the centres of the ``s x s`` cells, as BSRGAN's blur-then-subsample branch does."""
    _check_size(size)
    x, y = _grid(size, torch.device("cpu"))
    return _normalise(torch.exp(-((x - shift) ** 2 + (y - shift) ** 2) / (2 * sigma**2)))[None]


# --- random draws --------------------------------------------------------------------------------


def uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """``(n,)`` float64 draws from U(low, high) (``low == high`` gives that value)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)
    return low + (high - low) * u.cpu()


def _split_beta(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """Real-ESRGAN's shape draw: with probability 1/2 between ``low`` and 1, else between 1 and
    ``high`` (so both light and heavy tails are common whatever the range's width)."""
    below = uniform(n, min(low, 1.0), max(low, 1.0), generator)
    above = uniform(n, min(1.0, high), max(1.0, high), generator)
    return torch.where(uniform(n, 0.0, 1.0, generator) < 0.5, below, above)


def _sizes(n: int, size_range: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """Odd sizes drawn uniformly from ``size_range[0], size_range[0] + 2, ... size_range[1]``."""
    count = (size_range[1] - size_range[0]) // 2 + 1
    idx = torch.randint(count, (n,), generator=generator, device=generator.device).cpu()
    return size_range[0] + 2 * idx


def _window(sizes: torch.Tensor, size: int) -> torch.Tensor:
    """``(N, size, size)`` masks of each sample's central ``sizes[i]`` square."""
    x, y = _grid(size, torch.device("cpu"))
    half = ((sizes.to(torch.float64) - 1) / 2).view(-1, 1, 1)
    return ((x.abs() <= half) & (y.abs() <= half)).to(torch.float64)


def random_mixed_kernels(
    n: int,
    *,
    generator: torch.Generator,
    kernel_list: Sequence[KernelType] = KERNEL_TYPES,
    kernel_prob: Sequence[float] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03),
    size_range: tuple[int, int] = (7, 21),
    sigma_range: tuple[float, float] = (0.2, 3.0),
    rotation_range: tuple[float, float] = (-math.pi, math.pi),
    betag_range: tuple[float, float] = (0.5, 4.0),
    betap_range: tuple[float, float] = (1.0, 2.0),
    sinc_prob: float = 0.1,
    pad_to: int = 21,
) -> torch.Tensor:
    """``n`` blur kernels from Real-ESRGAN's mixture, float64 ``(n, pad_to, pad_to)`` on the CPU.

    Per sample: an odd size in ``size_range``; with probability ``sinc_prob`` a sinc kernel
    (cutoff U(pi/3, pi) below size 13, U(pi/5, pi) from 13: small kernels cannot hold a low
    cutoff's wide lobes), else a family drawn with ``kernel_prob`` and its parameters:
    ``sigma_x``, ``sigma_y`` ~ U(``sigma_range``), rotation ~ U(``rotation_range``) for the
    anisotropic families, and the shape ``beta`` drawn as :func:`_split_beta` does. Each kernel
    is built at its own size, then zero-padded to ``pad_to``.
    """
    if len(kernel_list) != len(kernel_prob) or not kernel_list:
        raise ConfigError(
            f"kernel_list ({len(kernel_list)} names) and kernel_prob ({len(kernel_prob)} "
            "values) must have the same, non-zero length"
        )
    sizes = _sizes(n, size_range, generator)
    probs = torch.tensor(list(kernel_prob), dtype=torch.float64)
    kind = torch.multinomial(probs.to(generator.device), n, replacement=True, generator=generator)
    kind = kind.cpu()
    sigma_x = uniform(n, *sigma_range, generator)
    sigma_y = uniform(n, *sigma_range, generator)
    theta = uniform(n, *rotation_range, generator)
    beta_g = _split_beta(n, *betag_range, generator)
    beta_p = _split_beta(n, *betap_range, generator)
    cutoff = torch.where(
        sizes < 13,
        uniform(n, math.pi / 3, math.pi, generator),
        uniform(n, math.pi / 5, math.pi, generator),
    )
    is_sinc = uniform(n, 0.0, 1.0, generator) < sinc_prob
    kernels = torch.zeros(n, pad_to, pad_to, dtype=torch.float64)
    for i, name in enumerate(kernel_list):
        pick = kind == i
        if not bool(pick.any()):
            continue
        iso = not name.endswith("aniso")
        sy = sigma_x[pick] if iso else sigma_y[pick]
        th = torch.zeros_like(sy) if iso else theta[pick]
        common = {"sigma_x": sigma_x[pick], "sigma_y": sy, "theta": th}
        if name.startswith("generalized"):
            k = generalized_gaussian(pad_to, beta=beta_g[pick], **common)
        elif name.startswith("plateau"):
            k = plateau(pad_to, beta=beta_p[pick], **common)
        else:
            k = anisotropic_gaussian(pad_to, **common)
        kernels[pick] = k
    kernels = torch.where(is_sinc.view(-1, 1, 1), circular_lowpass(pad_to, cutoff=cutoff), kernels)
    # A kernel of size s is the pad_to kernel restricted to its central s x s, renormalised.
    return _normalise(kernels * _window(sizes, pad_to))


def random_sinc_kernels(
    n: int,
    *,
    generator: torch.Generator,
    prob: float = 0.8,
    size_range: tuple[int, int] = (7, 21),
    cutoff_range: tuple[float, float] = (math.pi / 3, math.pi),
    pad_to: int = 21,
) -> torch.Tensor:
    """Real-ESRGAN's final filter: with probability ``prob`` a sinc kernel (size in
    ``size_range``, cutoff ~ U(``cutoff_range``)), else the identity (a centred unit impulse);
    float64 ``(n, pad_to, pad_to)`` on the CPU."""
    sizes = _sizes(n, size_range, generator)
    cutoff = uniform(n, *cutoff_range, generator)
    use = uniform(n, 0.0, 1.0, generator) < prob
    sinc = _normalise(circular_lowpass(pad_to, cutoff=cutoff) * _window(sizes, pad_to))
    pulse = torch.zeros(n, pad_to, pad_to, dtype=torch.float64)
    pulse[:, pad_to // 2, pad_to // 2] = 1.0
    return torch.where(use.view(-1, 1, 1), sinc, pulse)
