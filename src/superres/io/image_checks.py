"""What is wrong with a file that should be an image, in words a user can act on.

:func:`check_image_file` looks at the path before anything opens it: a missing file, a dangling
symlink or a symlink loop, a directory, a FIFO, a device or a socket (opening those blocks or
reads forever), an empty file. :func:`describe_undecodable` names the problem of a file Pillow
could not identify: an HTML page or a text file saved under an image's name, an archive, or a
known image format whose header is corrupt (for PNG, the first chunk whose CRC fails or that the
file ends inside). :func:`png_problem` walks a PNG's chunks to find that first defect, and
:func:`png_chunk` finds one chunk without decoding anything.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    ImageFile,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from superres.errors import ImageReadError

__all__ = [
    "PNG_SIGNATURE",
    "check_image_file",
    "describe_undecodable",
    "png_chunk",
    "png_problem",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Allowed bit depths per PNG colour type (PNG specification, table 11.1).
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_READ_BLOCK = 1 << 20
_HEAD = 512

# Leading bytes of the image formats we read, with the Pillow class that parses each one's header.
_IMAGE_MAGIC: tuple[tuple[bytes, str, type[ImageFile.ImageFile]], ...] = (
    (PNG_SIGNATURE, "PNG", PngImagePlugin.PngImageFile),
    (b"\xff\xd8\xff", "JPEG", JpegImagePlugin.JpegImageFile),
    (b"GIF87a", "GIF", GifImagePlugin.GifImageFile),
    (b"GIF89a", "GIF", GifImagePlugin.GifImageFile),
    (b"II*\x00", "TIFF", TiffImagePlugin.TiffImageFile),
    (b"MM\x00*", "TIFF", TiffImagePlugin.TiffImageFile),
    (b"BM", "BMP", BmpImagePlugin.BmpImageFile),
)

# Leading bytes of files people mistake for images.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
)


def check_image_file(path: str | os.PathLike[str]) -> None:
    """Refuse, before anything opens it, a path that cannot hold a readable image file.

    Raises:
        ImageReadError: missing, a dangling symlink or a symlink loop, unreadable metadata, a
            directory, not a regular file (FIFO, character or block device, socket), or empty.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ImageReadError(p, _stat_problem(p, exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(p, "it is a directory, not a file; pass an image file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(
            p,
            f"not a regular file ({_file_kind(st.st_mode)}); pass an image file (to upscale a "
            "stream, save it to a file first)",
        )
    if st.st_size == 0:
        raise ImageReadError(p, "the file is empty (0 bytes); re-download or re-export it")


def _stat_problem(p: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop (too many levels of symbolic links); fix the link to point at a file"
    if p.is_symlink():
        return (
            f"dangling symlink: it points to {os.readlink(p)!r}, which does not exist; fix or "
            "remove the link"
        )
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "no such file; check the path and the current directory"
    if exc.errno == errno.EACCES:
        return "permission denied on a folder of its path; check the folders' permissions"
    return f"cannot look at the file ({exc.strerror}); check the path"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def describe_undecodable(path: str | os.PathLike[str]) -> str:
    """The reason, with its fix, that a file Pillow could not identify is not an image we read."""
    p = Path(path)
    with p.open("rb") as f:
        head = f.read(_HEAD)
    text = _as_text(head)
    if text is not None:
        return _describe_text(text)
    for magic, fmt, parser in _IMAGE_MAGIC:
        if head.startswith(magic):
            problem = png_problem(p) if fmt == "PNG" else None
            return f"corrupt {fmt}: {problem or _parser_problem(p, parser)}; re-download or " + (
                "re-export it"
            )
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return (
            f"corrupt WebP: {_parser_problem(p, WebPImagePlugin.WebPImageFile)}; re-download or "
            "re-export it"
        )
    for magic, kind in _OTHER_MAGIC:
        if head.startswith(magic):
            return f"it is {kind}, not an image; extract or convert the image it holds first"
    if head[4:8] == b"ftyp":
        brand = head[8:12].decode("latin-1")
        return (
            f"an ISO media file (brand {brand!r}: HEIC, AVIF or a video), which we do not read; "
            "convert it to PNG or JPEG first"
        )
    return (
        f"not an image format we read (it starts with {head[:16]!r}); supported are PNG, JPEG, "
        "TIFF, BMP, WebP, GIF and the other formats Pillow reads; check that it is really an "
        "image and not a partial download"
    )


def _as_text(head: bytes) -> str | None:
    """The head as text when it looks like text (UTF-8, no control bytes but whitespace)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut by the read is still text
            return None
        text = head[: exc.start].decode("utf-8")
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return text


def _describe_text(text: str) -> str:
    start = text.lstrip("\ufeff \t\r\n")
    lower = start[:256].lower()
    snippet = " ".join(start[:40].split())
    if lower.startswith(("<!doctype html", "<html")) or "<html" in lower or "<head" in lower:
        return (
            f"not an image format: it is an HTML page (starts with {snippet!r}), e.g. an error "
            "or login page saved instead of the image; download the image itself"
        )
    if lower.startswith(("<?xml", "<svg")) or "<svg" in lower:
        return (
            f"not an image format we read: it is an XML/SVG document (starts with {snippet!r}); "
            "rasterise vector graphics to PNG first"
        )
    return (
        f"not an image format: it is a text file (starts with {snippet!r}); pass the image "
        "file itself"
    )


def _parser_problem(p: Path, parser: type[ImageFile.ImageFile]) -> str:
    """What the format's own header parser says about the file."""
    try:
        parser(str(p)).close()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError) as exc:
        return _plugin_message(exc)
    return "its header could not be parsed"


def _plugin_message(exc: BaseException) -> str:
    message = str(exc).strip() or type(exc).__name__
    if "truncated" in message.lower() or isinstance(exc, EOFError | struct.error):
        return f"the header is truncated or broken ({message})"
    return f"the header is broken ({message})"


def png_problem(path: str | os.PathLike[str]) -> str | None:
    """The first defect of a PNG's chunk structure, or ``None`` when every chunk checks out.

    Walks the chunks from the signature to ``IEND`` checking each CRC, that no chunk runs past
    the end of the file, that the first is a valid ``IHDR`` and that an ``IDAT`` precedes
    ``IEND``. The pixel data itself is not decompressed.
    """
    with Path(path).open("rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return "the PNG signature is missing or damaged"
        seen: list[bytes] = []
        while True:
            offset = f.tell()
            header = f.read(8)
            if len(header) < 8:
                last = seen[-1].decode("latin-1") if seen else "the signature"
                return f"truncated: the file ends after chunk {last} (offset {offset}), before IEND"
            length, kind = struct.unpack(">I4s", header)
            name = kind.decode("latin-1")
            if not kind.isalpha():
                return f"chunk type {kind!r} at offset {offset} is not a chunk name (corrupt data)"
            if length > 0x7FFFFFFF:
                return f"chunk {name} at offset {offset} claims {length} bytes (corrupt length)"
            crc, read = _crc(f, kind, length)
            stored = f.read(4)
            if read < length or len(stored) < 4:
                return f"truncated inside chunk {name} (offset {offset}, {length} bytes declared)"
            if crc != struct.unpack(">I", stored)[0]:
                return f"CRC check failed in chunk {name} (offset {offset})"
            if not seen:
                if kind != b"IHDR":
                    return f"the first chunk is {name}, not IHDR"
                f.seek(offset + 8)
                problem = _ihdr_problem(f.read(length))
                f.seek(4, os.SEEK_CUR)
                if problem:
                    return problem
            seen.append(kind)
            if kind == b"IEND":
                return None if b"IDAT" in seen else "no IDAT chunk: the file holds no pixel data"


def _crc(f: BinaryIO, kind: bytes, length: int) -> tuple[int, int]:
    """CRC-32 of ``kind`` and the next ``length`` bytes of ``f``, read in blocks."""
    crc = zlib.crc32(kind)
    read = 0
    while read < length:
        block = f.read(min(_READ_BLOCK, length - read))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        read += len(block)
    return crc, read


def _ihdr_problem(data: bytes) -> str | None:
    if len(data) != 13:
        return f"the IHDR chunk has {len(data)} bytes instead of 13"
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", data
    )
    if width == 0 or height == 0 or width > 0x7FFFFFFF or height > 0x7FFFFFFF:
        return f"the header says {width}x{height} pixels (each side must be 1 to 2^31 - 1)"
    if depth not in _PNG_DEPTHS.get(colour, ()):
        return f"bit depth {depth} with colour type {colour} is not a valid PNG combination"
    if compression or filtering or interlace > 1:
        return (
            f"unknown compression/filter/interlace method ({compression}/{filtering}/{interlace})"
        )
    return None


def png_chunk(path: str | os.PathLike[str], kind: bytes, *, limit: int = 1 << 24) -> bytes | None:
    """The data of the first chunk of type ``kind`` in a PNG, or ``None``; skips other chunks
    without reading them. ``None`` too when the chunk structure ends early or the chunk is
    longer than ``limit`` bytes (a corrupt length)."""
    with Path(path).open("rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return None
        while True:
            header = f.read(8)
            if len(header) < 8:
                return None
            length, found = struct.unpack(">I4s", header)
            if found == kind:
                if length > limit:
                    return None
                data = f.read(length)
                return data if len(data) == length else None
            if found == b"IEND":
                return None
            f.seek(length + 4, os.SEEK_CUR)
