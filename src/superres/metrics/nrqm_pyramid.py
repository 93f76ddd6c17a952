"""The global frequency features (f2, ``global_gsm.m``) of Ma et al.'s metric: a steerable
pyramid, DIIVINE's divisive normalisation of its bands, and SSIM's structure term between bands.

Each function follows the authors' MATLAB release and the code it calls (``buildSFpyr`` and
``pointOp`` of matlabPyrTools, ``norm_sender_normalized.m``, ``ssim_index_new``), in float64;
:mod:`superres.metrics.nrqm` describes the whole metric, the two border rules of its bicubic
resizes and how it was verified.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from superres.imaging.resize import Edge, imresize
from superres.metrics.matlab import pinv
from superres.metrics.nrqm_blocks import ggd_shape

__all__ = ["FlatBandError", "Pyramid", "gsm_features", "steerable_pyramid"]

_SSIM_WINDOW_1D = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
_SSIM_WINDOW_1D /= _SSIM_WINDOW_1D.sum()  # fspecial('gaussian', 11, 1.5) is its outer product
_SSIM_C2 = (0.03 * 255) ** 2


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
class Pyramid:
    """``buildSFpyr(im, 2, 5)`` without the low-pass residual (which Ma's features never use)."""

    highpass: np.ndarray
    bands: tuple[tuple[np.ndarray, ...], ...]  # [scale][orientation], real parts


def steerable_pyramid(im: np.ndarray, height: int = 2, nbands: int = 6) -> Pyramid:
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
    return Pyramid(highpass=highpass, bands=tuple(bands))


def _normalized_bands(pyramid: Pyramid, border: Edge) -> tuple[list[np.ndarray], list[bool]]:
    """``norm_sender_normalized(pyr, pind, 2, 6, 1, 1, 3, 3, 50)``: the 12 normalised bands.

    Returns the 2-D bands (guard band removed, zero mean), scale-major, and whether each had a
    parent. Raises ``FlatBandError`` where a band has no local energy (MATLAB's ``reshape`` fails).
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
                up = imresize(
                    parent, output_shape=(2 * parent.shape[0], 2 * parent.shape[1]), edge=border
                )
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
            z = np.sqrt((((pinv(cov) @ yt) * yt) / n_neighbours).sum(axis=0))
            if np.any(z == 0):
                raise FlatBandError
            centre = aux[inner].ravel()
            g = ((centre - centre.mean()) / z).reshape(nsy - 2, nsx - 2)
            gb = 16 >> scale
            g = g[gb:-gb, gb:-gb]
            out.append(g - g.mean())
            parents.append(has_parent)
    return out, parents


class FlatBandError(Exception):
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


def gsm_features(gray: np.ndarray, border: Edge) -> np.ndarray:
    """``global_gsm.m`` on the 0-255 gray image: 45 features."""
    pyramid = steerable_pyramid(gray)
    bands, _ = _normalized_bands(pyramid, border)
    nor = len(pyramid.bands[0])
    features = [float(ggd_shape(b.reshape(1, -1))[0]) for b in bands]
    for o in range(nor):
        pooled = np.concatenate([bands[o].ravel(), bands[o + nor].ravel()])
        features.append(float(ggd_shape(pooled.reshape(1, -1))[0]))
    hp = _local_stats(pyramid.highpass)
    features.extend(
        _ssim_cs(_local_stats(imresize(band, output_shape=hp.image.shape, edge=border)), hp)
        for level in pyramid.bands
        for band in level
    )
    finer = [_local_stats(b) for b in bands[:nor]]
    features.extend(_ssim_cs(finer[i], finer[j]) for i in range(nor) for j in range(i + 1, nor))
    return np.array(features)
