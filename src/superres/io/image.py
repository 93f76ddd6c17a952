"""Image files <-> the in-memory contract: float32 RGB ``(3, H, W)`` tensors in [0, 1].

uint8/uint16 arrays, BGR channel order and HWC layout exist only inside this module; everything it
returns or accepts is a float tensor, channel first, RGB, in [0, 1].

Reading uses Pillow for every format and mode it decodes faithfully (1, L, LA, P, RGB, RGBA, CMYK,
YCbCr, I;16, I) and OpenCV for 16-bit colour PNG/TIFF, which Pillow decodes only as 8-bit. Integer
values map to floats exactly: ``v / 255`` for 8-bit sources, ``v / 65535`` for 16-bit ones, so
:func:`to_uint8` (and writing at the source's depth) gives back the very same integers.

Writing picks the format from the extension, clamps and rounds half-up exactly once, and replaces
the target atomically: a reader sees the old file or the complete new one, never a partial file.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from superres.errors import ImageReadError, ImageTooLargeError, ImageWriteError, InvalidImageError
from superres.io.files import atomic_write

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_EXTENSIONS",
    "ImageData",
    "quantize_image",
    "read_image",
    "to_uint8",
    "write_array",
    "write_image",
]

logger = logging.getLogger(__name__)

#: Largest ``width * height`` :func:`read_image` decodes unless told otherwise: a guard against
#: decompression bombs (a few KB of PNG that inflate to many GB). 300 MP is far above any camera
#: photo (40-50 MP) while a bomb is usually gigapixels. Pillow's own hard limit still applies on
#: top (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP by default); we leave that global alone.
DEFAULT_MAX_PIXELS: int = 300_000_000

#: extension (lower case) -> Pillow format name, for :func:`write_image`
_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
}

#: The extensions :func:`write_image` accepts. :func:`read_image` opens anything Pillow opens.
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_FORMATS)

_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour types (IHDR byte 25) that Pillow decodes only as 8-bit when the bit depth is 16:
# 2 = RGB, 4 = gray + alpha, 6 = RGBA. Type 0 (gray) is fine: Pillow reads it as I;16.
_PNG_COLOUR_TYPES_NEEDING_OPENCV = frozenset({2, 4, 6})

# TIFF tags
_TIFF_BITS_PER_SAMPLE = 258
_TIFF_PHOTOMETRIC = 262
_TIFF_PHOTOMETRIC_RGB = 2
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class ImageData:
    """A decoded image in the project's in-memory format.

    Attributes:
        rgb: float32 ``(3, H, W)`` in [0, 1], RGB. Gray sources are replicated to 3 channels.
        alpha: float32 ``(1, H, W)`` in [0, 1], or ``None`` when the source has no alpha channel
            and no transparency entry. A fully opaque alpha channel is still returned.
        bit_depth: bits per channel of the source, 8 or 16, so writers can round-trip it.
        grayscale: the source had one colour channel (1, L, LA, I;16, 16-bit gray (+alpha)).
        mode: the source's mode as Pillow names it; ``"RGB;16"``, ``"RGBA;16"`` or ``"LA;16"`` for
            16-bit sources that Pillow cannot decode at full depth.
        format: ``"PNG"``, ``"JPEG"``, ... as detected from the content, not from the extension.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    grayscale: bool
    mode: str
    format: str | None


# --- reading --------------------------------------------------------------------------------------


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> ImageData:
    """Decode an image file into :class:`ImageData` (float32 RGB ``(3, H, W)`` in [0, 1]).

    EXIF orientation is applied, so ``rgb`` is upright as a viewer shows it. Multi-frame files
    (animated GIF/WebP, multi-page TIFF) give their first frame.

    Args:
        path: the image file. Its format is detected from the content, not the extension.
        max_pixels: refuse images with more than this many pixels, checked from the header before
            anything is decoded. ``None`` disables our check (Pillow's own limit still applies).

    Raises:
        ImageTooLargeError: more than ``max_pixels`` pixels (or more than Pillow's own limit).
        ImageReadError: the file is missing, a directory, empty, truncated, corrupt, not an image,
            or in a mode we do not support (e.g. 32-bit float "F").
    """
    p = Path(path)
    _check_readable_file(p)
    # Pillow warns above MAX_IMAGE_PIXELS (~89 MP) before we can apply our own limit; our limit is
    # the one that decides (a 100 MP scan is legitimate), so that warning is silenced locally.
    # Above twice its limit Pillow raises DecompressionBombError, turned into ImageTooLargeError.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(p) as im:
                _check_pixel_count(p, im.size, max_pixels)
                if _needs_opencv(p, im):
                    orientation = _exif_orientation(im)
                    return _read_with_opencv(p, im.format, orientation)
                # LOAD_TRUNCATED_IMAGES must stay False (Pillow's default) or a truncated file
                # would load with a grey bottom instead of raising here.
                im.load()
                upright = ImageOps.exif_transpose(im)
                return _from_pillow(p, upright, im.format)
        except Image.DecompressionBombError as exc:
            raise _bomb_error(p, exc, max_pixels) from exc
        except UnidentifiedImageError as exc:
            raise ImageReadError(
                p,
                f"the content is not an image format Pillow recognises (starts with "
                f"{_head(p)!r}); check that it is really an image and not, e.g., an HTML error "
                "page or a partial download",
            ) from exc
        except PermissionError as exc:
            raise ImageReadError(
                p, f"permission denied ({exc.strerror}); check the file's read permissions"
            ) from exc
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
            if isinstance(exc, ImageReadError):
                raise
            # Pillow reports truncation as OSError("image file is truncated ...") or
            # OSError("Truncated File Read"), corrupt data as OSError/SyntaxError/ValueError.
            kind = "truncated" if "truncated" in str(exc).lower() else "corrupt"
            raise ImageReadError(
                p,
                f"the file is {kind} ({type(exc).__name__}: {exc}); re-download or re-export it",
            ) from exc


def _check_readable_file(p: Path) -> None:
    """Raise a specific :class:`ImageReadError` for a missing path, a directory or an empty file."""
    if not p.exists():
        raise ImageReadError(p, "no such file; check the path and the current directory")
    if p.is_dir():
        raise ImageReadError(p, "it is a directory, not a file; pass an image file inside it")
    if p.stat().st_size == 0:
        raise ImageReadError(p, "the file is empty (0 bytes); re-download or re-export it")


def _check_pixel_count(p: Path, size: tuple[int, int], max_pixels: int | None) -> None:
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            p,
            f"{width}x{height} = {width * height:,} pixels exceeds the limit of {max_pixels:,} "
            "(a guard against decompression bombs); if you trust the file, pass "
            "max_pixels=None or a larger value (CLI: --max-pixels N, 0 for no limit)",
        )


def _bomb_error(
    p: Path, exc: Image.DecompressionBombError, max_pixels: int | None
) -> ImageTooLargeError:
    """Explain Pillow's refusal, naming whichever limit the caller can actually change."""
    # Pillow raises inside Image.open, before we see the size; its message carries the count.
    found = re.search(r"\((\d+) pixels\)", str(exc))
    pixels = int(found.group(1)) if found else None
    pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if max_pixels is not None and (pixels is None or pixels > max_pixels):
        # Our own (stricter) limit would have refused it too: point at the knob the user owns.
        size = f"{pixels:,} pixels" if pixels is not None else f"more than {pillow_limit:,} pixels"
        return ImageTooLargeError(
            p,
            f"{size} exceeds the limit of {max_pixels:,} (a guard against decompression bombs); "
            "if you trust the file, pass max_pixels=None or a larger value (CLI: --max-pixels N, "
            "0 for no limit)",
        )
    return ImageTooLargeError(
        p,
        f"{exc} This is Pillow's own limit (twice PIL.Image.MAX_IMAGE_PIXELS = "
        f"{Image.MAX_IMAGE_PIXELS:,}), which applies on top of max_pixels; if you trust the file, "
        "set `PIL.Image.MAX_IMAGE_PIXELS = None` in your program before reading",
    )


def _head(p: Path, n: int = 16) -> bytes:
    with p.open("rb") as f:
        return f.read(n)


def _needs_opencv(p: Path, im: Image.Image) -> bool:
    """True for 16-bit colour (or gray+alpha) PNG/TIFF, which Pillow would truncate to 8 bit."""
    if im.format == "PNG":
        header = _head(p, 26)
        # signature (8) | IHDR length (4) | b"IHDR" | width (4) | height (4) | depth | colour type
        if len(header) < 26 or header[:8] != _PNG_SIGNATURE or header[12:16] != b"IHDR":
            return False
        return header[24] == 16 and header[25] in _PNG_COLOUR_TYPES_NEEDING_OPENCV
    if isinstance(im, TiffImagePlugin.TiffImageFile):
        tags = im.tag_v2
        bits = tags.get(_TIFF_BITS_PER_SAMPLE)
        bits = tuple(bits) if isinstance(bits, tuple | list) else (bits,)
        photometric = tags.get(_TIFF_PHOTOMETRIC)
        return (
            len(bits) >= 3 and all(b == 16 for b in bits) and photometric == _TIFF_PHOTOMETRIC_RGB
        )
    return False


def _exif_orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(_EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, struct.error):
        # Broken EXIF should not make the pixels unreadable; Pillow's exif_transpose also skips it.
        logger.warning("ignoring unreadable EXIF data", exc_info=True)
        return 1


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Apply the transpose Pillow's ``exif_transpose`` uses for ``orientation`` to HW[C] data."""
    if orientation == 2:  # mirrored horizontally
        return a[:, ::-1]
    if orientation == 3:  # rotated 180
        return a[::-1, ::-1]
    if orientation == 4:  # mirrored vertically
        return a[::-1]
    if orientation == 5:  # Image.Transpose.TRANSPOSE: mirror along the main diagonal
        return a.swapaxes(0, 1)
    if orientation == 6:  # Image.Transpose.ROTATE_270: 90 degrees clockwise
        return np.rot90(a, k=-1)
    if orientation == 7:  # Image.Transpose.TRANSVERSE: mirror along the anti-diagonal
        return np.rot90(a, k=2).swapaxes(0, 1)
    if orientation == 8:  # Image.Transpose.ROTATE_90: 90 degrees counter-clockwise
        return np.rot90(a, k=1)
    return a


def _read_with_opencv(p: Path, fmt: str | None, orientation: int) -> ImageData:
    # np.fromfile + imdecode instead of cv2.imread: imread cannot open non-ASCII paths on Windows.
    try:
        data = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageReadError(
            p, f"the 16-bit file is corrupt ({exc}); re-download or re-export it"
        ) from exc
    if data is None or data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] not in (3, 4):
        raise ImageReadError(
            p,
            "the 16-bit colour data could not be decoded (truncated or corrupt file); "
            "re-download or re-export it",
        )
    # IMREAD_UNCHANGED ignores EXIF orientation, so apply the one Pillow read from the header.
    data = _apply_orientation(data, orientation)
    rgb = data[..., 2::-1]  # BGR(A) -> RGB
    rgb_t = _to_float_chw(rgb, 16)
    alpha_t = _to_float_chw(data[..., 3:4], 16) if data.shape[2] == 4 else None
    # A 16-bit gray+alpha PNG reaches us as BGRA with three equal colour channels.
    gray = fmt == "PNG" and alpha_t is not None and _png_colour_type(p) == 4
    mode = "LA;16" if gray else ("RGBA;16" if alpha_t is not None else "RGB;16")
    return ImageData(rgb=rgb_t, alpha=alpha_t, bit_depth=16, grayscale=gray, mode=mode, format=fmt)


def _png_colour_type(p: Path) -> int:
    return _head(p, 26)[25]


def _to_float_chw(a: np.ndarray, bit_depth: int) -> torch.Tensor:
    """uint ``HWC`` (or ``HW``) -> float32 ``(C, H, W)``; exact ``v / 255`` or ``v / 65535``."""
    if a.ndim == 2:
        a = a[..., None]
    # uint16 has no torch equivalent on older versions; int32 holds 0..65535 exactly.
    chw = np.ascontiguousarray(a.transpose(2, 0, 1)).astype(
        np.int32 if bit_depth == 16 else np.uint8
    )
    # One IEEE division of two exact floats: the correctly rounded float32 of v / peak.
    return torch.from_numpy(chw).to(torch.float32) / float(2**bit_depth - 1)


def _from_pillow(p: Path, im: Image.Image, fmt: str | None) -> ImageData:
    """Map every Pillow mode we support onto ``(rgb, alpha)``; raise for the rest."""
    mode = im.mode
    has_transparency = "transparency" in im.info
    if mode in ("1", "L", "LA", "La"):
        if mode == "1" or (mode == "L" and not has_transparency):
            a = np.asarray(im.convert("L"))
            return _gray(a, None, 8, mode, fmt)
        # L with a transparency entry (a gray value that means "transparent") becomes LA.
        la = np.asarray(im.convert("LA"))
        return _gray(la[..., 0], la[..., 1], 8, mode, fmt)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im)
        if mode == "I" and (a.size and (int(a.min()) < 0 or int(a.max()) > 65535)):
            raise ImageReadError(
                p,
                f"mode 'I' (32-bit integer) with values {int(a.min())}..{int(a.max())}, outside "
                "the 16-bit range 0..65535 we support; convert it to 16-bit first",
            )
        return _gray(a.astype(np.int32), None, 16, mode, fmt)
    if mode in ("P", "PA", "RGBA", "RGBa") or (mode == "RGB" and has_transparency):
        # P: a palette entry marked transparent gives alpha; without one, plain RGB.
        if mode == "P" and not has_transparency:
            return _colour(np.asarray(im.convert("RGB")), mode, fmt)
        return _colour(np.asarray(im.convert("RGBA")), mode, fmt)
    if mode in ("RGB", "RGBX", "CMYK", "YCbCr"):
        # CMYK: Pillow's naive conversion; Adobe's inverted CMYK JPEGs are already un-inverted by
        # Pillow's decoder. Colour-managed conversion (ICC) is out of scope.
        return _colour(np.asarray(im.convert("RGB")), mode, fmt)
    raise ImageReadError(
        p,
        f"unsupported image mode {mode!r} (supported: 1, L, LA, P, RGB, RGBA, CMYK, YCbCr, "
        "I;16, I within 0..65535, and 16-bit RGB/RGBA PNG/TIFF); convert it to 8- or 16-bit "
        "RGB first",
    )


def _gray(
    value: np.ndarray, alpha: np.ndarray | None, bit_depth: int, mode: str, fmt: str | None
) -> ImageData:
    v = _to_float_chw(value, bit_depth)
    return ImageData(
        rgb=v.expand(3, -1, -1).contiguous(),
        alpha=None if alpha is None else _to_float_chw(alpha, bit_depth),
        bit_depth=bit_depth,
        grayscale=True,
        mode=mode,
        format=fmt,
    )


def _colour(a: np.ndarray, mode: str, fmt: str | None) -> ImageData:
    return ImageData(
        rgb=_to_float_chw(a[..., :3], 8),
        alpha=_to_float_chw(a[..., 3:4], 8) if a.shape[2] == 4 else None,
        bit_depth=8,
        grayscale=False,
        mode=mode,
        format=fmt,
    )


# --- writing --------------------------------------------------------------------------------------


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Float ``(C, H, W)`` (or ``(1, C, H, W)``) in [0, 1] -> uint8 ``(H, W, C)``.

    Clamps to [0, 1] and rounds half-up (``floor(255 x + 0.5)``, MATLAB's ``uint8()``), so it is the
    exact inverse of reading an 8-bit file. ``C`` is kept as is (a gray image gives ``(H, W, 1)``).
    """
    chw = _as_chw(x, what="image", path=None)
    return _quantize(chw, 8).transpose(1, 2, 0).astype(np.uint8)


def _as_chw(x: object, *, what: str, path: Path | None, check_finite: bool = True) -> torch.Tensor:
    """Validate a float image tensor and drop a leading batch dimension of 1."""
    where = f" for {str(path)!r}" if path is not None else ""
    if not isinstance(x, torch.Tensor):
        raise InvalidImageError(f"{what}{where} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3 or x.shape[0] not in (1, 3) or x.shape[1] == 0 or x.shape[2] == 0:
        raise InvalidImageError(
            f"{what}{where} must have shape (C, H, W) or (1, C, H, W) with C = 1 or 3 and "
            f"H, W > 0, "
            f"got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise InvalidImageError(
            f"{what}{where} must be a float tensor in [0, 1], got dtype {x.dtype}; divide integer "
            "images by 255 (or 65535) first"
        )
    if check_finite and not bool(torch.isfinite(x).all()):
        raise InvalidImageError(
            f"{what}{where} contains NaN or infinite values; check the model output before saving"
        )
    return x


def _quantize(x: torch.Tensor, bit_depth: int) -> np.ndarray:
    """Float in [0, 1] -> integers ``0..2**bit_depth - 1`` as an int32 ``(C, H, W)`` array.

    Clamped, then rounded half-up: ``floor(v * peak + 0.5)``. Half precision is widened first so
    that ``v * 65535`` stays exact enough.
    """
    peak = float(2**bit_depth - 1)
    v = x.detach().to("cpu")
    if v.dtype in (torch.float16, torch.bfloat16):
        v = v.to(torch.float32)
    q = torch.floor(v.clamp(0.0, 1.0) * peak + 0.5)
    return q.to(torch.int32).numpy()


# Values quantised per block by quantize_image: a few MB of temporaries however large the image.
_QUANTIZE_BLOCK_VALUES = 1 << 21


def quantize_image(
    rgb: torch.Tensor,
    *,
    alpha: torch.Tensor | None = None,
    bit_depth: int = 8,
    grayscale: bool = False,
) -> np.ndarray:
    """Float image -> the integer ``(H, W, C)`` array a file stores (uint8 or uint16).

    ``C`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA). Values are clamped to [0, 1] and
    rounded half-up once (``floor(v * peak + 0.5)``). Works in blocks of rows, so the only large
    allocation is the result itself (a 16000 x 12000 RGB float canvas needs 576 MB more as uint8,
    not several float-sized temporaries). Arguments as in :func:`write_image`.

    Raises:
        InvalidImageError: wrong type, shape or dtype, a bad ``bit_depth``, or NaN/infinite values.
    """
    return _quantize_image(rgb, alpha, bit_depth, grayscale, None)


def _quantize_image(
    rgb: torch.Tensor,
    alpha: torch.Tensor | None,
    bit_depth: int,
    grayscale: bool,
    p: Path | None,
) -> np.ndarray:
    where = f" for {str(p)!r}" if p is not None else ""
    if bit_depth not in (8, 16):
        raise InvalidImageError(f"bit_depth{where} must be 8 or 16, got {bit_depth!r}")
    chw = _as_chw(rgb, what="rgb", path=p, check_finite=False).detach()
    height, width = int(chw.shape[-2]), int(chw.shape[-1])
    a: torch.Tensor | None = None
    if alpha is not None:
        a = alpha
        if isinstance(a, torch.Tensor) and a.dim() == 2:
            a = a.unsqueeze(0)
        a = _as_chw(a, what="alpha", path=p, check_finite=False).detach()
        if a.shape[0] != 1 or tuple(a.shape[-2:]) != (height, width):
            raise InvalidImageError(
                f"alpha{where} must have shape (1, {height}, {width}) to match rgb, "
                f"got {tuple(a.shape)}"
            )
    # An exactly gray image is stored from its first channel; otherwise luma per block.
    gray_channel = grayscale and (
        chw.shape[0] == 1 or (torch.equal(chw[0], chw[1]) and torch.equal(chw[0], chw[2]))
    )
    channels = (1 if grayscale else 3) + (1 if a is not None else 0)
    out = np.empty((height, width, channels), dtype=np.uint8 if bit_depth == 8 else np.uint16)
    peak = float(2**bit_depth - 1)
    rows = max(1, _QUANTIZE_BLOCK_VALUES // (width * channels))
    for r0 in range(0, height, rows):
        block = chw[:, r0 : r0 + rows].to("cpu")
        if block.dtype != torch.float64:
            block = block.to(torch.float32)  # half precision: widen so v * 65535 stays exact
        if gray_channel:
            block = block[:1]
        elif grayscale:
            r, g, b = block.unbind(0)
            block = (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(0)  # Pillow's "L" weights
        elif block.shape[0] == 1:
            block = block.expand(3, -1, -1)
        planes = [block]
        if a is not None:
            planes.append(a[:, r0 : r0 + rows].to("cpu", block.dtype))
        for plane in planes:
            if not bool(torch.isfinite(plane).all()):
                raise InvalidImageError(
                    f"the image{where} contains NaN or infinite values; check the model output "
                    "before saving"
                )
        q = torch.cat(planes).clamp_(0.0, 1.0).mul_(peak).add_(0.5).floor_()
        out[r0 : r0 + rows] = q.permute(1, 2, 0).numpy()
    return out


def write_image(
    path: str | os.PathLike[str],
    rgb: torch.Tensor | ImageData,
    *,
    alpha: torch.Tensor | None = None,
    bit_depth: int | None = None,
    grayscale: bool | None = None,
    quality: int = 95,
) -> None:
    """Encode a float image and replace ``path`` atomically.

    Args:
        path: output file; its extension picks the format (one of :data:`SUPPORTED_EXTENSIONS`).
            The parent folder must exist.
        rgb: float ``(3, H, W)`` or ``(1, H, W)`` in [0, 1] (a leading batch dimension of 1 is
            accepted). Values are clamped and rounded half-up here, once. A 1-channel input is
            written as RGB with equal channels unless ``grayscale=True``. Or an
            :class:`ImageData` (what :func:`read_image` and :class:`~superres.Upscaler` return):
            its alpha, bit depth and grayscale flag are written unless ``bit_depth`` or
            ``grayscale`` say otherwise.
        alpha: optional float ``(1, H, W)`` (or ``(H, W)``, ``(1, 1, H, W)``) in [0, 1]. Only PNG,
            TIFF and WebP hold alpha. Not with an :class:`ImageData`, which carries its own.
        bit_depth: 8, or 16 for PNG and TIFF (default: 8, or the :class:`ImageData`'s).
        grayscale: write one colour channel. A 3-channel input with equal channels is written
            exactly; otherwise it is converted with the ITU-R 601-2 luma weights of Pillow's "L"
            mode, ``0.299 R + 0.587 G + 0.114 B`` (computed in float, before rounding). WebP has no
            gray mode and stores it as RGB.
        quality: 0..100. JPEG quality (chroma not subsampled: super-resolved detail is the point);
            WebP is lossy at that quality, lossless when ``quality >= 100``. PNG, TIFF and BMP are
            always lossless.

    Raises:
        ImageWriteError: unknown extension, missing parent folder, 16-bit or alpha requested for a
            format that cannot hold it, bad ``bit_depth``/``quality``, or the encoder/disk failed.
            Any pre-existing file at ``path`` is then left untouched.
        InvalidImageError: ``rgb`` or ``alpha`` has a wrong type, shape or dtype, or is not finite.
    """
    p = Path(path)
    if isinstance(rgb, ImageData):
        if alpha is not None:
            raise InvalidImageError(
                f"write_image({str(p)!r}): alpha= goes with a tensor; an ImageData carries its own "
                "alpha (pass image.rgb to write it without, or replace(image, alpha=...))"
            )
        image = rgb
        rgb, alpha = image.rgb, image.alpha
        bit_depth = image.bit_depth if bit_depth is None else bit_depth
        grayscale = image.grayscale if grayscale is None else grayscale
    bit_depth = 8 if bit_depth is None else bit_depth
    grayscale = False if grayscale is None else grayscale
    _check_write_target(p, bit_depth, quality, has_alpha=alpha is not None)
    hwc = _quantize_image(rgb, alpha, bit_depth, grayscale, p)
    write_array(p, hwc, quality=quality)


def write_array(path: str | os.PathLike[str], array: np.ndarray, *, quality: int = 95) -> None:
    """Encode an integer image array and replace ``path`` atomically.

    Args:
        path: output file, as in :func:`write_image`.
        array: uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` with ``C`` = 1 (gray), 2 (gray +
            alpha), 3 (RGB) or 4 (RGBA), e.g. from :func:`quantize_image`. uint16 means a 16-bit
            file (PNG and TIFF only).
        quality: as in :func:`write_image`.

    Raises:
        ImageWriteError: as in :func:`write_image`.
        InvalidImageError: not such an array.
    """
    p = Path(path)
    if not isinstance(array, np.ndarray) or array.dtype not in (np.uint8, np.uint16):
        got = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise InvalidImageError(
            f"write_array for {str(p)!r} needs a uint8 or uint16 numpy array, got {got}; use "
            "write_image for float tensors"
        )
    hwc = array[..., None] if array.ndim == 2 else array
    if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4) or 0 in hwc.shape:
        raise InvalidImageError(
            f"write_array for {str(p)!r} needs shape (H, W) or (H, W, C) with C in 1..4 and "
            f"H, W > 0, got {array.shape}"
        )
    bit_depth = 8 if hwc.dtype == np.uint8 else 16
    fmt = _check_write_target(p, bit_depth, quality, has_alpha=hwc.shape[2] in (2, 4))
    try:
        data = _encode(hwc, fmt, bit_depth, quality, p)
    except (OSError, ValueError, cv2.error) as exc:
        if isinstance(exc, ImageWriteError):
            raise
        raise ImageWriteError(p, f"the {fmt} encoder failed ({type(exc).__name__}: {exc})") from exc
    try:
        # Temporary file beside the target, fsync, os.replace; removed again on any failure.
        with atomic_write(p) as f:
            f.write(data)
    except OSError as exc:
        raise ImageWriteError(
            p,
            f"writing the file failed ({type(exc).__name__}: {exc}); check free disk space and "
            "write permission for the folder (any previous file there is unchanged)",
        ) from exc


def _check_write_target(p: Path, bit_depth: int, quality: int, *, has_alpha: bool) -> str:
    """Validate the path and options before any work; return the Pillow format name."""
    ext = p.suffix.lower()
    fmt = _FORMATS.get(ext)
    if fmt is None:
        raise ImageWriteError(
            p,
            f"unknown extension {p.suffix!r}; use one of {', '.join(SUPPORTED_EXTENSIONS)}",
        )
    parent = p.parent
    if not parent.is_dir():
        raise ImageWriteError(
            p,
            f"the folder {str(parent)!r} does not exist; create it first "
            f"(e.g. `mkdir -p {parent}` or Path(...).mkdir(parents=True))",
        )
    if p.is_dir():
        raise ImageWriteError(p, "a directory with that name exists; choose a file name")
    if bit_depth not in (8, 16):
        raise ImageWriteError(p, f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and fmt not in _SIXTEEN_BIT_FORMATS:
        raise ImageWriteError(
            p, f"{fmt} holds only 8 bits per channel; use .png or .tif/.tiff for bit_depth=16"
        )
    if has_alpha and fmt not in _ALPHA_FORMATS:
        raise ImageWriteError(
            p, f"{fmt} has no alpha channel; use .png, .webp or .tif/.tiff to keep the alpha"
        )
    if not 0 <= quality <= 100:
        raise ImageWriteError(p, f"quality must be in 0..100, got {quality!r}")
    return fmt


def _encode(hwc: np.ndarray, fmt: str, bit_depth: int, quality: int, p: Path) -> bytes:
    """Integer ``(H, W, C)`` array (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> file bytes."""
    channels = hwc.shape[2]
    if bit_depth == 16:
        if channels == 1:
            # Pillow writes 16-bit gray (I;16) PNG and TIFF losslessly.
            buf = BytesIO()
            Image.fromarray(hwc[..., 0].astype(np.uint16)).save(buf, fmt)
            return buf.getvalue()
        if channels == 2:
            # Neither Pillow nor OpenCV writes 16-bit gray+alpha: store RGBA with equal channels.
            logger.info("%s: 16-bit gray+alpha is written as 16-bit RGBA (equal RGB)", p)
            hwc = np.concatenate([np.repeat(hwc[..., :1], 3, axis=2), hwc[..., 1:]], axis=2)
            channels = 4
        # Pillow cannot write 16-bit colour; OpenCV can (it wants BGR(A) order).
        bgr = hwc[..., [2, 1, 0, 3][:channels]].astype(np.uint16, copy=False)
        ok, encoded = cv2.imencode(".png" if fmt == "PNG" else ".tiff", np.ascontiguousarray(bgr))
        if not ok:
            raise ImageWriteError(p, f"OpenCV could not encode a 16-bit {fmt} image")
        return encoded.tobytes()

    a8 = hwc.astype(np.uint8, copy=False)
    im = Image.fromarray(a8[..., 0] if channels == 1 else a8)  # mode inferred: L, LA, RGB, RGBA
    options: dict[str, object] = {}
    if fmt == "JPEG":
        options = {"quality": quality, "subsampling": 0}
    elif fmt == "WEBP":
        # exact=True keeps RGB under fully transparent pixels, so lossless round trips are exact.
        options = (
            {"lossless": True, "quality": 100, "exact": True}
            if quality >= 100
            else {"quality": quality}
        )
    buf = BytesIO()
    im.save(buf, fmt, **options)
    return buf.getvalue()
