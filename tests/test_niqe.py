"""NIQE (superres.metrics.niqe) against an independent, deliberately plain reimplementation.

Golden-test design. ``_reference_niqe`` below is written from the paper (Mittal, Soundararajan,
Bovik, IEEE SPL 2013) and the authors' MATLAB release (``computequality.m``, ``computefeature.m``,
``estimateaggdparam.m``), read line by line, and shares no code with the library beyond reading
the pristine-parameter file:

* filtering: ``sliding_window_view`` over an edge-padded image, each window taken relative to
  its centre pixel (so a constant neighbourhood gives exact zeros, as in MATLAB) and an explicit
  sum of products, instead of the library's 49 shifted slices;
* the 0.5 resize: a dense matrix built from MATLAB's ``contributions`` (Keys cubic a = -0.5,
  kernel stretched by 2, ``u = x / scale + 0.5 (1 - 1 / scale)``, indices mirrored as newer
  MATLAB does, or clamped as the 2012 release did), applied as ``Rh @ image @ Rw.T``, instead
  of :func:`superres.imaging.resize.imresize`;
* features: a Python loop over blocks in MATLAB's ``blkproc`` order, one AGGD fit per vector
  with scalar ``math.gamma`` calls, the shape grid built as ``round(0.2 + 0.001 k, 3)``,
  ``circshift`` by explicit modular indexing instead of ``np.roll``;
* MVG: ``np.nanmean``, complete rows + ``np.cov`` (``nancov``), ``np.linalg.pinv``.

The library must agree within 1e-6 on real photographs: Set14 and BSD100 HR images and a bicubic
x4 upscale, under both border rules. Independently of both, the published MATLAB value for Set14
``baboon`` (5.72957338, MATLAB R2021a, quoted by BasicSR's ``calculate_niqe``) must be met within
1e-6; ``benchmarks/niqe_conformance.py`` compares every benchmark image with BasicSR's port.
Hand-checkable invariants complete it: the parameter file's window is ``fspecial('gaussian', 7,
7/6)``; the AGGD fit recovers the shape of Gaussian (2) and Laplacian (1) samples; identical images
score identically; blur and noise both raise NIQE; numpy and tensor paths agree.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from superres.assets import get_asset
from superres.data.datasets import BenchmarkSet
from superres.errors import (
    AssetNotFoundError,
    ImageTooSmallError,
    InvalidAssetError,
    InvalidImageError,
)
from superres.imaging.resize import imresize
from superres.io.hub import ChecksumMismatchError
from superres.io.image import read_image
from superres.metrics import niqe
from superres.metrics.niqe import _aggd

NIQE_PARAMS = get_asset("niqe/pristine")

# --- the independent reference --------------------------------------------------------------------


def _ref_moments(image: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """imfilter(., window, 'replicate') of I and I^2 as ``(I - mu, E[I^2] - mu^2)``, with exact
    zeros on constant neighbourhoods (as MATLAB gets them): each window's values are taken
    relative to its centre pixel before the weighted sums (sliding windows and einsum)."""
    r = window.shape[0] // 2
    views = np.lib.stride_tricks.sliding_window_view(np.pad(image, r, mode="edge"), window.shape)
    rel = views - image[:, :, None, None]
    first = np.einsum("ijkl,kl->ij", rel, window)
    second = np.einsum("ijkl,kl->ij", rel * rel, window)
    first = np.where(abs(first) < 1e-9, 0.0, first)  # a pixel equal to its mean: exactly 0
    return -first, second - first * first


def _ref_cubic(x: float) -> float:
    ax = abs(x)
    if ax <= 1:
        return 1.5 * ax**3 - 2.5 * ax**2 + 1
    if ax <= 2:
        return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
    return 0.0


def _ref_half_matrix(n: int, edge: str) -> np.ndarray:
    """MATLAB imresize(., 0.5) along one axis as a dense (n/2, n) matrix (antialiased), taps
    beyond the border clamped (the 2012 release) or mirrored (aux = [1:n, n:-1:1], newer)."""
    scale = 0.5
    width = 4 / scale
    m = np.zeros((n // 2, n))
    for x in range(1, n // 2 + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + k for k in range(math.ceil(width) + 2)]
        weights = [scale * _ref_cubic(scale * (u - j)) for j in taps]
        total = sum(weights)
        for j, wj in zip(taps, weights, strict=True):
            aux = [*range(1, n + 1), *range(n, 0, -1)]
            source = aux[(j - 1) % (2 * n)] if edge == "mirror" else min(max(j, 1), n)
            m[x - 1, source - 1] += wj / total
    return m


_REF_GAM = [round(0.2 + 0.001 * k, 3) for k in range(9801)]
_REF_RGAM = np.array(
    [math.gamma(2 / g) ** 2 / (math.gamma(1 / g) * math.gamma(3 / g)) for g in _REF_GAM]
)


def _ref_aggd(vec: np.ndarray) -> tuple[float, float, float]:
    """estimateaggdparam.m on one vector."""
    left = vec[vec < 0]
    right = vec[vec > 0]
    leftstd = math.sqrt(float(np.mean(left**2))) if left.size else math.nan
    rightstd = math.sqrt(float(np.mean(right**2))) if right.size else math.nan
    gammahat = leftstd / rightstd
    rhat = float(np.mean(np.abs(vec))) ** 2 / float(np.mean(vec**2))
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    pos = int(np.argmin((_REF_RGAM - rhatnorm) ** 2))
    alpha = _REF_GAM[pos]
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, leftstd * k, rightstd * k


def _ref_features(block: np.ndarray) -> list[float]:
    """computefeature.m on one block."""
    alpha, betal, betar = _ref_aggd(block.flatten())
    feat = [alpha, (betal + betar) / 2]
    s0, s1 = block.shape
    rows, cols = np.arange(s0), np.arange(s1)
    for dy, dx in [(0, 1), (1, 0), (1, 1), (1, -1)]:
        # circshift(A, [dy dx]): B(i, j) = A(i - dy, j - dx), indices wrapping around
        shifted = block[np.ix_((rows - dy) % s0, (cols - dx) % s1)]
        alpha, betal, betar = _ref_aggd((block * shifted).flatten())
        meanparam = (betar - betal) * (math.gamma(2 / alpha) / math.gamma(1 / alpha))
        feat += [alpha, meanparam, betal, betar]
    return feat


def _ref_niqe(
    gray: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray, win: np.ndarray, edge: str
) -> float:
    """computequality.m on a 0-255 double gray image, blocks 96x96, two scales."""
    bs = 96
    nrow, ncol = gray.shape[0] // bs, gray.shape[1] // bs
    im = gray[: nrow * bs, : ncol * bs]
    feat_all = []
    for itr_scale in (1, 2):
        centred, var = _ref_moments(im, win)
        structdis = centred / (np.sqrt(np.abs(var)) + 1)
        b = bs // itr_scale
        feats = [  # blkproc + reshape: the row index runs fastest
            _ref_features(structdis[r * b : (r + 1) * b, c * b : (c + 1) * b])
            for c in range(ncol)
            for r in range(nrow)
        ]
        feat_all.append(np.array(feats))
        im = _ref_half_matrix(im.shape[0], edge) @ im @ _ref_half_matrix(im.shape[1], edge).T
    feat = np.hstack(feat_all)
    mu_d = np.nanmean(feat, axis=0)
    cov_d = np.cov(feat[~np.isnan(feat).any(axis=1)], rowvar=False)
    d = mu_p.ravel() - mu_d
    return math.sqrt(float(d @ np.linalg.pinv((cov_p + cov_d) / 2) @ d))


def _ref_y(rgb_uint8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr on uint8, Y channel, as double (rounded half up, always positive)."""
    r, g, b = (rgb_uint8[..., i].astype(np.float64) for i in range(3))
    return np.floor(16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255 + 0.5)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def params_file(data_root: Path) -> Path:
    path = data_root / NIQE_PARAMS.data_paths[0]
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return path


def _hwc(path: Path) -> np.ndarray:
    """An image file as float64 (H, W, 3) in [0, 1] on the 8-bit grid."""
    return read_image(path).rgb.permute(1, 2, 0).double().numpy()


def _uint8(image: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


# --- golden values --------------------------------------------------------------------------------


def _golden_images(root: Path) -> dict[str, np.ndarray]:
    bicubic = BenchmarkSet("set14", 4, root=root)[2]  # comic
    sr = imresize(bicubic.lq, scale=4.0).clamp(0, 1)
    return {
        "set14/baboon": _hwc(root / "Set14" / "HR" / "baboon.png"),
        "set14/lenna": _hwc(root / "Set14" / "HR" / "lenna.png"),
        "bsd100/first": _hwc(sorted((root / "BSD100" / "HR").iterdir())[0]),
        "set14/comic bicubic x4": sr.permute(1, 2, 0).double().numpy(),
    }


@pytest.mark.data
def test_niqe_matches_the_independent_reference_on_real_images(
    data_root: Path, params_file: Path
) -> None:
    with np.load(params_file) as p:
        mu_p, cov_p, win = p["mu_pris_param"], p["cov_pris_param"], p["gaussian_window"]
    for name, image in _golden_images(data_root).items():
        for crop, edge in ((0, "mirror"), (4, "mirror"), (0, "replicate")):
            got = niqe(image, crop_border=crop, params=params_file, resize_edge=edge)  # type: ignore[arg-type]
            gray = _ref_y(_uint8(image))
            if crop:
                gray = gray[crop:-crop, crop:-crop]
            want = _ref_niqe(gray, mu_p, cov_p, win, edge)
            assert got == pytest.approx(want, rel=1e-6), (name, crop, edge)
            assert 2.0 < got < 20.0, (name, got)


@pytest.mark.data
def test_niqe_baboon_matches_the_published_matlab_value(data_root: Path, params_file: Path) -> None:
    """BasicSR's calculate_niqe docstring: MATLAB R2021a gives 5.72957338 on Set14 baboon (Y).

    float64 throughout, so the value depends on no CPU beyond rounding (~1e-12); 1e-6 leaves
    room for MATLAB's own last digits. The 2012 release's border rule gives 5.7191."""
    image = _hwc(data_root / "Set14" / "HR" / "baboon.png")
    assert niqe(image, params=params_file) == pytest.approx(5.72957338, rel=1e-6)
    legacy = niqe(image, params=params_file, resize_edge="replicate")
    assert legacy == pytest.approx(5.7191073, abs=1e-4)


@pytest.mark.data
def test_flat_areas_give_exact_zeros(params_file: Path) -> None:
    """A constant region's coefficients are exactly 0, not ~1e-14 residues the AGGD fit counts
    as positive or negative values (4% of NIQE on Set5 ``head``)."""
    from superres.metrics.niqe import _mscn, load_niqe_params

    window = load_niqe_params(params_file).window
    rng = np.random.default_rng(0)
    for level in (0.0, 37.0, 181.0, 235.0):
        image = np.full((192, 192), level)
        image[:96, :96] = rng.integers(16, 236, (96, 96))
        coefficients = _mscn(image, window)
        assert np.count_nonzero(coefficients[110:, 110:]) == 0, level  # far from the texture


@pytest.mark.data
def test_pixels_equal_to_their_local_mean_give_exact_zeros(params_file: Path) -> None:
    """A pixel whose neighbourhood is not constant but whose weighted mean equals it (a row of 23s
    between rows of 25s and 21s, repeating) has the coefficient 0 in exact arithmetic; float64
    sums leave a residue of either sign there, which the AGGD fit counts (bird on Set5)."""
    from superres.metrics.niqe import _mscn, load_niqe_params

    window = load_niqe_params(params_file).window
    for offset, gain in ((0.0, 1.0), (100.0, 1.0), (7.0, 0.37), (180.0, 2.0)):
        profile = offset + gain * np.array([25.0, 23.0, 21.0] * 12)
        for image in (np.tile(profile[:, None], (1, 36)), np.tile(profile[None, :], (36, 1))):
            coefficients = _mscn(image, window)
            inner = coefficients[6:-6, 6:-6] if image.shape[1] == 36 else coefficients
            along = inner if image[0, 0] != image[1, 0] else inner.T
            balanced, other = along[1::3], along[::3]  # the 23 rows (6 = 0 mod 3 trimmed)
            assert np.count_nonzero(balanced) == 0, (offset, gain)
            assert np.all(other != 0), (offset, gain)


# --- invariants -----------------------------------------------------------------------------------


@pytest.mark.data
def test_params_window_is_matlab_fspecial_gaussian(params_file: Path) -> None:
    x = np.arange(-3, 4)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    with np.load(params_file) as p:
        np.testing.assert_allclose(p["gaussian_window"], g / g.sum(), rtol=1e-6, atol=1e-12)


def test_aggd_fit_recovers_known_shapes() -> None:
    rng = np.random.default_rng(0)
    gauss = rng.standard_normal((1, 200_000))
    laplace = rng.laplace(size=(1, 200_000))
    index, beta_l, beta_r = _aggd(np.concatenate([gauss, laplace]))
    alpha = 0.2 + 0.001 * index
    assert alpha[0] == pytest.approx(2.0, abs=0.05)
    assert alpha[1] == pytest.approx(1.0, abs=0.05)
    # For a unit Gaussian beta = sqrt(2) sigma on both sides.
    assert beta_l[0] == pytest.approx(math.sqrt(2), rel=0.02)
    assert beta_r[0] == pytest.approx(math.sqrt(2), rel=0.02)


@pytest.mark.data
def test_niqe_invariants(data_root: Path, params_file: Path) -> None:
    image = _hwc(data_root / "Set14" / "HR" / "lenna.png")
    sharp = niqe(image, params=params_file)
    assert niqe(image.copy(), params=params_file) == sharp

    # A strong blur (5 passes of a 5x5 box on every channel) makes the image less natural.
    blurred = image.copy()
    for _ in range(5):
        padded = np.pad(blurred, ((2, 2), (2, 2), (0, 0)), mode="edge")
        acc = np.zeros_like(image)
        for i in range(5):
            for j in range(5):
                acc += padded[i : i + image.shape[0], j : j + image.shape[1]]
        blurred = acc / 25
    assert niqe(blurred, params=params_file) > sharp + 1.0

    noisy = image + np.random.default_rng(1).normal(0, 0.08, image.shape)
    assert niqe(noisy, params=params_file) > sharp + 1.0

    # crop_border equals cropping by hand; uint8 input equals its float version.
    assert niqe(image, crop_border=7, params=params_file) == niqe(
        image[7:-7, 7:-7], params=params_file
    )
    assert niqe(_uint8(image), params=params_file) == sharp


@pytest.mark.data
def test_niqe_tensor_path_matches_numpy(data_root: Path, params_file: Path) -> None:
    a = read_image(data_root / "Set14" / "HR" / "lenna.png").rgb[:, :200, :300]
    b = read_image(data_root / "Set14" / "HR" / "baboon.png").rgb[:, :200, :300]
    batch = torch.stack([a, b])
    values = niqe(batch, crop_border=4, params=params_file)
    assert values.shape == (2,)
    assert values.dtype == torch.float32
    for value, img in zip(values, (a, b), strict=True):
        ref = niqe(img.permute(1, 2, 0).numpy(), crop_border=4, params=params_file)
        assert float(value) == pytest.approx(ref, rel=1e-6)
    single = niqe(a, crop_border=4, params=params_file)
    assert single.ndim == 0
    assert float(single) == pytest.approx(float(values[0]))
    # One channel is a gray image: scored as three equal channels (its Y), the rule of every
    # metric here, numpy (H, W, 1) or tensor.
    gray = batch[:1, :1]
    as_rgb = gray.expand(1, 3, *gray.shape[-2:])
    assert float(niqe(gray, params=params_file)[0]) == pytest.approx(
        float(niqe(as_rgb, params=params_file)[0]), rel=1e-12
    )
    assert niqe(gray[0].permute(1, 2, 0).numpy(), params=params_file) == pytest.approx(
        float(niqe(as_rgb, params=params_file)[0]), rel=1e-6
    )
    # An (H, W) array is a luma plane: scored as given (MATLAB's computequality, BasicSR's 'HW').
    plane = gray[0, 0].numpy()
    assert niqe(plane, params=params_file) != pytest.approx(
        niqe(plane[..., None], params=params_file)
    )


@pytest.mark.data
def test_niqe_rejects_bad_inputs(params_file: Path) -> None:
    with pytest.raises(ImageTooSmallError, match="96x96"):
        niqe(np.zeros((100, 100, 3)), crop_border=4, params=params_file)
    with pytest.raises(InvalidImageError, match="shape"):
        niqe(np.zeros((100, 100, 4)), params=params_file)
    with pytest.raises(InvalidImageError, match="dtype"):
        niqe(np.zeros((100, 100), dtype=np.int32), params=params_file)
    with pytest.raises(InvalidImageError, match="floating-point"):
        niqe(torch.zeros(1, 3, 100, 100, dtype=torch.uint8), params=params_file)
    with pytest.raises(ValueError, match="crop_border"):
        niqe(np.zeros((100, 100)), crop_border=-1, params=params_file)


@pytest.mark.data
def test_constant_image_has_no_niqe(params_file: Path) -> None:
    assert math.isnan(niqe(np.full((192, 192), 0.5), params=params_file))


# --- parameter file errors ------------------------------------------------------------------------


def test_missing_params_file_says_what_to_provide(tmp_path: Path) -> None:
    with pytest.raises(AssetNotFoundError, match=NIQE_PARAMS.filename) as info:
        niqe(np.zeros((96, 96)), params=tmp_path / "nope.npz")
    assert "nope.npz' does not exist" in str(info.value)
    assert "superres assets get niqe/pristine" in str(info.value)


def test_default_params_not_here_raise_without_downloading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path))
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    with pytest.raises(AssetNotFoundError, match="superres assets get niqe/pristine") as info:
        niqe(np.zeros((96, 96)))
    assert NIQE_PARAMS.urls[0] in str(info.value)
    assert str(tmp_path / "data" / "niqe" / "niqe_pris_params.npz") in str(info.value)
    assert not (tmp_path / "hub").exists()  # nothing was downloaded


@pytest.mark.data
def test_default_params_come_from_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params_file: Path
) -> None:
    """With the official file in the cache, params=None needs no network and checks its hash."""
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path))
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    (tmp_path / "hub").mkdir()
    cached = tmp_path / "hub" / NIQE_PARAMS.filename
    cached.write_bytes(params_file.read_bytes())
    image = np.random.default_rng(2).random((192, 192))
    assert niqe(image) == niqe(image, params=params_file)
    cached.write_bytes(params_file.read_bytes() + b"tampered")
    with pytest.raises(ChecksumMismatchError, match="sha256"):
        niqe(image)


@pytest.mark.data
def test_invalid_params_files_are_named(tmp_path: Path, params_file: Path) -> None:
    with np.load(params_file) as p:
        arrays = dict(p)
    missing = tmp_path / "missing_key.npz"
    np.savez(missing, mu_pris_param=arrays["mu_pris_param"])
    with pytest.raises(InvalidAssetError, match="cov_pris_param"):
        niqe(np.zeros((96, 96)), params=missing)
    wrong = tmp_path / "wrong_shape.npz"
    np.savez(wrong, **{**arrays, "gaussian_window": np.ones((5, 5))})
    with pytest.raises(InvalidAssetError, match="gaussian_window"):
        niqe(np.zeros((96, 96)), params=wrong)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(InvalidAssetError, match="cannot read"):
        niqe(np.zeros((96, 96)), params=garbage)
