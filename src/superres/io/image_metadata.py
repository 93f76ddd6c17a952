"""What an output file carries besides its pixels: a text record, the ICC profile and EXIF.

The text record (``superres upscale`` writes which model, scale and outscale made the file) goes
where each format has room for text: PNG ``tEXt`` chunks, the JPEG comment and the TIFF
``ImageDescription`` (both as one JSON object). WebP and BMP hold no record. The ICC profile and
EXIF of the source are copied into PNG, JPEG, WebP and TIFF as they are (pixels are never
colour-converted); 16-bit PNG keeps the text and the ICC profile.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from PIL import Image, PngImagePlugin, UnidentifiedImageError

__all__ = ["ImageMetadata", "read_text_record"]

_TIFF_IMAGE_DESCRIPTION = 270
_PNG_HEADER_END = 8 + 8 + 13 + 4  # signature, IHDR length + type, IHDR data, CRC


@dataclass(frozen=True, kw_only=True)
class ImageMetadata:
    """Metadata to write beside the pixels (see the module for where each part goes).

    Attributes:
        text: key -> value, e.g. ``{"superres": '{"model": "edsr-baseline-x4", ...}'}``.
        icc_profile: an ICC profile's bytes (e.g. :attr:`ImageData.icc_profile`), or ``None``.
        exif: an EXIF block as Pillow reads and writes it, or ``None``.
    """

    text: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    icc_profile: bytes | None = None
    exif: bytes | None = None


def pillow_options(fmt: str, metadata: ImageMetadata) -> dict[str, object]:
    """Keyword arguments of Pillow's ``save`` for ``fmt`` (a Pillow format name)."""
    options: dict[str, object] = {}
    if fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        if metadata.icc_profile:
            options["icc_profile"] = metadata.icc_profile
        if metadata.exif:
            options["exif"] = metadata.exif
    if not metadata.text:
        return options
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.text.items():
            info.add_text(key, value)
        options["pnginfo"] = info
    elif fmt == "JPEG":
        options["comment"] = json.dumps(dict(metadata.text), sort_keys=True)
    elif fmt == "TIFF":
        options["description"] = json.dumps(dict(metadata.text), sort_keys=True)
    return options


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def add_png_chunks(png: bytes, metadata: ImageMetadata) -> bytes:
    """``png`` (an encoded PNG, e.g. OpenCV's 16-bit one) with the text and ICC profile added.

    The chunks go right after ``IHDR``, where readers find them without decoding the pixels.
    """
    chunks = b"".join(
        _chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace"))
        for key, value in metadata.text.items()
    )
    if metadata.icc_profile:
        chunks = _chunk(b"iCCP", b"icc\0\0" + zlib.compress(metadata.icc_profile)) + chunks
    return png[:_PNG_HEADER_END] + chunks + png[_PNG_HEADER_END:]


def read_text_record(path: str | os.PathLike[str]) -> dict[str, str]:
    """The text record of an image file (see the module); empty when it has none or is unreadable.

    Reads the header only, never the pixels.
    """
    try:
        with Image.open(Path(path)) as im:
            if im.format == "PNG":
                return {str(k): v for k, v in im.info.items() if isinstance(v, str)}
            raw = im.info.get("comment") if im.format == "JPEG" else None
            if im.format == "TIFF":
                raw = getattr(im, "tag_v2", {}).get(_TIFF_IMAGE_DESCRIPTION)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return {}
    try:
        record = json.loads(raw)
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    return {str(k): str(v) for k, v in record.items()}
