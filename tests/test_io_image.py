"""Tests for superres.io.image: every mode and format we read, every file we write, every bad input.

All inputs are built in ``tmp_path`` with Pillow, OpenCV and numpy; no image file is committed.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, ImageOps

import superres.io
from superres.errors import ImageReadError, ImageTooLargeError, ImageWriteError, InvalidImageError
from superres.io.image import (
    DEFAULT_MAX_PIXELS,
    SUPPORTED_EXTENSIONS,
    ImageData,
    read_image,
    to_uint8,
    write_image,
)

H, W = 12, 20  # small, non-square: a swapped H/W shows up as a shape error


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _rgb8(h: int = H, w: int = W) -> np.ndarray:
    return _rng().integers(0, 256, (h, w, 3), dtype=np.uint8)


def _chw(a: np.ndarray, peak: float = 255.0) -> torch.Tensor:
    """uint HWC (or HW) -> float32 CHW, the reader's exact mapping."""
    if a.ndim == 2:
        a = a[..., None]
    return torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32)) / peak


def _uint16_not_257_multiples(shape: tuple[int, ...]) -> np.ndarray:
    """Random 16-bit values, none a multiple of 257 (those survive an 8-bit detour unchanged)."""
    a = _rng().integers(0, 65536, shape, dtype=np.uint16)
    a[a % 257 == 0] += 1
    assert not np.any(a % 257 == 0)
    return a


def _open(path: Path) -> Image.Image:
    """Pillow's decode of ``path``, with the file closed again (no ResourceWarning)."""
    with Image.open(path) as im:
        im.load()
        return im


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width x height`` 8-bit gray but has no pixel data (a cheap 'bomb')."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _png_with_orientation(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk carrying ``orientation`` right after IHDR (8 + 25 bytes)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    raw = exif.tobytes()
    raw = raw.removeprefix(b"Exif\x00\x00")  # PNG's eXIf holds the bare TIFF structure
    return png[:33] + _png_chunk(b"eXIf", raw) + png[33:]


# --- public surface -------------------------------------------------------------------------------


def test_package_exports() -> None:
    for name in superres.io.__all__:
        assert getattr(superres.io, name) is not None
    assert superres.io.read_image is read_image
    assert set(SUPPORTED_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
    assert DEFAULT_MAX_PIXELS >= 50_000_000  # a 40-50 MP photo must pass


def test_image_data_is_frozen(tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    Image.fromarray(_rgb8()).save(path)
    data = read_image(path)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.bit_depth = 16  # type: ignore[misc]


# --- 8-bit round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif", ".tiff", ".webp"])
def test_round_trip_8bit_lossless(tmp_path: Path, ext: str) -> None:
    src = _rgb8()
    path = tmp_path / f"img{ext}"
    write_image(path, _chw(src), quality=100)  # quality 100 -> lossless WebP
    data = read_image(path)
    assert data.rgb.dtype == torch.float32
    assert data.rgb.shape == (3, H, W)
    assert data.alpha is None
    assert (data.bit_depth, data.grayscale, data.mode) == (8, False, "RGB")
    assert torch.equal(data.rgb, _chw(src))
    np.testing.assert_array_equal(to_uint8(data.rgb), src)


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_round_trip_jpeg_close(tmp_path: Path, ext: str) -> None:
    # A smooth image: JPEG at quality 95 stays within a few levels of it.
    y, x = np.mgrid[0:32, 0:48]
    src = np.stack([x * 5, y * 7, (x + y) * 3], axis=2).astype(np.uint8)
    path = tmp_path / f"img{ext}"
    write_image(path, _chw(src), quality=95)
    data = read_image(path)
    assert data.format == "JPEG"
    diff = np.abs(to_uint8(data.rgb).astype(int) - src.astype(int))
    assert diff.mean() < 2.0
    assert diff.max() <= 12


def test_format_detected_from_content_not_extension(tmp_path: Path) -> None:
    path = tmp_path / "really_a_png.jpg"
    Image.fromarray(_rgb8()).save(path, format="PNG")
    data = read_image(path)
    assert data.format == "PNG"
    assert torch.equal(data.rgb, _chw(_rgb8()))


def test_rgb_input_with_batch_dim_and_clamping(tmp_path: Path) -> None:
    x = torch.tensor([-0.5, 0.0, 0.5 / 255, 1.0, 1.7]).reshape(1, 1, 1, 5).expand(1, 3, 1, 5)
    path = tmp_path / "clamped.png"
    write_image(path, x)
    np.testing.assert_array_equal(np.asarray(_open(path))[0, :, 0], [0, 0, 1, 255, 255])


# --- 16 bit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif"])
@pytest.mark.parametrize("channels", [3, 4])
def test_read_16bit_colour_written_by_opencv(tmp_path: Path, ext: str, channels: int) -> None:
    rgb16 = _uint16_not_257_multiples((H, W, channels))
    path = tmp_path / f"c16{ext}"
    bgr = rgb16[..., [2, 1, 0, 3][:channels]]
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr))
    data = read_image(path)
    assert data.bit_depth == 16
    assert data.mode == ("RGBA;16" if channels == 4 else "RGB;16")
    assert data.format == ("PNG" if ext == ".png" else "TIFF")
    assert data.grayscale is False
    assert torch.equal(data.rgb, _chw(rgb16[..., :3], 65535.0))
    if channels == 4:
        assert data.alpha is not None
        assert torch.equal(data.alpha, _chw(rgb16[..., 3], 65535.0))
    else:
        assert data.alpha is None


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_round_trip_16bit_colour(tmp_path: Path, ext: str, with_alpha: bool) -> None:
    values = _uint16_not_257_multiples((H, W, 4))
    rgb = _chw(values[..., :3], 65535.0)
    alpha = _chw(values[..., 3], 65535.0) if with_alpha else None
    path = tmp_path / f"rt16{ext}"
    write_image(path, rgb, alpha=alpha, bit_depth=16)
    data = read_image(path)
    assert data.bit_depth == 16
    assert torch.equal(data.rgb, rgb)  # exact: no 8-bit truncation anywhere
    if with_alpha:
        assert data.alpha is not None
        assert alpha is not None
        assert torch.equal(data.alpha, alpha)
    else:
        assert data.alpha is None


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray(tmp_path: Path, ext: str) -> None:
    gray16 = _uint16_not_257_multiples((H, W))
    src = tmp_path / f"g16{ext}"
    Image.fromarray(gray16).save(src)
    data = read_image(src)
    assert (data.bit_depth, data.grayscale, data.alpha) == (16, True, None)
    assert data.mode.startswith("I;16")
    expected = _chw(gray16, 65535.0)
    assert torch.equal(data.rgb, expected.expand(3, -1, -1))
    # ... and written back as 16-bit gray, bit-exact.
    out = tmp_path / f"g16_out{ext}"
    write_image(out, data.rgb, bit_depth=16, grayscale=True)
    back = _open(out)
    assert back.mode.startswith("I;16")
    np.testing.assert_array_equal(np.asarray(back), gray16)


def test_16bit_gray_alpha_png(tmp_path: Path) -> None:
    # Neither Pillow nor OpenCV writes 16-bit gray+alpha PNG, so build one by hand (colour type 4).
    la = _uint16_not_257_multiples((H, W, 2))
    rows = b"".join(b"\x00" + la[i].astype(">u2").tobytes() for i in range(H))
    ihdr = struct.pack(">IIBBBBB", W, H, 16, 4, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )
    path = tmp_path / "la16.png"
    path.write_bytes(png)
    data = read_image(path)
    assert (data.bit_depth, data.grayscale, data.mode) == (16, True, "LA;16")
    assert torch.equal(data.rgb, _chw(la[..., 0], 65535.0).expand(3, -1, -1))
    assert data.alpha is not None
    assert torch.equal(data.alpha, _chw(la[..., 1], 65535.0))


def test_mode_i_within_16bit(tmp_path: Path) -> None:
    values = _rng().integers(0, 65536, (H, W)).astype(np.int32)
    path = tmp_path / "i32.tif"
    Image.fromarray(values).save(path)
    assert _open(path).mode == "I"
    data = read_image(path)
    assert (data.bit_depth, data.grayscale) == (16, True)
    assert torch.equal(data.rgb[0], torch.from_numpy(values).float() / 65535.0)


def test_mode_i_outside_16bit_is_rejected(tmp_path: Path) -> None:
    values = np.full((H, W), 70000, dtype=np.int32)
    path = tmp_path / "i32_big.tif"
    Image.fromarray(values).save(path)
    with pytest.raises(ImageReadError, match=r"i32_big\.tif.*70000"):
        read_image(path)


def test_float_mode_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.zeros((H, W), np.float32)).save(path)
    with pytest.raises(ImageReadError, match=r"float\.tif.*unsupported image mode 'F'"):
        read_image(path)


# --- modes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_rgba_alpha_preserved(tmp_path: Path, ext: str) -> None:
    rgba = _rng().integers(0, 256, (H, W, 4), dtype=np.uint8)
    rgba[0, 0, 3] = 0  # a fully transparent pixel: its colour must survive too (WebP exact=True)
    path = tmp_path / f"rgba{ext}"
    write_image(path, _chw(rgba[..., :3]), alpha=_chw(rgba[..., 3]), quality=100)
    data = read_image(path)
    assert data.alpha is not None
    assert data.alpha.shape == (1, H, W)
    assert torch.equal(data.rgb, _chw(rgba[..., :3]))
    assert torch.equal(data.alpha, _chw(rgba[..., 3]))


def test_opaque_alpha_is_still_returned(tmp_path: Path) -> None:
    rgba = np.full((H, W, 4), 255, dtype=np.uint8)
    path = tmp_path / "opaque.png"
    Image.fromarray(rgba).save(path)
    data = read_image(path)
    assert data.alpha is not None
    assert bool((data.alpha == 1.0).all())


def test_la(tmp_path: Path) -> None:
    la = _rng().integers(0, 256, (H, W, 2), dtype=np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(la).save(path)
    data = read_image(path)
    assert (data.mode, data.grayscale, data.bit_depth) == ("LA", True, 8)
    assert torch.equal(data.rgb, _chw(la[..., 0]).expand(3, -1, -1))
    assert data.alpha is not None
    assert torch.equal(data.alpha, _chw(la[..., 1]))
    # written back as gray + alpha
    out = tmp_path / "la_out.png"
    write_image(out, data.rgb, alpha=data.alpha, grayscale=True)
    back = _open(out)
    assert back.mode == "LA"
    np.testing.assert_array_equal(np.asarray(back), la)


def test_l_grayscale(tmp_path: Path) -> None:
    gray = _rng().integers(0, 256, (H, W), dtype=np.uint8)
    path = tmp_path / "l.png"
    Image.fromarray(gray).save(path)
    data = read_image(path)
    assert (data.mode, data.grayscale, data.alpha) == ("L", True, None)
    assert data.rgb.shape == (3, H, W)
    assert torch.equal(data.rgb[0], data.rgb[2])


def test_palette_without_transparency(tmp_path: Path) -> None:
    im = Image.fromarray(_rgb8()).quantize(colors=16)
    path = tmp_path / "p.png"
    im.save(path)
    data = read_image(path)
    assert (data.mode, data.grayscale, data.alpha) == ("P", False, None)
    expected = np.asarray(_open(path).convert("RGB"))
    np.testing.assert_array_equal(to_uint8(data.rgb), expected)


def test_palette_with_transparency(tmp_path: Path) -> None:
    im = Image.fromarray(_rgb8()).quantize(colors=16)
    index = np.asarray(im)
    path = tmp_path / "p_t.png"
    im.save(path, transparency=int(index[0, 0]))
    data = read_image(path)
    assert data.mode == "P"
    assert data.alpha is not None
    alpha = data.alpha[0].numpy()
    np.testing.assert_array_equal(alpha == 0.0, index == index[0, 0])
    np.testing.assert_array_equal(alpha[index != index[0, 0]], 1.0)


def test_one_bit(tmp_path: Path) -> None:
    bits = _rng().integers(0, 2, (H, W)).astype(bool)
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    assert _open(path).mode == "1"
    data = read_image(path)
    assert (data.mode, data.grayscale, data.bit_depth) == ("1", True, 8)
    np.testing.assert_array_equal(data.rgb[0].numpy(), bits.astype(np.float32))


def test_cmyk_jpeg_matches_pillow_conversion(tmp_path: Path) -> None:
    cmyk = _rng().integers(0, 256, (H, W, 4), dtype=np.uint8)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)
    data = read_image(path)
    assert (data.mode, data.format, data.grayscale) == ("CMYK", "JPEG", False)
    expected = np.asarray(_open(path).convert("RGB"))
    np.testing.assert_array_equal(to_uint8(data.rgb), expected)


# --- EXIF orientation -----------------------------------------------------------------------------


def _quadrant_image() -> np.ndarray:
    """24 x 40 RGB: top-left quadrant red, everything else blue (survives JPEG)."""
    a = np.zeros((24, 40, 3), dtype=np.uint8)
    a[..., 2] = 255
    a[:12, :20] = (255, 0, 0)
    return a


@pytest.mark.parametrize(("orientation", "red_corner"), [(6, "top-right"), (8, "bottom-left")])
def test_exif_orientation_jpeg(tmp_path: Path, orientation: int, red_corner: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"orient{orientation}.jpg"
    Image.fromarray(_quadrant_image()).save(path, exif=exif, quality=95)
    data = read_image(path)
    assert data.rgb.shape == (3, 40, 24)  # upright: height and width swapped
    red = data.rgb[0] > 0.5
    corners = {
        "top-left": red[:20, :12],
        "top-right": red[:20, 12:],
        "bottom-left": red[20:, :12],
        "bottom-right": red[20:, 12:],
    }
    for name, region in corners.items():
        assert bool(region.float().mean() > 0.9) == (name == red_corner), name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_16bit_png_matches_pillow(tmp_path: Path, orientation: int) -> None:
    # The OpenCV path applies orientation itself; Pillow's 8-bit decode (the high bytes) of the
    # same file, transposed by Pillow, is the reference.
    rgb16 = _uint16_not_257_multiples((H, W, 3))
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb16[..., ::-1]))
    assert ok
    path = tmp_path / f"o{orientation}.png"
    path.write_bytes(_png_with_orientation(encoded.tobytes(), orientation))
    data = read_image(path)
    with Image.open(path) as im:
        reference = np.asarray(ImageOps.exif_transpose(im))
    assert data.rgb.shape == (3, *reference.shape[:2])
    high_bytes = (data.rgb * 65535).round().to(torch.int32) >> 8
    np.testing.assert_array_equal(high_bytes.permute(1, 2, 0).numpy(), reference)


# --- grayscale writing and to_uint8 ---------------------------------------------------------------


def test_grayscale_write_of_equal_channels_is_exact(tmp_path: Path) -> None:
    gray = _rng().integers(0, 256, (H, W), dtype=np.uint8)
    path = tmp_path / "g.png"
    write_image(path, _chw(gray).expand(3, -1, -1), grayscale=True)
    back = _open(path)
    assert back.mode == "L"
    np.testing.assert_array_equal(np.asarray(back), gray)
    assert read_image(path).grayscale


def test_grayscale_write_of_colour_uses_luma(tmp_path: Path) -> None:
    src = _rgb8()
    path = tmp_path / "luma.png"
    write_image(path, _chw(src), grayscale=True)
    back = np.asarray(_open(path)).astype(int)
    pillow = np.asarray(Image.fromarray(src).convert("L")).astype(int)
    assert (
        np.abs(back - pillow).max() <= 1
    )  # same weights; ours rounds in float, Pillow in fixed point


def test_single_channel_without_grayscale_writes_rgb(tmp_path: Path) -> None:
    gray = _rng().integers(0, 256, (H, W), dtype=np.uint8)
    path = tmp_path / "one.png"
    write_image(path, _chw(gray))
    assert _open(path).mode == "RGB"


def test_to_uint8_is_exact_inverse_of_reading(tmp_path: Path) -> None:
    levels = torch.arange(256, dtype=torch.float32) / 255.0
    np.testing.assert_array_equal(to_uint8(levels.reshape(1, 1, 256))[0, :, 0], np.arange(256))
    src = _rgb8()
    path = tmp_path / "inv.png"
    Image.fromarray(src).save(path)
    out = to_uint8(read_image(path).rgb)
    assert out.dtype == np.uint8
    assert out.shape == (H, W, 3)
    np.testing.assert_array_equal(out, src)


def test_to_uint8_rounds_half_up_and_clamps() -> None:
    x = torch.tensor([-1.0, 0.49 / 255, 0.5 / 255, 1.5 / 255, 254.5 / 255, 2.0]).reshape(1, 1, 6)
    np.testing.assert_array_equal(to_uint8(x)[0, :, 0], [0, 0, 1, 2, 255, 255])


def test_to_uint8_rejects_integer_and_nan() -> None:
    with pytest.raises(InvalidImageError, match="float"):
        to_uint8(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(InvalidImageError, match="NaN"):
        to_uint8(torch.full((3, 2, 2), float("nan")))


# --- bad inputs when reading ----------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"nope\.png.*no such file"):
        read_image(tmp_path / "nope.png")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(ImageReadError, match=r"folder\.png.*directory"):
        read_image(folder)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.png.*empty \(0 bytes\)"):
        read_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(tmp_path: Path, fmt: str) -> None:
    full = tmp_path / f"full.{fmt.lower()}"
    Image.fromarray(_rgb8(64, 64)).save(full, format=fmt)
    data = full.read_bytes()
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageReadError, match=rf"cut\.{fmt.lower()}.*truncated"):
        read_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_16bit_png(tmp_path: Path) -> None:
    ok, encoded = cv2.imencode(".png", _uint16_not_257_multiples((64, 64, 3)))
    assert ok
    path = tmp_path / "cut16.png"
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(ImageReadError, match=r"cut16\.png"):
        read_image(path)


def test_truncated_16bit_png_logs_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ok, encoded = cv2.imencode(".png", _uint16_not_257_multiples((64, 64, 3)))
    assert ok
    path = tmp_path / "cut16.png"
    path.write_bytes(encoded.tobytes()[: len(encoded) // 2])
    with pytest.raises(
        ImageReadError, match=r"cut16\.png.*corrupt PNG: truncated inside chunk IDAT"
    ):
        read_image(path)
    assert [r for r in caplog.records if r.exc_info] == []


def test_16bit_stream_error_is_the_message_not_stderr(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # Valid CRCs around a broken deflate stream: libpng's own complaint becomes the reason.
    ok, encoded = cv2.imencode(".png", _uint16_not_257_multiples((32, 32, 3)))
    assert ok
    data = bytearray(encoded.tobytes())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4 : at])[0]
    data[at + 10 : at + 30] = b"\x00" * 20
    data[at + 4 + length : at + 8 + length] = struct.pack(
        ">I", zlib.crc32(data[at : at + 4 + length])
    )
    path = tmp_path / "stream16.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"stream16\.png.*16-bit.*libpng"):
        read_image(path)
    assert "libpng" not in capfd.readouterr().err


@pytest.mark.parametrize(
    ("offset", "flipped", "needle"),
    [
        (29, 1, "CRC check failed in chunk IHDR"),  # the IHDR's stored CRC
        (45, 1, "CRC check failed in chunk IDAT"),
        (100, 40, "CRC check failed in chunk IDAT"),  # inside the pixel data
    ],
)
def test_corrupt_png_names_the_chunk(
    tmp_path: Path, offset: int, flipped: int, needle: str
) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(_rgb8(64, 64)).save(good)
    data = bytearray(good.read_bytes())
    for i in range(offset, offset + flipped):
        data[i] ^= 0xFF
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=rf"corrupt\.png.*corrupt PNG: {needle}"):
        read_image(path)


def test_png_header_with_zero_width(tmp_path: Path) -> None:
    path = tmp_path / "flat.png"
    path.write_bytes(_png_header_only(0, 10))
    with pytest.raises(
        ImageReadError, match=r"flat\.png.*corrupt PNG: the header says 0x10 pixels"
    ):
        read_image(path)


def test_symlink_loop_and_dangling_symlink(tmp_path: Path) -> None:
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    with pytest.raises(ImageReadError, match=r"a\.png.*symlink loop"):
        read_image(tmp_path / "a.png")
    (tmp_path / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(ImageReadError, match=r"gone\.png.*dangling symlink.*nowhere\.png"):
        read_image(tmp_path / "gone.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_fifo_and_device_are_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageReadError, match=r"pipe\.png.*not a regular file \(FIFO\)"):
        read_image(fifo)  # opening it would block until a writer comes
    if Path("/dev/zero").exists():
        with pytest.raises(ImageReadError, match=r"/dev/zero.*character device"):
            read_image("/dev/zero")


def test_animated_gif_gives_its_first_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    frames = [Image.new("RGB", (8, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    image = read_image(path)
    assert image.rgb.shape == (3, 6, 8)
    assert float(image.rgb[0].mean()) > 0.9  # red: the first frame
    assert any("animated" in r.getMessage() for r in caplog.records)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("<html>404 not found</html>")
    with pytest.raises(ImageReadError, match=r"notes\.png.*not an image format"):
        read_image(path)


def test_too_many_pixels_checked_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(_rgb8()).save(path)
    with pytest.raises(ImageTooLargeError, match=r"big\.png.*20x12 = 240 pixels.*max_pixels=None"):
        read_image(path, max_pixels=100)
    assert read_image(path, max_pixels=None).rgb.shape == (3, H, W)
    # The header alone decides: a 'bomb' with no pixel data at all is refused by size.
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(30_000, 30_000))
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png.*900,000,000 pixels.*--max-pixels"):
        read_image(bomb)


def test_pillow_bomb_limit_becomes_too_large_error(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(20_000, 10_000))  # 200 MP: above Pillow's hard limit
    limit_before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png.*MAX_IMAGE_PIXELS"):
        read_image(path, max_pixels=None)
    assert limit_before == Image.MAX_IMAGE_PIXELS  # Pillow's global limit is left alone


def test_pillow_bomb_warning_does_not_escape(tmp_path: Path) -> None:
    # 100 MP is above Pillow's warning threshold but within our limit; without pixel data it then
    # fails as a truncated file, and no DecompressionBombWarning reaches the caller.
    path = tmp_path / "header_only.png"
    path.write_bytes(_png_header_only(10_000, 10_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageReadError, match=r"header_only\.png") as info:
            read_image(path)
    assert not isinstance(info.value, ImageTooLargeError)


# --- bad inputs when writing ----------------------------------------------------------------------


def _some_rgb() -> torch.Tensor:
    return _chw(_rgb8())


def test_unknown_write_extension(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError, match=r"out\.gif.*'\.gif'.*\.png, \.jpg"):
        write_image(tmp_path / "out.gif", _some_rgb())


def test_missing_output_folder(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "out.png"
    with pytest.raises(ImageWriteError, match=r"out\.png.*folder .*such.* does not exist.*create"):
        write_image(target, _some_rgb())


@pytest.mark.parametrize("ext", [".jpg", ".bmp", ".webp"])
def test_16bit_to_8bit_only_format(tmp_path: Path, ext: str) -> None:
    with pytest.raises(ImageWriteError, match=rf"out\{ext}.*8 bits.*\.png or \.tif"):
        write_image(tmp_path / f"out{ext}", _some_rgb(), bit_depth=16)


@pytest.mark.parametrize("ext", [".jpg", ".bmp"])
def test_alpha_to_format_without_alpha(tmp_path: Path, ext: str) -> None:
    alpha = torch.ones(1, H, W)
    with pytest.raises(ImageWriteError, match=rf"out\{ext}.*no alpha.*\.png, \.webp"):
        write_image(tmp_path / f"out{ext}", _some_rgb(), alpha=alpha)


def test_bad_options_and_tensors(tmp_path: Path) -> None:
    path = tmp_path / "out.png"
    with pytest.raises(ImageWriteError, match="bit_depth must be 8 or 16"):
        write_image(path, _some_rgb(), bit_depth=12)
    with pytest.raises(ImageWriteError, match="quality"):
        write_image(tmp_path / "out.jpg", _some_rgb(), quality=101)
    with pytest.raises(InvalidImageError, match=r"out\.png.*shape"):
        write_image(path, torch.zeros(2, H, W))
    with pytest.raises(InvalidImageError, match=r"alpha.*out\.png.*\(1, 12, 20\)"):
        write_image(path, _some_rgb(), alpha=torch.ones(1, H + 1, W))
    with pytest.raises(InvalidImageError, match="NaN"):
        write_image(path, torch.full((3, H, W), float("nan")))
    assert not path.exists()


# --- atomic writes --------------------------------------------------------------------------------


def _write_old_file(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "result.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path)
    return path, path.read_bytes()


def test_encoder_failure_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _write_old_file(tmp_path)

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("encoder exploded")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageWriteError, match=r"result\.png.*encoder exploded"):
        write_image(path, _some_rgb())
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["result.png"]


def test_disk_failure_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, old = _write_old_file(tmp_path)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageWriteError, match=r"result\.png.*disk full"):
        write_image(path, _some_rgb())
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["result.png"]  # the temporary file is gone


def test_successful_write_replaces_old_file(tmp_path: Path) -> None:
    path, old = _write_old_file(tmp_path)
    write_image(path, _some_rgb())
    assert path.read_bytes() != old
    assert sorted(os.listdir(tmp_path)) == ["result.png"]
    assert read_image(path).rgb.shape == (3, H, W)


def test_image_data_fields(tmp_path: Path) -> None:
    path = tmp_path / "f.webp"
    write_image(path, _some_rgb(), quality=80)
    data = read_image(path)
    assert isinstance(data, ImageData)
    assert data.format == "WEBP"
    assert float(data.rgb.min()) >= 0.0
    assert float(data.rgb.max()) <= 1.0


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_gray_alpha_written_as_rgba(tmp_path: Path, ext: str) -> None:
    # No encoder we use writes 16-bit gray+alpha: the values are kept exactly in 16-bit RGBA.
    la = _uint16_not_257_multiples((H, W, 2))
    gray, alpha = _chw(la[..., 0], 65535.0), _chw(la[..., 1], 65535.0)
    path = tmp_path / f"la16_out{ext}"
    write_image(path, gray, alpha=alpha, bit_depth=16, grayscale=True)
    data = read_image(path)
    assert (data.bit_depth, data.mode) == (16, "RGBA;16")
    assert torch.equal(data.rgb, gray.expand(3, -1, -1))
    assert data.alpha is not None
    assert torch.equal(data.alpha, alpha)


def test_write_image_takes_image_data_with_its_depth_gray_and_alpha(tmp_path: Path) -> None:
    gray16 = _uint16_not_257_multiples((H, W))
    alpha16 = _uint16_not_257_multiples((H, W))[::-1].copy()
    src = tmp_path / "la16.png"
    assert cv2.imwrite(str(src), np.dstack([gray16, gray16, gray16, alpha16]).astype(np.uint16))
    image = read_image(src)
    assert image.bit_depth == 16
    assert image.alpha is not None
    write_image(tmp_path / "copy.png", image)  # what read_image (and Upscaler) return, as is
    again = read_image(tmp_path / "copy.png")
    assert again.bit_depth == 16
    assert again.alpha is not None
    assert torch.equal(again.rgb, image.rgb)
    assert torch.equal(again.alpha, image.alpha)
    write_image(tmp_path / "eight.png", image, bit_depth=8)  # an explicit value wins
    assert read_image(tmp_path / "eight.png").bit_depth == 8
    with pytest.raises(InvalidImageError, match="ImageData carries its own alpha"):
        write_image(tmp_path / "x.png", image, alpha=image.alpha)
    assert not (tmp_path / "x.png").exists()
