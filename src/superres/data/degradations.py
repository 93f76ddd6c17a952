"""Synthetic real-world degradations: HR images -> LR images that look like real photos.

Networks trained on clean bicubic LR fail on photos, which are blurred, resized, noisy and
JPEG-compressed, several times over. Two published models of that process, as pure functions
of (image batch, generator state) that run batched on the images' device:

* :func:`degrade`: Real-ESRGAN's second-order model (Wang et al., "Real-ESRGAN: Training
  Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021, Sec. 3): twice
  blur -> random resize -> Gaussian or Poisson noise -> JPEG, then the final sinc filter and
  the resize to the LR size in either order with the last JPEG; rounded to 8 bits.
* :func:`degrade_bsrgan`: BSRGAN's shuffled model (Zhang et al., "Designing a Practical
  Degradation Model for Deep Blind Image Super-Resolution", ICCV 2021, Sec. 3): two blurs, a
  downsampling, noise and JPEG in a random order, then a final JPEG.

Every random choice comes from the given :class:`torch.Generator`: it first draws two seeds
per image, one for a CPU generator that draws the image's parameters (kernels, factors,
modes, levels, qualities) and one for a generator on the image's device that draws its noise.
So each image of a batch has its own degradation (Real-ESRGAN shares the resize and the noise
kind across a batch and pools batches to hide it; here there is nothing to hide), image ``i``'s
result depends only on image ``i`` and the generator's state, and a batch is the same on any
device up to the noise fields (a device's generator draws its own stream).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import torch

from superres.data.degradation_kernels import (
    KERNEL_TYPES,
    KernelType,
    anisotropic_gaussian,
    random_mixed_kernels,
    random_sinc_kernels,
    shifted_gaussian,
    uniform,
)
from superres.data.degradation_ops import (
    RESIZE_MODES,
    ResizeMode,
    correlated_gaussian_noise,
    filter2d,
    gaussian_noise,
    poisson_noise,
    resize,
)
from superres.errors import ConfigError, InvalidImageError
from superres.imaging.jpeg import jpeg_roundtrip
from superres.imaging.quantize import quantize
from superres.imaging.resize import imresize

__all__ = [
    "DegradationConfig",
    "DegradationStage",
    "degrade",
    "degrade_bsrgan",
    "nest_stage_keys",
]

_MIXTURE = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)


def _check_option(name: str, value: object) -> None:
    """One option's own rule; the message names it, the value and what it should be."""
    if name.endswith("_prob") and not name.startswith(("resize", "kernel")):
        if not 0.0 <= float(value) <= 1.0:  # pyright: ignore[reportArgumentType]
            raise ConfigError(f"{name}: got {value}; a probability is between 0 and 1")
        return
    if name.startswith(("resize_prob", "kernel_prob")):
        probs = [float(p) for p in value]  # pyright: ignore[reportGeneralTypeIssues]
        if any(p < 0 for p in probs) or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
            raise ConfigError(f"{name}: got {probs}; probabilities must be 0 or more and sum to 1")
        return
    if not (isinstance(value, tuple) and len(value) == 2 and not isinstance(value[0], str)):
        return
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ConfigError(f"{name}: got {list(value)}; give [low, high] with low <= high")
    if name.startswith("kernel_size"):
        if int(low) % 2 == 0 or int(high) % 2 == 0 or low < 3:
            raise ConfigError(
                f"{name}: got {list(value)}; kernel sizes are odd, 3 or more, e.g. [7, 21]"
            )
    elif name.startswith("jpeg"):
        if low < 1 or high > 100:
            raise ConfigError(
                f"{name}: got {list(value)}; JPEG qualities are 1..100, e.g. [30, 95]"
            )
    elif name.startswith("resize_range"):
        if not 0 < low <= 1 <= high:
            raise ConfigError(
                f"{name}: got {list(value)}; need 0 < low <= 1 <= high (down-scales are "
                "drawn from [low, 1], up-scales from [1, high]), e.g. [0.15, 1.5]"
            )
    elif name.startswith(("blur_sigma", "betag", "betap")) and low <= 0:
        raise ConfigError(f"{name}: got {list(value)}; it must be above 0")
    elif low < 0:
        raise ConfigError(f"{name}: got {list(value)}; noise levels are 0 or more")


@dataclass(frozen=True)
class DegradationStage:
    """One blur -> resize -> noise -> JPEG stage of Real-ESRGAN's model; the defaults are its
    first stage's published values (``options/train_realesrgan_x4plus.yml``, the names its own).

    Ranges are ``(low, high)`` drawn uniformly; ``blur_prob`` is the probability of the blur
    (Real-ESRGAN's ``second_blur_prob`` for stage 2; 1, which draws nothing, for stage 1);
    ``resize_prob`` is the probability of (up, down, keep), ``resize_range`` the factors (up:
    U(1, high), down: U(low, 1)); noise sigmas are on the 0-255 scale; JPEG qualities are whole
    numbers drawn uniformly from ``jpeg_range`` (inclusive).
    """

    blur_prob: float = 1.0
    kernel_list: tuple[KernelType, ...] = KERNEL_TYPES
    kernel_prob: tuple[float, ...] = _MIXTURE
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[int, int] = (30, 95)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_option(f.name, getattr(self, f.name))
        if len(self.kernel_list) != len(self.kernel_prob) or not self.kernel_list:
            raise ConfigError(
                f"kernel_list {list(self.kernel_list)} and kernel_prob {list(self.kernel_prob)} "
                "must be non-empty and of the same length (one probability per kernel family)"
            )


#: Real-ESRGAN's published second stage: a weaker blur (only with probability 0.8), a resize
#: around the LR size, less noise.
_SECOND_STAGE = DegradationStage(
    blur_prob=0.8,
    blur_sigma=(0.2, 1.5),
    resize_prob=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
)


@dataclass(frozen=True)
class DegradationConfig:
    """Real-ESRGAN's degradation options, its published values as defaults: the two stages
    (:class:`DegradationStage`) and the options of the whole pipeline.

    ``kernel_size_range`` is both stages' and the final sinc filter's kernel sizes (odd);
    ``final_sinc_prob`` the probability of that filter. A stage built by hand starts from the
    first stage's defaults: change one value of the second with
    ``dataclasses.replace(DegradationConfig().second, noise_range=(1, 20))``. ``pipeline:
    bsrgan`` runs :func:`degrade_bsrgan` instead, whose parameters are BSRGAN's own and not read
    from here.
    """

    pipeline: Literal["realesrgan", "bsrgan"] = "realesrgan"
    kernel_size_range: tuple[int, int] = (7, 21)
    first: DegradationStage = DegradationStage()
    second: DegradationStage = _SECOND_STAGE
    final_sinc_prob: float = 0.8

    def __post_init__(self) -> None:
        _check_option("kernel_size_range", self.kernel_size_range)
        _check_option("final_sinc_prob", self.final_sinc_prob)


def nest_stage_keys(options: object) -> object:
    """A ``data.degradation`` mapping with the flat keys recipes had before the stages were
    nested (``noise_range``, ``noise_range2``, ``second_blur_prob``) moved into ``first:`` and
    ``second:``, so a checkpoint of then reads as it was trained; anything else as it is."""
    if not isinstance(options, Mapping) or "first" in options or "second" in options:
        return options
    stage = {f.name for f in fields(DegradationStage)} - {"blur_prob"}
    out: dict[str, Any] = {}
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    for key, value in options.items():
        if key == "second_blur_prob":
            second["blur_prob"] = value
        elif key in stage:
            first[key] = value
        elif isinstance(key, str) and key.endswith("2") and key[:-1] in stage:
            second[key[:-1]] = value
        else:
            out[key] = value
    return {**out, **({"first": first} if first else {}), **({"second": second} if second else {})}


# --- shared plumbing ----------------------------------------------------------------------------


def _check_input(hr: torch.Tensor, scale: int, where: str) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise InvalidImageError(f"{where}: scale must be a positive integer, got {scale!r}")
    if hr.ndim != 4 or hr.shape[1] != 3 or not hr.is_floating_point():
        raise InvalidImageError(
            f"{where} expects a float (N, 3, H, W) RGB batch in [0, 1]; got {hr.dtype} of shape "
            f"{tuple(hr.shape)}"
        )
    h, w = hr.shape[-2:]
    if h % scale or w % scale or h < scale:
        raise InvalidImageError(
            f"{where}: the HR size {h}x{w} is not a positive multiple of scale {scale}; crop "
            f"it to {h - h % scale}x{w - w % scale} first"
        )
    if hr.numel() and bool((hr.min() < 0) | (hr.max() > 1)):
        raise InvalidImageError(
            f"{where}: HR values must lie in [0, 1], got [{hr.min().item():.4g}, "
            f"{hr.max().item():.4g}]; clamp or rescale first"
        )


def _streams(
    hr: torch.Tensor, generator: torch.Generator
) -> list[tuple[torch.Generator, torch.Generator]]:
    """Per image: a CPU generator for its parameters and one on ``hr``'s device for its noise."""
    seeds = torch.randint(
        0, 2**62, (hr.shape[0], 2), generator=generator, device=generator.device
    ).tolist()
    return [
        (torch.Generator().manual_seed(a), torch.Generator(device=hr.device).manual_seed(b))
        for a, b in seeds
    ]


def _rand(g: torch.Generator) -> float:
    return float(uniform(1, 0.0, 1.0, g).item())


def _randint(g: torch.Generator, low: int, high: int) -> int:
    """Uniform integer in ``[low, high]`` (both included)."""
    return int(torch.randint(int(low), int(high) + 1, (1,), generator=g).item())


def _choice(g: torch.Generator, probs: tuple[float, ...]) -> int:
    p = torch.tensor(probs, dtype=torch.float64)
    return int(torch.multinomial(p, 1, generator=g).item())


def _jpeg(out: torch.Tensor, quality_range: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    return jpeg_roundtrip(out.clamp(0.0, 1.0), _randint(g, *quality_range))


def _random_resize(
    out: torch.Tensor, base: tuple[float, float], stage: DegradationStage, g: torch.Generator
) -> torch.Tensor:
    """Real-ESRGAN's random resize to ``base * f``: f ~ U(1, high) (up), U(low, 1) (down) or 1,
    with a random interpolation."""
    kind = _choice(g, stage.resize_prob)
    low, high = stage.resize_range
    f = (uniform(1, 1.0, high, g), uniform(1, low, 1.0, g), torch.ones(1))[kind]
    size = (int(base[0] * float(f)), int(base[1] * float(f)))
    return resize(out, size, RESIZE_MODES[_randint(g, 0, 2)])


def _add_noise(
    out: torch.Tensor, stage: DegradationStage, params: torch.Generator, noise: torch.Generator
) -> torch.Tensor:
    """Gaussian (probability ``gaussian_noise_prob``) or Poisson noise, gray with
    ``gray_noise_prob``."""
    gray = torch.tensor([_rand(params) < stage.gray_noise_prob])
    if _rand(params) < stage.gaussian_noise_prob:
        sigma = uniform(1, *stage.noise_range, params)
        field = gaussian_noise(out, sigma=sigma, gray=gray, generator=noise)
    else:
        scale = uniform(1, *stage.poisson_scale_range, params)
        field = poisson_noise(out, scale=scale, gray=gray, generator=noise)
    return (out + field).clamp(0.0, 1.0)


# --- Real-ESRGAN ---------------------------------------------------------------------------------


def _stage_kernel(
    stage: DegradationStage, size_range: tuple[int, int], params: torch.Generator
) -> torch.Tensor:
    """A stage's blur kernel, ``(1, k, k)`` with ``k`` the largest kernel size."""
    return random_mixed_kernels(
        1,
        generator=params,
        kernel_list=stage.kernel_list,
        kernel_prob=stage.kernel_prob,
        size_range=size_range,
        sigma_range=stage.blur_sigma,
        betag_range=stage.betag_range,
        betap_range=stage.betap_range,
        sinc_prob=stage.sinc_prob,
        pad_to=size_range[1],
    )


def _stage(
    out: torch.Tensor,
    stage: DegradationStage,
    kernel: torch.Tensor,
    base: tuple[float, float],
    params: torch.Generator,
    noise: torch.Generator,
) -> torch.Tensor:
    """A stage up to its JPEG: blur (with probability ``blur_prob``), resize around ``base``
    (height, width), noise."""
    if stage.blur_prob >= 1.0 or _rand(params) < stage.blur_prob:
        out = filter2d(out, kernel)
    out = _random_resize(out, base, stage, params)
    return _add_noise(out, stage, params, noise)


def _realesrgan_one(
    x: torch.Tensor,
    scale: int,
    c: DegradationConfig,
    params: torch.Generator,
    noise: torch.Generator,
) -> torch.Tensor:
    """One image ``(1, 3, H, W)`` through Real-ESRGAN's ``feed_data`` synthesis."""
    h, w = x.shape[-2:]
    sizes = c.kernel_size_range
    k1, k2 = _stage_kernel(c.first, sizes, params), _stage_kernel(c.second, sizes, params)
    sinc = random_sinc_kernels(
        1, generator=params, prob=c.final_sinc_prob, size_range=sizes, pad_to=sizes[1]
    )
    # Stage 1 around the HR size, with its JPEG; stage 2 around the LR size.
    out = _stage(x, c.first, k1, (h, w), params, noise)
    out = _jpeg(out, c.first.jpeg_range, params)
    out = _stage(out, c.second, k2, (h / scale, w / scale), params, noise)
    # The last JPEG before or after [resize to the LR size + sinc filter]; other orders make
    # "twisted lines" (Real-ESRGAN's note).
    jpeg_first = _rand(params) >= 0.5
    if jpeg_first:
        out = _jpeg(out, c.second.jpeg_range, params)
    out = filter2d(
        resize(out, (h // scale, w // scale), RESIZE_MODES[_randint(params, 0, 2)]), sinc
    )
    if not jpeg_first:
        out = _jpeg(out, c.second.jpeg_range, params)
    return quantize(out)


def degrade(
    hr: torch.Tensor,
    *,
    scale: int,
    config: DegradationConfig = DegradationConfig(),
    generator: torch.Generator,
) -> torch.Tensor:
    """Real-ESRGAN's second-order degradation of an HR batch (``config.pipeline == "bsrgan"``:
    :func:`degrade_bsrgan`).

    Args:
        hr: float ``(N, 3, H, W)`` RGB in [0, 1], ``H`` and ``W`` multiples of ``scale``
            (Real-ESRGAN degrades the USM-sharpened HR; sharpen before calling to match it).
        scale: the SR factor; the LR is ``(H / scale, W / scale)``.
        config: the options; defaults are Real-ESRGAN's.
        generator: the only source of randomness (any device); the same state gives the same
            LR.

    Returns:
        The LR batch ``(N, 3, H / scale, W / scale)``, same dtype and device, on the 8-bit grid
        ``k / 255`` (clamped and rounded, as Real-ESRGAN's ``lq``).

    Where this differs from Real-ESRGAN's code, on purpose: the resize factor and mode and the
    noise kind are drawn per image, not per batch; JPEG qualities are whole numbers and the
    JPEG is libjpeg's (8-bit input, integer DCT) rather than DiffJPEG's float approximation;
    resizes target a size (at least 1 pixel) rather than a factor; images too small for the
    blur's reflected border get replicated borders; the final rounding is half-up.
    """
    _check_input(hr, scale, "degrade")
    if config.pipeline == "bsrgan":
        return degrade_bsrgan(hr, scale=scale, generator=generator)
    if hr.shape[0] == 0:
        return hr.new_zeros(0, 3, hr.shape[2] // scale, hr.shape[3] // scale)
    streams = _streams(hr, generator)
    return torch.cat(
        [_realesrgan_one(hr[i : i + 1], scale, config, *streams[i]) for i in range(hr.shape[0])]
    )


# --- BSRGAN --------------------------------------------------------------------------------------


def _bsrgan_blur(out: torch.Tensor, sf: int, g: torch.Generator) -> torch.Tensor:
    """BSRGAN's ``add_blur``: an anisotropic Gaussian (variances U(0, 4 + sf) along a random
    direction) or an isotropic one (sigma U(0, 2 + 0.2 sf)), size 2 randint(2, 11) + 3."""
    size = 2 * _randint(g, 2, 11) + 3
    if _rand(g) < 0.5:
        l1, l2 = (4.0 + sf) * _rand(g), (4.0 + sf) * _rand(g)
        theta = math.pi * _rand(g)
        # Sigma below 0.1 px is a unit impulse on the pixel grid: clamped, not degenerate.
        sx, sy = max(math.sqrt(l1), 0.1), max(math.sqrt(l2), 0.1)
        kernel = anisotropic_gaussian(size, sigma_x=sx, sigma_y=sy, theta=theta)
    else:
        sigma = max((2.0 + 0.2 * sf) * _rand(g), 0.1)
        kernel = anisotropic_gaussian(size, sigma_x=sigma, sigma_y=sigma)
    return filter2d(out, kernel)


def _bsrgan_resize_mode(g: torch.Generator) -> ResizeMode:
    return ("bilinear", "bicubic", "area")[_randint(g, 0, 2)]  # cv2's LINEAR, CUBIC, AREA


def _bsrgan_noise(
    out: torch.Tensor, params: torch.Generator, noise: torch.Generator
) -> torch.Tensor:
    """BSRGAN's ``add_Gaussian_noise``: level randint(2, 25); colour (p 0.4), gray (p 0.4) or
    channel-correlated (p 0.2, :func:`correlated_gaussian_noise`, at level 25)."""
    level = float(_randint(params, 2, 25))
    r = _rand(params)
    if 0.4 <= r <= 0.6:
        field = correlated_gaussian_noise(out, sigma=25.0, generator=noise)
    else:
        gray = torch.tensor([r < 0.4])
        field = gaussian_noise(out, sigma=torch.tensor([level]), gray=gray, generator=noise)
    return (out + field).clamp(0.0, 1.0)


def _bsrgan_one(
    x: torch.Tensor, scale: int, params: torch.Generator, noise: torch.Generator
) -> torch.Tensor:
    """One image through BSRGAN's ``degradation_bsrgan`` (without its optional camera ISP)."""
    h, w = x.shape[-2:]
    out, sf = x, scale
    if scale == 4 and _rand(params) < 0.25:  # halve first, then treat it as x2
        if _rand(params) < 0.5:
            out = resize(out, (h // 2, w // 2), _bsrgan_resize_mode(params))
        else:
            out = imresize(out, output_shape=(h // 2, w // 2))  # MATLAB bicubic
        out, sf = out.clamp(0.0, 1.0), 2
    order = torch.randperm(7, generator=params).tolist()
    i2, i3 = order.index(2), order.index(3)
    if i2 > i3:  # the final downsampling stays after the random one
        order[i2], order[i3] = 3, 2
    for op in order:
        if op in (0, 1):
            out = _bsrgan_blur(out, sf, params)
        elif op == 2:
            if _rand(params) < 0.75:
                f = float(uniform(1, 1.0, 2.0 * sf, params))
                size = (int(out.shape[-2] / f), int(out.shape[-1] / f))
                out = resize(out, size, _bsrgan_resize_mode(params))
            else:  # blur with a shifted Gaussian, keep every sf-th pixel
                sigma = float(uniform(1, 0.1, 0.6 * sf, params))
                out = filter2d(out, shifted_gaussian(25, sigma=sigma, shift=(sf - 1) / 2))
                out = out[..., ::sf, ::sf]
            out = out.clamp(0.0, 1.0)
        elif op == 3:
            out = resize(out, (h // scale, w // scale), _bsrgan_resize_mode(params))
            out = out.clamp(0.0, 1.0)
        elif op == 4:
            out = _bsrgan_noise(out, params, noise)
        elif op == 5 and _rand(params) < 0.9:
            out = _jpeg(out, (30, 95), params)
        # op 6 is BSRGAN's camera-ISP noise, which needs its trained ISP model: not applied.
    return _jpeg(out, (30, 95), params)


def degrade_bsrgan(hr: torch.Tensor, *, scale: int, generator: torch.Generator) -> torch.Tensor:
    """BSRGAN's shuffled degradation of an HR batch, per image.

    For x4, with probability 1/4 the image is first halved (torch or MATLAB bicubic) and the
    rest runs as x2. Then, in a random order (the random downsampling kept before the final
    one): two blurs (:func:`_bsrgan_blur`), a random downsampling by U(1, 2 sf) or a shifted
    Gaussian blur plus subsampling, the downsampling to the LR size, Gaussian noise
    (:func:`_bsrgan_noise`), a JPEG (probability 0.9, quality randint(30, 95)); then a final
    JPEG. Resizes pick bilinear, bicubic or area; results are clamped to [0, 1].

    Args and returns as :func:`degrade`: ``(N, 3, H / scale, W / scale)`` on the 8-bit grid.
    """
    _check_input(hr, scale, "degrade_bsrgan")
    if hr.shape[0] == 0:
        return hr.new_zeros(0, 3, hr.shape[2] // scale, hr.shape[3] // scale)
    streams = _streams(hr, generator)
    return torch.cat([_bsrgan_one(hr[i : i + 1], scale, *streams[i]) for i in range(hr.shape[0])])
