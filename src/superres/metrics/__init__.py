"""superres.metrics: full-reference image-quality metrics (MSE, RMSE, PSNR, SSIM, MS-SSIM) and the
no-reference NIQE."""

from superres.metrics.fidelity import MS_SSIM_WEIGHTS, ms_ssim, mse, psnr, rmse, ssim
from superres.metrics.niqe import NiqeParamsError, load_niqe_params, niqe

__all__ = [
    "MS_SSIM_WEIGHTS",
    "NiqeParamsError",
    "load_niqe_params",
    "ms_ssim",
    "mse",
    "niqe",
    "psnr",
    "rmse",
    "ssim",
]
