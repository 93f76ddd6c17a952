"""Training-time transforms: aligned LR/HR crops, flips and 90-degree rotations, padding.

Pure functions on float tensors ``(C, H, W)`` (any leading dimensions work: only the last two
are touched). Randomness comes only from the ``torch.Generator`` passed in, so a transform is
reproducible from its generator's seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from superres.errors import ImageTooSmallError, InvalidImageError, UnsupportedScaleError

__all__ = ["augment", "pad_to_min_size", "paired_random_crop"]

PadMode = Literal["reflect", "replicate", "constant"]


def _randint(high: int, generator: torch.Generator) -> int:
    """A uniform integer in ``[0, high)`` drawn from ``generator``."""
    return int(torch.randint(high, (1,), generator=generator).item())


def paired_random_crop(
    lq: torch.Tensor,
    gt: torch.Tensor,
    *,
    gt_size: int,
    scale: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop the same random region from an LR image and its HR image.

    Args:
        lq: ``(..., h, w)`` low-resolution image.
        gt: ``(..., h * scale, w * scale)`` high-resolution image.
        gt_size: side of the square HR patch in pixels; a multiple of ``scale``.
        scale: integer upscaling factor between ``lq`` and ``gt``.
        generator: the source of the random top-left corner.

    Returns:
        ``(lq_patch, gt_patch)`` of sides ``gt_size // scale`` and ``gt_size``. The HR patch starts
        at exactly ``scale`` times the LR patch's corner, so the pair stays aligned. Views of the
        inputs (no copy).

    Raises:
        UnsupportedScaleError: ``scale`` is not a positive integer.
        InvalidImageError: ``gt_size`` is not a positive multiple of ``scale``, or ``gt`` is not
            ``scale`` times the size of ``lq``.
        ImageTooSmallError: the images are smaller than the patch (pad or skip them first).
    """
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise UnsupportedScaleError(f"scale must be a positive integer, got {scale!r}")
    if gt_size < 1 or gt_size % scale:
        raise InvalidImageError(
            f"gt_size must be a positive multiple of scale {scale}, got {gt_size}; use e.g. "
            f"{max(scale, gt_size - gt_size % scale)}"
        )
    h, w = int(lq.shape[-2]), int(lq.shape[-1])
    if tuple(gt.shape[-2:]) != (h * scale, w * scale):
        raise InvalidImageError(
            f"gt must be {scale}x the size of lq: lq is {h}x{w}, so gt should be "
            f"{h * scale}x{w * scale}, got {gt.shape[-2]}x{gt.shape[-1]}; mod-crop the HR image "
            "to a multiple of the scale before making its LR image"
        )
    lq_size = gt_size // scale
    if h < lq_size or w < lq_size:
        raise ImageTooSmallError(
            f"image too small for a {gt_size}-pixel patch at x{scale}: HR is "
            f"{h * scale}x{w * scale}, needs at least {gt_size}x{gt_size}; pad it "
            "(pad_to_min_size) or skip it, or use a smaller gt_size"
        )
    top = _randint(h - lq_size + 1, generator)
    left = _randint(w - lq_size + 1, generator)
    lq_patch = lq[..., top : top + lq_size, left : left + lq_size]
    gt_top, gt_left = top * scale, left * scale
    gt_patch = gt[..., gt_top : gt_top + gt_size, gt_left : gt_left + gt_size]
    return lq_patch, gt_patch


def augment(
    tensors: Sequence[torch.Tensor],
    *,
    hflip: bool,
    rot90: bool,
    generator: torch.Generator,
) -> list[torch.Tensor]:
    """Apply one random flip/rotation to every tensor (the 8 symmetries of the square).

    Three coin flips are drawn, always (so the generator advances the same way whatever the
    flags): a horizontal flip (used when ``hflip``), and a vertical flip and a transpose (both
    used when ``rot90``; together they give the rotations by 90, 180 and 270 degrees, as in
    BasicSR's ``augment``). The same choice is applied to all tensors, so an LR/HR pair stays
    aligned. Tensors must be ``(..., H, W)``; a transposed non-square tensor becomes
    ``(..., W, H)``.

    Returns:
        New tensors in the order given (contiguous copies when a transform applied).
    """
    draws = torch.rand(3, generator=generator)
    do_hflip = hflip and bool(draws[0] < 0.5)
    do_vflip = rot90 and bool(draws[1] < 0.5)
    do_transpose = rot90 and bool(draws[2] < 0.5)
    out = []
    for t in tensors:
        if do_hflip:
            t = t.flip(-1)
        if do_vflip:
            t = t.flip(-2)
        if do_transpose:
            t = t.transpose(-2, -1).contiguous()
        out.append(t)
    return out


def pad_to_min_size(image: torch.Tensor, size: int, *, mode: PadMode = "reflect") -> torch.Tensor:
    """Pad ``(..., H, W)`` at the bottom and right so both sides are at least ``size``.

    Args:
        image: a floating-point (or, for ``"constant"``, any) tensor ``(C, H, W)`` or
            ``(N, C, H, W)``.
        size: the minimum height and width.
        mode: ``"reflect"`` mirrors without repeating the border pixel (OpenCV's
            ``BORDER_REFLECT_101``, as BasicSR pads small training images); an image less than
            half the target size is reflected repeatedly. ``"replicate"`` repeats the border,
            ``"constant"`` pads with zeros.

    Returns:
        ``image`` unchanged (a view) when it is large enough, else a padded copy.

    Raises:
        InvalidImageError: a bad mode, a non-positive size, an empty image, or fewer than 3
            dimensions.
    """
    if mode not in ("reflect", "replicate", "constant"):
        raise InvalidImageError(
            f"pad mode must be 'reflect', 'replicate' or 'constant', got {mode!r}"
        )
    if size < 1:
        raise InvalidImageError(f"size must be positive, got {size}")
    if image.dim() < 3 or image.shape[-1] == 0 or image.shape[-2] == 0:
        raise InvalidImageError(
            f"pad_to_min_size needs a non-empty (C, H, W) or (N, C, H, W) tensor, got shape "
            f"{tuple(image.shape)}"
        )
    lead = image.shape[:-2]
    out = image.reshape(-1, *image.shape[-3:])  # F.pad's reflect/replicate want (N, C, H, W)
    while out.shape[-2] < size or out.shape[-1] < size:
        h, w = int(out.shape[-2]), int(out.shape[-1])
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        if mode == "constant":
            out = F.pad(out, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
        elif mode == "replicate" or min(h, w) == 1:  # nothing to mirror in a 1-pixel side
            out = F.pad(out, (0, pad_w, 0, pad_h), mode="replicate")
        else:
            # One reflection adds at most (side - 1) pixels; repeat for tiny images.
            out = F.pad(out, (0, min(pad_w, w - 1), 0, min(pad_h, h - 1)), mode="reflect")
    return out.reshape(*lead, *out.shape[-2:])
