"""superres.imaging: pure functions on images (resizing, colour conversion, quantisation)."""

from superres.imaging.color import rgb2ycbcr, rgb_to_y, ycbcr2rgb
from superres.imaging.quantize import quantize, to_integer
from superres.imaging.resize import KERNELS, UnknownKernelError, imresize

__all__ = [
    "KERNELS",
    "UnknownKernelError",
    "imresize",
    "quantize",
    "rgb2ycbcr",
    "rgb_to_y",
    "to_integer",
    "ycbcr2rgb",
]
