"""Where a training run computes: process group, device, memory layout, DDP and compile.

The edge of a run, decided once by :class:`~superres.training.trainer.Trainer`: the ``torchrun``
environment (when there is one) and the device come from :mod:`superres.runtime`; the networks'
memory layout is asked for, kept from the resumed run, or measured here; each network is moved,
laid out, wrapped for DistributedDataParallel (SyncBatchNorm on GPUs) and optionally compiled.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time

import torch
import torch.distributed as dist
from torch import nn

from superres.errors import ConfigError
from superres.runtime import DistributedEnv, resolve_device

logger = logging.getLogger(__name__)

#: ``memory_format`` choices of :class:`~superres.training.config.RunOptions`.
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def start_process_group(requested: str) -> tuple[DistributedEnv, torch.device]:
    """The process group (joined under ``torchrun``; one process otherwise) and this rank's
    device for the ``--device`` value ``requested``."""
    env = DistributedEnv.from_env()
    device = resolve_device(env.device(requested) if env else requested)
    if env is not None:
        env.init(device)
    if device.type == "cuda":
        # Fixed patch sizes: let cuDNN pick the fastest kernels once.
        torch.backends.cudnn.benchmark = True
    return env or DistributedEnv(), device


def grad_scaler(device: torch.device, amp_dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """The loss scaler: on for float16 autocast on CUDA (bfloat16 and float32 need none)."""
    enabled = amp_dtype == torch.float16 and device.type == "cuda"
    return torch.amp.GradScaler(device.type, enabled=enabled)


def collective_device(device: torch.device) -> torch.device:
    """Where tensors for a collective live: the GPU under NCCL, the CPU under gloo."""
    return device if device.type == "cuda" else torch.device("cpu")


def fastest_memory_format(
    model: nn.Module,
    *,
    input_shape: tuple[int, int, int, int],
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> tuple[str, dict[str, float]]:
    """The layout a training step of ``model`` runs fastest in here, and what each one took.

    CUDA: channels_last (tensor cores want NHWC). Other GPUs: contiguous. On a CPU neither wins
    everywhere (oneDNN's NHWC kernels make SRResNet's step 1.6x faster but EDSR-baseline's with
    192-px patches 1.2x slower, ``benchmarks/train_speed.py``), so one forward and backward of a
    copy of ``model`` on random data of ``input_shape`` is timed in each (the better of two,
    taken in turn after a warm-up of both): the model, its statistics and every random stream
    are left untouched.
    """
    if device.type != "cpu":
        return ("channels_last" if device.type == "cuda" else "contiguous"), {}
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(input_shape, generator=generator)
    probes: dict[str, tuple[nn.Module, torch.Tensor]] = {}
    for name, fmt in MEMORY_FORMATS.items():
        probe = copy.deepcopy(model).train().to(memory_format=fmt)  # pyright: ignore[reportCallIssue]
        probes[name] = (probe, x.contiguous(memory_format=fmt))

    def step(name: str) -> float:
        probe, xin = probes[name]
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            if amp_dtype is not None:
                stack.enter_context(torch.autocast("cpu", dtype=amp_dtype))
            out = probe(xin)
        out.float().mean().backward()
        return time.perf_counter() - start

    # A warm-up of each (oneDNN builds its kernels), then the layouts in turn, the best of two
    # each: timing one layout after the other favoured the second, which found the process warm
    # (SRResNet bf16: channels_last 0.42 s measured first, 0.28 s measured again).
    for name in probes:
        step(name)
    seconds: dict[str, float] = dict.fromkeys(probes, math.inf)
    for _ in range(2):
        for name in probes:
            seconds[name] = min(seconds[name], step(name))
    return min(seconds, key=lambda k: seconds[k]), seconds


def choose_memory_format(
    asked: str,
    *,
    stored: object,
    model: nn.Module,
    input_shape: tuple[int, int, int, int],
    device: torch.device,
    amp_dtype: torch.dtype | None,
    env: DistributedEnv,
) -> str:
    """The networks' layout: ``asked``, the resumed run's ``stored`` one (so it continues with
    the same kernels), or the fastest measured here (rank 0 decides for every rank)."""
    if asked != "auto":
        if asked not in MEMORY_FORMATS:
            raise ConfigError(
                f"unknown memory format {asked!r}; use auto, {', '.join(MEMORY_FORMATS)}"
            )
        return asked
    if isinstance(stored, str) and stored in MEMORY_FORMATS:
        return stored
    choice, seconds = fastest_memory_format(
        model, input_shape=input_shape, device=device, amp_dtype=amp_dtype
    )
    if env.world_size > 1:
        names = list(MEMORY_FORMATS)
        flag = torch.tensor([names.index(choice)], device=collective_device(device))
        dist.broadcast(flag, src=0)
        choice = names[int(flag.item())]
    if seconds and env.is_main:
        timed = ", ".join(f"{k} {v:.3f} s" for k, v in seconds.items())
        logger.info("memory format %s (one training step: %s)", choice, timed)
    return choice


def place_network(
    model: nn.Module,
    *,
    device: torch.device,
    memory_format: str,
    env: DistributedEnv,
    compile: bool,
) -> nn.Module:
    """``model`` on ``device`` in ``memory_format``, in training mode, wrapped for DDP when
    there are several processes and compiled when asked."""
    model = model.to(device).train()
    model = model.to(memory_format=MEMORY_FORMATS[memory_format])  # pyright: ignore[reportCallIssue]
    if env.world_size > 1:
        has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if has_bn and device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        elif has_bn and env.is_main:
            logger.warning(
                "%s has batch norm: on CPU each process normalises its own share of the batch "
                "(torch has no CPU SyncBatchNorm)",
                type(model).__name__,
            )
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if compile:
        # Around DDP, as PyTorch recommends; unwrap_model() still reaches the bare network
        # for saving, EMA and validation.
        model = torch.compile(model)  # pyright: ignore[reportAssignmentType]
    return model


__all__ = [
    "MEMORY_FORMATS",
    "choose_memory_format",
    "collective_device",
    "fastest_memory_format",
    "grad_scaler",
    "place_network",
    "start_process_group",
]
