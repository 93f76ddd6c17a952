"""Real-ESRGAN / BSRGAN degradations: kernels, stages, the torch JPEG against Pillow, pipelines.

Expectations come from outside the code under test: BasicSR's kernel formulas written out with
numpy (matrix inverse, not our rotated axes), scipy's Bessel function and its mirror-mode
correlation, Pillow's own JPEG encoder and decoder, and the statistics of the noise models.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, features

from superres.data.degradation_kernels import (
    anisotropic_gaussian,
    circular_lowpass,
    generalized_gaussian,
    plateau,
    random_mixed_kernels,
    random_sinc_kernels,
    shifted_gaussian,
)
from superres.data.degradation_ops import filter2d, gaussian_noise, poisson_noise
from superres.data.degradations import (
    DegradationConfig,
    DegradationStage,
    degrade,
    degrade_bsrgan,
)
from superres.errors import ConfigError, InvalidImageError
from superres.imaging.jpeg import jpeg_quality_tables, jpeg_roundtrip
from superres.io.samples import load_sample
from superres.training.config import recipe_from_checkpoint, recipe_from_dict

REPO = Path(__file__).resolve().parents[1]
SIZES = list(range(7, 22, 2))

# --- kernels ------------------------------------------------------------------------------------


def _basicsr_quadratic(size: int, sx: float, sy: float, theta: float) -> np.ndarray:
    """BasicSR's ``sigma_matrix2`` / ``mesh_grid`` / ``pdf2`` quadratic form, in numpy."""
    d = np.diag([sx**2, sy**2])
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv = np.linalg.inv(u @ d @ u.T)
    ax = np.arange(-size // 2 + 1.0, size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    grid = np.stack([xx, yy], -1)
    return np.sum((grid @ inv) * grid, -1)


@pytest.mark.parametrize("size", [7, 13, 21])
def test_kernel_families_match_basicsr_formulas(size: int) -> None:
    sx, sy, theta, beta = 2.3, 0.9, 0.7, 1.7
    q = _basicsr_quadratic(size, sx, sy, theta)
    cases = {
        "gaussian": (np.exp(-0.5 * q), anisotropic_gaussian),
        "generalized": (np.exp(-0.5 * q**beta), generalized_gaussian),
        "plateau": (1.0 / (q**beta + 1), plateau),
    }
    for name, (expected, build) in cases.items():
        kwargs = {"sigma_x": sx, "sigma_y": sy, "theta": theta}
        if name != "gaussian":
            kwargs["beta"] = beta
        got = build(size, **kwargs)[0].numpy()
        np.testing.assert_allclose(got, expected / expected.sum(), rtol=1e-10, atol=1e-14)


def test_sinc_kernel_matches_scipy_bessel() -> None:
    scipy_special = pytest.importorskip("scipy.special")
    size, cutoff = 15, 1.3
    c = (size - 1) / 2
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - c, y - c)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = cutoff * scipy_special.j1(cutoff * r) / (2 * np.pi * r)
    k[size // 2, size // 2] = cutoff**2 / (4 * np.pi)
    # torch.special.bessel_j1 is good to ~1e-8 absolute; the kernel values are ~1e-2.
    np.testing.assert_allclose(
        circular_lowpass(size, cutoff=cutoff)[0].numpy(), k / k.sum(), atol=1e-7
    )


@pytest.mark.parametrize("size", SIZES)
def test_every_kernel_sums_to_one_with_its_shape(size: int) -> None:
    sigma = torch.tensor([0.3, 1.0, 3.0])
    built = [
        anisotropic_gaussian(size, sigma_x=sigma, sigma_y=sigma * 0.5, theta=torch.tensor(1.0)),
        generalized_gaussian(size, sigma_x=sigma, sigma_y=sigma, beta=torch.tensor(0.5)),
        plateau(size, sigma_x=sigma, sigma_y=sigma, beta=2.0),
        circular_lowpass(size, cutoff=torch.tensor([0.7, 1.5, 3.0])),
    ]
    for k in built:
        assert k.shape == (3, size, size)
        torch.testing.assert_close(k.sum(dim=(1, 2)), torch.ones(3, dtype=torch.float64))


def test_isotropic_kernels_are_symmetric_and_anisotropic_ones_follow_their_axes() -> None:
    for k in (
        anisotropic_gaussian(15, sigma_x=2.0, sigma_y=2.0)[0],
        generalized_gaussian(15, sigma_x=2.0, sigma_y=2.0, beta=3.0)[0],
        plateau(15, sigma_x=1.5, sigma_y=1.5, beta=1.2)[0],
        circular_lowpass(15, cutoff=1.0)[0],
    ):
        torch.testing.assert_close(k, k.T)
        torch.testing.assert_close(k, k.flip(0))
        torch.testing.assert_close(k, k.flip(1))
    # sigma_x = 2 along the columns (x), 0.8 along the rows: the spreads are the sigmas.
    k = anisotropic_gaussian(21, sigma_x=2.0, sigma_y=0.8)[0]
    ax = torch.arange(21, dtype=torch.float64) - 10
    assert math.isclose(float((k.sum(0) * ax**2).sum()), 4.0, rel_tol=1e-3)
    assert math.isclose(float((k.sum(1) * ax**2).sum()), 0.64, rel_tol=1e-3)
    # Rotated by 90 degrees, the long axis is vertical.
    rotated = anisotropic_gaussian(21, sigma_x=2.0, sigma_y=0.8, theta=math.pi / 2)[0]
    torch.testing.assert_close(rotated, k.T)


@pytest.mark.parametrize("cutoff", [math.pi / 4, math.pi / 2])
def test_sinc_kernel_spectrum_is_low_pass(cutoff: float) -> None:
    k = circular_lowpass(21, cutoff=cutoff)[0]
    spectrum = torch.fft.fftshift(torch.fft.fft2(k, s=(256, 256))).abs()
    w = (torch.arange(256, dtype=torch.float64) - 128) * (2 * math.pi / 256)
    radius = torch.sqrt(w[:, None] ** 2 + w[None, :] ** 2)
    passband = spectrum[radius < 0.7 * cutoff]
    stopband = spectrum[(radius > 1.3 * cutoff) & (radius < math.pi)]
    assert 0.9 < float(passband.mean()) < 1.1
    assert float(stopband.mean()) < 0.05
    assert float(stopband.max()) < 0.2  # truncation ripples only


def test_random_kernels_are_seeded_sized_and_normalised() -> None:
    a = random_mixed_kernels(64, generator=torch.Generator().manual_seed(1))
    b = random_mixed_kernels(64, generator=torch.Generator().manual_seed(1))
    c = random_mixed_kernels(64, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert a.shape == (64, 21, 21)
    torch.testing.assert_close(a.sum(dim=(1, 2)), torch.ones(64, dtype=torch.float64))
    rows = (a.abs() > 0).any(dim=2)
    support = rows.sum(dim=1)  # the odd size each kernel was drawn with
    assert set(support.tolist()) <= set(SIZES)
    assert len(set(support.tolist())) > 3
    iso = random_mixed_kernels(
        16, generator=torch.Generator().manual_seed(3), kernel_list=("iso",), kernel_prob=(1.0,)
    )
    torch.testing.assert_close(iso, iso.transpose(1, 2))
    impulse = random_sinc_kernels(4, generator=torch.Generator().manual_seed(0), prob=0.0)
    assert torch.equal(impulse[:, 10, 10], torch.ones(4, dtype=torch.float64))
    assert float(impulse.sum()) == 4.0


def test_shifted_gaussian_centres_the_subsampled_cells() -> None:
    k = shifted_gaussian(25, sigma=1.0, shift=1.5)[0]
    ax = torch.arange(25, dtype=torch.float64) - 12
    assert math.isclose(float((k.sum(0) * ax).sum()), 1.5, abs_tol=1e-9)
    assert math.isclose(float((k.sum(1) * ax).sum()), 1.5, abs_tol=1e-9)


# --- stages -------------------------------------------------------------------------------------


def test_filter2d_is_scipy_mirror_correlation_per_image() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(2, 3, 30, 26, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernels = torch.stack(
        [
            anisotropic_gaussian(9, sigma_x=2.0, sigma_y=0.7, theta=0.4)[0],
            plateau(9, sigma_x=1.0, sigma_y=1.0, beta=1.5)[0],
        ]
    )
    got = filter2d(x, kernels)
    for i in range(2):
        for ch in range(3):
            ref = ndimage.correlate(x[i, ch].numpy(), kernels[i].numpy(), mode="mirror")
            np.testing.assert_allclose(got[i, ch].numpy(), ref, atol=1e-12)


def test_gaussian_noise_has_the_requested_sigma_and_channels() -> None:
    image = torch.zeros(2, 3, 256, 256)
    field = gaussian_noise(
        image,
        sigma=torch.tensor([10.0, 25.0]),
        gray=torch.tensor([False, True]),
        generator=torch.Generator().manual_seed(0),
    )
    assert math.isclose(float(field[0].std()), 10 / 255, rel_tol=0.01)
    assert math.isclose(float(field[1].std()), 25 / 255, rel_tol=0.01)
    assert abs(float(field[0].mean())) < 1e-3
    assert torch.equal(field[1, 0], field[1, 2])  # gray: one field in all channels
    corr = torch.corrcoef(field[0].reshape(3, -1))
    assert float((corr - torch.eye(3)).abs().max()) < 0.02  # colour: independent channels


def test_poisson_noise_variance_follows_brightness() -> None:
    # 256 distinct levels -> v = 256 photons per unit: variance scale^2 * x / 256.
    g = torch.Generator().manual_seed(0)
    levels = torch.randint(0, 256, (1, 3, 256, 256), generator=g).float() / 255
    levels[0, 0, 0, :256] = torch.arange(256) / 255
    scale = 2.0
    field = poisson_noise(
        levels, scale=torch.tensor([scale]), gray=torch.tensor([False]), generator=g
    )
    for lo, hi in ((0.1, 0.3), (0.6, 0.9)):
        band = (levels >= lo) & (levels < hi)
        expected = scale**2 * float(levels[band].mean()) / 256
        assert math.isclose(float(field[band].var()), expected, rel_tol=0.05)
    assert abs(float(field.mean())) < 1e-3


# --- the torch JPEG against Pillow --------------------------------------------------------------


def _pillow_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=2)
    return np.asarray(Image.open(buf).convert("RGB")).astype(np.int64)


def _ours(rgb: np.ndarray, quality: int) -> np.ndarray:
    x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None].double() / 255
    return (jpeg_roundtrip(x, quality)[0].numpy().transpose(1, 2, 0) * 255).round().astype(np.int64)


def _photos(data_root: Path | None) -> list[np.ndarray]:
    photos = [np.asarray(load_sample("chelsea").rgb.mul(255).round().byte().permute(1, 2, 0))]
    if data_root is not None:
        hr = data_root / "Set5" / "HR"
        photos += [np.asarray(Image.open(hr / f"{n}.png").convert("RGB")) for n in ("baby", "bird")]
    return [np.ascontiguousarray(p[:241, :250]) for p in photos]  # odd, not MCU-aligned


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    from conftest import find_data_root

    root = find_data_root()
    return _photos(root if root is not None and (root / "Set5").is_dir() else None)


@pytest.mark.parametrize("quality", [30, 60, 90])
def test_jpeg_matches_pillow_on_photos(photos: list[np.ndarray], quality: int) -> None:
    for rgb in photos:
        diff = np.abs(_ours(rgb, quality) - _pillow_jpeg(rgb, quality))
        # The acceptance statistics; with libjpeg-turbo both are 0 (see the exact test below).
        assert diff.mean() < 0.5, f"mean abs diff {diff.mean():.4f} at q{quality}"
        assert (diff > 1).mean() < 1e-3, f"{(diff > 1).mean():.5f} of pixels off by > 1"


@pytest.mark.skipif(
    not features.check_feature("libjpeg_turbo"), reason="exactness is libjpeg-turbo's islow"
)
def test_jpeg_is_pixel_identical_to_pillow_at_any_size_and_quality(
    photos: list[np.ndarray],
) -> None:
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (2, 3), (3, 3), (4, 5), (8, 8), (9, 17), (16, 16), (17, 31), (40, 23)]:
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for quality in (1, 10, 50, 75, 95, 100):
            np.testing.assert_array_equal(
                _ours(rgb, quality), _pillow_jpeg(rgb, quality), f"{h}x{w} q{quality}"
            )
    for rgb in photos:
        crop = np.ascontiguousarray(rgb[:203, :157])
        np.testing.assert_array_equal(_ours(crop, 45), _pillow_jpeg(crop, 45))


def test_jpeg_tables_are_the_ones_pillow_writes() -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    qualities = torch.arange(1, 101)
    luma, chroma = jpeg_quality_tables(qualities)
    for q in (1, 7, 25, 49, 50, 51, 80, 99, 100):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=q, subsampling=2)
        tables = getattr(Image.open(buf), "quantization")  # noqa: B009 (JpegImageFile only)
        assert list(tables[0]) == luma[q - 1].flatten().tolist()
        assert list(tables[1]) == chroma[q - 1].flatten().tolist()


def test_jpeg_batches_per_image_qualities_and_refuses_bad_ones() -> None:
    x = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    batch = jpeg_roundtrip(x, [20, 50, 90])
    for i, q in enumerate((20, 50, 90)):
        assert torch.equal(batch[i : i + 1], jpeg_roundtrip(x[i : i + 1], q))
    with pytest.raises(InvalidImageError, match=r"1\.\.100"):
        jpeg_roundtrip(x, 0)
    with pytest.raises(InvalidImageError, match="one per image"):
        jpeg_roundtrip(x, [50, 60])
    with pytest.raises(InvalidImageError, match="whole numbers"):
        jpeg_roundtrip(x, 50.5)  # type: ignore[arg-type]


# --- pipelines ----------------------------------------------------------------------------------

PIPELINES = [degrade, degrade_bsrgan]


@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    """Three 64x64 crops of a photo (float32, RGB, [0, 1])."""
    cat = load_sample("chelsea").rgb
    return torch.stack([cat[:, 40:104, 60:124], cat[:, 120:184, 200:264], cat[:, 200:264, 300:364]])


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("pipeline", PIPELINES, ids=["realesrgan", "bsrgan"])
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_output_shape_dtype_and_8bit_levels(pipeline, hr: torch.Tensor, scale: int) -> None:
    lq = pipeline(hr, scale=scale, generator=_gen(scale))
    assert lq.shape == (3, 3, 64 // scale, 64 // scale)
    assert lq.dtype == torch.float32
    assert float(lq.min()) >= 0.0
    assert float(lq.max()) <= 1.0
    torch.testing.assert_close(lq * 255, (lq * 255).round(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("pipeline", PIPELINES, ids=["realesrgan", "bsrgan"])
def test_same_seed_same_output_other_seed_other_output(pipeline, hr: torch.Tensor) -> None:
    a = pipeline(hr, scale=4, generator=_gen(7))
    assert torch.equal(a, pipeline(hr, scale=4, generator=_gen(7)))
    assert not torch.equal(a, pipeline(hr, scale=4, generator=_gen(8)))


@pytest.mark.parametrize("pipeline", PIPELINES, ids=["realesrgan", "bsrgan"])
def test_batch_elements_are_independent(pipeline, hr: torch.Tensor) -> None:
    ab = pipeline(hr[[0, 1]], scale=4, generator=_gen(3))
    ac = pipeline(hr[[0, 2]], scale=4, generator=_gen(3))
    assert torch.equal(ab[0], ac[0])  # image 0 depends on image 0 and the seed only
    twins = pipeline(hr[[0, 0, 0]], scale=4, generator=_gen(3))
    assert not torch.equal(twins[0], twins[1])
    assert not torch.equal(twins[1], twins[2])


def test_degradation_actually_degrades(hr: torch.Tensor) -> None:
    from superres.imaging.resize import imresize

    bicubic = imresize(hr, scale=0.25)
    lq = degrade(hr.repeat(4, 1, 1, 1), scale=4, generator=_gen(0))
    diff = (lq - bicubic.repeat(4, 1, 1, 1)).abs().mean(dim=(1, 2, 3))
    assert bool((diff > 2 / 255).all()), diff  # every image visibly changed, not just rounded


def _noise_free() -> DegradationConfig:
    c = DegradationConfig()
    quiet = {"noise_range": (0.0, 0.0), "poisson_scale_range": (0.0, 0.0)}
    return DegradationConfig(
        first=dataclasses.replace(c.first, **quiet), second=dataclasses.replace(c.second, **quiet)
    )


def _devices() -> list:
    cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
    return [
        pytest.param("cpu", torch.float64, id="cpu-float64"),
        pytest.param("cuda", torch.float32, id="cuda-float32", marks=cuda),
    ]


@pytest.mark.parametrize(("device", "dtype"), _devices())
def test_pipeline_agrees_across_dtypes_and_devices(
    hr: torch.Tensor, device: str, dtype: torch.dtype
) -> None:
    """The CPU float32 result as the reference; float64 (and CUDA where there is one) must
    agree up to rounding flips. On CUDA the noise fields come from CUDA's generator, so the
    comparison there runs without noise; the parameter draws are the same on every device."""
    config = DegradationConfig() if device == "cpu" else _noise_free()
    reference = degrade(hr, scale=4, config=config, generator=_gen(5))
    other = degrade(hr.to(device, dtype), scale=4, config=config, generator=_gen(5))
    assert other.device.type == device
    assert other.dtype == dtype
    diff = (other.cpu().float() - reference).abs() * 255
    assert float(diff.mean()) < 0.25
    assert float((diff > 1.5).float().mean()) < 0.01
    assert torch.equal(
        jpeg_roundtrip(hr.to(device, dtype), 40).cpu().float(), jpeg_roundtrip(hr, 40)
    )


# --- configuration ------------------------------------------------------------------------------


def test_config_defaults_are_real_esrgans_published_options() -> None:
    """``options/train_realesrgan_x4plus.yml``'s values, stage by stage."""
    c = DegradationConfig()
    # iso, aniso, generalized_iso, generalized_aniso, plateau_iso, plateau_aniso
    kernels = (
        "iso",
        "aniso",
        *(f"{k}_{s}" for k in ("generalized", "plateau") for s in ("iso", "aniso")),
    )
    published = {
        "blur_prob": (1.0, 0.8),  # stage 1 always blurs; stage 2 with second_blur_prob
        "kernel_list": (kernels, kernels),
        "kernel_prob": ((0.45, 0.25, 0.12, 0.03, 0.12, 0.03),) * 2,
        "sinc_prob": (0.1, 0.1),
        "blur_sigma": ((0.2, 3.0), (0.2, 1.5)),
        "betag_range": ((0.5, 4.0), (0.5, 4.0)),
        "betap_range": ((1.0, 2.0), (1.0, 2.0)),
        "resize_prob": ((0.2, 0.7, 0.1), (0.3, 0.4, 0.3)),
        "resize_range": ((0.15, 1.5), (0.3, 1.2)),
        "gaussian_noise_prob": (0.5, 0.5),
        "noise_range": ((1.0, 30.0), (1.0, 25.0)),
        "poisson_scale_range": ((0.05, 3.0), (0.05, 2.5)),
        "gray_noise_prob": (0.4, 0.4),
        "jpeg_range": ((30, 95), (30, 95)),
    }
    assert set(published) == {f.name for f in dataclasses.fields(DegradationStage)}
    for name, (first, second) in published.items():
        assert getattr(c.first, name) == first, name
        assert getattr(c.second, name) == second, name
    assert c.first == DegradationStage()  # a stage's own defaults are the first stage's
    assert (c.pipeline, c.kernel_size_range, c.final_sinc_prob) == ("realesrgan", (7, 21), 0.8)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"noise_range": (30.0, 1.0)}, "noise_range: got .*low <= high"),
        ({"jpeg_range": (0, 95)}, "jpeg_range: .*1..100"),
        ({"resize_range": (0.5, 0.9)}, "resize_range: .*low <= 1 <= high"),
        ({"kernel_prob": (0.5, 0.5, 0.5, 0.0, 0.0, 0.0)}, "kernel_prob: .*sum to 1"),
        ({"kernel_list": ("iso",)}, "same length"),
        ({"blur_prob": 1.5}, "blur_prob: got 1.5"),
        ({"gray_noise_prob": -0.1}, "gray_noise_prob: got -0.1"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma: .*above 0"),
        ({"poisson_scale_range": (-1.0, 1.0)}, "poisson_scale_range: .*0 or more"),
    ],
)
def test_stage_refuses_bad_values_naming_them(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DegradationStage(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kernel_size_range": (6, 21)}, "kernel_size_range: .*odd"),
        ({"kernel_size_range": (21, 7)}, "kernel_size_range: .*low <= high"),
        ({"final_sinc_prob": 1.5}, "final_sinc_prob: got 1.5"),
    ],
)
def test_config_refuses_bad_values_naming_them(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DegradationConfig(**changes)


def _recipe(degradation: object) -> dict:
    data = yaml.safe_load((REPO / "configs" / "srresnet_x4.yaml").read_text())
    data["data"]["degradation"] = degradation
    return data


def test_recipe_section_validates_its_options() -> None:
    with pytest.raises(
        ConfigError, match=r"data\.degradation: unknown key 'nois_range'.*kernel_size_range"
    ):
        recipe_from_dict(_recipe({"nois_range": [1, 2]}))
    with pytest.raises(
        ConfigError, match=r"data\.degradation\.second: unknown key 'noise_rang'.*noise_range"
    ):
        recipe_from_dict(_recipe({"second": {"noise_rang": [1, 2]}}))
    with pytest.raises(ConfigError, match=r"data.degradation.first.kernel_list\[0\]: got 'gauss'"):
        recipe_from_dict(_recipe({"first": {"kernel_list": ["gauss"], "kernel_prob": [1.0]}}))
    with pytest.raises(ConfigError, match=r"data\.degradation\.second: jpeg_range: .*1\.\.100"):
        recipe_from_dict(_recipe({"second": {"jpeg_range": [10, 120]}}))
    with pytest.raises(ConfigError, match=r"data\.degradation\.first: expected a mapping"):
        recipe_from_dict(_recipe({"first": [1, 2]}))
    assert recipe_from_dict(_recipe(None)).data.degradation is None


def test_recipe_stage_keeps_the_stages_own_defaults() -> None:
    """``second: {noise_range: ...}`` changes that value only: the rest stays stage 2's."""
    chosen = recipe_from_dict(
        _recipe({"second": {"noise_range": [1, 20]}, "first": {}, "pipeline": "bsrgan"})
    ).data.degradation
    assert chosen is not None
    assert chosen.pipeline == "bsrgan"
    assert chosen.first == DegradationStage()
    assert chosen.second.noise_range == (1.0, 20.0)
    assert chosen.second.blur_sigma == (0.2, 1.5)  # stage 2's value, not the class default
    assert chosen.second.blur_prob == 0.8
    assert chosen.second.resize_range == (0.3, 1.2)
    assert chosen.second.poisson_scale_range == (0.05, 2.5)
    assert recipe_from_dict(_recipe({})).data.degradation == DegradationConfig()


def test_checkpoint_with_flat_stage_keys_reads_as_it_was_trained() -> None:
    """A checkpoint's recipe from before the stages were nested: ``...2`` and
    ``second_blur_prob`` are stage 2's, the other stage keys stage 1's."""
    flat = {
        "pipeline": "realesrgan",
        "kernel_size_range": [7, 15],
        "noise_range": [1, 10],
        "jpeg_range": [40, 95],
        "noise_range2": [2, 5],
        "kernel_list2": ["iso"],
        "kernel_prob2": [1.0],
        "second_blur_prob": 0.5,
        "final_sinc_prob": 0.3,
    }
    text = yaml.safe_dump(_recipe(flat))
    config = recipe_from_checkpoint(text, source="recipe.yaml").data.degradation
    assert config is not None
    assert (config.pipeline, config.kernel_size_range, config.final_sinc_prob) == (
        "realesrgan",
        (7, 15),
        0.3,
    )
    assert config.first == DegradationStage(noise_range=(1.0, 10.0), jpeg_range=(40, 95))
    assert config.second.noise_range == (2.0, 5.0)
    assert config.second.kernel_list == ("iso",)
    assert config.second.kernel_prob == (1.0,)
    assert config.second.blur_prob == 0.5
    assert config.second.blur_sigma == (0.2, 1.5)
    assert config.second.jpeg_range == (30, 95)


def test_second_stage_blurs_with_its_probability(hr: torch.Tensor) -> None:
    """With ``second.blur_prob`` 0 the second kernel's width cannot matter; with 1 it does (the
    draws of everything else are the same either way)."""
    c = DegradationConfig()

    def lr(blur_prob: float, blur_sigma: tuple[float, float]) -> torch.Tensor:
        stage = dataclasses.replace(c.second, blur_prob=blur_prob, blur_sigma=blur_sigma)
        config = DegradationConfig(second=stage)
        return degrade(hr, scale=4, config=config, generator=_gen(2))

    assert torch.equal(lr(0.0, (0.2, 0.3)), lr(0.0, (2.5, 3.0)))
    assert not torch.equal(lr(1.0, (0.2, 0.3)), lr(1.0, (2.5, 3.0)))


def test_pipelines_refuse_bad_input(hr: torch.Tensor) -> None:
    for pipeline in PIPELINES:
        assert pipeline(hr[:0], scale=4, generator=_gen(0)).shape == (0, 3, 16, 16)
    with pytest.raises(InvalidImageError, match="multiple of scale 3"):
        degrade(hr, scale=3, generator=_gen(0))
    with pytest.raises(InvalidImageError, match=r"\[0, 1\]"):
        degrade_bsrgan(hr * 2, scale=2, generator=_gen(0))
    with pytest.raises(InvalidImageError, match=r"\(N, 3, H, W\)"):
        degrade(hr[:, :1], scale=2, generator=_gen(0))
