"""superres.imaging: pure functions on images (resizing, colour conversion, quantisation,
back-projection, JPEG compression)."""

from superres.imaging.backprojection import backproject, reconstruction_error
from superres.imaging.color import rgb2ycbcr, rgb_to_y, ycbcr2rgb
from superres.imaging.jpeg import jpeg_quality_tables, jpeg_roundtrip
from superres.imaging.quantize import quantize, to_integer
from superres.imaging.resize import KERNELS, UnknownKernelError, imresize

__all__ = [
    "KERNELS",
    "UnknownKernelError",
    "backproject",
    "imresize",
    "jpeg_quality_tables",
    "jpeg_roundtrip",
    "quantize",
    "reconstruction_error",
    "rgb2ycbcr",
    "rgb_to_y",
    "to_integer",
    "ycbcr2rgb",
]
