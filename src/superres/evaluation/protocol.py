"""The evaluation protocol: one network, one LR image -> the scored SR image. Its one home.

``superres eval``, ``superres report``, ``superres mos create``, training validation and the
scripts all turn a network and an LR image into the image they score through
:func:`super_resolve`, and into PSNR/SSIM through :func:`evaluate_image`, so their numbers agree to
the last digit on the same weights and the same execution path (``prepare_network``).

``default`` (today's method tables)
    HR mod-cropped to the scale; LR = the official file or MATLAB bicubic of the RGB HR; the model
    runs on RGB in float32 (a luma model, SRCNN, on Y while Cb and Cr get bicubic); its output is
    clamped to [0, 1] and rounded half-up to 8 bit (:func:`superres.imaging.quantize.quantize`);
    PSNR and SSIM are computed on Y = 16 + 65.481 R + 128.553 G + 24.966 B in float (not
    rounded), on the 0-255 scale, with ``scale`` pixels cropped from every border; gray images are
    scored as three equal channels.

``legacy`` (the SRCNN-era MATLAB scripts behind the papers' bicubic rows)
    Y is computed from the 8-bit HR and rounded to 8 bit; gray images are scored on their raw
    values; the LR is ``imresize`` of that rounded Y in floating point (``single(Y)/255``, not
    rounded), bicubic (and any one-channel model) upscales it in floating point and only the
    result is rounded to 8 bit; an RGB model's 8-bit output is converted to rounded Y.

Bicubic under ``default`` is MATLAB ``imresize`` applied to the 8-bit LR image, rounded after each
1-D pass exactly as MATLAB does on ``uint8`` arrays, because that is how today's tables are made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from superres.data.datasets import BenchmarkImage
from superres.errors import SuperresError
from superres.imaging.color import rgb2ycbcr, rgb_to_y, ycbcr2rgb
from superres.imaging.quantize import quantize, to_integer
from superres.imaging.resize import imresize
from superres.inference.fast import fast_network
from superres.metrics.fidelity import psnr, ssim
from superres.models import Bicubic
from superres.models.descriptor import describe_network

__all__ = [
    "PROTOCOLS",
    "Protocol",
    "ScoredImage",
    "evaluate_image",
    "prepare_network",
    "score_output",
    "set_mean",
    "super_resolve",
]

Protocol = Literal["default", "legacy"]
PROTOCOLS: tuple[str, ...] = ("default", "legacy")


def _upscale(model: nn.Module, lq: torch.Tensor, scale: int, device: torch.device) -> torch.Tensor:
    """Run ``model`` on one ``(C, h, w)`` image; returns float32 ``(C, h*s, w*s)`` on the CPU."""
    if isinstance(model, Bicubic):
        # MATLAB imresize on the uint8 LR: rounded to 8 bit after each 1-D pass.
        return imresize(to_integer(lq), scale=float(scale)).to(torch.float32) / 255.0
    with torch.inference_mode():
        out = model(lq[None].to(device=device, dtype=torch.float32))
    out = out[0].float().cpu()
    expected = (lq.shape[-2] * scale, lq.shape[-1] * scale)
    if tuple(out.shape[-2:]) != expected:
        raise SuperresError(
            f"model output is {tuple(out.shape[-2:])}, expected {expected} for x{scale}"
        )
    return out


def prepare_network(model: nn.Module, device: torch.device, *, fused: bool) -> nn.Module:
    """``model`` on ``device`` in eval mode, as the evaluations run it: on the CPU with ``fused``,
    its :func:`~superres.inference.fast.fast_network` float32 twin (outputs equal within 1e-5)."""
    model = model.to(device).eval()
    return fast_network(model, dtype=torch.float32) if fused and device.type == "cpu" else model


def _takes_y(model: nn.Module) -> bool:
    return isinstance(model, Bicubic) or describe_network(model).in_channels == 1


def super_resolve(
    model: nn.Module, lq: torch.Tensor, scale: int, *, device: torch.device | None = None
) -> torch.Tensor:
    """The RGB output of ``model`` on one LR image as the default protocol scores it.

    ``lq`` is float ``(3, h, w)`` in [0, 1]. Bicubic is MATLAB ``imresize`` of the 8-bit LR; a
    luma model (SRCNN) upscales Y while Cb and Cr get bicubic; every output is rounded to 8 bit.
    Returns float64 ``(3, h * scale, w * scale)`` on the CPU, on the 8-bit grid in [0, 1].
    """
    device = device or torch.device("cpu")
    if _takes_y(model) and not isinstance(model, Bicubic):
        ycc = rgb2ycbcr(lq[None].to(torch.float32))
        y_sr = _upscale(model, ycc[0, :1], scale, device)
        cbcr = imresize(ycc[:, 1:], scale=float(scale))
        rgb = ycbcr2rgb(torch.cat([y_sr[None], cbcr], dim=1))[0].clamp(0, 1)
        return quantize(rgb).to(torch.float64)
    return quantize(_upscale(model, lq, scale, device)).to(torch.float64)


def set_mean(values: Sequence[float]) -> float:
    """The protocol's mean over a set's images (exactly rounded, :func:`math.fsum`)."""
    if not values:
        raise ValueError("set_mean of no images")
    return math.fsum(values) / len(values)


def score_output(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[float, float]:
    """PSNR-Y and SSIM-Y of an SR output under the default protocol.

    ``sr`` and ``hr`` are ``(3, H, W)`` in [0, 1]; ``sr`` is on the 8-bit grid (what
    :func:`super_resolve` returns, or an 8-bit file), ``hr`` the mod-cropped HR; ``scale`` pixels
    are cropped from every border. ``superres metrics SR HR --crop-border SCALE`` computes the same.
    """
    kwargs = {"crop_border": scale, "y_channel": True}
    a, b = sr[None].to(torch.float64), hr[None].to(torch.float64)
    return float(psnr(a, b, **kwargs)[0]), float(ssim(a, b, **kwargs)[0])


@dataclass(frozen=True)
class ScoredImage:
    """One image as the protocol scores it.

    Attributes:
        psnr_y, ssim_y: the scores (dB, unitless).
        sr: the output that was scored, float64 on the 8-bit grid in [0, 1]: ``(3, H, W)`` RGB,
            or ``(1, H, W)`` luma where ``legacy`` runs the model (or bicubic) on Y only.
    """

    psnr_y: float
    ssim_y: float
    sr: torch.Tensor


def evaluate_image(
    model: nn.Module,
    pair: BenchmarkImage,
    scale: int,
    *,
    protocol: Protocol = "default",
    device: torch.device | None = None,
) -> ScoredImage:
    """Run ``model`` on one benchmark pair under ``protocol``: the scores and the scored output."""
    device = device or torch.device("cpu")
    hr = pair.hr.to(torch.float64)
    if protocol == "default":
        sr = super_resolve(model, pair.lq, scale, device=device)
        return ScoredImage(*score_output(sr, hr, scale), sr=sr)
    if protocol != "legacy":
        raise ValueError(f"unknown protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    # Rounded Y of the HR; gray images keep their raw values.
    hr_y = hr[:1] if pair.grayscale else quantize(rgb_to_y(hr))
    if _takes_y(model):
        # The SRCNN evaluation script: resize single-precision Y down and up, round at the end.
        lq_y = imresize(hr_y.to(torch.float32), scale=1.0 / scale)
        if isinstance(model, Bicubic):
            sr_y = quantize(imresize(lq_y, scale=float(scale)))
        else:
            sr_y = quantize(_upscale(model, lq_y, scale, device))
        shown = sr_y.to(torch.float64)
    else:
        shown = quantize(_upscale(model, pair.lq, scale, device)).to(torch.float64)
        sr_y = (
            quantize(shown.mean(0, keepdim=True)) if pair.grayscale else quantize(rgb_to_y(shown))
        )
    sr_y = sr_y.to(torch.float64)
    return ScoredImage(
        float(psnr(sr_y[None], hr_y[None], crop_border=scale)[0]),
        float(ssim(sr_y[None], hr_y[None], crop_border=scale)[0]),
        sr=shown,
    )
