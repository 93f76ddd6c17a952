"""Hostile image files through `superres upscale`: one line naming the file and the problem.

Every case below is a file a user could hand the command (truncated, corrupt, not an image, a
bomb, too big an output, a FIFO, a symlink loop, ...). Each must end the run with exit code 1 and
exactly one line on stderr that names the file and the problem, with no traceback, no output file
left behind and within 2 s. The controls (valid files in every mode we read, and the files whose
oddity we decided to accept) must still upscale. A sample runs as a real process, including
Ctrl-C during and after a run. With ``SUPERRES_WRITE_RELIABILITY=1`` the observed outcomes become
the "Hostile images" section of docs/reliability.md (see tests/reliability.py).
"""

from __future__ import annotations

import io
import logging
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import superres.inference.upscaler as upscaler_module
from reliability import enabled, table, write_section
from superres.cli import main
from superres.io import read_image

#: The issue's bound on a refusal, reported per case in docs/reliability.md and measured on a quiet
#: machine by benchmarks/hostile_inputs.py; tests hold no timing bound but a hang guard.
TIME_LIMIT_S = 2.0
HANG_S = 60.0


def _rng() -> np.random.Generator:
    return np.random.default_rng(20)  # every file the same on every run, whatever the order


# --- making files ---------------------------------------------------------------------------------


def _encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rgb(h: int = 24, w: int = 32) -> Image.Image:
    return Image.fromarray(_rng().integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png16(h: int = 24, w: int = 32, channels: int = 3) -> bytes:
    ok, data = cv2.imencode(".png", _rng().integers(0, 65536, (h, w, channels), dtype=np.uint16))
    assert ok
    return data.tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(
    width: int,
    height: int,
    *,
    depth: int = 8,
    colour: int = 2,
    idat: bytes | None = None,
    first: bytes = b"",
) -> bytes:
    """A PNG of flat grey 8-bit RGB rows, or with the given IHDR fields / IDAT payload."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    if idat is None:
        idat = zlib.compress((b"\x00" + b"\x80" * (3 * width)) * height)
    return PNG + first + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


PNG = b"\x89PNG\r\n\x1a\n"


def _flip(data: bytes, at: int, count: int = 1) -> bytes:
    out = bytearray(data)
    for i in range(at, at + count):
        out[i] ^= 0xFF
    return bytes(out)


def _with_fixed_crcs(data: bytes) -> bytes:
    """The PNG with every chunk's CRC recomputed (so a damaged payload reaches the decoder)."""
    out, at = bytearray(data[:8]), 8
    while at + 8 <= len(data):
        length = struct.unpack(">I", data[at : at + 4])[0]
        body = data[at + 4 : at + 8 + length]
        out += data[at : at + 8 + length] + struct.pack(">I", zlib.crc32(body))
        at += 12 + length
    return bytes(out)


def _idat_at(data: bytes) -> int:
    return data.index(b"IDAT") + 4


def _bmp_header(width: int, height: int) -> bytes:
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 16, 0, 0, 54) + dib + b"\x00" * 16


def _tiff_header(width: int, height: int) -> bytes:
    # width, height, 8 bits, no compression, min-is-black, strip offset, rows/strip, strip bytes
    tags = (256, 257, 258, 259, 262, 273, 278, 279)
    values = (width, height, 8, 1, 1, 8, height, 1)
    entries = [
        (tag, 4 if tag in (256, 257, 273, 278, 279) else 3, v)
        for tag, v in zip(tags, values, strict=True)
    ]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in entries
    )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (16, 12), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    return _encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0)


def _exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _encode(_rgb(), "JPEG", exif=exif)


def _tiff_mode(mode: str, values: np.ndarray) -> bytes:
    return _encode(Image.fromarray(values, mode), "TIFF")


Maker = Callable[[Path], Path]


def _bytes(name: str, data: Callable[[], bytes]) -> Maker:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data())
        return path

    return make


def _symlink_loop(folder: Path) -> Path:
    (folder / "loop.png").symlink_to(folder / "loop_b.png")
    (folder / "loop_b.png").symlink_to(folder / "loop.png")
    return folder / "loop.png"


def _dangling(folder: Path) -> Path:
    (folder / "dangling.png").symlink_to(folder / "deleted.png")
    return folder / "dangling.png"


def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "fifo.png")
    return folder / "fifo.png"


def _directory(folder: Path) -> Path:
    (folder / "x.png").mkdir()
    return folder / "x.png"


def _unreadable(folder: Path) -> Path:
    path = folder / "secret.png"
    path.write_bytes(_encode(_rgb(), "PNG"))
    path.chmod(0)
    return path


@dataclass(frozen=True)
class Case:
    """One file handed to `superres upscale`; ``needle`` must be in its one stderr line."""

    name: str
    what: str
    make: Maker
    needle: str
    args: tuple[str, ...] = ()
    memory: int | None = None  # the machine's memory as the canvas check sees it, in bytes


def _good_png() -> bytes:
    return _encode(_rgb(), "PNG")


# fmt: off
HOSTILE: tuple[Case, ...] = (
    Case("zero-bytes", "an empty file", _bytes("empty.png", lambda: b""), "empty (0 bytes)"),
    Case("truncated-png", "PNG cut in half", _bytes("cut.png", lambda: _good_png()[:900]),
         "truncated"),
    Case("truncated-png-header", "PNG cut inside IHDR",
         _bytes("cut_ihdr.png", lambda: _good_png()[:20]), "truncated"),
    Case("truncated-jpeg", "JPEG cut in half",
         _bytes("cut.jpg", lambda: _encode(_rgb(), "JPEG")[:600]), "truncated"),
    Case("truncated-16bit-png", "16-bit RGB PNG cut in half",
         _bytes("cut16.png", lambda: _png16()[:2500]), "truncated"),
    Case("truncated-tiff", "TIFF cut in half",
         _bytes("cut.tif", lambda: _encode(_rgb(), "TIFF")[:1200]), "truncated"),
    Case("truncated-gif", "GIF cut inside its pixel data",
         _bytes("cut.gif", lambda: _encode(_rgb(), "GIF")[:1000]), "truncated"),
    Case("truncated-gif-palette", "GIF cut inside its palette",
         _bytes("cut_palette.gif", lambda: _encode(_rgb(), "GIF")[:300]), "corrupt GIF"),
    Case("truncated-bmp", "BMP cut in half",
         _bytes("cut.bmp", lambda: _encode(_rgb(), "BMP")[:1200]), "truncated"),
    Case("truncated-webp", "lossless WebP cut in half",
         _bytes("cut.webp", lambda: _encode(_rgb(), "WEBP", lossless=True)[:900]), "corrupt"),
    Case("tiff-header-only", "the 8 bytes of a TIFF header",
         _bytes("head.tif", lambda: b"II*\x00\x08\x00\x00\x00"), "corrupt TIFF"),
    Case("jpeg-markers-only", "a JPEG start marker and zeros",
         _bytes("soi.jpg", lambda: b"\xff\xd8\xff" + b"\x00" * 64), "corrupt JPEG"),
    Case("bad-crc-ihdr", "PNG whose IHDR CRC is wrong",
         _bytes("crc_ihdr.png", lambda: _flip(_good_png(), 29)),
         "CRC check failed in chunk IHDR"),
    Case("bad-crc-idat", "PNG with a damaged IDAT payload",
         _bytes("crc_idat.png", lambda: _flip(_good_png(), 60, 20)),
         "CRC check failed in chunk IDAT"),
    Case("bad-crc-16bit", "16-bit PNG with a damaged IDAT payload",
         _bytes("crc16.png", lambda: _flip(_png16(), 60, 20)), "CRC check failed in chunk IDAT"),
    Case("broken-deflate", "PNG with valid CRCs around garbage pixel data",
         _bytes("deflate.png", lambda: _png(8, 8, idat=b"garbage" * 9)), "corrupt"),
    Case("broken-deflate-16bit", "16-bit PNG with valid CRCs around a broken stream",
         _bytes("deflate16.png",
                lambda: _with_fixed_crcs(_flip(_png16(), _idat_at(_png16()) + 6, 20))),
         "16-bit colour data could not be decoded"),
    Case("short-pixel-data", "PNG whose pixel data stops early",
         _bytes("short.png", lambda: _png(8, 8, idat=zlib.compress(b"\x00" * 10))), "truncated"),
    Case("no-idat", "PNG without pixel data",
         _bytes("no_idat.png", lambda: PNG + _chunk(b"IHDR", _good_png()[16:29])
                + _chunk(b"IEND", b"")), "no IDAT chunk"),
    Case("corrupt-chunk-length", "PNG with a chunk length of 4 GB",
         _bytes("length.png", lambda: _good_png()[:33] + b"\xff\xff\xff\xf0" + b"IDAT" + b"x"),
         "corrupt length"),
    Case("zero-width", "PNG header saying 0 x 10", _bytes("w0.png", lambda: _png(0, 10)),
         "0x10 pixels"),
    Case("zero-height", "PNG header saying 10 x 0", _bytes("h0.png", lambda: _png(10, 0)),
         "10x0 pixels"),
    Case("bad-bit-depth", "PNG with bit depth 3", _bytes("depth.png", lambda: _png(4, 4, depth=3)),
         "bit depth 3"),
    Case("wrong-magic", "PNG with its first byte changed",
         _bytes("magic.png", lambda: _flip(_good_png(), 0)), "not an image format"),
    Case("random-bytes", "2 kB of random bytes",
         _bytes("noise.png", lambda: _rng().integers(0, 256, 2048, dtype=np.uint8).tobytes()),
         "not an image format"),
    Case("text-file", "a text file named .png",
         _bytes("notes.png", lambda: b"remember to buy milk\n"), "text file"),
    Case("html-page", "an HTML error page saved as .png",
         _bytes("page.png", lambda: b"<!DOCTYPE html><html><body>404 Not Found</body></html>"),
         "HTML page"),
    Case("svg", "an SVG document named .png",
         _bytes("vector.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>'), "SVG"),
    Case("zip", "a ZIP archive named .png",
         _bytes("archive.png", lambda: b"PK\x03\x04" + b"\x00" * 60), "ZIP archive"),
    Case("gzip", "a gzip file named .png",
         _bytes("packed.png", lambda: b"\x1f\x8b\x08\x00" + b"\x00" * 40), "gzip archive"),
    Case("pdf", "a PDF named .png", _bytes("doc.png", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
         "PDF document"),
    Case("heic", "an ISO media (HEIC) file", _bytes("photo.png",
         lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 32),
         "HEIC"),
    Case("bomb-png", "PNG header claiming 100000 x 100000",
         _bytes("bomb.png", lambda: _png(100_000, 100_000, idat=b"")), "exceeds the limit"),
    Case("bomb-bmp", "BMP header claiming 100000 x 100000",
         _bytes("bomb.bmp", lambda: _bmp_header(100_000, 100_000)), "exceeds the limit"),
    Case("bomb-tiff", "TIFF header claiming 100000 x 100000",
         _bytes("bomb.tif", lambda: _tiff_header(100_000, 100_000)), "exceeds the limit"),
    Case("huge-outscale", "a 24x32 PNG asked for --outscale 20000",
         _bytes("small.png", _good_png), "use a smaller --outscale", ("--outscale", "20000")),
    Case("big-output", "the 144 MP case scaled down: x4 of 24x32 on a 100 kB machine",
         _bytes("big.png", _good_png), "of float32 canvas", memory=100_000),
    Case("mode-f", "32-bit float TIFF (mode F)", _bytes("float.tif",
         lambda: _tiff_mode("F", _rng().random((8, 8), dtype=np.float32))),
         "unsupported image mode 'F'"),
    Case("mode-i-negative", "32-bit integer TIFF with negative values", _bytes("int.tif",
         lambda: _tiff_mode("I", np.full((8, 8), -5, dtype=np.int32))), "outside the 16-bit"),
    Case("symlink-loop", "a symlink loop", _symlink_loop, "symlink loop"),
    Case("dangling-symlink", "a symlink to a deleted file", _dangling, "dangling symlink"),
    Case("fifo", "a FIFO named .png (opening it would block)", _fifo, "not a regular file (FIFO)"),
    Case("directory", "a directory named x.png", _directory, "holds no image files"),
    Case("dev-zero", "/dev/zero, an endless character device", lambda _: Path("/dev/zero"),
         "character device"),
    Case("permission-denied", "a PNG without read permission", _unreadable, "permission denied"),
    Case("animated-gif", "animated GIF (refused in one line: extract the frames)",
         _bytes("anim.gif", lambda: _animated("GIF")), "animated (3 frames)"),
    Case("apng", "animated PNG (refused in one line: extract the frames)",
         _bytes("anim.png", lambda: _animated("PNG")), "animated (3 frames)"),
)

# Files that must upscale: every mode we read, and the oddities we accept (one rule each).
CONTROLS: tuple[Case, ...] = (
    Case("rgb8", "valid 8-bit RGB PNG", _bytes("rgb.png", _good_png), ""),
    Case("rgb16", "valid 16-bit RGB PNG", _bytes("rgb16.png", _png16), ""),
    Case("rgba16", "valid 16-bit RGBA PNG", _bytes("rgba16.png", lambda: _png16(channels=4)), ""),
    Case("gray", "8-bit gray PNG", _bytes("gray.png",
         lambda: _encode(_rgb().convert("L"), "PNG")), ""),
    Case("rgba", "RGBA PNG", _bytes("rgba.png", lambda: _encode(_rgb().convert("RGBA"), "PNG")),
         ""),
    Case("la", "gray + alpha PNG", _bytes("la.png", lambda: _encode(_rgb().convert("LA"), "PNG")),
         ""),
    Case("palette", "palette PNG", _bytes("p.png", lambda: _encode(_rgb().convert("P"), "PNG")),
         ""),
    Case("cmyk", "CMYK JPEG", _bytes("cmyk.jpg", lambda: _encode(_rgb().convert("CMYK"), "JPEG")),
         ""),
    Case("i16", "16-bit gray PNG (I;16)", _bytes("i16.png", lambda: _encode(Image.fromarray(
         _rng().integers(0, 65536, (12, 16), dtype=np.uint16)), "PNG")), ""),
    Case("one-pixel", "a 1x1 PNG", _bytes("dot.png", lambda: _encode(_rgb(1, 1), "PNG")), ""),
    Case("jpeg-named-png", "JPEG content with a .png name (format from content)",
         _bytes("photo.png", lambda: _encode(_rgb(), "JPEG")), ""),
    Case("ihdr-not-first", "a tEXt chunk before IHDR (Pillow reads it)",
         _bytes("order.png", lambda: _png(4, 4, first=_chunk(b"tEXt", b"a\x00b"))), ""),
    Case("after-iend", "garbage after IEND (ignored)",
         _bytes("tail.png", lambda: _good_png() + b"trailing garbage"), ""),
    Case("exif-orientation-99", "EXIF orientation 99 (ignored: read as stored)",
         _bytes("orient.jpg", lambda: _exif_orientation(99)), ""),
    Case("exif-garbage", "an eXIf chunk of garbage (ignored, one warning)",
         _bytes("exif.png", lambda: _png(4, 4, first=b"")[:33]
                + _chunk(b"eXIf", b"MM\x00*garbage") + _png(4, 4)[33:]), "EXIF"),
)
# fmt: on


# --- the record for docs/reliability.md -----------------------------------------------------------


@dataclass(frozen=True)
class Row:
    case: str
    what: str
    expected: str
    happened: str
    passed: bool
    seconds: float = float("nan")


@pytest.fixture(scope="module")
def record() -> Iterator[list[Row]]:
    """Rows of every case run in this module; written to docs/reliability.md when asked."""
    rows: list[Row] = []
    yield rows
    if enabled() and len(rows) >= len(HOSTILE) + len(CONTROLS):  # a full run, not a selection
        write_section("Hostile images", _section(rows))


def _seconds(value: float) -> str:
    return "" if value != value else f"{value:.2f}"  # NaN: not timed


def _yes(passed: bool) -> str:
    return "yes" if passed else "**no**"


def _section(rows: list[Row]) -> str:
    failed = sum(not r.passed for r in rows)
    slow = sum(r.seconds > TIME_LIMIT_S for r in rows)
    intro = (
        f"`tests/test_hostile_images.py` ran `superres upscale FILE -o OUT.png` {len(rows)} "
        f"times: on {len(HOSTILE)} hostile files and {len(CONTROLS)} controls, a sample of them "
        "again as real processes, and with Ctrl-C during and after a run. A hostile file must "
        "give exit code 1 and one line on stderr naming it and the problem, no traceback, no "
        f"output; a control must upscale. Failing now: {failed}. The time column is this "
        "run's (in-process, the machine possibly busy with other tests); the bound is "
        f"{TIME_LIMIT_S:g} s and {slow} case(s) took longer. `benchmarks/hostile_inputs.py` "
        "measures the times on a quiet machine (BENCHMARKS.md)."
    )
    body = table(
        ("case", "file", "expected", "what happened", "s", "pass"),
        [
            (r.case, r.what, r.expected, r.happened, _seconds(r.seconds), _yes(r.passed))
            for r in rows
        ],
    )
    return f"{intro}\n\n{body}"


# --- running the command --------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    lines: list[str]  # stderr lines, and log records at WARNING or above, in their order
    seconds: float
    leftovers: list[str]


def _run(
    case: Case,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Path, Run]:
    source = case.make(folder)
    out = folder / "out"
    out.mkdir()
    if case.memory is not None:
        monkeypatch.setattr(upscaler_module, "memory_limit", lambda: case.memory)
    argv = ["upscale", "--model", "bicubic", str(source), "-o", str(out / "result.png"), "-q"]
    caplog.clear()
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        code = main([*argv, *case.args])
    seconds = time.perf_counter() - start
    # A log record reaches stderr or only caplog, depending on the handlers pytest left on the
    # root logger: count each message once.
    err = capsys.readouterr().err.splitlines()
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    lines = err + [
        f"{r.levelname}: {r.getMessage()}"
        for r in logged
        if not any(r.getMessage() in x for x in err)
    ]
    lines += ["Traceback"] * sum(r.exc_info is not None for r in caplog.records)
    return source, Run(code, lines, seconds, sorted(p.name for p in out.iterdir()))


Upscale = Callable[[Case], tuple[Path, Run]]


@pytest.fixture
def upscale(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> Upscale:
    """Make a case's file in ``tmp_path`` and run the command on it in this process."""

    def run(case: Case) -> tuple[Path, Run]:
        return _run(case, tmp_path, capsys, caplog, monkeypatch)

    return run


def _hostile_problems(case: Case, source: Path, run: Run) -> list[str]:
    line = run.lines[0] if run.lines else ""
    checks = {
        f"exit code {run.code}, not 1": run.code == 1,
        f"{len(run.lines)} lines on stderr, not 1": len(run.lines) == 1,
        "a traceback": not any("Traceback" in x for x in run.lines),
        f"the line does not name {source.name}": source.name in line,
        f"the line does not say {case.needle!r}": case.needle.lower() in line.lower(),
        f"left {run.leftovers}": not run.leftovers,
        f"hung for {run.seconds:.0f} s": run.seconds < HANG_S,
    }
    return [problem for problem, ok in checks.items() if not ok]


def _shown(line: str, folder: Path) -> str:
    return line.replace(f"{folder}{os.sep}", "").replace(str(folder), ".")


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
def test_hostile_file_costs_one_line(
    case: Case, tmp_path: Path, upscale: Upscale, record: list[Row]
) -> None:
    if case.name == "permission-denied" and os.geteuid() == 0:
        record.append(Row(case.name, case.what, case.needle, "skipped: root reads anything", True))
        pytest.skip("root can read a file without read permission")
    if case.name == "dev-zero" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    source, run = upscale(case)
    problems = _hostile_problems(case, source, run)
    happened = " / ".join(_shown(x, tmp_path) for x in run.lines) or f"exit {run.code}, silent"
    record.append(Row(case.name, case.what, case.needle, happened, not problems, run.seconds))
    assert not problems, (problems, run.lines)


@pytest.mark.parametrize("case", CONTROLS, ids=[c.name for c in CONTROLS])
def test_control_still_upscales(
    case: Case, tmp_path: Path, upscale: Upscale, record: list[Row]
) -> None:
    source, run = upscale(case)
    expected = f"upscaled, one warning saying {case.needle!r}" if case.needle else "upscaled"
    problems = [] if run.code == 0 else [f"exit code {run.code}"]
    if case.needle:
        if len(run.lines) != 1 or case.needle not in run.lines[0]:
            problems.append(f"expected one warning saying {case.needle!r}, got {run.lines}")
    elif run.lines:
        problems.append(f"unexpected output {run.lines}")
    if run.leftovers == ["result.png"]:
        size = read_image(tmp_path / "out" / "result.png").rgb.shape[-2:]
        with Image.open(source) as im:
            if tuple(size) != (4 * im.height, 4 * im.width):
                problems.append(f"output {tuple(size)} for a {im.width}x{im.height} input")
    else:
        problems.append(f"output folder holds {run.leftovers}")
    happened = " / ".join(_shown(x, tmp_path) for x in run.lines) or "upscaled"
    record.append(Row(case.name, case.what, expected, happened, not problems, run.seconds))
    assert not problems


# --- as a real process ----------------------------------------------------------------------------

_PROCESS_SAMPLE = (
    "fifo",
    "symlink-loop",
    "truncated-16bit-png",
    "broken-deflate-16bit",
    "bad-crc-ihdr",
    "dev-zero",
)


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "superres", "upscale", *args]


def _problems_in(lines: list[str], code: int, expected: int, needle: str) -> list[str]:
    said = [x for x in lines if not x.startswith("INFO: ")]
    problems = [] if code == expected else [f"exit code {code}, not {expected}"]
    if needle and (len(said) != 1 or needle not in said[0]):
        problems.append(f"stderr besides INFO lines: {said}, expected one line with {needle!r}")
    if not needle and said:
        problems.append(f"stderr besides INFO lines: {said}")
    return problems


def test_sample_as_real_processes(tmp_path: Path, record: list[Row]) -> None:
    # Started together, so the sample costs about one interpreter start-up.
    cases = [c for c in HOSTILE if c.name in _PROCESS_SAMPLE]
    started = []
    for case in cases:
        folder = tmp_path / case.name
        folder.mkdir()
        source = case.make(folder)
        (folder / "out").mkdir()
        args = [str(source), "-o", str(folder / "out" / "result.png"), *case.args]
        process = subprocess.Popen(
            _command("--model", "bicubic", *args), stderr=subprocess.PIPE, text=True
        )
        started.append((case, folder, source, process))
    failures = {}
    for case, folder, source, process in started:
        try:
            _, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # e.g. blocked opening the FIFO
            process.kill()
            _, err = process.communicate()
        lines = err.splitlines()
        problems = _problems_in(lines, process.returncode, 1, case.needle)
        if source.name not in err or list((folder / "out").iterdir()):
            problems.append("the file is not named, or an output was left")
        happened = " / ".join(_shown(x, folder) for x in lines if not x.startswith("INFO: "))
        record.append(Row(f"{case.name} (process)", case.what, case.needle, happened, not problems))
        if problems:
            failures[case.name] = problems
    assert not failures


def _interrupt(source: Path, out: Path, *, after: str) -> tuple[int, list[str]]:
    """Upscale ``source``; Ctrl-C once stderr shows ``after``."""
    command = _command("--model", "bicubic", str(source), "-o", str(out))
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines = []
    for line in process.stderr:
        lines.append(line.rstrip("\n"))
        if after in line:
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
    return process.wait(timeout=300), lines


@pytest.mark.parametrize(
    ("when", "side", "after", "code", "needle"),
    [
        # 1000 px: seconds of resizing and encoding after "running on", to interrupt
        ("during a run", 1000, "running on", 130, "superres: interrupted"),
        ("after a run", 32, "done:", 0, ""),  # the interpreter's shutdown once it is done
    ],
)
def test_ctrl_c(
    tmp_path: Path, record: list[Row], when: str, side: int, after: str, code: int, needle: str
) -> None:
    source = tmp_path / "photo.png"
    _rgb(side, side).save(source)
    out = tmp_path / "out" / "photo_x4.png"
    out.parent.mkdir()
    got, lines = _interrupt(source, out, after=after)
    problems = _problems_in(lines, got, code, needle)
    if (got == 0) != out.exists() or len(list(out.parent.iterdir())) > 1:
        problems.append(f"outputs: {sorted(p.name for p in out.parent.iterdir())}")
    expected = f"exit {code}" + (f", one line {needle!r}" if needle else ", silent")
    happened = f"exit {got}" + "".join(f" / {x}" for x in lines if not x.startswith("INFO: "))
    record.append(
        Row(f"ctrl-c {when}", f"SIGINT {when} (process)", expected, happened, not problems)
    )
    assert not problems, lines
