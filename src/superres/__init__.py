"""superres: single-image super-resolution, correct to the papers and fast on CPU."""

from __future__ import annotations

from superres._version import __version__
from superres.imaging import imresize
from superres.inference import UpscaleOptions, Upscaler, upscale
from superres.io import read_image, write_image
from superres.models import create_model, list_models, load_weights, save_weights
from superres.models.catalog import list_pretrained
from superres.models.weights import load_model
from superres.runtime import use_huge_pages

use_huge_pages()

__all__ = [
    "UpscaleOptions",
    "Upscaler",
    "__version__",
    "create_model",
    "imresize",
    "list_models",
    "list_pretrained",
    "load_model",
    "load_weights",
    "read_image",
    "save_weights",
    "upscale",
    "write_image",
]
