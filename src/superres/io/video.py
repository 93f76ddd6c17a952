"""Video files <-> float32 RGB ``(3, H, W)`` frames in [0, 1], through PyAV (FFmpeg).

PyAV is optional (``pip install 'superres[video]'``): it is imported when a video is opened, and
its absence is one :class:`VideoSupportError` naming that extra. Here, and only here:

* :func:`probe_video` opens a file and counts its video packets without decoding, so a file that
  is not a video, has no video stream or is truncated (fewer frames than its header declares) is
  a :class:`VideoReadError` naming it before anything is written;
* :func:`read_frames` decodes the first video stream in order, each frame with its timestamp;
* :func:`write_segment` encodes frames into a self-contained segment file (its own encoder,
  starting on a key frame, no B-frames, so segments join by timestamp alone), atomically;
* :func:`mux_video` joins segments (their packets, not re-encoded) with every audio stream of the
  source (copied, not re-encoded) into the output, interleaved by time, atomically.

Encoder: H.264 (``libx264``, CRF 18, preset ``medium``, 4:2:0) where the bundled FFmpeg has it,
else MPEG-4 part 2 (``mpeg4``, q 2-4). Frames keep the source's time base, timestamps and frame
rate. Colour: decoded to RGB with the matrix the source is tagged with, encoded and tagged as
BT.709, limited range (8 bits; HDR sources are not kept HDR).
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import tempfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from superres.errors import SuperresError
from superres.io.image_write import to_uint8

if TYPE_CHECKING:
    from types import ModuleType

    import av.container
    import av.packet
    import av.video.frame
    from av.video.stream import VideoStream

__all__ = [
    "CONTAINERS",
    "ENCODERS",
    "VIDEO_SUFFIXES",
    "Encoder",
    "Frame",
    "VideoError",
    "VideoInfo",
    "VideoReadError",
    "VideoSupportError",
    "VideoWriteError",
    "check_container",
    "mux_video",
    "pick_encoder",
    "probe_video",
    "read_frames",
    "require_av",
    "write_segment",
]

#: Input names taken as videos (by extension, case-insensitive).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
#: Output extension -> FFmpeg container: those that hold H.264/MPEG-4 and the usual audio.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
logger = logging.getLogger(__name__)

_INSTALL = "pip install 'superres[video]'"
_SEGMENT_FORMAT = "nut"  # keeps any time base exactly, and the encoder's global header
_BT709, _LIMITED_RANGE = 1, 1  # FFmpeg's AVCOL_SPC/PRI/TRC_BT709 and AVCOL_RANGE_MPEG


@dataclass(frozen=True)
class Encoder:
    """An FFmpeg encoder and its options."""

    codec: str
    options: tuple[tuple[str, str], ...]


#: The encoders tried, in order of preference (the first the installed FFmpeg has is used).
ENCODERS = (
    Encoder("libx264", (("crf", "18"), ("preset", "medium"))),
    Encoder("mpeg4", (("qmin", "2"), ("qmax", "4"))),
)


class VideoError(SuperresError, OSError):
    """A video file could not be read or written; ``path`` and ``reason`` say which and why."""

    action = "use"

    def __init__(self, path: object, reason: str) -> None:
        self.path, self.reason = str(path), reason
        # One argument: OSError's str() is the message itself, not an errno-style one.
        super().__init__(f"cannot {self.action} video {self.path!r}: {reason}")


class VideoReadError(VideoError):
    """Not a file, not a video, no video stream, truncated or undecodable."""

    action = "read"


class VideoWriteError(VideoError):
    """The output cannot be written (container, folder, audio the container cannot hold)."""

    action = "write"


class VideoSupportError(SuperresError, ImportError):
    """PyAV, which reads and writes video, is not installed (or has no usable encoder)."""


@dataclass(frozen=True, kw_only=True)
class VideoInfo:
    """A video file's first video stream, as :func:`probe_video` found it.

    Attributes:
        width, height: frame size in pixels.
        frames: video packets in the file (one frame each).
        rate: average frame rate (frames per second), ``None`` when the file does not say.
        time_base: the unit of the stream's timestamps, in seconds.
        audio_streams: how many audio streams the file holds (all are copied).
    """

    width: int
    height: int
    frames: int
    rate: Fraction | None
    time_base: Fraction
    audio_streams: int


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its timestamp (in the stream's time base) and, on demand, its pixels."""

    pts: int
    _decoded: av.video.frame.VideoFrame

    def rgb(self) -> torch.Tensor:
        """float32 ``(3, H, W)`` RGB in [0, 1] (``v / 255``)."""
        pixels = self._decoded.to_ndarray(format="rgb24")
        return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255.0)


def require_av() -> ModuleType:
    """The ``av`` module, or a :class:`VideoSupportError` naming the extra that installs it."""
    try:
        import av
    except ImportError:
        raise VideoSupportError(
            f"reading and writing video needs PyAV, which is not installed: {_INSTALL}"
        ) from None
    return av


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _open_input(path: Path) -> av.container.InputContainer:
    av = require_av()
    if not path.is_file():
        raise VideoReadError(path, "no such file" if not path.exists() else "not a regular file")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoReadError(
            path, f"not a video file FFmpeg can read, or cut short ({_reason(exc)})"
        ) from None
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "the file holds no video stream")
    return container


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """The first video stream of ``path``, its packets counted (the file is read, not decoded).

    Raises:
        VideoSupportError: PyAV is not installed.
        VideoReadError: not a file, not a video, no video stream, no frames, or fewer frames than
            the header declares (a truncated file).
    """
    src = Path(path)
    av = require_av()
    with _open_input(src) as container:
        stream = container.streams.video[0]
        width, height = int(stream.codec_context.width), int(stream.codec_context.height)
        declared, time_base, rate = int(stream.frames or 0), stream.time_base, stream.average_rate
        audio = len(container.streams.audio)
        count = 0
        try:
            for packet in container.demux(stream):
                count += 1 if packet.size else 0
        except (av.FFmpegError, OSError) as exc:
            raise VideoReadError(src, f"damaged after {count} frame(s) ({_reason(exc)})") from None
    if width < 1 or height < 1 or time_base is None:
        raise VideoReadError(src, f"the video stream has no usable size ({width}x{height})")
    if count == 0:
        raise VideoReadError(src, "the video stream holds no frames")
    if declared and count < declared:
        raise VideoReadError(
            src, f"truncated: {count} of the {declared} frames its header declares are present"
        )
    return VideoInfo(
        width=width,
        height=height,
        frames=count,
        rate=Fraction(rate) if rate else None,
        time_base=Fraction(time_base),
        audio_streams=audio,
    )


def read_frames(path: str | os.PathLike[str], info: VideoInfo) -> Generator[Frame, None, None]:
    """Every frame of the first video stream of ``path``, in order; timestamps increase strictly
    (made up from the frame rate where the file has none or repeats one).

    Raises:
        VideoReadError: a frame cannot be decoded.
    """
    src = Path(path)
    av = require_av()
    step = max(1, round(1 / (info.rate * info.time_base))) if info.rate else 1
    last: int | None = None
    with _open_input(src) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for decoded in container.decode(stream):
                pts = decoded.pts
                if pts is None or (last is not None and pts <= last):
                    pts = 0 if last is None else last + step
                last = pts
                yield Frame(pts, decoded)
        except (av.FFmpegError, OSError) as exc:
            raise VideoReadError(src, f"cannot decode a frame ({_reason(exc)})") from None


def pick_encoder() -> Encoder:
    """The first of :data:`ENCODERS` the installed FFmpeg has."""
    av = require_av()
    for encoder in ENCODERS:
        try:
            av.codec.Codec(encoder.codec, "w")
        except (av.FFmpegError, ValueError):
            continue
        return encoder
    names = ", ".join(e.codec for e in ENCODERS)
    raise VideoSupportError(f"the installed FFmpeg has none of the encoders {names}: {_INSTALL}")


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _temporary(dst: Path) -> Path:
    fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def write_segment(
    path: str | os.PathLike[str],
    batches: Iterable[tuple[list[int], torch.Tensor]],
    *,
    info: VideoInfo,
    encoder: Encoder,
    gop: int,
) -> None:
    """Encode ``(timestamps, frames)`` batches (float ``(N, 3, H, W)`` in [0, 1], rounded half-up
    to 8 bits; ``H`` and ``W`` even) into the segment file ``path``, which appears only complete.
    """
    av = require_av()
    dst = Path(path)
    tmp = _temporary(dst)
    try:
        with av.open(str(tmp), "w", format=_SEGMENT_FORMAT) as out:
            stream = None
            for stamps, frames in batches:
                if stream is None:
                    stream = _video_stream(av, out, encoder, info, frames.shape[-2:], gop)
                for pts, rgb in zip(stamps, frames, strict=True):
                    pixels = np.ascontiguousarray(to_uint8(rgb))
                    frame = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(
                        format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG"
                    )
                    frame.pts, frame.time_base = pts, info.time_base
                    out.mux(stream.encode(frame))
            if stream is not None:
                out.mux(stream.encode(None))
        _fsync(tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _video_stream(
    av: ModuleType,
    out: av.container.OutputContainer,
    encoder: Encoder,
    info: VideoInfo,
    size: torch.Size,
    gop: int,
) -> VideoStream:
    from av.video.stream import VideoStream

    stream = out.add_stream(encoder.codec, rate=info.rate, options=dict(encoder.options))
    if not isinstance(stream, VideoStream):
        raise VideoSupportError(f"FFmpeg's {encoder.codec} is not a video encoder")
    stream.height, stream.width = int(size[0]), int(size[1])
    stream.pix_fmt = "yuv420p"
    stream.time_base = info.time_base
    context = stream.codec_context
    context.time_base = info.time_base
    context.max_b_frames = 0  # decode order = display order: segments join by timestamp alone
    context.gop_size = gop
    context.flags |= av.codec.context.Flags.global_header
    # Tagged as converted (write_segment), so players do not guess: BT.709, limited range.
    context.colorspace = context.color_primaries = context.color_trc = _BT709
    context.color_range = _LIMITED_RANGE
    return stream


def _packets(path: Path, extradata: bytes | None) -> Iterator[av.packet.Packet]:
    """A segment's video packets; its headers (SPS/PPS) must be the first segment's, which the
    output carries for all."""
    with require_av().open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.extradata != extradata:
            raise VideoWriteError(
                path, "encoded with other settings than the first segment; delete its folder"
            )
        for packet in container.demux(stream):
            if packet.size:
                if packet.dts is None:  # no B-frames: decode order is display order
                    packet.dts = packet.pts
                yield packet


def _time(packet: av.packet.Packet) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    if stamp is None or packet.time_base is None:
        return Fraction(-1)  # no time: written where it comes
    return stamp * Fraction(packet.time_base)


def _interleave(
    first: Iterator[av.packet.Packet], second: Iterator[av.packet.Packet]
) -> Iterator[av.packet.Packet]:
    """Two packet streams, each in time order, merged in time order (the first wins a tie)."""
    a, b = next(first, None), next(second, None)
    while a is not None or b is not None:
        if b is None or (a is not None and _time(a) <= _time(b)):
            assert a is not None
            yield a
            a = next(first, None)
        else:
            yield b
            b = next(second, None)


def _format(dst: Path) -> str:
    fmt = CONTAINERS.get(dst.suffix.lower())
    if fmt is None:
        raise VideoWriteError(
            dst, f"unknown video extension {dst.suffix!r}; use one of {', '.join(CONTAINERS)}"
        )
    return fmt


def check_container(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """``dst``'s extension names a container we write, and it can hold ``src``'s audio.

    Raises:
        VideoWriteError: naming the extension or the audio codec, and the fix.
    """
    av = require_av()
    src, dst = Path(src), Path(dst)
    fmt = _format(dst)
    with _open_input(src) as source:
        if not source.streams.audio:
            return
        try:
            with av.open(io.BytesIO(), "w", format=fmt) as out:
                for stream in source.streams.audio:
                    out.add_stream_from_template(stream)
                out.start_encoding()
        except (av.FFmpegError, ValueError) as exc:
            codecs = ", ".join(s.codec_context.name for s in source.streams.audio)
            raise VideoWriteError(
                dst,
                f"a {dst.suffix} file cannot hold the input's {codecs} audio ({_reason(exc)}); "
                "write .mkv or .mov instead",
            ) from None


def mux_video(
    segments: list[Path],
    dst: str | os.PathLike[str],
    *,
    audio_from: str | os.PathLike[str],
    info: VideoInfo,
) -> None:
    """The segments' video, then every audio stream of ``audio_from``, into ``dst`` (format from
    its extension), interleaved by time; ``dst`` appears only complete."""
    av = require_av()
    dst = Path(dst)
    fmt = _format(dst)
    options = {"movflags": "faststart"} if fmt in ("mp4", "mov") else {}
    tmp = _temporary(dst)
    try:
        with (
            av.open(str(segments[0])) as template,
            _open_input(Path(audio_from)) as source,
            av.open(str(tmp), "w", format=fmt, options=options) as out,
        ):
            video = out.add_stream_from_template(template.streams.video[0])
            extradata = template.streams.video[0].codec_context.extradata
            video.time_base = info.time_base
            audio = {s.index: out.add_stream_from_template(s) for s in source.streams.audio}
            if (left := len(source.streams) - len(audio) - 1) > 0:
                logger.warning(
                    "%s: %d stream(s) besides its first video and its audio (subtitles, data, "
                    "other video) are not copied",
                    audio_from,
                    left,
                )
            # demux() with no stream reads them all: no audio, no audio packets.
            sound = source.demux(*source.streams.audio) if audio else iter(())
            moving = itertools.chain.from_iterable(_packets(p, extradata) for p in segments)
            for packet in _interleave(moving, (p for p in sound if p.size)):
                kind, index = packet.stream.type, packet.stream.index
                packet.stream = video if kind == "video" else audio[index]
                out.mux(packet)
        _fsync(tmp)
        os.replace(tmp, dst)
    except av.FFmpegError as exc:
        tmp.unlink(missing_ok=True)
        raise VideoWriteError(dst, f"muxing failed ({_reason(exc)})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
