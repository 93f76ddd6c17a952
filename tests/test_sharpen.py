"""USM sharpening (Real-ESRGAN's sharpened targets) against OpenCV's Gaussian blur."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from superres.errors import InvalidImageError
from superres.imaging.sharpen import gaussian_kernel_1d, usm_sharpen
from superres.io import read_image


def _reference(img: np.ndarray, weight: float = 0.5, radius: int = 50, threshold: float = 10):
    """The published numpy formula (HWC float32 in [0, 1]), built on cv2.GaussianBlur."""
    if radius % 2 == 0:
        radius += 1
    blur = cv2.GaussianBlur(img, (radius, radius), 0)
    residual = img - blur
    mask = (np.abs(residual) * 255 > threshold).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (radius, radius), 0)
    sharp = np.clip(img + weight * residual, 0, 1)
    return soft * sharp + (1 - soft) * img


def _gradient_energy(a: np.ndarray) -> float:
    return float(np.abs(np.diff(a, axis=0)).sum())


def test_kernel_is_opencvs() -> None:
    for size in (3, 7, 21, 51):
        expected = cv2.getGaussianKernel(size, 0).ravel()
        np.testing.assert_allclose(gaussian_kernel_1d(size).numpy(), expected, atol=1e-7)
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel_1d(50)


@pytest.mark.parametrize("radius", [50, 7])
def test_matches_the_published_formula_on_a_real_image(data_root: Path, radius: int) -> None:
    hr = read_image(data_root / "Set5" / "HR" / "baby.png").rgb[:, :120, :96]
    img = np.ascontiguousarray(hr.permute(1, 2, 0).numpy().astype(np.float32))
    ours = usm_sharpen(hr[None], radius=radius)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, _reference(img, radius=radius), atol=2e-5)
    assert ours.min() >= 0
    assert ours.max() <= 1
    # It sharpens: more gradient energy than the input.
    assert _gradient_energy(ours) > 1.05 * _gradient_energy(img)


def test_flat_and_batched_inputs() -> None:
    flat = torch.full((2, 3, 40, 40), 0.4)
    torch.testing.assert_close(usm_sharpen(flat), flat)
    rng = torch.Generator().manual_seed(0)
    batch = torch.rand(3, 3, 40, 36, generator=rng)
    one_by_one = torch.cat([usm_sharpen(batch[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(usm_sharpen(batch), one_by_one)
    assert usm_sharpen(batch.double()).dtype == torch.float64


def test_bad_inputs_are_one_line_errors() -> None:
    with pytest.raises(InvalidImageError, match="sides over 25 px"):
        usm_sharpen(torch.rand(1, 3, 20, 64))
    with pytest.raises(InvalidImageError, match=r"float \(N, C, H, W\)"):
        usm_sharpen(torch.rand(3, 40, 40))
