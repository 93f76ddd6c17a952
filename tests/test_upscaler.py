"""The Upscaler and ``superres.upscale``: alpha, gray, 16-bit, outscale, precision, memory, API."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import superres
from superres.errors import InvalidImageError, SuperresError
from superres.imaging import imresize
from superres.imaging.backprojection import reconstruction_error
from superres.inference import TileMemoryError, UpscaleOptions, Upscaler, load_model
from superres.inference.options import TileArg
from superres.inference.tiling import InvalidTilingError, plan_tiles
from superres.inference.upscaler import CPU_MAX_TILE, CPU_TILE_MEMORY, estimate_activation_bytes
from superres.io import ImageData, read_image, write_image
from superres.models import create_model
from superres.models.descriptor import describe_network
from superres.runtime import PrecisionError


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _image(rgb: torch.Tensor, alpha: torch.Tensor | None = None, **kw: object) -> ImageData:
    fields: dict = {"bit_depth": 8, "grayscale": False, "mode": "RGB", "format": None}
    fields.update(kw)
    return ImageData(rgb=rgb, alpha=alpha, **fields)


@pytest.mark.parametrize("tile", [None, 16, "auto"])
def test_bicubic_upscaler_is_matlab_bicubic_tiled_or_not(tile: TileArg) -> None:
    x = _rand(3, 37, 53)
    up = Upscaler(
        create_model("bicubic", scale=3), options=UpscaleOptions(device="cpu", tile=tile, overlap=8)
    )
    out = up(x)
    expected = imresize(x, scale=3.0).clamp(0, 1)
    assert out.shape == (3, 111, 159)
    assert float((out - expected).abs().max()) < 1e-5


@pytest.mark.parametrize("terminal", [True, False])
def test_the_tile_bar_draws_on_a_terminal_only(
    terminal: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pipe or a log file gets no carriage-return residue (nor one left by a Ctrl-C)."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: terminal)
    options = UpscaleOptions(device="cpu", tile=16, overlap=4, progress=True)
    Upscaler(create_model("bicubic", scale=2), options=options)(_rand(3, 40, 40))
    assert ("tiles" in capsys.readouterr().err) is terminal


def test_premultiplied_alpha_keeps_junk_colour_out_of_visible_edges() -> None:
    h, w = 12, 16
    alpha = torch.zeros(1, h, w)
    alpha[..., : w // 2] = 1.0  # left half opaque, right half fully transparent
    red = torch.zeros(3, h, w)
    red[0] = 1.0
    junk = red.clone()
    junk[:, :, w // 2 :] = torch.tensor([0.0, 1.0, 0.0])[:, None, None]  # green under alpha 0
    black = red.clone()
    black[:, :, w // 2 :] = 0.0
    up = Upscaler(create_model("bicubic", scale=4), options=UpscaleOptions(device="cpu", tile=None))
    with_junk = up(_image(junk, alpha, mode="RGBA"))
    with_black = up(_image(black, alpha, mode="RGBA"))
    assert with_junk.alpha is not None
    visible = with_junk.alpha[0] >= 1 / 255
    # The hidden colour changes nothing visible ...
    diff = (with_junk.rgb - with_black.rgb).abs()[:, visible]
    assert float(diff.max()) <= 1 / 255
    # ... and the opaque edge stays pure red: no green (or dark) fringe.
    assert float(with_junk.rgb[1][visible].max()) <= 1 / 255
    assert float(with_junk.rgb[0][visible].min()) >= 1 - 1 / 255
    # Without premultiplication the junk would bleed in: the reference shows what is avoided.
    naive = imresize(junk, scale=4.0).clamp(0, 1)
    assert float(naive[1][visible].max()) > 0.1


def test_opaque_alpha_is_kept_and_not_premultiplied() -> None:
    x = _rand(3, 8, 8)
    up = Upscaler(create_model("bicubic", scale=2), options=UpscaleOptions(device="cpu"))
    out = up(_image(x, torch.ones(1, 8, 8), mode="RGBA"))
    assert out.alpha is not None
    assert torch.allclose(out.alpha, torch.ones(1, 16, 16), atol=1e-6)
    assert torch.allclose(out.rgb, up(x), atol=1e-6)


def test_gray_stays_gray_for_rgb_and_y_models() -> None:
    gray = _rand(1, 10, 12)
    for model in (
        create_model("srresnet", scale=2, num_features=8, num_blocks=1),
        create_model("srcnn", scale=2, num_features=(8, 4)),  # in_channels = 1: runs on Y
    ):
        up = Upscaler(model, options=UpscaleOptions(device="cpu"))
        out = up(_image(gray.expand(3, -1, -1), grayscale=True, mode="L"))
        assert out.grayscale
        assert torch.equal(out.rgb[0], out.rgb[1])
        assert torch.equal(out.rgb[0], out.rgb[2])
        assert up(gray).shape == (1, 20, 24)  # a 1-channel tensor comes back with 1 channel
        assert up(torch.cat([gray, gray])).shape == (2, 20, 24)  # gray + alpha


def test_y_model_on_colour_upscales_luma_with_the_model_and_chroma_with_bicubic() -> None:
    x = _rand(3, 10, 12)
    bicubic_y = create_model("bicubic", scale=2, in_channels=1)
    out = Upscaler(bicubic_y, options=UpscaleOptions(device="cpu"))(x)
    # Bicubic on Y and on chroma is bicubic on RGB (the transform is affine).
    assert float((out - imresize(x, scale=2.0).clamp(0, 1)).abs().max()) < 1e-5


def test_sixteen_bit_precision_is_kept(tmp_path: Path) -> None:
    src = tmp_path / "deep.png"
    values = np.random.default_rng(0).integers(0, 65536, (6, 7, 3), dtype=np.uint16)
    write_image(
        src, torch.from_numpy(values.transpose(2, 0, 1).astype(np.float32) / 65535), bit_depth=16
    )
    image = read_image(src)
    out = Upscaler(create_model("bicubic", scale=2), options=UpscaleOptions(device="cpu"))(image)
    assert out.bit_depth == 16
    on_8bit_grid = torch.round(out.rgb * 255) / 255
    assert float((out.rgb - on_8bit_grid).abs().max()) > 1e-4  # finer than 8 bits


@pytest.mark.parametrize(
    ("size", "outscale", "expected"),
    [
        ((10, 13), 3.5, (35, 46)),
        ((9, 9), 3.5, (32, 32)),
        ((10, 13), 2.0, (20, 26)),
        ((8, 8), 0.5, (4, 4)),
    ],
)
def test_outscale_gives_any_final_size(
    size: tuple[int, int], outscale: float, expected: tuple[int, int]
) -> None:
    x = _rand(3, *size)
    up = Upscaler(
        create_model("bicubic", scale=4), options=UpscaleOptions(device="cpu", outscale=outscale)
    )
    assert up.output_size(*size) == expected
    assert up(x).shape == (3, *expected)
    rgba = up(_image(x, _rand(1, *size, seed=1), mode="RGBA"))
    assert rgba.alpha is not None
    assert rgba.alpha.shape == (1, *expected)


def test_backprojection_reduces_the_reconstruction_error() -> None:
    torch.manual_seed(0)
    lq = imresize(_rand(3, 64, 64), scale=0.5)
    net = create_model("srresnet", scale=2, num_features=8, num_blocks=1)
    before = Upscaler(net, options=UpscaleOptions(device="cpu"))(lq)
    after = Upscaler(net, options=UpscaleOptions(device="cpu", backproject=3))(lq)
    assert reconstruction_error(after, lq) < 0.5 * reconstruction_error(before, lq)


def test_precision_rules() -> None:
    net = create_model("bicubic", scale=2)
    with pytest.raises(PrecisionError, match="CUDA"):
        Upscaler(net, options=UpscaleOptions(device="cpu", precision="fp16"))
    with pytest.raises(PrecisionError, match="unknown precision"):
        Upscaler(net, options=UpscaleOptions(device="cpu", precision="fp8"))
    assert (
        Upscaler(net, options=UpscaleOptions(device="cpu")).autocast_dtype is None
    )  # auto on CPU: fp32
    small = create_model("srresnet", scale=2, num_features=8, num_blocks=1)
    x = _rand(3, 16, 16)
    fp32 = Upscaler(small, options=UpscaleOptions(device="cpu"))(x)
    bf16 = Upscaler(small, options=UpscaleOptions(device="cpu", precision="bf16"))(x)
    assert float((bf16 - fp32).abs().max()) < 0.05


def test_bad_options_are_named_errors() -> None:
    net = create_model("bicubic", scale=2)
    with pytest.raises(InvalidTilingError, match="larger than the overlap"):
        Upscaler(net, options=UpscaleOptions(tile=16, overlap=16))
    with pytest.raises(SuperresError, match="outscale"):
        Upscaler(net, options=UpscaleOptions(outscale=-1))
    with pytest.raises(SuperresError, match="scale"):
        Upscaler(nn.Conv2d(3, 3, 3))
    with pytest.raises(InvalidImageError, match="float"):
        Upscaler(net)(torch.zeros(3, 4, 4, dtype=torch.uint8))
    holes = torch.zeros(2, 3, 4, 4)
    holes[1, 0, 2, 2] = float("nan")
    holes[0, 2, 0, 0] = float("inf")
    with pytest.raises(InvalidImageError, match="2 NaN or infinite value"):
        Upscaler(net)(holes)


def test_a_network_that_narrows_its_precisions_refuses_the_others() -> None:
    class Fp32Only(nn.Module):
        scale = 1
        supported_precisions = ("fp32",)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    assert describe_network(Fp32Only()).precisions == ("fp32",)
    with pytest.raises(PrecisionError, match="runs in fp32, not bf16"):
        Upscaler(Fp32Only(), options=UpscaleOptions(device="cpu", precision="bf16"))
    assert Upscaler(Fp32Only(), options=UpscaleOptions(device="cpu", precision="fp32"))


def test_options_are_checked_when_made_and_normalised() -> None:
    assert UpscaleOptions(tile=0).tile is None
    assert UpscaleOptions(outscale=3).outscale == 3.0
    with pytest.raises(SuperresError, match="batch_size"):
        UpscaleOptions(batch_size=0)
    with pytest.raises(SuperresError, match="backproject_step"):
        UpscaleOptions(backproject_step=1.5)
    with pytest.raises(SuperresError, match="UpscaleOptions"):
        Upscaler(create_model("bicubic", scale=2), options={"tile": 0})  # type: ignore[arg-type]


def test_auto_tile_follows_the_memory_budget(native_bf16: bool) -> None:
    net = create_model("srresnet", scale=4, num_features=16, num_blocks=1)
    up = Upscaler(net, options=UpscaleOptions(device="cpu"))
    # auto precision: bf16 activations (2 bytes) where the CPU has native bf16, fp32 (4) elsewhere
    assert up.autocast_dtype == (torch.bfloat16 if native_bf16 else None)
    element = 2 if native_bf16 else 4
    per_pixel = estimate_activation_bytes(up.network, up._forward, in_channels=3)
    # largest activation: 64 channels at 2x (the first pixel-shuffle conv), times 4
    assert per_pixel == pytest.approx(4 * 64 * 4 * element)
    expected = min((CPU_TILE_MEMORY / per_pixel) ** 0.5, CPU_MAX_TILE)
    assert up.tile_size() == pytest.approx(expected, abs=8)
    # overlap / 4 = 10 px covers this network's receptive field (about 9.5 input pixels), so the
    # tiled output equals the untiled one; the tiles are balanced below the 96-pixel maximum.
    small = Upscaler(
        net, options=UpscaleOptions(device="cpu", tile_memory=96 * 96 * int(per_pixel), overlap=40)
    )
    assert small.tile_size() == 96
    x = _rand(3, 150, 90)
    # In bf16 a tile's convolutions may sum in another order than the whole image's, which can
    # flip the rounding of an 8-bit-mantissa activation: up to a few bf16 steps (2**-8) remain.
    atol = 2**-6 if native_bf16 else 1e-5
    assert torch.allclose(
        small(x), Upscaler(net, options=UpscaleOptions(device="cpu", tile=None))(x), atol=atol
    )


class _OutOfMemoryAbove32(nn.Module):
    scale = 1
    in_channels = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if max(x.shape[-2:]) > 32:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")
        return x.clone()


def test_out_of_memory_halves_auto_tiles_and_explains_fixed_ones() -> None:
    x = _rand(3, 100, 70)
    up = Upscaler(_OutOfMemoryAbove32(), options=UpscaleOptions(device="cpu", overlap=8))
    assert torch.allclose(up(x), x)
    tile = up.tile_size()
    assert tile is not None
    assert 8 < tile <= 32  # halved (and kept a multiple of 8) from CPU_MAX_TILE until it fits
    with pytest.raises(TileMemoryError, match="smaller --tile"):
        Upscaler(_OutOfMemoryAbove32(), options=UpscaleOptions(device="cpu", tile=64, overlap=8))(x)


# --- superres.upscale ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("L", "L"),
        ("LA", "LA"),
        ("RGB", "RGB"),
        ("RGBA", "RGBA"),
        ("P", "RGB"),
        ("1", "L"),
        ("I;16", "I;16"),
        ("CMYK", "RGB"),
    ],
)
def test_pil_round_trip_keeps_the_mode_family(mode: str, expected: str) -> None:
    base = Image.fromarray(np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8))
    if mode == "I;16":
        im = Image.fromarray(np.random.default_rng(0).integers(0, 65536, (6, 9), dtype=np.uint16))
    else:
        im = base.convert(mode)
    out = superres.upscale(im, model="bicubic", scale=2)
    assert isinstance(out, Image.Image)
    assert out.mode == expected
    assert out.size == (18, 12)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((6, 9), np.uint8),
        ((6, 9, 1), np.uint16),
        ((6, 9, 2), np.uint8),
        ((6, 9, 3), np.float32),
        ((6, 9, 4), np.float64),
        ((6, 9, 3), np.uint16),
    ],
)
def test_numpy_round_trip_keeps_dtype_and_layout(shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.floating):
        a = rng.random(shape).astype(dtype)
    else:
        a = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    out = superres.upscale(a, model="bicubic", scale=2)
    assert isinstance(out, np.ndarray)
    assert out.dtype == dtype
    assert out.shape == (12, 18, *shape[2:])
    # bicubic: the result agrees with MATLAB bicubic of the same values
    peak = 1.0 if np.issubdtype(dtype, np.floating) else float(np.iinfo(dtype).max)
    hwc = a.reshape(6, 9, -1).astype(np.float64) / peak
    ref = np.clip(imresize(hwc, scale=2.0), 0, 1)
    if hwc.shape[2] in (2, 4):  # colour was premultiplied by alpha: compare the alpha only
        ref, got = ref[..., -1], out.reshape(12, 18, -1)[..., -1] / peak
    else:
        got = out.reshape(12, 18, -1) / peak
    assert np.abs(got - ref).max() <= 1 / peak + 1e-6


def test_tensor_round_trip_keeps_layout_dtype_and_device() -> None:
    x = _rand(2, 4, 5, 6).double()
    out = superres.upscale(x, model=create_model("bicubic", scale=3))
    assert isinstance(out, torch.Tensor)
    assert (out.shape, out.dtype, out.device) == ((2, 4, 15, 18), torch.float64, x.device)


def test_upscale_without_a_model_runs_the_shipped_default() -> None:
    x = _rand(3, 10, 12)
    expected = Upscaler(load_model("edsr-baseline-x4"))(x)
    assert torch.equal(superres.upscale(x), expected)
    three = superres.upscale(x, scale=3)  # no x3 model ships: the x4 default, resized exactly
    assert three.shape == (3, 30, 36)


def test_upscale_checks_its_arguments() -> None:
    with pytest.raises(SuperresError, match="scale"):
        superres.upscale(_rand(3, 4, 4), model=create_model("bicubic", scale=2), scale=4)
    with pytest.raises(InvalidImageError, match="PIL image"):
        superres.upscale([[0.0]])  # type: ignore[type-var]
    with pytest.raises(InvalidImageError, match="numpy"):
        superres.upscale(np.zeros((4, 4), dtype=np.int64))


def test_tiled_upscaler_equals_untiled_with_a_real_network() -> None:
    """EDSR-baseline (random, fixed seed) with 2 blocks at x2: receptive-field radius 3x3 head
    (1) + 4 block convs (4) + body conv (1) + upsampler conv (1) + tail conv at x2 (0.5) = 7.5
    input pixels <= DEFAULT_OVERLAP / 4 = 8, so tiles must agree with the whole image."""
    torch.manual_seed(0)
    net = create_model("edsr-baseline", scale=2, num_features=16, num_blocks=2).eval()
    image = _rand(3, 70, 230, seed=3)
    whole = Upscaler(net, options=UpscaleOptions(device="cpu", tile=None))(image)
    tiled_upscaler = Upscaler(net, options=UpscaleOptions(device="cpu", tile=64))
    tiled = tiled_upscaler(image)
    assert tiled_upscaler.options.overlap == 32
    assert len(plan_tiles(70, 230, 64, 32).xs) >= 3
    assert float(whole.std()) > 0.05  # a real, non-constant output
    diff = float((tiled - whole).abs().max())
    assert diff <= 1 / 255
    assert diff < 1e-4  # in fact equal up to float rounding


@pytest.mark.slow
def test_peak_memory_of_a_4000x3000_upscale_is_bounded() -> None:
    """4000 x 3000 -> 16000 x 12000 (bicubic x4, auto tiles, quantised and written as PNG), in a
    fresh interpreter so that ru_maxrss is this run's alone. The float32 output canvas is 2.15
    GiB and unavoidable; everything else must stay small: the bound allows canvas + 2 GiB."""
    import json
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "upscale_memory.py"
    command = [
        sys.executable, str(script), "--one", "bicubic", "--scale", "4",
        "--height", "3000", "--width", "4000", "--tile", "auto", "--write",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["output"] == "16000x12000"
    assert result["canvas_gib"] == pytest.approx(2.146, abs=0.01)
    assert result["peak_gib"] < result["canvas_gib"] + 2.0, result
