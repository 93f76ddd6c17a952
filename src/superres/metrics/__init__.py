"""superres.metrics: full-reference image-quality metrics (MSE, RMSE, PSNR, SSIM, MS-SSIM, LPIPS)
and the no-reference NIQE."""

from superres.metrics.fidelity import MS_SSIM_WEIGHTS, ms_ssim, mse, psnr, rmse, ssim
from superres.metrics.lpips import LPIPS, LpipsWeightsError, TrunkWeightsNotFoundError, lpips
from superres.metrics.niqe import NiqeParamsError, load_niqe_params, niqe

__all__ = [
    "LPIPS",
    "MS_SSIM_WEIGHTS",
    "LpipsWeightsError",
    "NiqeParamsError",
    "TrunkWeightsNotFoundError",
    "load_niqe_params",
    "lpips",
    "ms_ssim",
    "mse",
    "niqe",
    "psnr",
    "rmse",
    "ssim",
]
