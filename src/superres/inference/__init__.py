"""superres.inference: running models on images (device and precision, tiling, upscaling files)."""

from superres.inference.api import upscale
from superres.inference.options import DEFAULT_OVERLAP, UpscaleOptions
from superres.inference.tiling import plan_tiles, run_tiled
from superres.inference.upscaler import TileMemoryError, Upscaler
from superres.models.weights import load_model
from superres.runtime import PRECISIONS, resolve_device, resolve_precision

__all__ = [
    "DEFAULT_OVERLAP",
    "PRECISIONS",
    "TileMemoryError",
    "UpscaleOptions",
    "Upscaler",
    "load_model",
    "plan_tiles",
    "resolve_device",
    "resolve_precision",
    "run_tiled",
    "upscale",
]
