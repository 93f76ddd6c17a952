"""NIQE, the Natural Image Quality Evaluator: a no-reference ("completely blind") quality score.

Mittal, Soundararajan and Bovik, "Making a 'completely blind' image quality analyzer", IEEE Signal
Processing Letters 20(3), 2013. Lower is better (more like the pristine natural images the model
was fitted on). This module follows the authors' MATLAB release (``computequality.m``,
``computefeature.m``, ``estimateaggdparam.m``) step by step, in float64:

1. the gray image (0-255 scale) is cropped at the bottom/right to a multiple of the 96x96 block;
2. at each of two scales, MSCN coefficients ``(I - mu) / (sigma + 1)`` with ``mu`` and ``sigma``
   the local mean and standard deviation under the 7x7 Gaussian window of the parameter file
   (``fspecial('gaussian', 7, 7/6)``, normalised), filtered with edge replication
   (``imfilter(..., 'replicate')``), ``sigma = sqrt(|E[I^2] - mu^2|)``; both are summed from
   the neighbours minus the centre pixel, so a constant neighbourhood gives exactly 0 as in
   MATLAB, and a pixel equal to its weighted mean up to float64 rounding (``|I - mu| < 1e-9``)
   gets exactly 0 too (:func:`_local_moments`);
3. the MSCN map is cut into non-overlapping blocks (96x96 at scale 1, 48x48 at scale 2, MATLAB's
   ``blkproc(..., [blocksizerow/itr_scale blocksizecol/itr_scale])``); per block 18 features: an
   asymmetric generalised Gaussian (AGGD) fit of the coefficients -> ``alpha, (beta_l + beta_r)/2``
   (the release fits the AGGD here too, not a symmetric GGD), and for the products with the
   4 neighbours ``circshift``-ed by ``[0 1], [1 0], [1 1], [1 -1]`` (wrapping inside the block) an
   AGGD fit -> ``alpha, mean, beta_l, beta_r`` with ``mean = (beta_r - beta_l) G(2/a) / G(1/a)``.
   Each AGGD shape is the moment-matching lookup over ``gamma = 0.2:0.001:10`` (first minimum);
4. scale 2 is ``imresize(im, 0.5)`` of the (unrounded) gray image: MATLAB's antialiased bicubic,
   :func:`superres.imaging.resize.imresize`, with taps beyond the border mirrored as current
   MATLAB (and BasicSR's port) does: Set14 ``baboon`` 5.729574 against MATLAB R2021a's
   5.72957338 (BasicSR's docstring). ``resize_edge="replicate"`` repeats the edge pixel as the
   MATLAB of the NIQE release (2012) did (5.7191 there);
5. the 36 features of all blocks are fitted by a multivariate Gaussian (``nanmean``, and
   ``nancov``, i.e. the covariance of the blocks with no NaN feature, normalised by n - 1) and
   compared with the pristine model:
   ``sqrt((mu_p - mu)^T pinv((cov_p + cov) / 2) (mu_p - mu))``, ``pinv`` with MATLAB's tolerance.

``computequality.m`` also computes a block "sharpness" (mean of ``sigma``) but never uses it; only
the model fitting (``estimatemodelparam.m``) thresholds it, so nothing here does.

Colour convention (the SR field's: PIRM 2018's ``convert_shave_image.m`` and BasicSR's
``calculate_niqe(convert_to='y')``): an RGB image in [0, 1] is clamped, quantised to 8 bit
(``floor(255 x + 0.5)``), converted with MATLAB's ``rgb2ycbcr`` on ``uint8`` (BT.601 studio
swing, ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` for 8-bit R, G, B, rounded to an
integer in [16, 235]), and NIQE runs on that Y as a 0-255 double image. A gray image (one
channel) is scored as three equal channels, as every metric of this package scores gray images
(and as BasicSR does with a gray file read as colour); an ``(H, W)`` array is a luma plane
already and is scored as it is, as MATLAB's ``computequality`` and BasicSR's ``input_order='HW'``
do (:mod:`superres.metrics.luma`). ``crop_border`` pixels are removed from
every side after the conversion and before the block crop (PIRM's shave).

The pristine model (``mu_pris_param`` 1x36, ``cov_pris_param`` 36x36 and ``gaussian_window``
7x7, float64) is the MATLAB release's ``modelparameters.mat`` as converted by BasicSR: the asset
``niqe/pristine`` of :mod:`superres.assets` (see :func:`load_niqe_params`).
"""

from __future__ import annotations

import functools
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from superres.assets import asset_path
from superres.errors import ImageTooSmallError, InvalidAssetError
from superres.imaging.resize import EDGES, Edge, imresize
from superres.metrics.kinds import Image, Score, single_image
from superres.metrics.luma import as_output, checked_lumas
from superres.metrics.matlab import pinv

__all__ = [
    "NIQE_BLOCK_SIZE",
    "NiqeParams",
    "check_niqe_size",
    "load_niqe_params",
    "niqe",
]

#: Side of the (square) blocks at the first scale; the second scale uses half of it.
NIQE_BLOCK_SIZE = 96

_NUM_FEATURES = 36  # 18 per scale, two scales
_WINDOW_SIZE = 7

# The AGGD shape lookup of estimateaggdparam.m: gam = 0.2:0.001:10 (9801 values) and the
# generalised Gaussian ratio r(g) = G(2/g)^2 / (G(1/g) G(3/g)). The G(k/g) tables are kept so a
# fitted shape (always a table value) indexes them instead of calling the gamma function again.
_GAM = np.linspace(0.2, 10.0, 9801)
_G1 = np.array([math.gamma(1.0 / g) for g in _GAM])
_G2 = np.array([math.gamma(2.0 / g) for g in _GAM])
_G3 = np.array([math.gamma(3.0 / g) for g in _GAM])
_R_GAM = _G2**2 / (_G1 * _G3)
_LOOKUP_CHUNK = 512  # rows of the (blocks x 9801) lookup at once: ~40 MB of float64

# circshift offsets of computefeature.m (rows, columns): horizontal, vertical, two diagonals.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class NiqeParams:
    """The pristine multivariate Gaussian and the MSCN window, all float64.

    Attributes:
        mu: ``(36,)`` mean of the pristine block features.
        cov: ``(36, 36)`` their covariance.
        window: ``(7, 7)`` Gaussian window (sums to 1).
    """

    mu: np.ndarray
    cov: np.ndarray
    window: np.ndarray


_HINT = (
    "NIQE needs the pristine-model file of the asset niqe/pristine (`superres assets get "
    "niqe/pristine`), or pass a parameter file of your own as params=... (--niqe-params)"
)


def load_niqe_params(
    params: str | os.PathLike[str] | NiqeParams | None = None,
    *,
    data_root: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> NiqeParams:
    """Locate, check and read the NIQE pristine parameters.

    Args:
        params: a local ``.npz`` file with the keys ``mu_pris_param`` (1x36), ``cov_pris_param``
            (36x36) and ``gaussian_window`` (7x7), used as given (no hash check, so a re-fitted
            model can be used deliberately). ``None``: the asset ``niqe/pristine`` (BasicSR's
            conversion of the MATLAB release's ``modelparameters.mat``, sha256-checked), from
            the data root's ``niqe/`` or the download cache.
            Loaded :class:`NiqeParams` are returned as they are.
        data_root: the data root to look in (default ``SUPERRES_DATA``).
        download: download the asset when it is not here.

    Raises:
        AssetNotFoundError: the file is not here (the message says how to get it).
        InvalidAssetError: it lacks a key or has a wrong shape.
    """
    if isinstance(params, NiqeParams):
        return params
    path = asset_path("niqe/pristine", path=params, data_root=data_root, download=download)
    stat = path.stat()
    return _read_params(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_params(path: str, mtime_ns: int, size: int) -> NiqeParams:
    """Read and validate a parameter file (cached per path, modification time and size)."""
    del mtime_ns, size  # only part of the cache key, so an edited file is read again
    expected = {
        "mu_pris_param": (1, _NUM_FEATURES),
        "cov_pris_param": (_NUM_FEATURES, _NUM_FEATURES),
        "gaussian_window": (_WINDOW_SIZE, _WINDOW_SIZE),
    }
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in expected}
    except KeyError as exc:
        raise InvalidAssetError(
            f"{path!r} is not a NIQE parameter file: it lacks the key {exc}; expected the keys "
            f"{', '.join(expected)}. {_HINT}"
        ) from exc
    except (OSError, ValueError) as exc:
        raise InvalidAssetError(
            f"cannot read {path!r} as a NIQE parameter file (.npz): {exc}. {_HINT}"
        ) from exc
    for key, shape in expected.items():
        if arrays[key].size != math.prod(shape) or not np.isfinite(arrays[key]).all():
            raise InvalidAssetError(
                f"{path!r}: {key} has shape {arrays[key].shape} or non-finite values; expected "
                f"{shape} finite values. {_HINT}"
            )
    return NiqeParams(
        mu=arrays["mu_pris_param"].reshape(_NUM_FEATURES),
        cov=arrays["cov_pris_param"].reshape(_NUM_FEATURES, _NUM_FEATURES),
        window=arrays["gaussian_window"].reshape(_WINDOW_SIZE, _WINDOW_SIZE),
    )


# --- the algorithm on one gray image -------------------------------------------------------------


# |I - mu| below this (0-255 scale) is float64 summation noise (~1e-14), with 5 orders to spare.
_ROUNDING_ZERO = 1e-9


def _local_moments(image: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu - I, var)``: local mean minus the pixel, and local variance, under ``window`` (sums
    to 1) with edge pixels repeated, as MATLAB's ``imfilter(image, window, 'replicate')`` gives
    ``mu`` and ``E[I^2] - mu^2``.

    Both come from each pixel's neighbours minus the pixel itself, ``d = sum_k w_k (I_k - I)``
    and ``var = sum_k w_k (I_k - I)^2 - d^2``: the same quantities, but exactly 0 where the
    neighbourhood is constant. Summing ``w_k I_k`` instead
    leaves residues of ~1e-14 there, which the AGGD fit counts as positive or negative
    coefficients (4% on Set5 ``head``); MATLAB and BasicSR get exact zeros.
    """
    kh, kw = window.shape
    h, w = image.shape
    padded = np.pad(image, ((kh // 2, kh // 2), (kw // 2, kw // 2)), mode="edge")
    d = np.zeros_like(image)
    d2 = np.zeros_like(image)
    for i in range(kh):
        for j in range(kw):
            step = padded[i : i + h, j : j + w] - image
            d += window[i, j] * step
            d2 += window[i, j] * step * step
    # A "balanced" pixel (its neighbourhood not constant, but its weighted mean equal to it, e.g.
    # a row of 23s between rows of 25s and 21s) has d = 0 in exact arithmetic; the sums above
    # leave up to ~1e-14 there, of either sign depending on the order of summation, and the AGGD
    # fit would count it as a left or a right coefficient (0.05% of NIQE on Set5 ``bird``).
    # Anything this close to 0 on the 0-255 scale is rounding, so it is made the exact 0.
    d[np.abs(d) < _ROUNDING_ZERO] = 0.0
    return d, np.abs(d2 - d * d)


def _mscn(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients (Eq. 1 of the paper, C = 1)."""
    d, var = _local_moments(image, window)
    return -d / (np.sqrt(var) + 1.0)  # (I - mu) / (sigma + 1)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``estimateaggdparam.m`` for each row of ``x`` ``(n, m)``: shape index, beta_l, beta_r.

    Rows without negative (positive) values give a NaN beta_l (beta_r), and an all-zero row the
    first table shape (0.2) with NaN betas, exactly as MATLAB's ``mean([])`` and ``min`` do.
    """
    neg = x < 0
    pos = x > 0
    sq = x * x
    with np.errstate(divide="ignore", invalid="ignore"):
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gammahat = left_std / right_std
        rhat = np.abs(x).mean(axis=1) ** 2 / sq.mean(axis=1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    index = np.empty(len(x), dtype=np.intp)
    for start in range(0, len(x), _LOOKUP_CHUNK):
        part = rhatnorm[start : start + _LOOKUP_CHUNK, None]
        # np.argmin returns the first minimum, or the first NaN (MATLAB's min: index 1 when all
        # values are NaN, and a NaN rhatnorm makes the whole row NaN).
        index[start : start + _LOOKUP_CHUNK] = np.argmin((_R_GAM[None, :] - part) ** 2, axis=1)
    scale = np.sqrt(_G1[index] / _G3[index])
    return index, left_std * scale, right_std * scale


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """``computefeature.m`` for each block of ``blocks`` ``(n, s, s)``: features ``(n, 18)``."""
    n = blocks.shape[0]
    flat = blocks.reshape(n, -1)
    index, beta_l, beta_r = _aggd(flat)
    features = [_GAM[index], (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        shifted = np.roll(blocks, shift, axis=(1, 2))
        index, beta_l, beta_r = _aggd(flat * shifted.reshape(n, -1))
        mean = (beta_r - beta_l) * (_G2[index] / _G1[index])
        features += [_GAM[index], mean, beta_l, beta_r]
    return np.stack(features, axis=1)


def _niqe_gray(gray: np.ndarray, params: NiqeParams, resize_edge: Edge = "mirror") -> float:
    """``computequality.m`` on a float64 ``(H, W)`` gray image on the 0-255 scale."""
    size = NIQE_BLOCK_SIZE
    rows, cols = gray.shape[0] // size, gray.shape[1] // size
    image = gray[: rows * size, : cols * size]
    per_scale = []
    for itr_scale in (1, 2):
        mscn = _mscn(image, params.window)
        s = size // itr_scale
        # blkproc + reshape(feat, [18, n])': block (r, c) goes to row c * rows + r (column-major).
        blocks = mscn.reshape(rows, s, cols, s).transpose(2, 0, 1, 3).reshape(-1, s, s)
        per_scale.append(_block_features(blocks))
        if itr_scale == 1:
            image = imresize(image, scale=0.5, edge=resize_edge)
    features = np.concatenate(per_scale, axis=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: NaN, as nanmean
        mu = np.nanmean(features, axis=0)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) > 1:
        cov = np.cov(complete, rowvar=False)
    else:  # MATLAB's cov of a single observation is 0
        cov = np.zeros((_NUM_FEATURES, _NUM_FEATURES))
    diff = params.mu - mu
    if not np.isfinite(diff).all() or not np.isfinite(cov).all():
        return math.nan
    quality = diff @ pinv((params.cov + cov) / 2) @ diff
    return math.sqrt(max(float(quality), 0.0))


# --- inputs ---------------------------------------------------------------------------------------


def check_niqe_size(gray: np.ndarray, crop_border: int, name: str) -> None:
    """NIQE's size rule, a :data:`~superres.metrics.luma.SizeCheck`: one block on each side."""
    h, w = gray.shape
    if h < NIQE_BLOCK_SIZE or w < NIQE_BLOCK_SIZE:
        raise ImageTooSmallError(
            f"{name}: needs at least {NIQE_BLOCK_SIZE}x{NIQE_BLOCK_SIZE} pixels after "
            f"crop_border={crop_border}; got {h}x{w}. NIQE fits its statistics on "
            f"{NIQE_BLOCK_SIZE}x{NIQE_BLOCK_SIZE} blocks; score a larger image or use a smaller "
            "crop_border."
        )


@single_image
def niqe(
    image: Image,
    *,
    crop_border: int = 0,
    params: str | os.PathLike[str] | NiqeParams | None = None,
    resize_edge: Edge = "mirror",
) -> Score:
    """NIQE of an image (no reference needed); lower means more natural-looking.

    Args:
        image: a numpy RGB ``(H, W, 3)`` or gray ``(H, W, 1)`` image or luma plane ``(H, W)``,
            float in [0, 1] (clamped) or uint8; or a torch tensor ``(N, C, H, W)`` or
            ``(C, H, W)``, floating, RGB in [0, 1], ``C`` 3 or 1. RGB is scored on its BT.601
            Y channel, quantised to 8 bit as MATLAB's ``rgb2ycbcr`` on ``uint8`` (see the module
            docstring); one channel is a gray image, scored as three equal channels.
        crop_border: pixels removed from every side before scoring (the SR protocol: the scale).
        params: path of a pristine-parameter ``.npz``, or loaded :class:`NiqeParams`; ``None``
            uses the asset ``niqe/pristine`` (see :func:`load_niqe_params`).
        resize_edge: the border rule of the half-size image of scale 2: ``"mirror"`` (current
            MATLAB, and BasicSR's port: the default, within 0.1% of BasicSR on every
            Set5/Set14/BSD100 image) or ``"replicate"`` (the MATLAB of the 2012 release, which
            this module followed before: e.g. Set14 ``baboon`` 5.7191 instead of 5.7296).

    Returns:
        numpy input: a ``float``. Tensor input: a tensor of shape ``(N,)`` (0-d for ``(C, H, W)``)
        on the input's device, in its dtype (float32 for float16/bfloat16). The score is computed
        in float64 on the CPU, not differentiable. NaN when no block has any texture (a constant
        image), as in MATLAB.

    Raises:
        InvalidImageError: a wrong shape, dtype, channel count or NaN values.
        ImageTooSmallError: fewer than 96 pixels on a side after ``crop_border``.
        AssetNotFoundError, InvalidAssetError: the parameter file is not here or invalid.
    """
    if resize_edge not in EDGES:
        raise ValueError(
            f"niqe: resize_edge must be one of {', '.join(EDGES)}; got {resize_edge!r}"
        )
    lumas = checked_lumas(image, crop_border, "niqe", check_niqe_size)
    model = load_niqe_params(params)
    return as_output([_niqe_gray(luma, model, resize_edge) for luma in lumas], image)
