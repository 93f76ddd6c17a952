"""Fuzzing the image reader: random and mutated bytes give an image or an ImageReadError.

``read_image`` on any bytes must either return an image that keeps the in-memory contract (float32
RGB ``(3, H, W)`` in [0, 1], alpha ``(1, H, W)`` or ``None``) or raise
:class:`~superres.errors.ImageReadError` (or a subclass): never another exception, whatever the
decoders underneath raise. Inputs: random bytes, and valid PNG (8- and 16-bit), JPEG, GIF and TIFF
files with bytes flipped, inserted, deleted or cut off; for PNG also with the chunk CRCs fixed
afterwards, so the damage reaches the decoders instead of stopping at the CRC check. The default
run is bounded (a few hundred inputs, seconds); ``-m slow`` runs many more. With
``SUPERRES_WRITE_RELIABILITY=1`` the counts become the "Fuzzing: image reader" section of
docs/reliability.md.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from reliability import enabled, table, write_section
from superres.errors import ImageReadError
from superres.io import read_image

DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 5000
# Small enough that no fuzzed header makes the reader decode a large image.
MAX_PIXELS = 4_000_000


def _seed_files() -> dict[str, bytes]:
    """Small valid files, one per format and depth the mutations start from."""
    rng = np.random.default_rng(7)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    files = {}
    for fmt in ("PNG", "JPEG", "GIF", "TIFF"):
        buffer = io.BytesIO()
        rgb.save(buffer, format=fmt)
        files[fmt] = buffer.getvalue()
    ok, png16 = cv2.imencode(".png", rng.integers(0, 65536, (12, 16, 3), dtype=np.uint16))
    assert ok
    files["PNG16"] = png16.tobytes()
    return files


SEEDS = _seed_files()


def _fix_png_crcs(data: bytes) -> bytes:
    """``data`` with each complete chunk's CRC recomputed; the rest left as it is."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out, at = bytearray(data[:8]), 8
    while at + 12 <= len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        if at + 12 + length > len(data):
            break
        out += data[at : at + 8 + length]
        out += struct.pack(">I", zlib.crc32(data[at + 4 : at + 8 + length]))
        at += 12 + length
    return bytes(out + data[at:])


# Mostly flips, in the header and anywhere; cutting a file short ends most inputs, so it is rarer.
_MUTATIONS = ("flip", "flip", "flip", "header", "header", "insert", "delete", "truncate")


@st.composite
def mutated(draw: st.DrawFn, *, seeds: tuple[str, ...], fix_crcs: bool = False) -> bytes:
    """One of the ``seeds`` files with a few flips, insertions, deletions, or cut short."""
    data = bytearray(SEEDS[draw(st.sampled_from(seeds))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(_MUTATIONS))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "header":  # where sizes, depths and modes are declared
            at = draw(st.integers(0, 40)) % len(data)
        if kind in ("flip", "header"):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            del data[at:]
    return _fix_png_crcs(bytes(data)) if fix_crcs else bytes(data)


INPUTS = {
    "random bytes": st.binary(min_size=0, max_size=2048),
    "random bytes behind an image signature": st.tuples(
        st.sampled_from([SEEDS[k][:8] for k in sorted(SEEDS)]), st.binary(max_size=512)
    ).map(lambda t: t[0] + t[1]),
    "mutated PNG/JPEG/GIF/TIFF": mutated(seeds=tuple(sorted(SEEDS))),
    "mutated PNG with its CRCs fixed": mutated(seeds=("PNG", "PNG16"), fix_crcs=True),
}


@pytest.fixture(scope="module")
def tried() -> Iterator[Counter[str]]:
    """Inputs tried and how each ended, per kind; written to docs/reliability.md on request."""
    counts: Counter[str] = Counter()
    yield counts
    if enabled() and all(counts[f"{kind}: tried"] for kind in INPUTS):
        write_section("Fuzzing: image reader", _section(counts))


def _section(counts: Counter[str]) -> str:
    rows = [
        (
            kind,
            str(counts[f"{kind}: tried"]),
            str(counts[f"{kind}: image"]),
            str(counts[f"{kind}: ImageReadError"]),
            str(counts[f"{kind}: other"]),
        )
        for kind in INPUTS
    ]
    total = sum(counts[f"{kind}: tried"] for kind in INPUTS)
    intro = (
        f"`tests/test_fuzz_images.py` (Hypothesis) handed `superres.io.read_image` {total} "
        "generated files in this run. Each must give an image that keeps the in-memory contract "
        "or an `ImageReadError`; any other exception fails the test (and is counted as other)."
    )
    header = ("input", "tried", "read as an image", "ImageReadError", "other (a bug)")
    return f"{intro}\n\n{table(header, rows)}"


def _check_one(path: Path, data: bytes, kind: str, tried: Counter[str]) -> None:
    path.write_bytes(data)
    tried[f"{kind}: tried"] += 1
    try:
        image = read_image(path, max_pixels=MAX_PIXELS)
    except ImageReadError:
        tried[f"{kind}: ImageReadError"] += 1
        return
    except BaseException:
        tried[f"{kind}: other"] += 1
        raise
    tried[f"{kind}: image"] += 1
    rgb = image.rgb
    assert rgb.dtype == torch.float32
    assert rgb.dim() == 3
    assert rgb.shape[0] == 3
    assert rgb.numel() > 0
    assert 0.0 <= float(rgb.min()) <= float(rgb.max()) <= 1.0
    if image.alpha is not None:
        assert image.alpha.shape == (1, *rgb.shape[1:])


def _fuzz(kind: str, examples: int, tried: Counter[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "input.png"

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=examples == DEFAULT_EXAMPLES,  # the default run: the same inputs always
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(data=INPUTS[kind])
        def run(data: bytes) -> None:
            _check_one(path, data, kind, tried)

        run()


@pytest.mark.parametrize("kind", INPUTS)
def test_reader_gives_an_image_or_its_error(kind: str, tried: Counter[str]) -> None:
    _fuzz(kind, DEFAULT_EXAMPLES, tried)


@pytest.mark.slow
@pytest.mark.parametrize("kind", INPUTS)
def test_reader_gives_an_image_or_its_error_long(kind: str, tried: Counter[str]) -> None:
    _fuzz(kind, SLOW_EXAMPLES, tried)
