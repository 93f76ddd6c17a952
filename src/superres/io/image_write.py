"""Float images -> integer arrays -> image files, rounded once and replaced atomically.

Writing picks the format from the extension, clamps and rounds half-up exactly once (MATLAB's
``uint8()``, the exact inverse of reading), and replaces the target atomically: a reader sees the
old file or the complete new one, never a partial file.
"""

from __future__ import annotations

import logging
import os
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from superres.errors import ImageWriteError, InvalidImageError
from superres.io.files import atomic_write
from superres.io.image_metadata import ImageMetadata, add_png_chunks, pillow_options
from superres.io.image_read import ImageData

__all__ = ["SUPPORTED_EXTENSIONS", "quantize_image", "to_uint8", "write_array", "write_image"]

logger = logging.getLogger(__name__)

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

#: The extensions :func:`write_image` accepts; reading opens anything Pillow opens.
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_FORMATS)

_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})


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
    metadata: ImageMetadata | None = None,
) -> None:
    """Encode a float image and replace ``path`` atomically.

    Args:
        path: output file; its extension picks the format (one of :data:`SUPPORTED_EXTENSIONS`).
            The parent folder must exist.
        rgb: float ``(3, H, W)`` or ``(1, H, W)`` in [0, 1] (a leading batch dimension of 1 is
            accepted). Values are clamped and rounded half-up here, once. A 1-channel input is
            written as RGB with equal channels unless ``grayscale=True``. Or an
            :class:`ImageData` (what :func:`~superres.io.image_read.read_image` and
            :class:`~superres.Upscaler` return): its alpha, bit depth and grayscale flag are
            written unless ``bit_depth`` or ``grayscale`` say otherwise.
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
        metadata: text record, ICC profile and EXIF to write where the format holds them
            (:class:`~superres.io.image_metadata.ImageMetadata`); default: an
            :class:`ImageData`'s ICC profile and EXIF, nothing for a tensor.

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
        if metadata is None:
            metadata = ImageMetadata(icc_profile=image.icc_profile, exif=image.exif)
    bit_depth = 8 if bit_depth is None else bit_depth
    grayscale = False if grayscale is None else grayscale
    _check_write_target(p, bit_depth, quality, has_alpha=alpha is not None)
    hwc = _quantize_image(rgb, alpha, bit_depth, grayscale, p)
    write_array(p, hwc, quality=quality, metadata=metadata)


def write_array(
    path: str | os.PathLike[str],
    array: np.ndarray,
    *,
    quality: int = 95,
    metadata: ImageMetadata | None = None,
) -> None:
    """Encode an integer image array and replace ``path`` atomically.

    Args:
        path: output file, as in :func:`write_image`.
        array: uint8 or uint16 ``(H, W)`` or ``(H, W, C)`` with ``C`` = 1 (gray), 2 (gray +
            alpha), 3 (RGB) or 4 (RGBA), e.g. from :func:`quantize_image`. uint16 means a 16-bit
            file (PNG and TIFF only).
        quality, metadata: as in :func:`write_image` (no metadata by default).

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
        data = _encode(hwc, fmt, bit_depth, quality, p, metadata or ImageMetadata())
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


def _encode(
    hwc: np.ndarray, fmt: str, bit_depth: int, quality: int, p: Path, metadata: ImageMetadata
) -> bytes:
    """Integer ``(H, W, C)`` array (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> file bytes."""
    channels = hwc.shape[2]
    if bit_depth == 16:
        if channels == 1:
            # Pillow writes 16-bit gray (I;16) PNG and TIFF losslessly.
            buf = BytesIO()
            Image.fromarray(hwc[..., 0].astype(np.uint16)).save(
                buf, fmt, **pillow_options(fmt, metadata)
            )
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
        if fmt == "PNG":
            return add_png_chunks(encoded.tobytes(), metadata)
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
    im.save(buf, fmt, **options, **pillow_options(fmt, metadata))
    return buf.getvalue()
