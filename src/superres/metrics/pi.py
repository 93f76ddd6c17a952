"""PIRM 2018's Perceptual Index: ``PI = ((10 - Ma) + NIQE) / 2``; lower is better.

Blau, Mechrez, Timofte, Michaeli and Zelnik-Manor, "The 2018 PIRM challenge on perceptual image
super-resolution", ECCV Workshops 2018. It combines Ma et al.'s score
(:mod:`superres.metrics.nrqm`, higher is better, about 0-10) with NIQE
(:mod:`superres.metrics.niqe`, lower is better), both on the same shaved 8-bit Y image, as the
challenge's ``calc_scores.m`` does.
"""

from __future__ import annotations

import math
import os

import numpy as np

from superres.metrics.kinds import Image, Score, single_image
from superres.metrics.luma import as_output, checked_lumas
from superres.metrics.niqe import check_niqe_size, load_niqe_params, niqe
from superres.metrics.nrqm import check_ma_size, features_of_luma
from superres.metrics.nrqm_model import MaModel, load_ma_model

__all__ = ["perceptual_index"]


@single_image
def perceptual_index(
    image: Image,
    *,
    crop_border: int = 0,
    ma_model: str | os.PathLike[str] | MaModel | None = None,
    niqe_params: str | os.PathLike[str] | None = None,
) -> Score:
    """PIRM 2018's Perceptual Index ``((10 - Ma) + NIQE) / 2``; lower is better.

    Both metrics score the same 8-bit Y (or gray) image after the same ``crop_border`` shave, as
    PIRM's ``calc_scores.m`` does (it uses ``shave_width = 4`` for x4):
    :func:`ma_score` with the default ``imresize_border`` and :func:`superres.metrics.niqe`.

    Args:
        image: as for :func:`ma_score`.
        crop_border: pixels removed from every side (PIRM: the scale factor, 4).
        ma_model: Ma's trained model (see :func:`load_ma_model`); ``None``: the asset.
        niqe_params: NIQE's pristine-parameter file (see :func:`superres.metrics.niqe`).

    Returns:
        As :func:`ma_score`.

    Raises:
        InvalidImageError, ImageTooSmallError: bad inputs, or smaller than NIQE's 96x96 block or
            Ma's minimum after ``crop_border``.
        AssetNotFoundError, InvalidAssetError: a model file is not here, or invalid.
    """

    grays = checked_lumas(image, crop_border, "perceptual_index", check_ma_size, check_niqe_size)
    trained = load_ma_model(ma_model)
    load_niqe_params(niqe_params)  # fail before the features are computed
    values = []
    for gray in grays:
        features = features_of_luma(gray, "replicate")
        ma = math.nan if features is None else trained.predict(features)
        # The luma plane holds integers 0-255: NIQE takes a uint8 plane as it is.
        nq = niqe(gray.astype(np.uint8), params=niqe_params)
        values.append(((10.0 - ma) + nq) / 2.0)
    return as_output(values, image)
