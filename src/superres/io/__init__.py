"""Image files and in-memory images: float32 RGB ``(C, H, W)`` tensors in [0, 1] in, files out."""

from superres.io.image import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ImageData,
    quantize_image,
    read_image,
    to_uint8,
    write_array,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "ImageData",
    "quantize_image",
    "read_image",
    "to_uint8",
    "write_array",
    "write_image",
]
