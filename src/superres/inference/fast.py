"""Fast CPU inference: the same network rewritten for oneDNN; the model itself is left as it was.

Eager PyTorch runs SR networks on the CPU well below the convolution throughput of the hardware:
NCHW tensors, batch norm, activations and residual additions as separate passes over memory, and
large kernels with few outputs (SRResNet's 9x9 reconstruction to 3 channels, SRCNN's 5x5 to 1)
that vectorise poorly. :func:`fast_network` returns a new module that computes the same
function, rewritten by :func:`superres.inference.fusion.rewrite` (batch norm and scalings folded,
activations and residual additions fused into oneDNN convolutions, few-output large kernels split
into rows, channels_last, optionally bfloat16).

In float32 the result equals the original model's up to float rounding (max abs difference
~1e-6 on [0, 1] images; ``tests/test_speed_paths.py`` holds it below 1e-5). The original module
is not modified: its parameters, state dict, hooks and training behaviour stay as they were; the
rewritten copy is for inference (eval mode, no gradients). A model that ``torch.fx`` cannot trace
runs as it is, in channels_last (and bfloat16 autocast when asked).

Which models ``precision="auto"`` may run in bfloat16 on a CPU is recorded here
(:func:`bf16_verified`): those whose bfloat16 output was verified to cost at most
:data:`BF16_MAX_PSNR_COST` dB of PSNR-Y on Set5 (:data:`BF16_VERIFIED`), and then only on CPUs
with native bfloat16 arithmetic (:func:`superres.runtime.resolve_precision`).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn

from superres.errors import InvalidNetworkError
from superres.inference.fusion import (
    ROW_SPLIT_MAX_OUT,
    FusedConv2d,
    PixelShuffleNHWC,
    rewrite,
)
from superres.models.descriptor import describe_network

__all__ = [
    "BF16_MAX_PSNR_COST",
    "BF16_VERIFIED",
    "ROW_SPLIT_MAX_OUT",
    "FastNetwork",
    "FusedConv2d",
    "PixelShuffleNHWC",
    "bf16_verified",
    "fast_network",
]

logger = logging.getLogger(__name__)

#: The quality bound for ``precision="auto"`` choosing bfloat16: the PSNR-Y of the 8-bit output on
#: Set5 may move by at most this much (dB) from the float32 output's.
BF16_MAX_PSNR_COST = 0.02


@dataclass(frozen=True)
class Bf16Verification:
    """A model family whose bfloat16 output was measured against float32 on Set5.

    Attributes:
        architecture: registry name (``describe_network(model).architecture``).
        max_blocks: the deepest ``num_blocks`` verified (the shipped weights'); deeper networks
            accumulate more rounding and stay float32. ``None``: the architecture has no depth
            argument.
        weights: the shipped weights measured.
        psnr_y_changes: for each of ``weights``, the mean PSNR-Y on Set5 at its scale of
            :func:`fast_network` in bfloat16 minus that of the eager float32 model (dB; default
            protocol, 8-bit output), as ``benchmarks/speed.py --paths fast_bf16`` measured them
            on the 2-core AMD EPYC (Zen 3, bfloat16 emulated) development machine. The change
            depends on the CPU's bfloat16 kernels (AMX, AVX512-BF16 and emulation round
            differently: srgan-x4 -0.0083 dB here, -0.0095 on an AMD EPYC with AVX512-BF16), so
            the tests hold every entry to :data:`BF16_MAX_PSNR_COST` on the CPU they run on, not
            to these figures; BENCHMARKS.md records them per CPU.
    """

    architecture: str
    max_blocks: int | None
    weights: tuple[str, ...]
    psnr_y_changes: tuple[float, ...]


#: Families that run bfloat16 under ``precision="auto"`` on CPUs with native bfloat16, with their
#: measurement; ``tests/test_speed_paths.py::test_bf16_allowlist_costs_at_most_0_02_db_on_set5``
#: holds every entry to the bound on the CPU the tests run on.
BF16_VERIFIED: dict[str, Bf16Verification] = {
    v.architecture: v
    for v in (
        Bf16Verification(
            "srresnet", 16, ("srresnet-x4", "srgan-x4", "srresnet-x2"), (-0.0043, -0.0083, -0.0103)
        ),
        Bf16Verification("edsr-baseline", 16, ("edsr-baseline-x4",), (-0.0029,)),
        Bf16Verification("rrdbnet", 6, ("rrdbnet-6b-x4", "esrgan-6b-x4"), (-0.0046, -0.0152)),
        Bf16Verification("srcnn", None, ("srcnn-x4",), (-0.0039,)),
    )
}


def bf16_verified(model: nn.Module) -> bool:
    """Whether ``model`` belongs to a family in :data:`BF16_VERIFIED` (architecture and depth)."""
    try:
        described = describe_network(model)
    except InvalidNetworkError:  # not an SR network: nothing was verified
        return False
    entry = BF16_VERIFIED.get(described.architecture or "")
    if entry is None:
        return False
    if entry.max_blocks is None:
        return True
    blocks = (described.config or {}).get("num_blocks")
    return isinstance(blocks, int) and blocks <= entry.max_blocks


class FastNetwork(nn.Module):
    """The optimised twin of an SR network: float32 NCHW in, float32 NCHW out.

    Attributes:
        network: the rewritten graph (or the plain copy, when tracing failed).
        dtype: float32 or bfloat16: the dtype of its weights and activations.
        fused: convolutions rewritten into :class:`FusedConv2d` (0: the fallback path).
        scale, in_channels, size_multiple: copied from the source model.
    """

    def __init__(
        self, network: nn.Module, *, dtype: torch.dtype, fused: int, source: nn.Module
    ) -> None:
        super().__init__()
        self.network = network
        self.dtype = dtype
        self.fused = fused
        try:
            described = describe_network(source)
        except InvalidNetworkError:  # any module runs fast; without the contract: x1 RGB
            self.scale, self.in_channels, self.size_multiple = 1, 3, 1
        else:
            self.scale = described.scale
            self.in_channels = described.in_channels
            self.size_multiple = described.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(dtype=torch.float32).contiguous(memory_format=torch.channels_last)
        if self.fused:
            y = self.network(x.to(self.dtype))
        elif self.dtype != torch.float32:
            with torch.autocast(x.device.type, dtype=self.dtype):
                y = self.network(x)
        else:
            y = self.network(x)
        return y.to(torch.float32).contiguous()

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, fused={self.fused}"


def fast_network(model: nn.Module, *, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An inference-only copy of ``model`` rewritten for speed on the CPU (see the module doc).

    Args:
        model: an SR network (any ``nn.Module`` taking and returning ``(N, C, H, W)``); not
            modified. Its parameters may be float16/float32; the copy computes in ``dtype``.
        dtype: ``torch.float32`` (equal to the model's output to float rounding) or
            ``torch.bfloat16`` (about 3 significant digits per activation; see
            :data:`BF16_VERIFIED` for the measured quality cost).

    Returns:
        A :class:`FastNetwork` (float32 in, float32 out, on the model's device), or ``model``
        itself when it has no convolution (nothing to gain, e.g. bicubic).
    """
    if dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"fast_network computes in float32 or bfloat16, got {dtype}")
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return model
    source = copy.deepcopy(model).eval().float()
    for p in source.parameters():
        p.requires_grad_(False)
    try:
        network: nn.Module = rewrite(source, dtype)
        fused = sum(isinstance(m, FusedConv2d) for m in network.modules())
    except Exception as exc:  # any tracing failure: run it as it is
        logger.debug("fast path: %s cannot be traced (%s); running it as it is", type(model), exc)
        network, fused = source, 0
    if fused:
        network = network.to(dtype=dtype)
    network = network.to(memory_format=torch.channels_last)  # pyright: ignore[reportCallIssue]
    return FastNetwork(network, dtype=dtype, fused=fused, source=model).eval()
