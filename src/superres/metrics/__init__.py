"""superres.metrics: full-reference image-quality metrics (MSE, RMSE, PSNR, SSIM, MS-SSIM, LPIPS)
and the no-reference NIQE, Ma et al.'s score and PIRM's Perceptual Index."""

from superres.metrics.fidelity import MS_SSIM_WEIGHTS, ms_ssim, mse, psnr, rmse, ssim
from superres.metrics.lpips import LPIPS, lpips
from superres.metrics.niqe import load_niqe_params, niqe
from superres.metrics.nrqm import ma_features, ma_score
from superres.metrics.nrqm_model import MaFeatures, MaModel, load_ma_model
from superres.metrics.pi import perceptual_index

__all__ = [
    "LPIPS",
    "MS_SSIM_WEIGHTS",
    "MaFeatures",
    "MaModel",
    "load_ma_model",
    "load_niqe_params",
    "lpips",
    "ma_features",
    "ma_score",
    "ms_ssim",
    "mse",
    "niqe",
    "perceptual_index",
    "psnr",
    "rmse",
    "ssim",
]
