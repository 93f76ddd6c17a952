"""The spatial features of Ma et al.'s metric: block-DCT statistics (f1) and patch singular values
(f3) on a three-level Gaussian pyramid, and the generalised-Gaussian shape fit that f1 and f2 share.

Each function follows a file of the authors' MATLAB release (``block_dct.m``, ``feature_all.m``
and the BLIINDS-II helpers it calls), in float64; :mod:`superres.metrics.nrqm` describes the
whole metric and how it was verified.
"""

from __future__ import annotations

import math

import numpy as np

from superres.metrics.matlab import colon, dct_matrix, fspecial_gaussian

__all__ = ["block_dct_features", "gaussian_half", "ggd_shape", "patch_singular_values"]

# gama_gen_gauss: g = 0.03:0.001:10 and r(g) = G(1/g) G(3/g) / G(2/g)^2, strictly decreasing, so
# the nearest table entry is one of the two that bracket rho (found by binary search).
_GGD_G = colon(0.03, 0.001, 10.0)
_GGD_R = np.array([math.gamma(1 / g) * math.gamma(3 / g) / math.gamma(2 / g) ** 2 for g in _GGD_G])
_GGD_NEG_R = -_GGD_R  # increasing, for np.searchsorted
assert np.all(np.diff(_GGD_R) < 0)


_DCT7 = dct_matrix(7)


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
_PYRAMID_WINDOW = fspecial_gaussian(3, 0.5)  # fspecial('gaussian', 3): default sigma 0.5
_BLOCK_ROWS = 64  # block rows of the block-DCT statistics at once (bounds the memory)

# --- statistics -----------------------------------------------------------------------------------


def ggd_shape(x: np.ndarray) -> np.ndarray:
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


def block_dct_features(im: np.ndarray) -> list[float]:
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
        gama.append(ggd_shape(ac))
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


def patch_singular_values(im: np.ndarray) -> np.ndarray:
    """``svd(im2col(im, [5 5], 'distinct'))``: the 25 singular values, largest first."""
    h, w = im.shape
    rows, cols = math.ceil(h / 5), math.ceil(w / 5)
    padded = np.zeros((5 * rows, 5 * cols))
    padded[:h, :w] = im
    patches = padded.reshape(rows, 5, cols, 5).transpose(0, 2, 1, 3).reshape(-1, 25)
    return np.linalg.svd(patches, compute_uv=False)


# --- spatial pyramid ------------------------------------------------------------------------------


def gaussian_half(im: np.ndarray) -> np.ndarray:
    """``imfilter(im, fspecial('gaussian', 3))`` (zero padding), then ``(2:2:end, 2:2:end)``."""
    h, w = im.shape
    padded = np.pad(im, 1)
    out = np.zeros_like(im)
    for i in range(3):
        for j in range(3):
            out += _PYRAMID_WINDOW[i, j] * padded[i : i + h, j : j + w]
    return out[1::2, 1::2]
