"""Choosing the device once, at the edge (CLI, Upscaler, Trainer); library code follows x.device."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.errors import SuperresError

#: The CPU features that decide our fast paths, in the order :func:`describe_machine` lists them.
CPU_FEATURES: tuple[str, ...] = (
    "avx2",
    "avx512_f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_bf16",
    "amx_int8",
)


class DeviceError(SuperresError, ValueError):
    """The requested device does not exist or is not available on this machine."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> CUDA if available, else Apple MPS, else CPU; other names are checked.

    Raises:
        DeviceError: unknown device string, or a CUDA/MPS device this machine does not have.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {name!r} requested but CUDA is not available; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} requested but MPS is not available; use --device cpu")
    return device


class PrecisionError(SuperresError, ValueError):
    """The requested precision is unknown or not usable on the chosen device."""


#: Accepted ``precision`` values: ``auto`` is fp16 on CUDA, the fastest invisible choice on CPU.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")


def resolve_precision(
    precision: str, device: torch.device, *, model: nn.Module | None = None
) -> torch.dtype | None:
    """The reduced-precision dtype for ``precision`` on ``device``, or ``None`` for float32.

    ``auto``: float16 autocast on CUDA (tensor cores, half the activation memory; SR networks are
    trained in fp32 but run fine in fp16, as Real-ESRGAN does by default); float32 on MPS; on the
    CPU, bfloat16 when the CPU computes it natively (AVX512-BF16/AMX) and ``model`` belongs to a
    family whose bfloat16 output was verified to move Set5 PSNR-Y by at most 0.02 dB
    (:func:`superres.inference.fast.auto_cpu_dtype`), float32 otherwise (and without ``model``).
    ``bf16``: bfloat16 on CUDA (if the GPU supports it) or CPU (on CPUs without native bfloat16
    it is emulated and several times slower than float32). ``fp16``: CUDA only (CPU
    half-precision convolutions are slow or missing). ``fp32``: float32 (on the CPU the
    Upscaler's exact fast path, equal to the eager model to 1e-5).

    Raises:
        PrecisionError: unknown name, or a precision the device cannot run.
    """
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    kind = device.type
    if precision == "auto":
        if kind == "cuda":
            return torch.float16
        if kind == "cpu" and model is not None:
            from superres.inference.fast import auto_cpu_dtype

            dtype = auto_cpu_dtype(model)
            return None if dtype == torch.float32 else dtype
        return None
    if precision == "fp32":
        return None
    if precision == "fp16":
        if kind != "cuda":
            raise PrecisionError(
                f"precision fp16 needs a CUDA device, got {device}; use fp32 (or bf16 on CPU)"
            )
        return torch.float16
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise PrecisionError(f"{device} does not support bfloat16; use fp16 or fp32")
    if kind not in ("cuda", "cpu"):
        raise PrecisionError(f"precision bf16 is not supported on {device}; use fp32")
    return torch.bfloat16


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``'s ``model name`` on Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_features() -> tuple[str, ...]:
    """Which of :data:`CPU_FEATURES` this CPU has, as PyTorch's CPU query reports them."""
    caps: Mapping[str, Any] = {}
    with contextlib.suppress(AttributeError, RuntimeError):
        caps = torch.cpu.get_capabilities()
    return tuple(name for name in CPU_FEATURES if caps.get(name))


def onednn_version() -> str | None:
    """The oneDNN (MKL-DNN) version this PyTorch was built with, or ``None`` without it."""
    if not torch.backends.mkldnn.is_available():
        return None
    found = re.search(r"(?:MKL-DNN|oneDNN) v([0-9][0-9.]*)", torch.__config__.show())
    return found.group(1) if found else "unknown version"


def describe_machine() -> str:
    """One line saying what a run ran on: CPU, its bf16/AMX features, memory, PyTorch, oneDNN,
    threads, and whether bfloat16 is native here (which decides ``precision="auto"``).

    Benchmarks print it beside their tables and the test suite in its header, so a number or a
    failure says which kind of CPU produced it.
    """
    from superres.inference.fast import cpu_has_native_bf16

    memory = ""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    onednn = onednn_version()
    return (
        f"{cpu_name()}, {os.cpu_count()} logical cores "
        f"({', '.join(cpu_features()) or 'no AVX2'}){memory}; PyTorch {torch.__version__}, "
        f"oneDNN {onednn or 'absent'}, {torch.get_num_threads()} threads, bf16 "
        f"{'native' if cpu_has_native_bf16() else 'emulated'}"
    )
