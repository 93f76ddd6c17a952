"""Image files -> :class:`ImageData`: float32 RGB ``(3, H, W)`` tensors in [0, 1].

Reading uses Pillow for every format and mode it decodes faithfully (1, L, LA, P, RGB, RGBA, CMYK,
YCbCr, I;16, I) and OpenCV for 16-bit colour PNG/TIFF, which Pillow decodes only as 8-bit. Integer
values map to floats exactly: ``v / 255`` for 8-bit sources, ``v / 65535`` for 16-bit ones, so
writing at the source's depth (:mod:`superres.io.image_write`) gives back the very same integers.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from superres.errors import ImageReadError, ImageTooLargeError

__all__ = ["DEFAULT_MAX_PIXELS", "ImageData", "read_image"]

logger = logging.getLogger(__name__)


#: Largest ``width * height`` :func:`read_image` decodes unless told otherwise: a guard against
#: decompression bombs (a few KB of PNG that inflate to many GB). 300 MP is far above any camera
#: photo (40-50 MP) while a bomb is usually gigapixels. Pillow's own hard limit still applies on
#: top (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP by default); we leave that global alone.
DEFAULT_MAX_PIXELS: int = 300_000_000


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
