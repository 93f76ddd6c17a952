"""superres.metrics: full-reference image-quality metrics (MSE, RMSE, PSNR, SSIM, MS-SSIM)."""

from superres.metrics.fidelity import MS_SSIM_WEIGHTS, ms_ssim, mse, psnr, rmse, ssim

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim", "mse", "psnr", "rmse", "ssim"]
