"""superres: single-image super-resolution, correct to the papers and fast on CPU."""

from __future__ import annotations

from superres.imaging import imresize
from superres.inference import Upscaler, load_model, upscale
from superres.io import read_image, write_image
from superres.models import create_model, list_models, load_weights, save_weights

__version__ = "0.1.0.dev0"

__all__ = [
    "Upscaler",
    "__version__",
    "create_model",
    "imresize",
    "list_models",
    "load_model",
    "load_weights",
    "read_image",
    "save_weights",
    "upscale",
    "write_image",
]
