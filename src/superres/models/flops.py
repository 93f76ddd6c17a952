"""Multiply-accumulate counts of a network, from its layer shapes (no profiler, no timing).

Every ``nn.Conv2d`` costs ``C_in / groups * kh * kw`` MACs per output element and every
``nn.Linear`` ``in_features``; a forward pass on a zero image with hooks on those layers adds them
up. Parameter-free work (bicubic resizing, pixel shuffle, activations, additions) is not counted:
it is a few operations per pixel against thousands for the convolutions. One MAC is two FLOPs, so
achieved GFLOP/s = ``2 * MACs / seconds / 1e9``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_macs", "macs_per_output_megapixel"]


def count_macs(model: nn.Module, input_shape: tuple[int, int, int, int]) -> int:
    """MACs of one forward pass of ``model`` on a float32 input of ``input_shape`` ``(N, C, H, W)``.

    Runs the model once on zeros (under ``torch.no_grad``, on the model's device) with forward hooks
    on its convolutions and linear layers; the model's mode and weights are left as they were.
    """
    total = 0

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            total += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            total += output.numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


def macs_per_output_megapixel(
    model: nn.Module, scale: int, channels: int, *, size: int = 64
) -> float:
    """MACs per output megapixel of an SR network (``scale``, ``channels`` input planes).

    Counted on a ``size x size`` input; convolutional SR networks cost the same per pixel at any
    size (up to the borders, which "same" padding makes no cheaper).
    """
    macs = count_macs(model, (1, channels, size, size))
    return macs / ((size * scale) ** 2 / 1e6)
