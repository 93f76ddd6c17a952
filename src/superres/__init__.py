"""superres: single-image super-resolution, correct to the papers and fast on CPU."""

from __future__ import annotations

from superres.imaging import imresize
from superres.io import read_image, write_image
from superres.models import create_model, list_models

__version__ = "0.1.0.dev0"

__all__ = ["__version__", "create_model", "imresize", "list_models", "read_image", "write_image"]
