"""Blockiness: how much of an image's edge energy sits on the 8x8 grid of a JPEG.

JPEG codes 8x8 blocks independently; at low quality each block's DC and low frequencies are
quantised on their own, so steps appear along the block boundaries. An SR network trained on
clean bicubic downscales treats those steps as edges and sharpens them. The measure here is the
one the real-photo issue asks for, defined so that it needs no reference:

    blockiness = mean(g^2 across the grid lines) / mean(g^2 everywhere else)

with ``g`` the differences of neighbouring BT.601 luma values (horizontal and vertical pooled):
the differences between column ``k * block - 1`` and ``k * block`` (and the same for rows) are
"across the grid", all others are not. An image with no block structure scores about 1; a
blocky JPEG more (a quality-10 JPEG of a photo about 2-4). For an output upscaled ``s`` times
from a JPEG, the grid of its input is every ``8 * s`` pixels: pass ``block=8 * s``.
"""

from __future__ import annotations

import torch

from superres.imaging.color import rgb_to_y

__all__ = ["blockiness"]


def blockiness(image: torch.Tensor, *, block: int = 8) -> float:
    """The blockiness of ``image`` on a grid of ``block`` pixels (see the module).

    Args:
        image: ``(3, H, W)`` or ``(1, 3, H, W)`` RGB, or ``(1, H, W)`` / ``(1, 1, H, W)`` gray,
            float in [0, 1].
        block: the grid period in pixels (8 for a JPEG; ``8 * scale`` for its upscaled output).

    Raises:
        ValueError: ``block`` below 2, an image without two blocks in each direction, another
            shape, or an image with no edges at all (flat).
    """
    if isinstance(block, bool) or not isinstance(block, int) or block < 2:
        raise ValueError(f"block must be an integer of at least 2 pixels, got {block!r}")
    x = image[0] if image.dim() == 4 else image
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) image, got shape {tuple(image.shape)}")
    y = (rgb_to_y(x) if x.shape[0] == 3 else x)[0].double()
    h, w = y.shape
    if h < 2 * block or w < 2 * block:
        raise ValueError(f"a {w}x{h} image holds fewer than 2x2 blocks of {block} pixels")
    dx = (y[:, 1:] - y[:, :-1]) ** 2  # dx[:, j]: between columns j and j + 1
    dy = (y[1:, :] - y[:-1, :]) ** 2
    on_x = torch.zeros(w - 1, dtype=torch.bool)
    on_x[block - 1 :: block] = True
    on_y = torch.zeros(h - 1, dtype=torch.bool)
    on_y[block - 1 :: block] = True
    across = torch.cat([dx[:, on_x].flatten(), dy[on_y, :].flatten()])
    within = torch.cat([dx[:, ~on_x].flatten(), dy[~on_y, :].flatten()])
    if float(within.mean()) == 0.0:
        raise ValueError("the image has no edges off the grid (flat): blockiness is undefined")
    return float(across.mean() / within.mean())
