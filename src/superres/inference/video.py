"""Upscaling a video file: its frames through the :class:`~superres.inference.upscaler.Upscaler`,
in resumable segments, in bounded memory.

``superres upscale clip.mp4 -o clip_x4.mp4`` (and :func:`upscale_video`) needs PyAV (``pip install
'superres[video]'``); reading, encoding and muxing live in :mod:`superres.io.video`. The steps:

1. **Probe** (nothing written yet): a file that is not a video, has no video stream or is
   truncated is a one-line :class:`~superres.io.video.VideoReadError` naming it; an output the
   container cannot hold (extension, audio codec) is a ``VideoWriteError``.
2. **Frames** are decoded in order and upscaled ``batch_frames`` at a time, as one
   ``(N, 3, H, W)`` float tensor per Upscaler call (tiling, precision and ``outscale`` apply as for
   images). They keep their timestamps: frame rate and time base are the source's. The encoder
   (H.264 where FFmpeg has it, see :mod:`superres.io.video`) stores 4:2:0, which needs even
   sides: an odd output side loses its last row or column, with a warning.
3. **Segments**: every ``segment_frames`` frames become one self-contained segment file in a hidden
   work folder beside the output, ``.NAME.parts/``, renamed into place when complete. A rerun with
   the same source, network and settings (recorded in ``job.json`` there) passes over finished
   segments (decoding, not upscaling, their frames), so a stopped run goes on where it stopped;
   other settings discard them. Encoding is deterministic: a resumed run writes the same file as
   an uninterrupted one.
4. **Muxing**: the segments (not re-encoded) and the source's audio streams (copied) are joined
   into the output, which appears only complete; the work folder is then removed.
   ``skip_existing=True`` skips an output that exists.

Memory: one batch of decoded and upscaled frames is alive at a time (plus the encoder's own
look-ahead), whatever the clip's length.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from superres.errors import ConfigError, SuperresError, check_positive
from superres.inference.jobs import BatchReport, check_suffix, output_tag
from superres.inference.upscaler import Upscaler
from superres.io.files import atomic_write_text, check_output_folder, make_output_folder
from superres.io.video import (
    CONTAINERS,
    VIDEO_SUFFIXES,
    Encoder,
    Frame,
    VideoInfo,
    VideoReadError,
    VideoWriteError,
    check_container,
    mux_video,
    pick_encoder,
    probe_video,
    read_frames,
    require_av,
    write_segment,
)
from superres.runtime import DistributedEnv

__all__ = [
    "DEFAULT_BATCH_FRAMES",
    "DEFAULT_SEGMENT_FRAMES",
    "VideoResult",
    "check_video_request",
    "is_video_input",
    "upscale_video",
    "upscale_video_to",
]

logger = logging.getLogger(__name__)

#: Frames per resumable segment: the most an interruption costs (4 s at 30 fps).
DEFAULT_SEGMENT_FRAMES = 120
#: Frames per Upscaler call.
DEFAULT_BATCH_FRAMES = 4
_RECIPE_FILE = "job.json"


@dataclass(frozen=True, kw_only=True)
class VideoResult:
    """What :func:`upscale_video` did: ``frames`` upscaled into ``segments`` segments, of which
    ``reused`` were finished by an earlier run; ``skipped``: the output existed."""

    output: Path
    frames: int = 0
    segments: int = 0
    reused: int = 0
    skipped: bool = False


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """How one run encodes, the same for every segment."""

    info: VideoInfo
    size: tuple[int, int]
    encoder: Encoder
    segment_frames: int
    batch_frames: int


def is_video_input(inputs: Sequence[str]) -> bool:
    """Whether any of ``inputs`` names a video file (by extension; PyAV is not needed)."""
    return any(Path(name).suffix.lower() in VIDEO_SUFFIXES for name in inputs)


def _frame_size(upscaler: Upscaler, info: VideoInfo) -> tuple[int, int]:
    """The encoded ``(H, W)``: the upscaled size, each side rounded down to even (4:2:0)."""
    height, width = upscaler.output_size(info.height, info.width)
    even = (height - height % 2, width - width % 2)
    if min(even) < 2:
        raise ConfigError(f"a {width}x{height} output frame is too small to encode (min 2x2)")
    if even != (height, width):
        logger.warning(
            "%dx%d output frames are encoded as %dx%d (4:2:0 needs even sides)",
            width,
            height,
            even[1],
            even[0],
        )
    return even


def _chunks(items: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _upscaled(
    frames: Iterable[Frame], upscaler: Upscaler, plan: _Plan, bar: tqdm
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """``(timestamps, upscaled frames)`` per batch: one Upscaler call on ``(N, 3, H, W)``."""
    height, width = plan.size
    for batch in _chunks(frames, plan.batch_frames):
        lr = torch.stack([frame.rgb() for frame in batch])
        sr = upscaler(lr)[:, :, :height, :width]
        del lr
        yield [frame.pts for frame in batch], sr
        del sr
        bar.update(len(batch))


def _segment_path(work: Path, index: int) -> Path:
    return work / f"segment-{index:05d}.nut"


def _run_segments(
    src: Path,
    work: Path,
    upscaler: Upscaler,
    plan: _Plan,
    *,
    progress: bool,
    on_segment: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Encode every segment not yet in ``work``; ``(segments, reused)``."""
    frames = read_frames(src, plan.info)
    segments = reused = 0
    bar = tqdm(total=plan.info.frames, desc="upscale", unit="frame", disable=not progress or None)
    with logging_redirect_tqdm(), bar, contextlib.closing(frames):
        while (first := next(frames, None)) is not None:
            part = itertools.chain([first], itertools.islice(frames, plan.segment_frames - 1))
            path = _segment_path(work, segments)
            if path.is_file():  # finished by an earlier run: its frames are passed over
                bar.update(sum(1 for _ in part))
                reused += 1
            else:
                write_segment(
                    path,
                    _upscaled(part, upscaler, plan, bar),
                    info=plan.info,
                    encoder=plan.encoder,
                    gop=plan.segment_frames,
                )
                if on_segment is not None:
                    on_segment(segments)
            segments += 1
    return segments, reused


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _recipe(src: Path, upscaler: Upscaler, plan: _Plan) -> str:
    """What the segments depend on: segments made under another recipe are not reused."""
    stat = src.stat()
    options = upscaler.options
    return json.dumps(
        {
            "source": str(src.resolve()),
            "source_bytes": stat.st_size,
            "source_mtime_ns": stat.st_mtime_ns,
            "network": type(upscaler.model).__name__,
            "weights_sha256": _weights_digest(upscaler.model),
            "scale": upscaler.scale,
            "outscale": options.outscale,
            "backproject": [options.backproject, options.backproject_step],
            "tile": [upscaler.tile_size(), options.overlap],
            "execution": f"{upscaler.device.type} {upscaler.execution_path}",
            "size": list(plan.size),
            "encoder": [plan.encoder.codec, dict(plan.encoder.options)],
            "segment_frames": plan.segment_frames,
            "pyav": require_av().__version__,
        },
        indent=1,
        sort_keys=True,
    )


def _prepare_work(work: Path, recipe: str) -> None:
    """``work`` exists and holds ``recipe``; segments of another recipe are removed."""
    record = work / _RECIPE_FILE
    if work.is_dir():
        if record.is_file() and record.read_text(encoding="utf-8") == recipe:
            return
        logger.warning("%s: discarding the segments of a run with other settings", work)
        shutil.rmtree(work)
    work.mkdir()
    atomic_write_text(record, recipe)


def _check_paths(src: Path, dst: Path) -> None:
    check_output_folder(dst.parent, "-o")  # made below, as every command's output folders
    if dst.exists() and src.resolve() == dst.resolve():
        raise VideoWriteError(dst, "the output would overwrite the input")
    check_container(src, dst)


def _check_counts(segment_frames: object, batch_frames: object) -> None:
    for name, value in (("segment_frames", segment_frames), ("batch_frames", batch_frames)):
        check_positive(name, value)


def upscale_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    upscaler: Upscaler,
    segment_frames: int = DEFAULT_SEGMENT_FRAMES,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    skip_existing: bool = False,
    max_pixels: int | None = None,
    progress: bool = False,
    on_segment: Callable[[int], None] | None = None,
) -> VideoResult:
    """Upscale the video ``src`` into ``dst`` (``.mp4``, ``.m4v``, ``.mov`` or ``.mkv``).

    See the module for the steps. ``max_pixels`` refuses larger frames (``None``: no limit);
    ``progress`` shows a bar in frames. ``on_segment(index)`` is called after each segment this
    run encodes (an exception there stops the run; a rerun resumes after the finished segments).

    Raises:
        VideoSupportError: PyAV is not installed.
        VideoReadError: ``src`` is not a readable video (nothing is written).
        VideoWriteError: ``dst`` cannot be written (checked before any frame is upscaled).
        ConfigError: ``segment_frames`` or ``batch_frames`` below 1.
    """
    src, dst = Path(src), Path(dst)
    _check_counts(segment_frames, batch_frames)
    if skip_existing and dst.exists():
        logger.info("skipped %s: it exists (--skip-existing)", dst)
        return VideoResult(output=dst, skipped=True)
    info = probe_video(src)
    if max_pixels is not None and info.width * info.height > max_pixels:
        raise VideoReadError(
            src, f"its {info.width}x{info.height} frames exceed the limit of {max_pixels} pixels"
        )
    _check_paths(src, dst)
    upscaler.check_canvas(info.height, info.width)
    plan = _Plan(
        info=info,
        size=_frame_size(upscaler, info),
        encoder=pick_encoder(),
        segment_frames=segment_frames,
        batch_frames=batch_frames,
    )
    work = make_output_folder(dst.parent, "-o") / f".{dst.name}.parts"
    _prepare_work(work, _recipe(src, upscaler, plan))
    try:
        segments, reused = _run_segments(
            src, work, upscaler, plan, progress=progress, on_segment=on_segment
        )
    except VideoReadError:
        shutil.rmtree(work, ignore_errors=True)  # a bad input leaves nothing behind
        raise
    mux_video([_segment_path(work, i) for i in range(segments)], dst, audio_from=src, info=info)
    shutil.rmtree(work, ignore_errors=True)
    logger.info("wrote %s (%dx%d, %d frames)", dst, plan.size[1], plan.size[0], info.frames)
    return VideoResult(output=dst, frames=info.frames, segments=segments, reused=reused)


def _output_path(src: Path, output: str | Path | None, end: str) -> Path:
    """``STEM{end}`` + the input's container (else ``.mp4``), beside ``src`` or in ``output``."""
    suffix = src.suffix if src.suffix.lower() in CONTAINERS else ".mp4"
    name = f"{src.stem}{end}{suffix}"
    if output is None:
        return src.with_name(name)
    out = Path(output)
    return out / name if out.is_dir() or not out.suffix else out  # a folder, made if missing


def check_video_request(
    inputs: Sequence[str], *, fmt: str | None, recursive: bool, suffix: str | None
) -> None:
    """What :func:`~superres.inference.batch.upscale_files` checks of a video request before the
    model loads: one video input, no image-only option (``fmt``, ``recursive``), no ``torchrun``,
    PyAV installed. ``quality`` (JPEG/WebP) does not apply: the encoder's quality is fixed (CRF
    18)."""
    if len(inputs) != 1 or not is_video_input(inputs):
        raise ConfigError(
            f"a video is upscaled on its own, got {len(inputs)} inputs ({', '.join(inputs)}); "
            "run superres upscale once per video"
        )
    if fmt is not None or recursive:
        raise ConfigError(
            "--format and --recursive are for images; a video's container comes from its -o "
            "extension (.mp4, .m4v, .mov, .mkv)"
        )
    check_suffix(suffix)
    if DistributedEnv.from_env() is not None:  # every rank would write the same segments
        raise ConfigError("a video is upscaled by one process; run it without torchrun")
    require_av()  # before the model loads: a missing extra is the first thing said


def upscale_video_to(
    src: Path,
    upscaler: Upscaler,
    *,
    output: str | Path | None,
    suffix: str | None,
    skip_existing: bool,
    max_pixels: int | None,
    progress: bool,
) -> BatchReport:
    """``superres upscale VIDEO [-o OUT]`` once the network is built: ``src`` into ``STEM_x4`` +
    its extension where we write it (else ``.mp4``; ``suffix`` replaces ``_x4`` as for images),
    beside the input or in the folder ``output``; or into the file ``output``. ``progress`` shows
    the frame bar (build ``upscaler`` without its own tile bars: they would bury it). The
    report's one entry is the video: written, skipped or failed (with the error's line)."""
    logger.info("running on %s: %s", upscaler.device, upscaler.execution_path)
    tag = output_tag(upscaler.scale, upscaler.options.outscale)
    dst = _output_path(src, output, f"_{tag}" if suffix is None else suffix)
    report = BatchReport(total=1)
    try:
        result = upscale_video(
            src,
            dst,
            upscaler=upscaler,
            skip_existing=skip_existing,
            max_pixels=max_pixels,
            progress=progress,
        )
    except SuperresError as exc:
        report.failed.append((str(src), str(exc)))
        return report
    (report.skipped if result.skipped else report.written).append(result.output)
    return report
