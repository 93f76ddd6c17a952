"""superres.inference: running models on images (device choice, upscaling files)."""

from superres.inference.device import resolve_device

__all__ = ["resolve_device"]
