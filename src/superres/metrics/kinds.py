"""The two shapes of our metrics, for type checkers: numpy images give a float, tensors a tensor.

Every metric of this package is written once for both kinds of input (``np.ndarray | Tensor``)
and wrapped by :func:`full_reference` (``(sr, gt, ...)``) or :func:`single_image` (``(image,
...)``). The wrapper returns the function itself; only its type changes, to a protocol whose
``__call__`` has the two overloads once, for every metric:

* two numpy arrays (or one) -> ``float``;
* two tensors (or one) -> ``torch.Tensor`` (one value per image);
* an array beside a tensor -> a type error (and an ``InvalidImageError`` at run time).

The metric's own keyword arguments are carried through exactly (a ``ParamSpec``), so
``psnr(a, b, crop_boder=4)`` is an error for pyright as it is for Python.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, cast, overload

import numpy as np
import torch

__all__ = [
    "FullReferenceMetric",
    "Image",
    "Score",
    "SingleImageMetric",
    "full_reference",
    "single_image",
]

P = ParamSpec("P")

#: What a metric scores: a numpy image (the file layout) or a tensor ``(N, C, H, W)``.
Image = np.ndarray | torch.Tensor
#: What it returns: a ``float`` for numpy, a tensor (one value per image) for a tensor.
Score = float | torch.Tensor


class FullReferenceMetric(Protocol[P]):
    """``metric(sr, gt, **options)``: two arrays -> ``float``, two tensors -> tensor."""

    __name__: str

    @overload
    def __call__(
        self, sr: np.ndarray, gt: np.ndarray, /, *args: P.args, **kwargs: P.kwargs
    ) -> float: ...
    @overload
    def __call__(
        self, sr: torch.Tensor, gt: torch.Tensor, /, *args: P.args, **kwargs: P.kwargs
    ) -> torch.Tensor: ...


class SingleImageMetric(Protocol[P]):
    """``metric(image, **options)``: an array -> ``float``, a tensor -> tensor."""

    __name__: str

    @overload
    def __call__(self, image: np.ndarray, /, *args: P.args, **kwargs: P.kwargs) -> float: ...
    @overload
    def __call__(
        self, image: torch.Tensor, /, *args: P.args, **kwargs: P.kwargs
    ) -> torch.Tensor: ...


def full_reference(fn: Callable[Concatenate[Image, Image, P], Score]) -> FullReferenceMetric[P]:
    """``fn`` itself, typed as the full-reference metric it is (see the module docstring)."""
    return cast("FullReferenceMetric[P]", fn)


def single_image(fn: Callable[Concatenate[Image, P], Score]) -> SingleImageMetric[P]:
    """``fn`` itself, typed as the no-reference metric it is (see the module docstring)."""
    return cast("SingleImageMetric[P]", fn)
