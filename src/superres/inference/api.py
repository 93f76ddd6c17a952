"""``superres.upscale``: one call from a PIL image, numpy array or tensor to its upscaled twin."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from torch import nn

from superres.errors import InvalidImageError, SuperresError
from superres.inference.options import UpscaleOptions
from superres.inference.upscaler import Upscaler
from superres.io.arrays import image_from_numpy, image_from_pil, image_to_numpy, image_to_pil
from superres.io.image import ImageData
from superres.models.catalog import default_model
from superres.models.descriptor import describe_network
from superres.models.weights import load_model

__all__ = ["upscale"]

ImageT = TypeVar("ImageT", Image.Image, np.ndarray, torch.Tensor, ImageData)


def upscale(
    image: ImageT,
    *,
    model: str | nn.Module | None = None,
    weights: str | Path | None = None,
    scale: int | None = None,
    options: UpscaleOptions | None = None,
) -> ImageT:
    """Upscale an image held in memory; returns the same kind of object.

    Args:
        image: a PIL image (returned in the same mode family: ``L`` stays ``L``, ``I;16`` stays
            16-bit, ``RGBA`` keeps its alpha, ``P``/``CMYK`` become ``RGB``/``RGBA``); a numpy
            ``(H, W)``/``(H, W, C)`` array of uint8, uint16 or float in [0, 1] (returned with the
            same dtype and layout); a float tensor ``(C, H, W)``/``(N, C, H, W)`` in [0, 1] (same
            layout, dtype and device); or an :class:`~superres.io.ImageData`.
        model: a registered or pretrained model name (see ``superres models``) or a built
            ``nn.Module``; ``None``: the model ``weights`` describes, else the shipped default of
            ``superres upscale`` (``edsr-baseline-x4``; ``srresnet-x2`` at ``scale=2``; other
            scales run the x4 default, then resize exactly to ``scale``).
        weights: a weights file (it rebuilds its own model; ``model``, if a name, is checked
            against it).
        scale: the network's scale for a model name (default: the model's or the file's).
        options: how to run it (:class:`~superres.inference.options.UpscaleOptions`); with
            the shipped default at a scale no model ships, its ``outscale`` is set to ``scale``.

    Example::

        from PIL import Image
        import superres
        big = superres.upscale(Image.open("photo.png"))  # the shipped x4 default
        smooth = superres.upscale(Image.open("photo.png"), model="bicubic", scale=4)
        tiled = superres.upscale(image, options=superres.UpscaleOptions(tile=256))
    """
    options = UpscaleOptions() if options is None else options
    if isinstance(model, nn.Module):
        if weights is not None:
            raise SuperresError(
                "weights= needs a model name; load a state dict into your module yourself"
            )
        net_scale = describe_network(model).scale
        if scale is not None and scale != net_scale:
            raise SuperresError(
                f"scale={scale} was given, but the module upscales by {net_scale}; drop scale= "
                "or build the module for that scale"
            )
        net = model
    elif model is None or isinstance(model, str):
        if model is None and weights is None:  # what `superres upscale` runs without --model
            model, scale, outscale = default_model(scale, options.outscale)
            options = replace(options, outscale=outscale)
        net = load_model(model, weights=weights, scale=scale)
    else:
        raise SuperresError(
            f"model must be a registered name or an nn.Module, got {type(model).__name__}"
        )
    upscaler = Upscaler(net, options=options)
    if isinstance(image, Image.Image):
        return image_to_pil(upscaler(image_from_pil(image)), image.mode)
    if isinstance(image, np.ndarray):
        data, layout = image_from_numpy(image)
        return image_to_numpy(upscaler(data), layout)
    if isinstance(image, torch.Tensor | ImageData):
        return upscaler(image)
    raise InvalidImageError(
        f"upscale takes a PIL image, a numpy array, a torch tensor or an ImageData, got "
        f"{type(image).__name__}"
    )
