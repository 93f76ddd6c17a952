"""Sample photographs for demos and tests, taken from scikit-image's wheel (no download).

``superres upscale sample:astronaut`` reads one of these instead of a file.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from superres.errors import UnknownNameError
from superres.io.image import ImageData


class UnknownSampleError(UnknownNameError):
    """The sample name is not one of :data:`SAMPLES`."""

    kind = "sample image"


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data  # imported lazily: it pulls in scipy, which the CLI rarely needs

        return np.asarray(getattr(skimage.data, name)())

    return load


#: name -> (loader returning uint8 HW or HWC, description)
SAMPLES: dict[str, tuple[Callable[[], np.ndarray], str]] = {
    "astronaut": (_skimage("astronaut"), "Eileen Collins, NASA portrait, 512x512 RGB"),
    "coffee": (_skimage("coffee"), "a cup of coffee, 600x400 RGB (Rachel Michetti)"),
    "chelsea": (_skimage("chelsea"), "Chelsea the cat, 451x300 RGB (Stefan van der Walt)"),
    "rocket": (_skimage("rocket"), "a rocket on the launch pad, 640x427 RGB (NASA/SpaceX)"),
    "camera": (_skimage("camera"), "the cameraman, 512x512 grayscale"),
}

#: prefix that marks a sample in CLI inputs: ``sample:astronaut``
SAMPLE_PREFIX = "sample:"


def list_samples() -> list[str]:
    """Names of the bundled sample images."""
    return list(SAMPLES)


def check_sample(name: str) -> None:
    """Raise :class:`UnknownSampleError` (with close matches) unless ``name`` is a sample."""
    if name not in SAMPLES:
        raise UnknownSampleError(name, SAMPLES)


def load_sample(name: str) -> ImageData:
    """A sample photograph as :class:`ImageData` (8-bit, RGB or grayscale, no alpha)."""
    check_sample(name)
    array = SAMPLES[name][0]()
    grayscale = array.ndim == 2
    if grayscale:
        array = np.repeat(array[..., None], 3, axis=2)
    rgb = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).to(torch.float32) / 255.0
    return ImageData(
        rgb=rgb,
        alpha=None,
        bit_depth=8,
        grayscale=grayscale,
        mode="L" if grayscale else "RGB",
        format=None,
    )
