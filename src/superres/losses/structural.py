"""Structural losses: 1 - SSIM, 1 - MS-SSIM and the MS-SSIM + L1 "Mix" of Zhao et al. (2017).

Inputs are ``(N, C, H, W)`` float RGB in [0, 1] (``data_range=1``); every channel is scored and
the channels averaged, as :mod:`superres.metrics.fidelity` does without ``y_channel``. Each loss
is one value per image, so ``reduction="none"`` returns ``(N,)``, and ``"mean"``/``"sum"`` reduce
over the batch.

All three share one separable Gaussian-window implementation (below), the same arithmetic as the
metric :func:`superres.metrics.ssim` (``K1 = 0.01``, ``K2 = 0.03``, population variances, mean
of the map) but with the window, sigma and padding as options; at the defaults
:class:`SSIMLoss` equals ``1 - ssim(sr, gt)`` and :class:`MSSSIMLoss` ``1 - ms_ssim(sr, gt)``
(the tests check this). The metric is not called directly because it checks its inputs for NaN
(a host synchronisation every training step) and fixes the window.

Padding:

* ``"valid"`` (default; the field's SSIM, MATLAB ``ssim_index.m``): statistics only where the
  whole window fits, a ``(H - w + 1) x (W - w + 1)`` map. Border pixels still get gradients,
  but weighted less, since fewer windows cover them.
* ``"same"``: the images are reflect-padded by ``w // 2`` first, so the map is ``H x W`` and
  every pixel is the centre of one window. Not the metric's value, but it lets small patches
  through and weights the border like the interior.

Computation runs in float32 (float64 inputs stay float64) with autocast disabled: the local
variances of [0, 1] images are ~1e-3 wide, below half precision's resolution.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from superres.errors import ConfigError, ImageTooSmallError, check_choice
from superres.losses.base import BaseLoss, check_pair
from superres.metrics.fidelity import (
    MS_SSIM_WEIGHTS,
    SSIM_WINDOW_SIZE,
    ms_ssim_downsample,
    ms_ssim_min_side,
    ms_ssim_scales_that_fit,
)

__all__ = ["PADDINGS", "MSSSIMLoss", "MixLoss", "SSIMLoss", "gaussian_window"]

#: The accepted values of ``padding``.
PADDINGS = ("valid", "same")

_SIGMA = 1.5  # the field's SSIM window: 11 x 11, sigma 1.5 (Wang et al. 2004)
_K1 = 0.01
_K2 = 0.03


def gaussian_window(
    window_size: int, sigma: float, *, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``window_size`` taps (odd), computed in float64.

    The 2-D window is its outer product (MATLAB ``fspecial('gaussian', w, sigma)``), applied as
    two separable passes.
    """
    r = torch.arange(window_size, dtype=torch.float64) - (window_size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _filter(x: torch.Tensor, g: torch.Tensor, padding: str) -> torch.Tensor:
    """Depthwise separable filtering of every plane of ``(B, C, H, W)`` with the 1-D ``g``.

    ``g`` may be ``(T,)`` (one window) or ``(S, T)`` (S windows of one size: the output is then
    ``(B, S * C, H', W')``, window-major).
    """
    b, c, h, w = x.shape
    taps = g.shape[-1]
    if padding == "same":
        r = taps // 2
        x = F.pad(x, (r, r, r, r), mode="reflect")
        h, w = h + 2 * r, w + 2 * r
    windows = g.reshape(-1, taps)
    s = windows.shape[0]
    n = b * c
    # Every plane becomes a channel of one sample, filtered depthwise (groups = planes), as in the
    # metric: much faster on CPU than a batch of single-channel convolutions.
    out = x.reshape(1, n, h, w)
    if s > 1:
        out = out.repeat_interleave(s, dim=1)  # plane-major, window-minor
    kw = windows.repeat(n, 1)  # (n * s, taps), matching the channel order above
    out = F.conv2d(out, kw.view(n * s, 1, 1, taps), groups=n * s)  # along W (no flip)
    out = F.conv2d(out, kw.view(n * s, 1, taps, 1), groups=n * s)  # along H
    out = out.view(b, c, s, out.shape[-2], out.shape[-1]).transpose(1, 2)
    return out.reshape(b, s * c, out.shape[-2], out.shape[-1]) if s > 1 else out[:, 0]


def _luminance_cs(
    x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, data_range: float, padding: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Luminance and contrast-structure maps of ``(N, C, H, W)`` inputs (SSIM = their product).

    With ``S`` windows in ``g`` the maps are ``(N, S * C, H', W')``, window-major.
    """
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    n = x.shape[0]
    stats = _filter(torch.cat([x, y, x * x, y * y, x * y], dim=0), g, padding)
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.split(n, dim=0)
    var_x = e_xx - mu_x * mu_x  # population (biased) variances, as ssim_index.m
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return luminance, cs


def _working_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _clamped_pow(base: torch.Tensor, exponent: torch.Tensor) -> torch.Tensor:
    """``relu(base) ** exponent``, with a zero (not NaN) gradient where ``base <= 0`` (as the
    metric does)."""
    positive = base > 0
    safe = base.clamp(min=torch.finfo(base.dtype).tiny)
    return torch.where(positive, safe**exponent, torch.zeros_like(base))


def _check_window(owner: str, window_size: int, sigma: float | None) -> tuple[int, float]:
    if isinstance(window_size, bool) or not isinstance(window_size, int) or window_size < 3:
        raise ConfigError(f"{owner}: window_size must be an int >= 3; got {window_size!r}.")
    if window_size % 2 == 0:
        raise ConfigError(
            f"{owner}: window_size must be odd (the window has a centre pixel); got "
            f"{window_size}. Use {window_size - 1} or {window_size + 1}."
        )
    if sigma is None:
        # Keep the field's window-to-sigma ratio (11 taps for sigma 1.5, i.e. +-3.3 sigma).
        sigma = _SIGMA * window_size / SSIM_WINDOW_SIZE
    if not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
        raise ConfigError(f"{owner}: sigma must be a positive number; got {sigma!r}.")
    return window_size, float(sigma)


def _check_data_range(owner: str, data_range: float) -> float:
    if not (isinstance(data_range, int | float) and math.isfinite(data_range) and data_range > 0):
        raise ConfigError(
            f"{owner}: data_range must be a positive number; got {data_range!r}. Use 1.0 for "
            "images in [0, 1]."
        )
    return float(data_range)


def _min_side(owner: str, h: int, w: int, window_size: int, padding: str, hint: str = "") -> None:
    side = min(h, w)
    need = window_size if padding == "valid" else window_size // 2 + 1  # reflect: pad < side
    if side < need:
        raise ImageTooSmallError(
            f"{owner}: a {window_size}-px window with padding={padding!r} needs images of at "
            f"least {need}x{need} px; got {h}x{w}. "
            + (hint or "Use larger patches, a smaller window_size, or padding='same'.")
        )


class _WindowedLoss(BaseLoss):
    """A loss of one value per image from Gaussian-window statistics.

    The statistics run in float32 (float64 inputs stay float64) with autocast disabled; see the
    module docstring. ``data_range`` and ``padding`` (see the subclasses) are checked here, with
    ``loss_weight`` and ``reduction``, and messages name the subclass.
    """

    def __init__(
        self, *, data_range: float, padding: str, loss_weight: float, reduction: str
    ) -> None:
        super().__init__(loss_weight=loss_weight, reduction=reduction)
        owner = type(self).__name__
        self.data_range = _check_data_range(owner, data_range)
        self.padding = check_choice(padding, PADDINGS, "padding", owner)

    def _check_size(self, h: int, w: int) -> None:
        """Refuse images too small for the windows, naming the options that would fit."""
        raise NotImplementedError

    def _per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss ``(N,)`` of ``x`` against ``y``, both in the working dtype."""
        raise NotImplementedError

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        check_pair(type(self).__name__, sr, gt)
        self._check_size(sr.shape[-2], sr.shape[-1])
        dtype = _working_dtype(sr)
        with torch.autocast(sr.device.type, enabled=False):
            per_image = self._per_image(sr.to(dtype), gt.to(dtype))
        return self._reduce(per_image)


class SSIMLoss(_WindowedLoss):
    """``1 - SSIM(sr, gt)`` (Wang, Bovik, Sheikh and Simoncelli, IEEE TIP 2004).

    SSIM per channel with a ``window_size`` Gaussian window, averaged over the map and channels;
    one value per image. Zero for identical images, at most 2 (SSIM >= -1).

    Args:
        window_size: odd window side in pixels; the field's 11.
        sigma: the Gaussian's standard deviation in pixels; ``None`` means 1.5 for the default
            window and ``1.5 * window_size / 11`` otherwise.
        data_range: value span of the images (1.0 for [0, 1]); sets ``C1 = (0.01 L)^2`` and
            ``C2 = (0.03 L)^2``.
        padding: ``"valid"`` (the metric's value; needs sides >= ``window_size``) or ``"same"``
            (reflect padding; see the module docstring).
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``; ``"mean"``/``"sum"`` over the batch.

    Raises (on call):
        ImageTooSmallError: a side below the window (``"valid"``) or half-window (``"same"``).
        InvalidImageError: inputs not two ``(N, C, H, W)`` float tensors of one shape.
    """

    def __init__(
        self,
        *,
        window_size: int = SSIM_WINDOW_SIZE,
        sigma: float | None = None,
        data_range: float = 1.0,
        padding: str = "valid",
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            data_range=data_range, padding=padding, loss_weight=loss_weight, reduction=reduction
        )
        self.window_size, self.sigma = _check_window("SSIMLoss", window_size, sigma)

    def _check_size(self, h: int, w: int) -> None:
        _min_side(type(self).__name__, h, w, self.window_size, self.padding)

    def _per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g = gaussian_window(self.window_size, self.sigma, dtype=x.dtype, device=x.device)
        luminance, cs = _luminance_cs(x, y, g, self.data_range, self.padding)
        return 1.0 - (luminance * cs).mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return (
            f"window_size={self.window_size}, sigma={self.sigma:g}, padding={self.padding!r}, "
            f"{super().extra_repr()}"
        )


class MSSSIMLoss(_WindowedLoss):
    """``1 - MS-SSIM(sr, gt)`` (Wang, Simoncelli and Bovik, Asilomar 2003), as the metric has it.

    ``MS-SSIM = prod_{j < M} relu(cs_j)^{w_j} * relu(ssim_M)^{w_M}`` per channel, averaged over
    channels; scales separated by :func:`superres.metrics.fidelity.ms_ssim_downsample` (2x2 mean,
    stride 2, odd sides zero-padded at both ends, as pytorch-msssim), ``w`` the first
    ``num_scales`` of (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), used as given (not renormalised,
    as :func:`superres.metrics.ms_ssim` with ``weights=MS_SSIM_WEIGHTS[:M]``).

    **Patch size.** Each pooling takes a side to ``ceil(s / 2)`` and the coarsest scale must hold
    one window, so the smallest side must be at least ``(window_size - 1) * 2 ** (num_scales - 1)
    + 1``: 161 px for the standard 5 scales and 11-px window. For the usual 96-px training
    patches use either ``num_scales=4`` (needs 81 px; the standard definition minus its coarsest
    scale) or ``num_scales=5, window_size=5`` (needs 65 px; sigma becomes 0.68 unless given).
    128-px patches fit ``num_scales=4`` or ``window_size=7`` (97 px).

    Args:
        num_scales: 1 to 5 scales, finest first.
        window_size: odd window side in pixels at every scale.
        sigma: the Gaussian's standard deviation; ``None`` means ``1.5 * window_size / 11``.
        data_range: value span of the images (1.0 for [0, 1]).
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``; ``"mean"``/``"sum"`` over the batch.

    Raises (on call):
        ImageTooSmallError: a side below ``window_size * 2 ** (num_scales - 1)``; the message
            names the options that fit the given size.
        InvalidImageError: inputs not two ``(N, C, H, W)`` float tensors of one shape.
    """

    def __init__(
        self,
        *,
        num_scales: int = len(MS_SSIM_WEIGHTS),
        window_size: int = SSIM_WINDOW_SIZE,
        sigma: float | None = None,
        data_range: float = 1.0,
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        # Always "valid": each scale is scored on its whole (downsampled) image.
        super().__init__(
            data_range=data_range, padding="valid", loss_weight=loss_weight, reduction=reduction
        )
        if (
            isinstance(num_scales, bool)
            or not isinstance(num_scales, int)
            or not 1 <= num_scales <= len(MS_SSIM_WEIGHTS)
        ):
            raise ConfigError(
                f"MSSSIMLoss: num_scales must be an int from 1 to {len(MS_SSIM_WEIGHTS)}; got "
                f"{num_scales!r}."
            )
        self.num_scales = num_scales
        self.weights = tuple(MS_SSIM_WEIGHTS[:num_scales])
        self.window_size, self.sigma = _check_window("MSSSIMLoss", window_size, sigma)

    @property
    def min_side(self) -> int:
        """The smallest image side this configuration accepts, in pixels."""
        return ms_ssim_min_side(self.window_size, self.num_scales)

    def _too_small(self, h: int, w: int) -> ImageTooSmallError:
        side = min(h, w)
        fits = ms_ssim_scales_that_fit(side, self.window_size)
        options = []
        if fits:
            needs = ms_ssim_min_side(self.window_size, fits)
            options.append(f"num_scales={fits} (needs {needs} px)")
        # the largest odd window that fits at this many scales: ceil(side / 2**(M - 1))
        window = -(-side // 2 ** (self.num_scales - 1))
        window -= 1 - window % 2
        if window >= 3:
            options.append(
                f"window_size={window} with num_scales={self.num_scales} (needs "
                f"{ms_ssim_min_side(window, self.num_scales)} px)"
            )
        advice = (
            "At this size pass " + " or ".join(options) + ", or use larger patches."
            if options
            else "Use larger patches or SSIMLoss."
        )
        return ImageTooSmallError(
            f"MSSSIMLoss: {self.num_scales} scales with a {self.window_size}-px window halve the "
            f"image {self.num_scales - 1} times and the coarsest scale needs one window, so the "
            f"smallest side must be >= ({self.window_size} - 1) * 2**{self.num_scales - 1} + 1 "
            f"= {self.min_side} px; got {h}x{w}. {advice}"
        )

    def _check_size(self, h: int, w: int) -> None:
        if min(h, w) < self.min_side:
            raise self._too_small(h, w)

    def _per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dtype, device = x.dtype, x.device
        g = gaussian_window(self.window_size, self.sigma, dtype=dtype, device=device)
        terms = []  # per scale, (N, C): cs means, then the coarsest scale's SSIM means
        for scale in range(self.num_scales):
            luminance, cs = _luminance_cs(x, y, g, self.data_range, "valid")
            if scale == self.num_scales - 1:
                terms.append((luminance * cs).mean(dim=(-2, -1)))
            else:
                terms.append(cs.mean(dim=(-2, -1)))
                x, y = ms_ssim_downsample(x), ms_ssim_downsample(y)
        exponents = torch.tensor(self.weights, dtype=dtype, device=device).view(-1, 1, 1)
        return 1.0 - _clamped_pow(torch.stack(terms), exponents).prod(dim=0).mean(dim=-1)

    def extra_repr(self) -> str:
        return (
            f"num_scales={self.num_scales}, window_size={self.window_size}, "
            f"sigma={self.sigma:g}, {super().extra_repr()}"
        )


class MixLoss(_WindowedLoss):
    """Zhao et al.'s mix: ``alpha (1 - MS-SSIM) + (1 - alpha) G_{sigma_M} * |sr - gt|``.

    Zhao, Gallo, Frosio and Kautz, "Loss Functions for Image Restoration with Neural Networks",
    IEEE Transactions on Computational Imaging 3(1), 2017 (arXiv:1511.08861), Sec. III-D:
    ``L_Mix = alpha * L_MS-SSIM + (1 - alpha) * G_{sigma_G^M} . L_l1`` with ``alpha = 0.84``,
    where ``G_{sigma_G^M}`` is the Gaussian of the last (coarsest) MS-SSIM scale, so both terms
    weigh the error around a pixel alike.

    As in the paper (and NVIDIA's reference layers, NVlabs/PL4NN ``src/loss.py``), MS-SSIM here
    is *not* the downsampling pyramid of :class:`MSSSIMLoss`: the M scales are Gaussian windows of
    growing width on the full-resolution image, ``sigma_G = (0.5, 1, 2, 4, 8)``, with all
    exponents 1 (the paper sets ``alpha = beta_j = 1``)::

        MS-SSIM(p) = l_M(p) * prod_{j=1..M} cs_j(p)

    The paper evaluates the loss at a patch's centre pixel; convolutionally that is the mean over
    every pixel of the maps, which is what is computed here (per channel, then averaged). All
    windows are ``2 * ceil(3 * max(sigmas)) + 1`` px wide (49 for sigma 8), so ``"valid"``
    padding needs sides >= 49 px (96-px patches leave a 48x48 map); ``"same"`` reflect-pads by
    24 px and scores every pixel. The L1 term is divided by ``data_range`` so both terms are
    unitless; with ``data_range=1`` that is the paper's ``|sr - gt|``.

    Args:
        alpha: weight of the MS-SSIM term, in [0, 1]; the paper's 0.84.
        sigmas: the Gaussian sigmas of the scales, finest first; the last one weights the L1.
        data_range: value span of the images (1.0 for [0, 1]).
        padding: ``"valid"`` or ``"same"`` (see the module docstring).
        loss_weight: multiplies the reduced value.
        reduction: ``"none"`` -> ``(N,)``; ``"mean"``/``"sum"`` over the batch.
    """

    def __init__(
        self,
        *,
        alpha: float = 0.84,
        sigmas: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
        data_range: float = 1.0,
        padding: str = "valid",
        loss_weight: float = 1.0,
        reduction: str = "mean",
    ) -> None:
        if not (isinstance(alpha, int | float) and 0.0 <= alpha <= 1.0):
            raise ConfigError(f"MixLoss: alpha must be a number in [0, 1]; got {alpha!r}.")
        values = tuple(sigmas)
        if not values or not all(
            isinstance(s, int | float) and math.isfinite(s) and s > 0 for s in values
        ):
            raise ConfigError(
                f"MixLoss: sigmas must be a non-empty sequence of positive numbers; got {sigmas!r}."
            )
        super().__init__(
            data_range=data_range, padding=padding, loss_weight=loss_weight, reduction=reduction
        )
        self.alpha = float(alpha)
        self.sigmas = tuple(float(s) for s in values)
        self.window_size = 2 * math.ceil(3 * max(self.sigmas)) + 1

    def _check_size(self, h: int, w: int) -> None:
        hint = "Use larger patches, padding='same', or smaller sigmas."
        _min_side(type(self).__name__, h, w, self.window_size, self.padding, hint=hint)

    def _per_image(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        g = torch.stack(
            [
                gaussian_window(self.window_size, s, dtype=x.dtype, device=x.device)
                for s in self.sigmas
            ]
        )
        luminance, cs = _luminance_cs(x, y, g, self.data_range, self.padding)
        m = len(self.sigmas)
        cs = cs.unflatten(1, (m, c))  # (N, M, C, H', W')
        ms_ssim = luminance[:, (m - 1) * c :] * cs.prod(dim=1)
        l1 = _filter((x - y).abs() / self.data_range, g[-1], self.padding)
        per_pixel = self.alpha * (1.0 - ms_ssim) + (1.0 - self.alpha) * l1
        return per_pixel.mean(dim=(1, 2, 3))

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha:g}, sigmas={self.sigmas}, padding={self.padding!r}, "
            f"{super().extra_repr()}"
        )
