"""Ma et al.'s no-reference SR quality metric ("Ma", NRQM).

Chao Ma, Chih-Yuan Yang, Xiaokang Yang and Ming-Hsuan Yang, "Learning a no-reference quality
metric for single-image super-resolution", Computer Vision and Image Understanding 158 (2017)
1-16. The score predicts the mean opinion (0-10) of an SR image; higher is better. PIRM 2018's
Perceptual Index combines it with NIQE (:mod:`superres.metrics.pi`).

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

import math
import os

import numpy as np

from superres.errors import ImageTooSmallError, InvalidImageError
from superres.imaging.resize import Edge
from superres.metrics.kinds import Image, Score, single_image
from superres.metrics.luma import as_output, check_crop_border, checked_lumas, luma_255
from superres.metrics.nrqm_blocks import block_dct_features, gaussian_half, patch_singular_values
from superres.metrics.nrqm_model import (
    MA_FEATURE_SIZES,
    MaFeatures,
    MaModel,
    RegressionForest,
    load_ma_model,
)
from superres.metrics.nrqm_pyramid import FlatBandError, gsm_features

__all__ = [
    "MA_FEATURE_SIZES",
    "MaFeatures",
    "MaModel",
    "RegressionForest",
    "check_imresize_border",
    "check_ma_size",
    "features_of_luma",
    "load_ma_model",
    "ma_features",
    "ma_score",
]

ImresizeBorder = Edge
_BORDERS = ("replicate", "mirror")


def features_of_luma(gray: np.ndarray, border: ImresizeBorder) -> MaFeatures | None:
    """``feature_all.m`` on an integer-valued float64 gray image (0-255); None if undefined."""
    im1 = gray / 255.0
    im2 = gaussian_half(im1)
    im3 = gaussian_half(im2)
    scales = (im1, im2, im3)
    dct = np.array([v for im in scales for v in block_dct_features(im)])
    svd = np.concatenate([patch_singular_values(im) for im in scales])
    try:
        gsm = gsm_features(gray, border)
    except FlatBandError:
        return None
    return MaFeatures(dct=dct, gsm=gsm, svd=svd)


# --- inputs ---------------------------------------------------------------------------------------


def check_imresize_border(border: object) -> ImresizeBorder:
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


def check_ma_size(gray: np.ndarray, crop_border: int, name: str) -> None:
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
    border = check_imresize_border(imresize_border)
    if not isinstance(image, np.ndarray):
        raise InvalidImageError(
            f"ma_features expects a numpy array (H, W[, C]); got a {type(image).__name__}. "
            "Convert first, e.g. tensor.permute(1, 2, 0).numpy()."
        )
    gray = luma_255(image, crop_border, "ma_features")
    check_ma_size(gray, crop_border, "ma_features")
    features = features_of_luma(gray, border)
    if features is None:
        raise InvalidImageError(
            "ma_features: a steerable-pyramid band of this image is exactly zero (e.g. an "
            "all-black image), so its divisive normalisation is undefined (MATLAB's code fails "
            "there too)."
        )
    return features


@single_image
def ma_score(
    image: Image,
    *,
    crop_border: int = 0,
    model: str | os.PathLike[str] | MaModel | None = None,
    imresize_border: ImresizeBorder = "replicate",
) -> Score:
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
    border = check_imresize_border(imresize_border)
    grays = checked_lumas(image, crop_border, "ma_score", check_ma_size)
    trained = load_ma_model(model)
    values = []
    for gray in grays:
        features = features_of_luma(gray, border)
        values.append(math.nan if features is None else trained.predict(features))
    return as_output(values, image)
