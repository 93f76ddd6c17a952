"""Where a run runs: the device, the precision and the ``torchrun`` environment, decided once.

Every entry point (the Upscaler, the trainer, ``superres eval``, the rating study, the
benchmarks) asks these functions and nothing else; the library below them follows ``x.device``
and ``x.dtype``. The CPU's bfloat16 question has one answer, :func:`cpu_has_native_bf16`, which
both ``precision="auto"`` rules (running and training) and the machine description ask. How
the CPU allocator gets its memory is set here too (:func:`use_huge_pages`, called when
``superres`` is imported; :func:`retain_freed_memory`, called by the Upscaler and the trainer
when they run on the CPU).

This module imports nothing of ours but the error tree, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import functools
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from superres.errors import ConfigError, SuperresError

__all__ = [
    "CPU_FEATURES",
    "PRECISIONS",
    "RUN_PRECISIONS",
    "DeviceError",
    "DistributedEnv",
    "DistributedEnvError",
    "PrecisionError",
    "check_int8",
    "cpu_features",
    "cpu_has_native_bf16",
    "cpu_name",
    "describe_machine",
    "mkldnn_bf16_supported",
    "onednn_version",
    "precision_name",
    "resolve_device",
    "resolve_precision",
    "retain_freed_memory",
    "use_huge_pages",
]

# --- memory ---------------------------------------------------------------------------------------

#: PyTorch's CPU allocator puts every allocation of 2 MiB or more on transparent huge pages when
#: this environment variable is ``1`` (``madvise(MADV_HUGEPAGE)``, honoured where the kernel's
#: THP setting is ``madvise`` or ``always``). It reads it at its first large allocation.
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"


def use_huge_pages() -> None:
    """Ask PyTorch for transparent huge pages for large CPU tensors, unless the user set
    :data:`HUGE_PAGES_ENV` (``0`` keeps 4 KiB pages).

    An SR network allocates a fresh 16-256 MiB activation per layer, and on 4 KiB pages the kernel
    faults in and zeroes each page on first touch: allocating and filling a 256 MiB tensor takes
    104 ms on the 2-core AVX2 machine of BENCHMARKS.md, 15 ms on huge pages (8 ms to fill one
    already mapped; ``benchmarks/cpu_memory.py``). A 256x256 x4 upscale there is 12-19% faster
    (srresnet-x4, edsr-baseline-x4, rrdbnet-6b-x4). Nothing else changes: the same numbers, and
    at most 2 MiB more per large tensor. Called on ``import superres``, before any large tensor
    exists; after one, PyTorch keeps the setting it read.
    """
    os.environ.setdefault(HUGE_PAGES_ENV, "1")


#: ``0`` here leaves the C allocator as it is (:func:`retain_freed_memory`).
RETAIN_MEMORY_ENV = "SUPERRES_RETAIN_MEMORY"
#: glibc's own variables for the same two settings: where the user set either, theirs win.
_GLIBC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
#: ``mallopt`` parameters of glibc's ``malloc.h``.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
#: Freed memory kept at the top of the heap before glibc returns it (the largest C ``int``).
_TRIM_THRESHOLD = 2**31 - 1


@functools.cache
def retain_freed_memory() -> bool:
    """Let glibc keep the memory of freed CPU tensors for the next ones; ``True`` if set.

    glibc serves every allocation over 32 MiB with its own ``mmap`` and unmaps it on ``free``, so
    each layer of an SR network gets fresh pages from the kernel (a 64x1024x1024 float32
    activation is 256 MiB), and on a virtual machine a fresh page can cost the host a fault of
    its own: the same convolution took 155 ms or 407 ms from one call to the next, the pixel
    shuffle 14 ms or 317 ms (the AVX512-BF16 EPYC of BENCHMARKS.md). ``mallopt(M_MMAP_MAX, 0)``
    serves them from the heap instead and ``M_TRIM_THRESHOLD`` (2 GiB) keeps what is freed there
    mapped, as OpenVINO plans its buffers once: there a 256x256 edsr-baseline-x4 upscale is 1.14x
    faster, a tiled 1500x2000 one 1.40x, a training step 1.06x (BENCHMARKS.md, "Keeping freed
    memory"). The cost: the process keeps up to its peak of freed memory (plus 2 GiB at the top
    of the heap) instead of returning it, which is what a run that allocates the same shapes
    again wants (a small 1000x750 x4 upscale peaked at 1.24 GiB instead of 0.94). Only glibc
    (Linux); elsewhere, with :data:`RETAIN_MEMORY_ENV` ``=0``, or where the user set glibc's
    ``MALLOC_MMAP_MAX_`` or ``MALLOC_TRIM_THRESHOLD_``, nothing changes and this returns
    ``False``. Called once per process by the Upscaler and the trainer on the CPU; the outputs
    do not change.
    """
    if os.environ.get(RETAIN_MEMORY_ENV, "1") == "0" or any(k in os.environ for k in _GLIBC_ENV):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))


# --- the device -----------------------------------------------------------------------------------


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


# --- the CPU --------------------------------------------------------------------------------------

#: The CPU features that decide our fast paths, in the order :func:`describe_machine` lists them.
CPU_FEATURES: tuple[str, ...] = (
    "avx2",
    "avx512_f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_bf16",
    "amx_int8",
)


def mkldnn_bf16_supported() -> bool:
    """Whether this PyTorch's oneDNN runs bfloat16 convolutions on this CPU (natively or not)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16).

    Without it oneDNN emulates bfloat16 convolutions, several times slower than float32 (measured
    8x slower on an AVX2-only AMD EPYC), so bfloat16 is never the fast choice there.
    """
    try:
        caps: Mapping[str, Any] = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # a torch without the query: assume not
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16")) and mkldnn_bf16_supported()


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


# --- the precision --------------------------------------------------------------------------------


class PrecisionError(ConfigError):
    """The requested precision is unknown or not usable on the chosen device."""


#: Accepted ``precision`` values; ``auto`` is decided by :func:`resolve_precision`.
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")
#: What running a network (the Upscaler, ``superres upscale``) accepts: :data:`PRECISIONS` and
#: ``int8`` (OpenVINO on the CPU, :mod:`superres.inference.int8`; :func:`check_int8`).
RUN_PRECISIONS: tuple[str, ...] = (*PRECISIONS, "int8")

_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16"}


def resolve_precision(
    precision: str,
    device: torch.device,
    *,
    training: bool = False,
    bf16_verified: bool = False,
) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, or ``None`` for float32.

    ``auto`` on CUDA: for running a network float16 (tensor cores, half the activation memory;
    SR networks are trained in fp32 but run fine in fp16, as Real-ESRGAN does by default); for
    ``training`` bfloat16 on GPUs that have it (no loss scaling needed), float16 with a gradient
    scaler on the others. ``auto`` on the CPU: bfloat16 when the CPU computes it natively
    (:func:`cpu_has_native_bf16`) and either ``training`` (parameters, optimizer state and
    losses stay float32; about twice as fast, ``benchmarks/train_speed.py``) or the network's
    family was verified to lose at most 0.02 dB of Set5 PSNR-Y in bfloat16 (``bf16_verified``,
    :func:`superres.inference.fast.bf16_verified`); float32 otherwise, and on MPS.
    ``bf16``: bfloat16 on CUDA (if the GPU supports it) or CPU (on CPUs without native bfloat16
    it is emulated and several times slower than float32). ``fp16``: CUDA only (CPU
    half-precision convolutions are slow or missing). ``fp32``: float32.

    Raises:
        PrecisionError: unknown name, or a precision the device cannot run.
    """
    if precision == "int8":
        raise PrecisionError(
            "precision int8 is for upscaling on the CPU (superres upscale --precision int8); "
            f"use one of {', '.join(PRECISIONS)} here"
        )
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    kind = device.type
    if precision == "auto":
        if kind == "cuda":
            return torch.bfloat16 if training and torch.cuda.is_bf16_supported() else torch.float16
        native = kind == "cpu" and cpu_has_native_bf16()
        return torch.bfloat16 if native and (training or bf16_verified) else None
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


def check_int8(device: torch.device) -> None:
    """``precision="int8"`` runs on the CPU only (OpenVINO's CPU plugin); raise elsewhere."""
    if device.type != "cpu":
        raise PrecisionError(
            f"precision int8 runs on the CPU (OpenVINO), not {device}; use --device cpu, or "
            f"--precision auto on {device}"
        )


def precision_name(dtype: torch.dtype | None) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"``: the name of what :func:`resolve_precision` returned."""
    return "fp32" if dtype is None else _NAMES[dtype]


# --- torchrun -------------------------------------------------------------------------------------


class DistributedEnvError(SuperresError, ValueError):
    """``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the launcher are malformed."""


@dataclass(frozen=True, kw_only=True)
class DistributedEnv:
    """``torchrun``'s ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; the defaults are one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes."""
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistributedEnv | None:
        """The launcher's environment, or ``None`` outside ``torchrun`` (or with one process)."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise DistributedEnvError(f"bad torchrun environment: {exc}") from None
        if world <= 1:
            return None
        if not 0 <= rank < world:
            raise DistributedEnvError(f"bad torchrun environment: RANK={rank}, WORLD_SIZE={world}")
        return cls(rank=rank, world_size=world, local_rank=local)

    def device(self, requested: str) -> str:
        """``auto``/``cuda`` -> ``cuda:LOCAL_RANK`` when CUDA is there (``auto``: else CPU)."""
        if requested in ("auto", "cuda"):
            if torch.cuda.is_available():
                return f"cuda:{self.local_rank % torch.cuda.device_count()}"
            return "cpu" if requested == "auto" else requested
        return requested

    def init(self, device: torch.device, *, timeout: datetime.timedelta | None = None) -> None:
        """Join the process group: NCCL for CUDA devices, Gloo otherwise.

        ``timeout``: how long a collective waits for the slowest rank (``None``: PyTorch's).
        """
        import torch.distributed as dist

        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, timeout=timeout)
