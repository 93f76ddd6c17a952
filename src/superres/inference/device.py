"""Choosing the device once, at the edge (CLI, Upscaler, Trainer); library code follows x.device."""

from __future__ import annotations

import torch

from superres.errors import SuperresError


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
