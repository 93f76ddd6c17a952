"""Ma et al.'s no-reference SR quality metric ("Ma", NRQM) and the PIRM 2018 Perceptual Index.

Chao Ma, Chih-Yuan Yang, Xiaokang Yang and Ming-Hsuan Yang, "Learning a no-reference quality
metric for single-image super-resolution", Computer Vision and Image Understanding 158 (2017)
1-16. The score predicts the mean opinion (0-10) of an SR image; higher is better. The Perceptual
Index of the PIRM 2018 challenge (Blau, Mechrez, Timofte, Michaeli and Zelnik-Manor, "The 2018
PIRM challenge on perceptual image super-resolution", ECCV Workshops 2018) combines it with NIQE:
``PI = ((10 - Ma) + NIQE) / 2``; lower is better.

Every step follows the authors' MATLAB release (github.com/chaoma99/sr-metric:
``quality_predict.m``, ``feature_all.m``, ``block_dct.m``, ``global_gsm.m``,
``norm_sender_normalized.m`` and the helpers it takes from BLIINDS-II, DIIVINE and the MS-SSIM
release; ``buildSFpyr`` and ``pointOp`` of matlabPyrTools; ``regRF_predict`` of
randomforest-matlab), in float64:

0. **input**: the 8-bit gray (Y) image ``I`` on 0-255 (see "Colour convention").
1. **spatial pyramid** (``feature_all.m``): ``I1 = I / 255`` (``im2double``); ``I2`` keeps rows and
   columns 2, 4, ... (1-based) of ``I1`` correlated with ``fspecial('gaussian', 3)`` (sigma 0.5)
   under zero padding (``imfilter``'s default); ``I3`` is made from ``I2`` the same way.
2. **local frequency features** f1 (``block_dct.m``), 6 per scale, 18 in all:
   ``blkproc(im, [3 3], [2 2], fun)`` cuts each scale into 3x3 blocks with a 2-pixel border, i.e.
   7x7 windows on a stride of 3 starting 2 pixels before the image, zero outside it (and below /
   right of the last full block). Per window, of the orthonormal 2-D DCT (``dct2``):

   * the generalised-Gaussian shape of the 48 AC coefficients (BLIINDS-II ``gama_gen_gauss`` in
     the form Ma's code uses: ``rho = var / (mean(|x - mean|)^2 + 1e-7)`` with the unbiased
     ``var``, and the ``g`` of ``0.03:0.001:10`` whose ``r(g) = G(1/g) G(3/g) / G(2/g)^2`` is
     nearest to ``rho``, the first one on ties, as MATLAB's ``min``);
   * the coefficient of variation ``std(|AC|) / (mean(|AC|) + 1e-7)``;
   * the orientation statistic: the (unbiased) variance of ``std(|c|) / (mean(|c|) + 1e-8)`` over
     three 16-coefficient regions of the 7x7 DCT (horizontal, diagonal, vertical frequencies:
     BLIINDS-II ``oriented1/2/3_dct_rho_config3`` in their 7x7 configuration).

   Pooling: the mean of the ``ceil(0.1 n)`` smallest shapes and the mean of all; for the other two
   statistics the mean from sorted (1-based) index ``fix(0.9 n)`` to the end and the mean of all.
3. **global frequency features** f2 (``global_gsm.m``), 45: the frequency-domain steerable pyramid
   ``buildSFpyr(double(I), 2, 5)`` of the 0-255 image (2 scales x 6 orientations, raised-cosine
   radial masks in log2 frequency and ``cos^5`` angular masks, both looked up with ``pointOp``'s
   linear interpolation and extrapolation; bands are the real part of the inverse FFT). Each
   oriented band is divisively normalised (``norm_sender_normalized.m``, DIIVINE's GSM model):
   the 3x3 neighbourhood, the parent band (``imresize(parent, 2)``, bicubic) and the 5 other
   orientations of the scale form the vectors ``Y``; ``C = Y'Y / n`` with negative eigenvalues
   clipped (trace kept); the centre coefficient minus its mean is divided by
   ``sqrt(y' pinv(C) y / N)`` with ``N = 9 (+1 with a parent)``; a guard band of 16 (scale 1) or
   8 (scale 2) pixels is removed and the mean subtracted. As in the release, the test
   ``nband < Nband - Nor`` gives a parent to orientations 1-5 of the finer scale only (not to
   orientation 6, nor to the coarser scale). Features: the 12 band shapes, the 6 shapes of each
   orientation's two scales pooled, 12 structure terms ``cs`` of ``ssim_index_new`` (11x11
   Gaussian window, sigma 1.5, ``C2 = (0.03 * 255)^2``, 'valid' filtering, mean of
   ``(2 s12 + C2) / (s1^2 + s2^2 + C2)``) between each raw band, bicubically resized to the size of
   the high-pass residual (``imresize(band, size(hp))``), and that residual, and 15 ``cs`` between
   the normalised finer-scale bands of each pair of orientations.
4. **spatial discontinuity features** f3 (``feature_all.m``), 75: the 25 singular values of the
   matrix of non-overlapping 5x5 patches (``im2col(im, [5 5], 'distinct')``, zero padded) of
   ``I1``, ``I2`` and ``I3``.
5. **regression** (``quality_predict.m``): one regression forest per feature group averages the
   leaf values of its trees (``regRF_predict``: ``x[var] <= split`` goes left), and
   ``Ma = [1, s1, s2, s3] @ linear`` (the release's ``robustfit`` weights).

``imresize`` appears twice in step 3. The parent upsampling only feeds rows and columns that are
the same whatever MATLAB does at the image border; the resize to the residual's size is not.
MATLAB up to R2016b replicated the edge pixel there, as :func:`superres.imaging.resize.imresize`
does: that is the default, ``imresize_border="replicate"`` (NIQE mirrors by default). MATLAB
R2017a and later mirror (``imresize_border="mirror"``); only the 6 ``cs`` features of the
coarser scale differ, by about 1e-6 (relative) on the test photographs.

Colour convention (the SR field's: PIRM 2018's ``convert_shave_image.m``, as for
:func:`superres.metrics.niqe`): an RGB image in [0, 1] is clamped, quantised to 8 bit
(``floor(255 x + 0.5)``) and converted with MATLAB's ``rgb2ycbcr`` on ``uint8`` (BT.601 Y, rounded
to an integer in [16, 235]); a gray image is three equal channels and an ``(H, W)`` array a luma
plane taken as it is (:mod:`superres.metrics.luma`, the rule of every metric here).
``crop_border`` pixels are removed from every side after the conversion (PIRM's shave, 4 for x4).
(``feature_all.m`` would convert an RGB input with ``rgb2gray``, but the PIRM protocol only ever
passes it the shaved Y channel.)

The trained model (the release's ``model.mat``: 3 forests of 2000 trees, ``regRF_train(X, Y,
2000)``, and the linear weights) is not shipped with superres: it is the asset ``ma/model`` of
:mod:`superres.assets` (the file pyiqa downloads), which has no pinned sha256 and so is never
downloaded by superres; :func:`load_ma_model` finds a copy the user put in the download cache or
the data root, or takes a local path. Without it no score is computed.

What has been verified, and how (``tests/test_nrqm.py``):

* all 138 features against the official MATLAB code run in GNU Octave, as recorded by
  github.com/mxzhuang/parallel-perceptual-index (``reference/octave_reference.txt``), on
  scikit-image's ``coffee``, ``chelsea`` and ``rocket`` photographs: relative differences of
  about 1e-12 (1e-9 for two block statistics of ``rocket``'s flat sky, whose DCT coefficients are
  rounding noise). Octave lacks ``imresize`` and ``blkproc``; that run used MATLAB-compatible
  shims, an ``imresize`` that mirrors, so the check uses ``imresize_border="mirror"`` (the
  default differs from it only in the 6 features named above);
* the block-DCT, patch-SVD and spatial-pyramid features, the divisive normalisation, the shape
  fits and the SSIM terms against independent loop-based code on crops of Set14 and BSD100
  images (the steerable pyramid itself only through the Octave features);
* the forest and linear regression, and the loader, on a small synthetic model file in the
  release's format.

Not verified: the Ma score of the real trained model. The model file was not available offline,
so agreement of the final score with MATLAB's has not been measured.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import torch

from superres.assets import asset_path
from superres.errors import ImageTooSmallError, InvalidAssetError, InvalidImageError
from superres.imaging.resize import Edge, imresize
from superres.metrics.luma import as_output, check_crop_border, luma_255, lumas_255

__all__ = [
    "MA_FEATURE_SIZES",
    "MaFeatures",
    "MaModel",
    "RegressionForest",
    "load_ma_model",
    "ma_features",
    "ma_score",
    "perceptual_index",
]

#: Lengths of the three feature groups: block-DCT (f1), steerable-pyramid (f2), patch-SVD (f3).
MA_FEATURE_SIZES = (18, 45, 75)

ImresizeBorder = Edge
_BORDERS = ("replicate", "mirror")

# --- tables ---------------------------------------------------------------------------------------


def _matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop``: the first half counted up from start, the rest down from stop.

    (MATLAB builds ranges from both ends so the last element is ``stop`` exactly.)
    """
    n = math.floor((stop - start) / step + 1e-10)
    k = np.arange(n + 1, dtype=np.float64)
    end = start + n * step if abs(start + n * step - stop) > 1e-10 * abs(step) else stop
    return np.where(k < n / 2, start + k * step, end - (n - k) * step)


# gama_gen_gauss: g = 0.03:0.001:10 and r(g) = G(1/g) G(3/g) / G(2/g)^2, strictly decreasing, so
# the nearest table entry is one of the two that bracket rho (found by binary search).
_GGD_G = _matlab_colon(0.03, 0.001, 10.0)
_GGD_R = np.array([math.gamma(1 / g) * math.gamma(3 / g) / math.gamma(2 / g) ** 2 for g in _GGD_G])
_GGD_NEG_R = -_GGD_R  # increasing, for np.searchsorted
assert np.all(np.diff(_GGD_R) < 0)


def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix of MATLAB's ``dct``: ``dct2(B) = C @ B @ C.T``."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    return c


_DCT7 = _dct_matrix(7)


def _flat(cells: list[tuple[int, int]]) -> np.ndarray:
    return np.array([r * 7 + c for r, c in cells], dtype=np.intp)


# oriented{1,2,3}_dct_rho_config3 for a 7x7 block, as (row, column) of dct2's output, 0-based:
# horizontal frequencies (upper right), the diagonal band, vertical frequencies (lower left).
_ORIENTED = (
    _flat(
        [(0, c) for c in range(1, 7)]
        + [(1, c) for c in range(2, 7)]
        + [(2, c) for c in range(4, 7)]
        + [(3, c) for c in range(5, 7)]
    ),
    _flat(
        [(1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (3, 4)]
        + [(4, c) for c in range(3, 7)]
        + [(5, c) for c in range(4, 7)]
        + [(6, c) for c in range(4, 7)]
    ),
    _flat(
        [(r, 0) for r in range(1, 7)]
        + [(r, 1) for r in range(2, 7)]
        + [(r, 2) for r in range(4, 7)]
        + [(r, 3) for r in range(5, 7)]
    ),
)


def _fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: tiny values (< eps * max) zeroed, sum 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    h = np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / (2 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


_PYRAMID_WINDOW = _fspecial_gaussian(3, 0.5)  # fspecial('gaussian', 3): default sigma 0.5
_SSIM_WINDOW_1D = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
_SSIM_WINDOW_1D /= _SSIM_WINDOW_1D.sum()  # fspecial('gaussian', 11, 1.5) is its outer product
_SSIM_C2 = (0.03 * 255) ** 2

_BLOCK_ROWS = 64  # block rows of the block-DCT statistics at once (bounds the memory)

# --- statistics -----------------------------------------------------------------------------------


def _ggd_shape(x: np.ndarray) -> np.ndarray:
    """``gama_gen_gauss`` of each row of ``x`` ``(n, m)``: the generalised-Gaussian shape."""
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).sum(axis=1) / (x.shape[1] - 1)
    mean_abs = np.abs(x - mean).mean(axis=1) ** 2
    rho = var / (mean_abs + 0.0000001)
    return _GGD_G[_nearest_ggd_index(rho)]


def _nearest_ggd_index(rho: np.ndarray) -> np.ndarray:
    """``[~, pos] = min(abs(rho - r))`` for each rho: nearest table entry, first on ties."""
    n = _GGD_R.size
    upper = np.clip(np.searchsorted(_GGD_NEG_R, -rho), 1, n - 1)  # r[upper - 1] > rho >= r[upper]
    lower = upper - 1
    pick_upper = np.abs(rho - _GGD_R[upper]) < np.abs(rho - _GGD_R[lower])
    index = np.where(pick_upper, upper, lower)
    return np.where(np.isnan(rho), 0, index)  # MATLAB's min over all-NaN: index 1


def _std_over_mean(a: np.ndarray, eps: float) -> np.ndarray:
    """``std(a) / (mean(a) + eps)`` of each row (unbiased std), as the BLIINDS-II helpers."""
    mean = a.mean(axis=1)
    std = np.sqrt(((a - mean[:, None]) ** 2).sum(axis=1) / (a.shape[1] - 1))
    return std / (mean + eps)


def _pool_first(values: np.ndarray) -> tuple[float, float]:
    """Mean of the ``ceil(0.1 n)`` smallest values and the mean of all (block_dct.m)."""
    s = np.sort(values)
    return float(s[: math.ceil(s.size * 0.1)].mean()), float(s.mean())


def _pool_last(values: np.ndarray) -> tuple[float, float]:
    """Mean from sorted index ``fix(0.9 n)`` (1-based) to the end, and the mean of all."""
    s = np.sort(values)
    return float(s[math.trunc(s.size * 0.9) - 1 :].mean()), float(s.mean())


# --- f1: block DCT --------------------------------------------------------------------------------


def _block_dct_features(im: np.ndarray) -> list[float]:
    """``block_dct.m`` on one scale: 6 pooled statistics of the 7x7 block DCTs."""
    h, w = im.shape
    rows, cols = math.ceil(h / 3), math.ceil(w / 3)
    # blkproc(im, [3 3], [2 2]): zero padding of 2 before and up to the block grid + 2 after.
    padded = np.zeros((3 * rows + 4, 3 * cols + 4))
    padded[2 : 2 + h, 2 : 2 + w] = im
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7))[::3, ::3]
    gama, cv, ori = [], [], []
    for r0 in range(0, rows, _BLOCK_ROWS):
        part = windows[r0 : r0 + _BLOCK_ROWS]
        coeffs = (_DCT7 @ part @ _DCT7.T).reshape(-1, 49)  # row-major within each block
        ac = coeffs[:, 1:]  # all but the DC coefficient
        gama.append(_ggd_shape(ac))
        cv.append(_std_over_mean(np.abs(ac), 0.0000001))
        oriented = np.stack(
            [_std_over_mean(np.abs(coeffs[:, idx]), 0.00000001) for idx in _ORIENTED], axis=1
        )
        ori.append(oriented.var(axis=1, ddof=1))
    return [
        *_pool_first(np.concatenate(gama)),
        *_pool_last(np.concatenate(cv)),
        *_pool_last(np.concatenate(ori)),
    ]


# --- f3: patch SVD --------------------------------------------------------------------------------


def _patch_singular_values(im: np.ndarray) -> np.ndarray:
    """``svd(im2col(im, [5 5], 'distinct'))``: the 25 singular values, largest first."""
    h, w = im.shape
    rows, cols = math.ceil(h / 5), math.ceil(w / 5)
    padded = np.zeros((5 * rows, 5 * cols))
    padded[:h, :w] = im
    patches = padded.reshape(rows, 5, cols, 5).transpose(0, 2, 1, 3).reshape(-1, 25)
    return np.linalg.svd(patches, compute_uv=False)


# --- spatial pyramid ------------------------------------------------------------------------------


def _gaussian_half(im: np.ndarray) -> np.ndarray:
    """``imfilter(im, fspecial('gaussian', 3))`` (zero padding), then ``(2:2:end, 2:2:end)``."""
    h, w = im.shape
    padded = np.pad(im, 1)
    out = np.zeros_like(im)
    for i in range(3):
        for j in range(3):
            out += _PYRAMID_WINDOW[i, j] * padded[i : i + h, j : j + w]
    return out[1::2, 1::2]


# --- f2: steerable pyramid, divisive normalisation, statistics ------------------------------------


def _point_op(values: np.ndarray, lut: np.ndarray, origin: float, increment: float) -> np.ndarray:
    """matlabPyrTools' ``pointOp`` MEX: piecewise-linear lookup, extrapolated linearly."""
    pos = (values - origin) / increment
    index = np.clip(np.floor(pos), 0, lut.size - 2).astype(np.intp)
    return lut[index] + (lut[index + 1] - lut[index]) * (pos - index)


def _rcos() -> tuple[np.ndarray, np.ndarray]:
    """``rcosFn(1, -0.5, [0 1])``: the raised-cosine transition, sampled at 259 points."""
    size = 256
    x = np.pi * np.arange(-size - 1, 2) / (2 * size)
    y = np.cos(x) ** 2
    y[0] = y[1]
    y[size + 2] = y[size + 1]
    return -0.5 + (2 / np.pi) * (x + np.pi / 4), y


@dataclass(frozen=True)
class _Pyramid:
    """``buildSFpyr(im, 2, 5)`` without the low-pass residual (which Ma's features never use)."""

    highpass: np.ndarray
    bands: tuple[tuple[np.ndarray, ...], ...]  # [scale][orientation], real parts


def _steerable_pyramid(im: np.ndarray, height: int = 2, nbands: int = 6) -> _Pyramid:
    """matlabPyrTools' ``buildSFpyr`` / ``buildSFpyrLevs`` with ``twidth = 1``."""
    dims = np.array(im.shape)
    ctr = np.ceil((dims + 0.5) / 2).astype(int)  # 1-based centre
    xramp, yramp = np.meshgrid(
        (np.arange(1, dims[1] + 1) - ctr[1]) / (dims[1] / 2),
        (np.arange(1, dims[0] + 1) - ctr[0]) / (dims[0] / 2),
    )
    angle = np.arctan2(yramp, xramp)
    log_rad = np.sqrt(xramp**2 + yramp**2)
    log_rad[ctr[0] - 1, ctr[1] - 1] = log_rad[ctr[0] - 1, ctr[1] - 2]
    log_rad = np.log2(log_rad)
    xrcos, yrcos = _rcos()
    yrcos = np.sqrt(yrcos)
    yircos = np.sqrt(1.0 - yrcos**2)
    lo0mask = _point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])
    hi0mask = _point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    imdft = np.fft.fftshift(np.fft.fft2(im))
    highpass = np.fft.ifft2(np.fft.ifftshift(imdft * hi0mask)).real

    lodft = imdft * lo0mask
    order = nbands - 1
    lutsize = 1024
    xcosn = np.pi * np.arange(-(2 * lutsize + 1), lutsize + 2) / lutsize  # [-2 pi, pi]
    const = 2 ** (2 * order) * math.factorial(order) ** 2 / (nbands * math.factorial(2 * order))
    ycosn = math.sqrt(const) * np.cos(xcosn) ** order
    rotation = (-1j) ** order  # exactly -1j for order 5
    bands = []
    for _ in range(height):
        xrcos = xrcos - 1.0  # log2(2): one octave down
        himask = _point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
        level = []
        for b in range(nbands):
            anglemask = _point_op(angle, ycosn, xcosn[0] + np.pi * b / nbands, xcosn[1] - xcosn[0])
            banddft = rotation * lodft * anglemask * himask
            level.append(np.fft.ifft2(np.fft.ifftshift(banddft)).real)
        bands.append(tuple(level))
        # Crop the spectrum to the next (half-size) level and apply the low-pass mask.
        dims = np.array(lodft.shape)
        ctr = np.ceil((dims + 0.5) / 2).astype(int)
        lodims = np.ceil((dims - 0.5) / 2).astype(int)
        loctr = np.ceil((lodims + 0.5) / 2).astype(int)
        r0, c0 = ctr - loctr  # lostart - 1
        window = (slice(r0, r0 + lodims[0]), slice(c0, c0 + lodims[1]))
        log_rad, angle, lodft = log_rad[window], angle[window], lodft[window]
        lomask = _point_op(log_rad, np.abs(np.sqrt(1.0 - yrcos**2)), xrcos[0], xrcos[1] - xrcos[0])
        lodft = lomask * lodft
    return _Pyramid(highpass=highpass, bands=tuple(bands))


def _imresize_up(image: np.ndarray, shape: tuple[int, int], border: ImresizeBorder) -> np.ndarray:
    """Bicubic ``imresize(image, shape)`` for an enlargement (no antialiasing involved)."""
    if tuple(image.shape) == tuple(shape):
        # Scale 1: the cubic kernel is 1 at 0 and exactly 0 at +-1 and +-2, so MATLAB returns
        # the input unchanged.
        return image.copy()
    return imresize(image, output_shape=shape, edge=border)


def _pinv(a: np.ndarray) -> np.ndarray:
    """MATLAB ``pinv``: singular values <= max(size) * norm * eps count as zero."""
    u, s, vt = np.linalg.svd(a)
    tol = max(a.shape) * (s[0] if s.size else 0.0) * np.finfo(np.float64).eps
    keep = s > tol
    return (vt[keep].T / s[keep]) @ u[:, keep].T


def _normalized_bands(
    pyramid: _Pyramid, border: ImresizeBorder
) -> tuple[list[np.ndarray], list[bool]]:
    """``norm_sender_normalized(pyr, pind, 2, 6, 1, 1, 3, 3, 50)``: the 12 normalised bands.

    Returns the 2-D bands (guard band removed, zero mean), scale-major, and whether each had a
    parent. Raises ``_FlatBandError`` where a band has no local energy (MATLAB's ``reshape`` fails).
    """
    nscales = len(pyramid.bands)
    nor = len(pyramid.bands[0])
    nband = 1 + nscales * nor  # size(pind, 1) - 1: high-pass, oriented bands, low-pass residual
    out, parents = [], []
    for scale in range(nscales):
        for orien in range(nor):
            band_number = scale * nor + orien + 2  # 1-based pyramid band, as in the release
            aux = pyramid.bands[scale][orien]
            nsy, nsx = aux.shape
            has_parent = band_number < nband - nor
            inner = (slice(1, nsy - 1), slice(1, nsx - 1))  # Ly + 1 : Ly + nblv, Lx likewise
            columns = [  # shift(y, [ny nx]) then the inner crop, ny and nx in -1..1
                aux[1 - dy : nsy - 1 - dy, 1 - dx : nsx - 1 - dx]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            ]
            if has_parent:
                parent = pyramid.bands[scale + 1][orien]
                up = _imresize_up(parent, (2 * parent.shape[0], 2 * parent.shape[1]), border)
                columns.append(up[:nsy, :nsx][inner])
            columns.extend(pyramid.bands[scale][n][inner] for n in range(nor) if n != orien)
            yt = np.empty((len(columns), (nsy - 2) * (nsx - 2)))  # Y', one neighbour per row
            for row, column in zip(yt, columns, strict=True):
                row[:] = column.ravel()
            n_neighbours = 9 + int(has_parent)
            cov = (yt @ yt.T) / yt.shape[1]
            lam, q = np.linalg.eigh(cov)
            positive = lam * (lam > 0)
            denom = positive.sum() + (positive.sum() == 0)
            cov = (q * (positive * lam.sum() / denom)) @ q.T
            z = np.sqrt((((_pinv(cov) @ yt) * yt) / n_neighbours).sum(axis=0))
            if np.any(z == 0):
                raise _FlatBandError
            centre = aux[inner].ravel()
            g = ((centre - centre.mean()) / z).reshape(nsy - 2, nsx - 2)
            gb = 16 >> scale
            g = g[gb:-gb, gb:-gb]
            out.append(g - g.mean())
            parents.append(has_parent)
    return out, parents


class _FlatBandError(Exception):
    """A pyramid band without local energy: the release's normalisation is undefined."""


def _valid_filter(x: np.ndarray) -> np.ndarray:
    """``filter2(fspecial('gaussian', 11, 1.5), x, 'valid')``, as two 1-D passes."""
    from scipy.ndimage import correlate1d

    t = correlate1d(x, _SSIM_WINDOW_1D, axis=0)[5:-5]
    return correlate1d(t, _SSIM_WINDOW_1D, axis=1)[:, 5:-5]


@dataclass(frozen=True)
class _LocalStats:
    """An image with its local means and variances under the SSIM window."""

    image: np.ndarray
    mu: np.ndarray
    var: np.ndarray


def _local_stats(x: np.ndarray) -> _LocalStats:
    mu = _valid_filter(x)
    return _LocalStats(image=x, mu=mu, var=_valid_filter(x * x) - mu * mu)


def _ssim_cs(a: _LocalStats, b: _LocalStats) -> float:
    """The third output of ``ssim_index_new(a, b)``: the mean of the contrast-structure map.

    ``(2 s12 + C2) / (s1^2 + s2^2 + C2)`` with ``C2 = (0.03 * 255)^2`` (the release's default
    ``K``, ``L = 255``), averaged over the 'valid' windows.
    """
    cov = _valid_filter(a.image * b.image) - a.mu * b.mu
    return float(((2 * cov + _SSIM_C2) / (a.var + b.var + _SSIM_C2)).mean())


def _gsm_features(gray: np.ndarray, border: ImresizeBorder) -> np.ndarray:
    """``global_gsm.m`` on the 0-255 gray image: 45 features."""
    pyramid = _steerable_pyramid(gray)
    bands, _ = _normalized_bands(pyramid, border)
    nor = len(pyramid.bands[0])
    features = [float(_ggd_shape(b.reshape(1, -1))[0]) for b in bands]
    for o in range(nor):
        pooled = np.concatenate([bands[o].ravel(), bands[o + nor].ravel()])
        features.append(float(_ggd_shape(pooled.reshape(1, -1))[0]))
    hp = _local_stats(pyramid.highpass)
    features.extend(
        _ssim_cs(_local_stats(_imresize_up(band, hp.image.shape, border)), hp)
        for level in pyramid.bands
        for band in level
    )
    finer = [_local_stats(b) for b in bands[:nor]]
    features.extend(_ssim_cs(finer[i], finer[j]) for i in range(nor) for j in range(i + 1, nor))
    return np.array(features)


# --- features -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaFeatures:
    """The three feature groups of Ma et al., in the release's order (float64).

    Attributes:
        dct: ``(18,)`` block-DCT statistics, 6 per scale (f1, ``block_dct.m``).
        gsm: ``(45,)`` steerable-pyramid statistics (f2, ``global_gsm.m``).
        svd: ``(75,)`` singular values of 5x5 patches, 25 per scale (f3).
    """

    dct: np.ndarray
    gsm: np.ndarray
    svd: np.ndarray

    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(f1, f2, f3)``, the inputs of the three forests."""
        return self.dct, self.gsm, self.svd


def _features_gray(gray: np.ndarray, border: ImresizeBorder) -> MaFeatures | None:
    """``feature_all.m`` on an integer-valued float64 gray image (0-255); None if undefined."""
    im1 = gray / 255.0
    im2 = _gaussian_half(im1)
    im3 = _gaussian_half(im2)
    scales = (im1, im2, im3)
    dct = np.array([v for im in scales for v in _block_dct_features(im)])
    svd = np.concatenate([_patch_singular_values(im) for im in scales])
    try:
        gsm = _gsm_features(gray, border)
    except _FlatBandError:
        return None
    return MaFeatures(dct=dct, gsm=gsm, svd=svd)


# --- the trained model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionForest:
    """One regression forest of randomforest-matlab (Liaw and Wiener's ``randomForest`` code).

    Node arrays are ``(n_nodes, n_trees)``; node 0 is each tree's root.

    Attributes:
        left: 0-based left child (taken when ``x[var] <= split``); -1 at a leaf.
        right: 0-based right child; -1 at a leaf.
        var: 0-based feature index of the split; -1 at a leaf.
        split: split thresholds (the file's ``upper``).
        value: node predictions (the file's ``avnode``), used at the leaves.
        coef: ``(2,)`` bias correction ``coef[0] + coef[1] * y``, applied only when non-zero
            (``regRF_predict``; the release trained without it).
        n_features: length of the feature vector the forest expects.
    """

    left: np.ndarray
    right: np.ndarray
    var: np.ndarray
    split: np.ndarray
    value: np.ndarray
    coef: np.ndarray
    n_features: int

    @property
    def n_trees(self) -> int:
        return int(self.left.shape[1])

    def predict(self, features: np.ndarray) -> float:
        """The forest's prediction for one feature vector ``(n_features,)``: mean of the trees."""
        x = np.asarray(features, dtype=np.float64)
        if x.shape != (self.n_features,):
            raise ValueError(
                f"this forest expects {self.n_features} features; got shape {tuple(x.shape)}"
            )
        trees = np.arange(self.n_trees)
        node = np.zeros(self.n_trees, dtype=np.intp)
        for _ in range(self.left.shape[0]):  # children follow their parent: depth < n_nodes
            active = self.left[node, trees] >= 0
            if not active.any():
                break
            n, t = node[active], trees[active]
            go_left = x[self.var[n, t]] <= self.split[n, t]
            node[active] = np.where(go_left, self.left[n, t], self.right[n, t])
        # regForest sums the trees in order, then divides by their number.
        y = float(np.cumsum(self.value[node, trees])[-1]) / self.n_trees
        if np.any(self.coef != 0):
            y = float(self.coef[0] + self.coef[1] * y)
        return y


@dataclass(frozen=True)
class MaModel:
    """The trained Ma model: three forests (f1, f2, f3) and the linear weights ``(4,)``."""

    forests: tuple[RegressionForest, RegressionForest, RegressionForest]
    linear: np.ndarray

    def forest_outputs(self, features: MaFeatures) -> tuple[float, float, float]:
        """``(s1, s2, s3)``: each forest on its feature group."""
        s = [f.predict(x) for f, x in zip(self.forests, features.groups(), strict=True)]
        return s[0], s[1], s[2]

    def predict(self, features: MaFeatures) -> float:
        """``[1, s1, s2, s3] @ linear``: the Ma score."""
        s = self.forest_outputs(features)
        return float(np.array([1.0, *s]) @ self.linear)


def _provide_hint() -> str:
    return (
        "Ma's metric needs its trained model, the asset ma/model (`superres assets` says where "
        "to put it), or pass a local model.mat of the authors' release as model=... "
        "(ma_model=... for perceptual_index, --ma-model)."
    )


def load_ma_model(
    model: str | os.PathLike[str] | MaModel | None = None,
    *,
    data_root: str | os.PathLike[str] | None = None,
) -> MaModel:
    """Locate, read and check the trained Ma model (cached per file).

    The file is a MATLAB v5/v7 ``.mat`` (read with ``scipy.io.loadmat``; v7.3/HDF5 files must be
    re-saved with ``save(..., '-v7')``) holding one variable ``model``, a struct with

    * ``linear``: 4 values ``[b0; b1; b2; b3]`` (``robustfit`` of the forests' outputs);
    * ``rf``: a cell of 3 structs (3x1 or 1x3), the ``regRF_train`` outputs for f1 (18 features),
      f2 (45) and f3 (75), each with ``lDau``, ``rDau`` (1-based children, 0 at a leaf),
      ``mbest`` (1-based split feature), ``upper`` (split threshold) and ``avnode`` (node value),
      all ``nrnodes x ntree``, and optionally ``coef`` (2 values, the bias correction).

    Other fields (``nodestatus``, ``ndtree``, ``mse``, ...) are not needed. A node is a leaf when
    its ``lDau`` is 0: for every tree randomForest builds this is exactly the ``nodestatus ==
    NODE_TERMINAL`` test of the MEX predictor, and it avoids ``nodestatus``, which the training MEX
    stores as 1-byte values packed into a MATLAB char array (2 bytes per char).

    Args:
        model: a local file, used as given (no hash check); ``None``: the asset ``ma/model``
            (a copy in the download cache or the data root; never downloaded); or a loaded
            :class:`MaModel`, returned as it is.
        data_root: the data root to look in (default ``SUPERRES_DATA``).

    Raises:
        AssetNotFoundError: no model file is here (the message says where to put one).
        InvalidAssetError: the file cannot be read or does not have the structure above.
    """
    if isinstance(model, MaModel):
        return model
    path = asset_path("ma/model", path=model, data_root=data_root)
    stat = path.stat()
    return _read_model(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=2)
def _read_model(path: str, mtime_ns: int, size: int) -> MaModel:
    """Read and validate a model file (cached per path, modification time and size)."""
    del mtime_ns, size  # only part of the cache key, so an edited file is read again
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=["model"])
    except NotImplementedError as exc:  # scipy's answer to a v7.3 (HDF5) file
        raise InvalidAssetError(
            f"{path!r} is a MATLAB v7.3 (HDF5) file, which scipy cannot read; re-save it in "
            "MATLAB with save('model.mat', 'model', '-v7'). " + _provide_hint()
        ) from exc
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidAssetError(
            f"cannot read {path!r} as a MATLAB .mat file: {exc}. {_provide_hint()}"
        ) from exc
    if "model" not in data:
        raise InvalidAssetError(
            f"{path!r} has no variable 'model'; expected the release's model.mat (a struct with "
            f"fields 'rf' and 'linear'). {_provide_hint()}"
        )
    root = data["model"]
    linear = np.asarray(_field(root, "linear", path), dtype=np.float64).ravel()
    if linear.shape != (4,) or not np.isfinite(linear).all():
        raise InvalidAssetError(
            f"{path!r}: model.linear has {linear.size} values or non-finite ones; expected 4 "
            f"finite weights [b0; b1; b2; b3]. {_provide_hint()}"
        )
    cells = np.asarray(_field(root, "rf", path))
    if cells.dtype != object or cells.size != 3:
        raise InvalidAssetError(
            f"{path!r}: model.rf is not a cell of 3 forests (got {cells.dtype} with "
            f"{cells.size} elements). {_provide_hint()}"
        )
    flat = cells.ravel(order="F")  # rf{1}, rf{2}, rf{3}
    forests = tuple(
        _read_forest(flat[i], n, f"model.rf{{{i + 1}}}", path)
        for i, n in enumerate(MA_FEATURE_SIZES)
    )
    return MaModel(forests=(forests[0], forests[1], forests[2]), linear=linear)


def _field(struct: Any, name: str, path: str) -> Any:
    """Field ``name`` of a 1x1 MATLAB struct as loaded by scipy (a structured array)."""
    arr = np.asarray(struct)
    if arr.dtype.names is None or name not in arr.dtype.names or arr.size != 1:
        have = ", ".join(arr.dtype.names or ()) or "none"
        raise InvalidAssetError(
            f"{path!r}: expected a 1x1 struct with a field {name!r} (fields found: {have}). "
            + _provide_hint()
        )
    return arr.ravel()[0][name]


def _read_forest(struct: Any, n_features: int, where: str, path: str) -> RegressionForest:
    """One ``regRF_train`` struct -> a compact, validated :class:`RegressionForest`."""
    arrays = {
        name: np.asarray(_field(struct, name, path))
        for name in ("lDau", "rDau", "mbest", "upper", "avnode")
    }
    shape = arrays["lDau"].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrays.values()) or 0 in shape:
        shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items())
        raise InvalidAssetError(
            f"{path!r}: {where} needs lDau, rDau, mbest, upper and avnode of one shape "
            f"(nrnodes x ntree); got {shapes}. {_provide_hint()}"
        )
    try:
        coef = np.asarray(_field(struct, "coef", path), dtype=np.float64).ravel()
    except InvalidAssetError:
        coef = np.zeros(2)
    if coef.size == 0:
        coef = np.zeros(2)
    left1 = arrays["lDau"].astype(np.int64)
    right1 = arrays["rDau"].astype(np.int64)
    var1 = arrays["mbest"].astype(np.int64)
    split = arrays["upper"].astype(np.float64)
    value = arrays["avnode"].astype(np.float64)
    # Keep the rows up to the last one referenced (the release pads every tree to nrnodes).
    rows = max(1, int(left1.max(initial=0)), int(right1.max(initial=0)))
    if rows > shape[0]:
        raise InvalidAssetError(
            f"{path!r}: {where} has child indices up to {rows} but only {shape[0]} nodes. "
            + _provide_hint()
        )
    left1, right1, var1 = left1[:rows], right1[:rows], var1[:rows]
    split, value = split[:rows], value[:rows]
    interior = left1 > 0
    node = np.arange(1, rows + 1)[:, None]  # 1-based node numbers
    ok = (
        ((left1 > node) | ~interior).all()  # randomForest appends children after their parent
        and ((right1 > node) | ~interior).all()
        and (var1[interior] >= 1).all()
        and (var1[interior] <= n_features).all()
        and np.isfinite(split[interior]).all()
        and np.isfinite(value).all()
        and coef.shape == (2,)
    )
    if not ok:
        raise InvalidAssetError(
            f"{path!r}: {where} is not a valid regression forest over {n_features} features "
            "(children must follow their parent, split features lie in 1.."
            f"{n_features}, values be finite, coef have 2 values). {_provide_hint()}"
        )
    return RegressionForest(
        left=np.where(interior, left1 - 1, -1).astype(np.intp),
        right=np.where(interior, right1 - 1, -1).astype(np.intp),
        var=np.where(interior, var1 - 1, -1).astype(np.intp),
        split=np.ascontiguousarray(split),
        value=np.ascontiguousarray(value),
        coef=coef,
        n_features=n_features,
    )


# --- inputs ---------------------------------------------------------------------------------------


def _check_border(border: object) -> ImresizeBorder:
    if border not in _BORDERS:
        raise ValueError(
            f"imresize_border must be 'replicate' (MATLAB <= R2016b, the default) or 'mirror' "
            f"(MATLAB R2017a and later); got {border!r}."
        )
    return "mirror" if border == "mirror" else "replicate"


def _too_small_reason(h: int, w: int) -> str | None:
    """Why the release's pipeline cannot run on an ``h x w`` image (None when it can)."""
    if min(h, w) < 45:
        # the finer scale's normalised bands must keep 11x11 pixels (the SSIM window) once the
        # 1-pixel neighbourhood border and the 16-pixel guard band are removed
        return "each side needs at least 45 pixels (the steerable-pyramid statistics)"
    h3, w3 = h // 2 // 2, w // 2 // 2
    if math.ceil(h3 / 5) * math.ceil(w3 / 5) < 25:
        return "the quarter-resolution image needs at least 25 5x5 patches (its 25 singular values)"
    return None


def _check_size(gray: np.ndarray, crop_border: int, name: str) -> None:
    h, w = gray.shape
    reason = _too_small_reason(h, w)
    if reason is not None:
        raise ImageTooSmallError(
            f"{name}: the image is {h}x{w} after crop_border={crop_border}, too small for Ma's "
            f"features: {reason}. 84x84 pixels always suffice; score a larger image or use a "
            "smaller crop_border."
        )


# --- public ---------------------------------------------------------------------------------------


def ma_features(
    image: np.ndarray,
    *,
    crop_border: int = 0,
    imresize_border: ImresizeBorder = "replicate",
) -> MaFeatures:
    """The 138 features of Ma et al. (``feature_all.m``) of one image; no model needed.

    Args:
        image: numpy RGB ``(H, W, 3)`` or gray ``(H, W)``/``(H, W, 1)``, float in [0, 1]
            (clamped) or uint8; RGB is taken on its 8-bit BT.601 Y channel (module docstring).
        crop_border: pixels removed from every side after the conversion.
        imresize_border: ``"replicate"`` (MATLAB up to R2016b, :mod:`superres.imaging.resize`)
            or ``"mirror"`` (R2017a and later) at the borders of the bicubic upsampling.

    Returns:
        :class:`MaFeatures`, float64.

    Raises:
        InvalidImageError: a wrong shape, dtype or NaN values; or an image with a pyramid band
            that is exactly zero (an all-black image), where the release's normalisation fails.
            (A constant non-zero image has bands of rounding noise and gets features, as in
            MATLAB.)
        ImageTooSmallError: too small after ``crop_border`` (84x84 always suffices).
    """
    check_crop_border(crop_border, "ma_features")
    border = _check_border(imresize_border)
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(
            f"ma_features expects a numpy array (H, W[, C]); got a {type(image).__name__}. "
            "Convert first, e.g. tensor.permute(1, 2, 0).numpy()."
        )
    gray = luma_255(image, crop_border, "ma_features")
    _check_size(gray, crop_border, "ma_features")
    features = _features_gray(gray, border)
    if features is None:
        raise InvalidImageError(
            "ma_features: a steerable-pyramid band of this image is exactly zero (e.g. an "
            "all-black image), so its divisive normalisation is undefined (MATLAB's code fails "
            "there too)."
        )
    return features


@overload
def ma_score(
    image: np.ndarray,
    *,
    crop_border: int = 0,
    model: str | os.PathLike[str] | MaModel | None = None,
    imresize_border: ImresizeBorder = "replicate",
) -> float: ...


@overload
def ma_score(
    image: torch.Tensor,
    *,
    crop_border: int = 0,
    model: str | os.PathLike[str] | MaModel | None = None,
    imresize_border: ImresizeBorder = "replicate",
) -> torch.Tensor: ...


def ma_score(
    image: np.ndarray | torch.Tensor,
    *,
    crop_border: int = 0,
    model: str | os.PathLike[str] | MaModel | None = None,
    imresize_border: ImresizeBorder = "replicate",
) -> float | torch.Tensor:
    """Ma et al.'s score of an SR image (no reference needed); higher is better (about 0-10).

    Args:
        image: a numpy RGB image ``(H, W, 3)`` or gray ``(H, W)``/``(H, W, 1)``, float in [0, 1]
            (clamped) or uint8; or a torch tensor ``(N, C, H, W)`` or ``(C, H, W)``, floating,
            RGB in [0, 1], ``C`` 3 or 1. RGB is scored on its 8-bit BT.601 Y channel, one channel
            as it is (on the 8-bit grid); see the module docstring.
        crop_border: pixels removed from every side before scoring (PIRM: 4 for x4).
        model: the trained model file (see :func:`load_ma_model`), a loaded :class:`MaModel`,
            or ``None`` for the asset ``ma/model``.
        imresize_border: see :func:`ma_features`.

    Returns:
        numpy input: a ``float``. Tensor input: a tensor ``(N,)`` (0-d for ``(C, H, W)``) on the
        input's device, in its dtype (float32 for float16/bfloat16); computed in float64 on the
        CPU, not differentiable. NaN when a pyramid band is exactly zero (an all-black image).

    Raises:
        InvalidImageError: a wrong shape, dtype, channel count or NaN values.
        ImageTooSmallError: too small after ``crop_border`` (84x84 always suffices).
        AssetNotFoundError, InvalidAssetError: the model file is not here or invalid (checked
            before any feature is computed). No score is ever computed without the trained model.
    """
    check_crop_border(crop_border, "ma_score")
    border = _check_border(imresize_border)
    grays = lumas_255(image, crop_border, "ma_score")
    for gray in grays:
        _check_size(gray, crop_border, "ma_score")
    trained = load_ma_model(model)
    values = []
    for gray in grays:
        features = _features_gray(gray, border)
        values.append(math.nan if features is None else trained.predict(features))
    return as_output(values, image)


@overload
def perceptual_index(
    image: np.ndarray,
    *,
    crop_border: int = 0,
    ma_model: str | os.PathLike[str] | MaModel | None = None,
    niqe_params: str | os.PathLike[str] | None = None,
) -> float: ...


@overload
def perceptual_index(
    image: torch.Tensor,
    *,
    crop_border: int = 0,
    ma_model: str | os.PathLike[str] | MaModel | None = None,
    niqe_params: str | os.PathLike[str] | None = None,
) -> torch.Tensor: ...


def perceptual_index(
    image: np.ndarray | torch.Tensor,
    *,
    crop_border: int = 0,
    ma_model: str | os.PathLike[str] | MaModel | None = None,
    niqe_params: str | os.PathLike[str] | None = None,
) -> float | torch.Tensor:
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
    from superres.metrics.niqe import NIQE_BLOCK_SIZE, load_niqe_params, niqe

    check_crop_border(crop_border, "perceptual_index")
    grays = lumas_255(image, crop_border, "perceptual_index")
    for gray in grays:
        _check_size(gray, crop_border, "perceptual_index")
        if min(gray.shape) < NIQE_BLOCK_SIZE:
            raise ImageTooSmallError(
                f"perceptual_index: NIQE needs at least {NIQE_BLOCK_SIZE}x{NIQE_BLOCK_SIZE} "
                f"pixels after crop_border={crop_border}; got {gray.shape[0]}x{gray.shape[1]}. "
                "Score a larger image or use a smaller crop_border."
            )
    trained = load_ma_model(ma_model)
    load_niqe_params(niqe_params)  # fail before the features are computed
    values = []
    for gray in grays:
        features = _features_gray(gray, "replicate")
        ma = math.nan if features is None else trained.predict(features)
        # The luma plane holds integers 0-255: NIQE takes a uint8 plane as it is.
        nq = niqe(gray.astype(np.uint8), params=niqe_params)
        values.append(((10.0 - ma) + nq) / 2.0)
    return as_output(values, image)
