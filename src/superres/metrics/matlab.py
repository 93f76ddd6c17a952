"""MATLAB's numerical rules that the reference code of NIQE and Ma's metric depends on.

The scores of those releases are defined by what their MATLAB code computes, so each rule here
follows MATLAB rather than numpy where the two differ (range endpoints, tolerances, kernel
truncation); float64 throughout.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["colon", "dct_matrix", "fspecial_gaussian", "pinv"]


def colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop``: the first half counted up from start, the rest down from stop.

    (MATLAB builds ranges from both ends so the last element is ``stop`` exactly.)
    """
    n = math.floor((stop - start) / step + 1e-10)
    k = np.arange(n + 1, dtype=np.float64)
    end = start + n * step if abs(start + n * step - stop) > 1e-10 * abs(step) else stop
    return np.where(k < n / 2, start + k * step, end - (n - k) * step)


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix of MATLAB's ``dct``: ``dct2(B) = C @ B @ C.T``."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    c = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * math.sqrt(2 / n)
    c[0] /= math.sqrt(2)
    return c


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``: tiny values (< eps * max) zeroed, sum 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    h = np.exp(-(x[None, :] ** 2 + x[:, None] ** 2) / (2 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def pinv(a: np.ndarray) -> np.ndarray:
    """MATLAB ``pinv``: singular values <= max(size) * norm * eps count as zero."""
    u, s, vt = np.linalg.svd(a)
    tol = max(a.shape) * (s[0] if s.size else 0.0) * np.finfo(np.float64).eps
    keep = s > tol
    return (vt[keep].T / s[keep]) @ u[:, keep].T
