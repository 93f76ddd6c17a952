"""Image files -> :class:`ImageData`: float32 RGB ``(3, H, W)`` tensors in [0, 1].

Reading uses Pillow for every format and mode it decodes faithfully (1, L, LA, P, RGB, RGBA, CMYK,
YCbCr, I;16, I) and OpenCV for 16-bit colour PNG/TIFF, which Pillow decodes only as 8-bit. Integer
values map to floats exactly: ``v / 255`` for 8-bit sources, ``v / 65535`` for 16-bit ones, so
writing at the source's depth (:mod:`superres.io.image_write`) gives back the very same integers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps, TiffImagePlugin, UnidentifiedImageError

from superres.errors import ImageReadError, ImageTooLargeError, SuperresError
from superres.io.image_checks import (
    PNG_SIGNATURE,
    check_image_file,
    describe_undecodable,
    png_chunk,
    png_problem,
)

__all__ = ["DEFAULT_MAX_PIXELS", "ImageData", "frame_count", "read_image"]

logger = logging.getLogger(__name__)


#: Largest ``width * height`` :func:`read_image` decodes unless told otherwise: a guard against
#: decompression bombs (a few KB of PNG that inflate to many GB). 300 MP is far above any camera
#: photo (40-50 MP) while a bomb is usually gigapixels. Pillow's own hard limit still applies on
#: top (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179 MP by default); we leave that global alone.
DEFAULT_MAX_PIXELS: int = 300_000_000


# PNG colour types (IHDR byte 25) that Pillow decodes only as 8-bit when the bit depth is 16:
# 2 = RGB, 4 = gray + alpha, 6 = RGBA. Type 0 (gray) is fine: Pillow reads it as I;16.
_PNG_COLOUR_TYPES_NEEDING_OPENCV = frozenset({2, 4, 6})

# The most of a native decoder's stderr output kept for a message.
_NATIVE_STDERR_LIMIT = 4096

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
        icc_profile: the source's embedded ICC colour profile, kept for writing (pixels are not
            colour-converted), or ``None``.
        exif: the source's EXIF block with the orientation reset to upright (``rgb`` already is),
            kept for writing, or ``None``.
        frames: frames in the source (animated GIF/PNG/WebP, multi-page TIFF); ``rgb`` is the
            first.
    """

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    grayscale: bool
    mode: str
    format: str | None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    frames: int = 1


def read_image(
    path: str | os.PathLike[str],
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    check_size: Callable[[int, int], None] | None = None,
) -> ImageData:
    """Decode an image file into :class:`ImageData` (float32 RGB ``(3, H, W)`` in [0, 1]).

    EXIF orientation is applied, so ``rgb`` is upright as a viewer shows it; unreadable EXIF data
    is ignored with a warning. Multi-frame files (animated GIF/PNG/WebP, multi-page TIFF) give
    their first frame, with a warning for animations. Pillow's own warnings about a file (e.g.
    corrupt EXIF) are logged as one line each, naming the file.

    Args:
        path: the image file. Its format is detected from the content, not the extension.
        max_pixels: refuse images with more than this many pixels, checked from the header before
            anything is decoded. ``None`` disables our check (Pillow's own limit still applies).
        check_size: called with ``(height, width)`` from the header before anything is decoded
            (as stored: before EXIF rotation); what it raises propagates, e.g.
            :meth:`Upscaler.check_canvas <superres.inference.Upscaler.check_canvas>`.

    Raises:
        ImageTooLargeError: more than ``max_pixels`` pixels (or more than Pillow's own limit).
        ImageReadError: the file is missing, a dangling symlink or a symlink loop, a directory,
            not a regular file (FIFO, device), empty, truncated, corrupt (e.g. a PNG chunk's CRC),
            not an image (e.g. an HTML page), or in a mode we do not support (32-bit float "F").
            Nothing else: whatever Pillow or OpenCV raise on a hostile file becomes this error.
    """
    p = Path(path)
    check_image_file(p)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Pillow warns above MAX_IMAGE_PIXELS (~89 MP) before we can apply our own limit; ours
        # decides (a 100 MP scan is legitimate). Above twice its limit Pillow raises
        # DecompressionBombError, turned into ImageTooLargeError.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = _decode(p, max_pixels, check_size)
        except SuperresError:  # ours, and what check_size raises
            raise
        except Image.DecompressionBombError as exc:
            raise _bomb_error(p, exc, max_pixels) from exc
        except UnidentifiedImageError as exc:
            raise ImageReadError(p, describe_undecodable(p)) from exc
        except PermissionError as exc:
            raise ImageReadError(
                p, f"permission denied ({exc.strerror}); check the file's read permissions"
            ) from exc
        except _DECODE_ERRORS as exc:
            raise _corrupt_error(p, exc) from exc
    _log_warnings(p, caught)
    return image


# What Pillow's and OpenCV's decoders raise on truncated or corrupt data. Pillow reports truncation
# as OSError("image file is truncated ...") or OSError("Truncated File Read"), corrupt data as
# OSError/SyntaxError/ValueError and, from some plugins' header parsers, the others listed.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    KeyError,
    OverflowError,
    ZeroDivisionError,
    cv2.error,
)


def _decode(
    p: Path, max_pixels: int | None, check_size: Callable[[int, int], None] | None
) -> ImageData:
    with Image.open(p) as im:
        _check_pixel_count(p, im.size, max_pixels)
        if check_size is not None:
            check_size(im.height, im.width)
        if getattr(im, "is_animated", False):
            logger.warning("%s: animated; only its first frame is read", p)
        icc = im.info.get("icc_profile")
        icc = icc if isinstance(icc, bytes) and icc else None
        frames = max(1, int(getattr(im, "n_frames", 1)))
        if _needs_opencv(p, im):
            image = _read_with_opencv(p, im.format, _exif_orientation(p, im))
            return replace(image, icc_profile=icc, frames=frames)
        # LOAD_TRUNCATED_IMAGES must stay False (Pillow's default) or a truncated file would load
        # with a grey bottom instead of raising here.
        im.load()
        upright = ImageOps.exif_transpose(im)
        image = _from_pillow(p, upright, im.format)
        return replace(image, icc_profile=icc, exif=_upright_exif(p, im), frames=frames)


def _upright_exif(p: Path, im: Image.Image) -> bytes | None:
    """``im``'s EXIF block with orientation 1 (the pixels were turned upright), or ``None``."""
    try:
        exif = im.getexif()
        if not exif:
            return None
        exif[_EXIF_ORIENTATION] = 1
        return exif.tobytes()
    except (*_DECODE_ERRORS, TypeError) as exc:
        logger.warning("%s: its EXIF data is unreadable and is not kept (%s)", p, exc)
        return None


def frame_count(path: str | os.PathLike[str]) -> int:
    """Frames in an image file (1 for a still image), read from the header without decoding.

    A file that opens but cannot be parsed counts as 1: :func:`read_image` then says what is
    wrong with it.

    Raises:
        ImageReadError: not a regular file (checked first, so a FIFO is never opened), as
            :func:`read_image`.
    """
    p = Path(path)
    check_image_file(p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with Image.open(p) as im:
                return max(1, int(getattr(im, "n_frames", 1)))
        except (Image.DecompressionBombError, UnidentifiedImageError, *_DECODE_ERRORS):
            return 1


def _corrupt_error(p: Path, exc: BaseException) -> ImageReadError:
    """A decoder's exception as a one-line reason; for PNG, the first broken chunk by name."""
    problem = png_problem(p) if _head(p, 8) == PNG_SIGNATURE else None
    if problem is not None:
        return ImageReadError(p, f"corrupt PNG: {problem}; re-download or re-export it")
    message = str(exc).strip() or "no details"
    kind = "truncated" if "truncated" in message.lower() or isinstance(exc, EOFError) else "corrupt"
    return ImageReadError(
        p, f"the file is {kind} ({type(exc).__name__}: {message}); re-download or re-export it"
    )


def _log_warnings(p: Path, caught: list[warnings.WarningMessage]) -> None:
    """Pillow's warnings about the file as one log line each; other warnings as they were."""
    said: set[str] = set()
    for w in caught:
        if issubclass(w.category, UserWarning | RuntimeWarning) and not issubclass(
            w.category, DeprecationWarning
        ):
            text = " ".join(str(w.message).split())
            if text not in said:
                said.add(text)
                logger.warning("%s: %s", p, text)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


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
        if len(header) < 26 or header[:8] != PNG_SIGNATURE or header[12:16] != b"IHDR":
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


def _exif_orientation(p: Path, im: Image.Image) -> int:
    """The EXIF orientation (1 to 8; 1 when absent or unreadable) without decoding pixels."""
    try:
        if im.format == "PNG":
            # Pillow's PNG getexif() decodes the whole image (at 8 bits) to look for an eXIf
            # chunk after the pixel data; the chunk walk finds it without decoding anything.
            raw = png_chunk(p, b"eXIf")
            if raw is None:
                return 1
            exif = Image.Exif()
            exif.load(b"Exif\x00\x00" + raw)
        else:
            exif = im.getexif()
        value = int(exif.get(_EXIF_ORIENTATION, 1))
    except (*_DECODE_ERRORS, TypeError) as exc:
        # Broken EXIF should not make the pixels unreadable; Pillow's exif_transpose skips it too.
        logger.warning("%s: ignoring unreadable EXIF data (%s)", p, exc)
        return 1
    return value if 1 <= value <= 8 else 1


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
    if fmt == "PNG":
        # libpng reports a broken stream on stderr itself; the chunk walk names it instead.
        problem = png_problem(p)
        if problem is not None:
            raise ImageReadError(p, f"corrupt PNG: {problem}; re-download or re-export it")
    # np.fromfile + imdecode instead of cv2.imread: imread cannot open non-ASCII paths on Windows.
    with _native_stderr() as said:
        try:
            data = cv2.imdecode(np.fromfile(p, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        except cv2.error as exc:
            said.append(" ".join(str(exc).split()))
            data = None
    if data is None or data.dtype != np.uint16 or data.ndim != 3 or data.shape[2] not in (3, 4):
        detail = "; ".join(said) or "truncated or corrupt file"
        raise ImageReadError(
            p,
            f"the 16-bit colour data could not be decoded ({detail}); re-download or re-export it",
        )
    for line in said:
        logger.warning("%s: %s", p, line)
    # IMREAD_UNCHANGED ignores EXIF orientation, so apply the one Pillow read from the header.
    data = _apply_orientation(data, orientation)
    rgb = data[..., 2::-1]  # BGR(A) -> RGB
    rgb_t = _to_float_chw(rgb, 16)
    alpha_t = _to_float_chw(data[..., 3:4], 16) if data.shape[2] == 4 else None
    # A 16-bit gray+alpha PNG reaches us as BGRA with three equal colour channels.
    gray = fmt == "PNG" and alpha_t is not None and _png_colour_type(p) == 4
    mode = "LA;16" if gray else ("RGBA;16" if alpha_t is not None else "RGB;16")
    return ImageData(rgb=rgb_t, alpha=alpha_t, bit_depth=16, grayscale=gray, mode=mode, format=fmt)


@contextlib.contextmanager
def _native_stderr() -> Iterator[list[str]]:
    """Collect what native decoders (libpng, libtiff) print on file descriptor 2 meanwhile.

    Yields a list that holds those lines, whitespace-collapsed, once the block ends, so the caller
    turns them into one error or log line each; nothing is captured where fd 2 is not available.
    """
    said: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, AttributeError, ValueError):
        yield said
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(_NATIVE_STDERR_LIMIT).decode("utf-8", "replace")
            said += [" ".join(line.split()) for line in text.splitlines() if line.strip()]


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
