"""Full-reference fidelity metrics as the SR field computes them: MSE, RMSE, PSNR, SSIM, MS-SSIM.

Every function takes ``(sr, gt)`` as either

* two numpy arrays ``(H, W)`` or ``(H, W, C)`` (the file layout) of dtype uint8, uint16 or float,
  and returns a Python ``float``, computed in float64 on the CPU; or
* two floating-point torch tensors ``(N, C, H, W)``, returning a tensor of shape ``(N,)`` with one
  value per image (``(C, H, W)`` gives a 0-d tensor), computed on the inputs' device and dtype
  (float16/bfloat16 in float32), differentiable with respect to both inputs, so SSIM and MS-SSIM
  can serve as training losses.

Both run the same code (``conv2d`` filtering; arrays become float64 tensors once checked and
cropped), so a float64 tensor and the same array give the same number.

Shared keyword arguments:

* ``crop_border=k`` removes ``k`` pixels from every side before anything else (the protocol crops
  ``scale`` pixels, where the upscaler has no neighbours to look at).
* ``data_range``: the value span of the inputs; by default 255 for uint8, 65535 for uint16 and 1.0
  for float arrays and tensors.
* ``y_channel=True`` (RGB inputs only) scores the BT.601 luma instead of RGB: Y is computed in
  float, **not rounded**, on the 0-255 scale, ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with
  ``R = value / data_range`` in [0, 1], and the metric then runs on Y with a data range of 255
  (the papers' protocol; see DESIGN.md "Evaluation protocol").

Without ``y_channel`` a metric covers all channels: MSE over every value; SSIM and MS-SSIM per
channel, then the mean over channels.

SSIM follows Wang et al. (2004) as implemented by the MATLAB ``ssim_index.m`` the SR papers use:
an 11x11 Gaussian window (sigma 1.5, normalised to sum 1), ``K1 = 0.01``, ``K2 = 0.03``,
``L = data_range``, local statistics by "valid" filtering (no padding, so the SSIM map is
``(H - 10) x (W - 10)``), population (biased) variances, and the mean of the map. This equals
``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)``, which crops the filter's border.

MS-SSIM follows Wang, Simoncelli and Bovik (2003) with five scales and their weights, computed
exactly as pytorch-msssim 1.0 (``pytorch_msssim.ms_ssim``, the implementation PyTorch training
code uses; ``tests/test_fidelity.py`` holds us to it within 1e-6, odd sizes included). The two
choices where implementations differ:

* downsampling between scales is a 2x2 average pool with stride 2; a side of odd length is first
  padded with one zero at **both** ends, and the zeros count in the averages
  (``F.avg_pool2d(kernel_size=2, padding=side % 2)``), so a side ``s`` becomes ``ceil(s / 2)``.
  (The original MATLAB ``msssim.m`` filters with symmetric padding instead, and TensorFlow's
  ``ssim_multiscale`` pads symmetrically; :func:`ms_ssim_downsample` is the one home of this
  rule, for the metric and :class:`~superres.losses.structural.MSSSIMLoss`);
* each scale's contrast-structure mean ``cs`` and the last scale's SSIM are **clamped at 0 (ReLU)**
  before being raised to their weights, so the product stays real (a negative base to a
  fractional power is undefined) and the loss stays differentiable; in the tensor path a clamped
  term gets a zero gradient rather than the NaN that ``relu(x) ** w`` gives at ``x <= 0``.

The coarsest scale must hold one window: the smallest side needs
``(window - 1) * 2 ** (scales - 1) + 1`` pixels (:func:`ms_ssim_min_side`; 161 for the standard
five scales and 11-px window, pytorch-msssim's bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Unpack

import numpy as np
import torch
import torch.nn.functional as F

from superres.errors import ImageTooSmallError, InvalidImageError
from superres.metrics.fidelity_inputs import (
    FidelityOptions,
    prepare_numpy,
    prepare_tensor,
    read_options,
)
from superres.metrics.kinds import Image, Score, full_reference

__all__ = [
    "MS_SSIM_WEIGHTS",
    "SSIM_WINDOW_SIZE",
    "ms_ssim",
    "ms_ssim_downsample",
    "ms_ssim_min_side",
    "ms_ssim_scales_that_fit",
    "mse",
    "psnr",
    "rmse",
    "ssim",
]

#: Per-scale exponents of Wang, Simoncelli and Bovik (2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

#: Side of the SSIM Gaussian window; images (and every MS-SSIM scale) need at least this many
#: pixels per side, since the "valid" filtering leaves ``side - SSIM_WINDOW_SIZE + 1`` outputs.
SSIM_WINDOW_SIZE = 11
_SIGMA = 1.5
_K1 = 0.01
_K2 = 0.03


def _gaussian_window() -> np.ndarray:
    """The normalised 1-D Gaussian (11 taps, sigma 1.5) in float64.

    MATLAB's ``fspecial('gaussian', 11, 1.5)`` normalises the 2-D kernel; that kernel is the outer
    product of this normalised 1-D one, so two separable passes give the same filter.
    """
    r = np.arange(SSIM_WINDOW_SIZE, dtype=np.float64) - (SSIM_WINDOW_SIZE - 1) / 2
    g = np.exp(-(r**2) / (2 * _SIGMA**2))
    return g / g.sum()


_GAUSSIAN = _gaussian_window()


# --- the numeric cores, on (N, C, H, W) tensors ---------------------------------------------------


def _filter(x: torch.Tensor) -> torch.Tensor:
    """'valid' separable Gaussian filtering per channel: ``(B, C, H, W) -> (B, C, H-10, W-10)``."""
    b, c, h, w = x.shape
    n = b * c
    g = torch.as_tensor(_GAUSSIAN, dtype=x.dtype, device=x.device)
    # Every plane becomes a channel of one sample, filtered depthwise (groups = planes): on CPU
    # this is ~50x faster than a batch of single-channel convolutions, for the same arithmetic.
    out = x.reshape(1, n, h, w)
    out = F.conv2d(out, g.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)  # along W; no flip
    out = F.conv2d(out, g.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)  # along H
    return out.view(b, c, out.shape[-2], out.shape[-1])


def _ssim_maps(x: torch.Tensor, y: torch.Tensor, L: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM and contrast-structure maps ``(N, C, H-10, W-10)`` of ``(N, C, H, W)`` inputs."""
    c1, c2 = (_K1 * L) ** 2, (_K2 * L) ** 2
    n = x.shape[0]
    stats = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=0))
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(n, dim=0)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance * cs, cs


def _mse_core(x: torch.Tensor, y: torch.Tensor, L: float) -> torch.Tensor:
    return (x - y).square().mean(dim=(1, 2, 3))


def _rmse_core(x: torch.Tensor, y: torch.Tensor, L: float) -> torch.Tensor:
    return _mse_core(x, y, L).sqrt()


def _psnr_core(x: torch.Tensor, y: torch.Tensor, L: float) -> torch.Tensor:
    # L^2 / 0 = inf and log10(inf) = inf: identical images score torch.inf without a branch.
    return 10.0 * torch.log10((L * L) / _mse_core(x, y, L))


def _ssim_core(x: torch.Tensor, y: torch.Tensor, L: float) -> torch.Tensor:
    ssim_map, _ = _ssim_maps(x, y, L)
    return ssim_map.mean(dim=(-2, -1)).mean(dim=-1)


def ms_ssim_min_side(window_size: int, num_scales: int) -> int:
    """The smallest image side that ``num_scales`` MS-SSIM scales with a ``window_size`` window
    accept: after ``num_scales - 1`` halvings by :func:`ms_ssim_downsample` (``ceil(s / 2)``
    each) one window must fit."""
    return (window_size - 1) * 2 ** (num_scales - 1) + 1


def ms_ssim_scales_that_fit(side: int, window_size: int) -> int:
    """How many MS-SSIM scales (at most the standard five) a side of ``side`` pixels holds."""
    fits = 0
    while fits < len(MS_SSIM_WEIGHTS) and ms_ssim_min_side(window_size, fits + 1) <= side:
        fits += 1
    return fits


def ms_ssim_downsample(x: torch.Tensor) -> torch.Tensor:
    """MS-SSIM's step to the next scale, as pytorch-msssim: 2x2 mean, stride 2, a side of odd
    length padded with one zero at both ends (counted in the means). ``(..., H, W)`` ->
    ``(..., ceil(H / 2), ceil(W / 2))``."""
    return F.avg_pool2d(x, kernel_size=2, padding=[x.shape[-2] % 2, x.shape[-1] % 2])


def _clamped_pow(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``relu(base) ** exponent`` with a zero (not NaN) gradient where ``base <= 0``.

    Autograd through ``relu(b) ** w`` multiplies ``relu'(b) = 0`` by ``w * 0 ** (w - 1) = inf``,
    which is NaN; here the power only ever sees positive bases and ``where`` routes a zero gradient
    to the clamped entries. ``tiny`` only changes bases below ~1e-38, i.e. none in practice.
    """
    tiny = torch.finfo(base.dtype).tiny
    positive = base > 0
    return torch.where(positive, base.clamp(min=tiny) ** exponent, torch.zeros_like(base))


def _ms_ssim_core(
    x: torch.Tensor, y: torch.Tensor, L: float, weights: tuple[float, ...]
) -> torch.Tensor:
    terms = []  # per scale, an (N, C) tensor
    for scale in range(len(weights)):
        ssim_map, cs_map = _ssim_maps(x, y, L)
        if scale == len(weights) - 1:
            terms.append(ssim_map.mean(dim=(-2, -1)))
        else:
            terms.append(cs_map.mean(dim=(-2, -1)))
            x, y = ms_ssim_downsample(x), ms_ssim_downsample(y)
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    per_channel = _clamped_pow(torch.stack(terms), w).prod(dim=0)
    return per_channel.mean(dim=-1)


# --- dispatch -------------------------------------------------------------------------------------

_Core = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]


def _evaluate(
    name: str,
    sr: Image,
    gt: Image,
    core: _Core,
    options: FidelityOptions,
    *,
    min_side: int = 1,
    too_small: Callable[[int, int], str] | None = None,
) -> Score:
    """Validate, crop, convert to Y if asked, check the size, then run ``core``.

    Arrays run through the same tensor code as tensors, in float64 on the CPU, so the numbers a
    table reports and the ones a training loop logs come from one implementation.
    """
    crop_border, y_channel, data_range = read_options(name, options)
    if isinstance(sr, torch.Tensor) and isinstance(gt, torch.Tensor):
        x, y, L = prepare_tensor(name, sr, gt, crop_border, y_channel, data_range)
    elif isinstance(sr, np.ndarray) and isinstance(gt, np.ndarray):
        xa, ya, L = prepare_numpy(name, sr, gt, crop_border, y_channel, data_range)
        x, y = torch.from_numpy(xa)[None], torch.from_numpy(ya)[None]
    else:
        raise InvalidImageError(
            f"{name}: got sr of type {type(sr).__name__} and gt of type {type(gt).__name__}; "
            "expected two numpy arrays or two torch tensors. Convert one, e.g. "
            "torch.from_numpy(array)."
        )
    if min(x.shape[-2], x.shape[-1]) < min_side:
        raise _too_small(name, x.shape[-2], x.shape[-1], crop_border, min_side, too_small)
    out = core(x, y, L)
    if not isinstance(sr, torch.Tensor):
        return float(out[0])
    out = out[0] if sr.ndim == 3 else out
    return out.to(sr.dtype) if sr.dtype in (torch.float16, torch.bfloat16) else out


def _too_small(
    name: str,
    h: int,
    w: int,
    crop_border: int,
    min_side: int,
    hint: Callable[[int, int], str] | None,
) -> ImageTooSmallError:
    extra = (
        hint(h, w)
        if hint is not None
        else (f"The {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} window needs that many pixels per side.")
    )
    return ImageTooSmallError(
        f"{name}: needs at least {min_side}x{min_side} pixels after crop_border={crop_border}; "
        f"got {h}x{w}. {extra} Score larger images or use a smaller crop_border."
    )


# --- public API -----------------------------------------------------------------------------------


@full_reference
def mse(sr: Image, gt: Image, **options: Unpack[FidelityOptions]) -> Score:
    """Mean squared error over every pixel and channel, in squared units of the images' scale
    (of the 0-255 scale with ``y_channel``). See the module docstring for inputs and options.

    Raises:
        InvalidImageError: mismatched shapes or types, NaN/inf, an unsupported dtype, a bad
            ``crop_border``/``data_range``, or ``y_channel`` on non-RGB images.
    """
    return _evaluate("mse", sr, gt, _mse_core, options)


@full_reference
def rmse(sr: Image, gt: Image, **options: Unpack[FidelityOptions]) -> Score:
    """Root mean squared error, ``sqrt(mse)``, in the images' units (0-255 with ``y_channel``).

    Raises:
        InvalidImageError: as :func:`mse`.
    """
    return _evaluate("rmse", sr, gt, _rmse_core, options)


@full_reference
def psnr(sr: Image, gt: Image, **options: Unpack[FidelityOptions]) -> Score:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / mse)``.

    Identical images give ``math.inf`` (numpy) or ``torch.inf`` (tensors). With ``y_channel`` the
    data range is 255 (Y on the 0-255 scale), as in every SR paper.

    Raises:
        InvalidImageError: as :func:`mse`.
    """
    return _evaluate("psnr", sr, gt, _psnr_core, options)


@full_reference
def ssim(sr: Image, gt: Image, **options: Unpack[FidelityOptions]) -> Score:
    """Structural similarity (Wang et al. 2004, MATLAB ``ssim_index.m``), unitless, at most 1.

    11x11 Gaussian window (sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, ``L = data_range`` (255
    with ``y_channel``), valid-region filtering, population variances; the mean of the
    ``(H - 10) x (W - 10)`` SSIM map, per channel, then averaged over channels. Symmetric in
    ``sr`` and ``gt``.

    Raises:
        ImageTooSmallError: a side shorter than 11 pixels after cropping.
        InvalidImageError: as :func:`mse`.
    """
    return _evaluate("ssim", sr, gt, _ssim_core, options, min_side=SSIM_WINDOW_SIZE)


@full_reference
def ms_ssim(
    sr: Image,
    gt: Image,
    *,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    **options: Unpack[FidelityOptions],
) -> Score:
    """Multi-scale SSIM (Wang, Simoncelli and Bovik 2003), unitless, in [0, 1].

    ``MS-SSIM = prod_{j < M} relu(cs_j) ** w_j * relu(ssim_M) ** w_M`` per channel, then averaged
    over channels, where ``cs_j`` is the mean contrast-structure term at scale ``j``, ``ssim_M``
    the mean SSIM at the coarsest scale and ``M = len(weights)``. Scales are separated by 2x2
    average pooling (stride 2, an odd last row/column dropped). The window and constants are
    those of :func:`ssim`. ``weights`` are used as given (not renormalised).

    Exactly pytorch-msssim's ``ms_ssim`` (see the module docstring): the ``M - 1`` poolings take
    each side to ``ceil(s / 2)``, so the smallest side must be at least
    ``10 * 2 ** (M - 1) + 1`` pixels after cropping (161 for the default five scales) for the
    coarsest scale to hold one 11x11 window.

    Raises:
        ImageTooSmallError: a side shorter than ``10 * 2 ** (M - 1) + 1`` after cropping.
        InvalidImageError: as :func:`mse`.
        ValueError: ``weights`` empty or not finite and non-negative.
    """
    w = tuple(float(v) for v in weights)
    if not w or not all(math.isfinite(v) and v >= 0 for v in w):
        raise ValueError(
            f"ms_ssim: weights must be a non-empty sequence of finite non-negative numbers, one "
            f"per scale; got {tuple(weights)!r}. Use the default MS_SSIM_WEIGHTS or a prefix of it."
        )
    min_side = ms_ssim_min_side(SSIM_WINDOW_SIZE, len(w))

    def core(x: torch.Tensor, y: torch.Tensor, L: float) -> torch.Tensor:
        return _ms_ssim_core(x, y, L, w)

    def hint(height: int, width: int) -> str:
        side = min(height, width)
        fits = ms_ssim_scales_that_fit(side, SSIM_WINDOW_SIZE)
        scales = (
            f"At {side} px at most {fits} scale(s) fit: pass weights with {fits} entries, "
            f"e.g. weights=MS_SSIM_WEIGHTS[:{fits}] (not renormalised), or use ssim()."
            if fits
            else "Not even one scale fits."
        )
        return (
            f"MS-SSIM with {len(w)} scales halves the image {len(w) - 1} times and the coarsest "
            f"scale needs an {SSIM_WINDOW_SIZE}-px window, so the smallest side must be >= "
            f"({SSIM_WINDOW_SIZE} - 1) * 2**{len(w) - 1} + 1 = {min_side}. {scales}"
        )

    return _evaluate("ms_ssim", sr, gt, core, options, min_side=min_side, too_small=hint)
