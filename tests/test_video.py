"""Video upscaling: a clip the test makes (with audio) round-trips, resumes, stays bounded, and
bad inputs are one line with nothing written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from superres.cli import main
from superres.errors import OutputPathError
from superres.inference.options import UpscaleOptions
from superres.inference.upscaler import Upscaler
from superres.inference.video import is_video_input, upscale_video
from superres.models import create_model

av = pytest.importorskip("av")

if TYPE_CHECKING:
    from av.audio.stream import AudioStream
    from av.container import OutputContainer
    from av.video.stream import VideoStream

import superres.io.video as io_video  # noqa: E402  # needs av for its tests only
from superres.io.video import VideoReadError, VideoWriteError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPS, SECONDS, WIDTH, HEIGHT = 10, 2, 32, 24


def make_clip(
    path: Path,
    *,
    frames: int = FPS * SECONDS,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    audio: bool = True,
    video: bool = True,
    faststart: bool = False,
) -> Path:
    """A synthetic clip: moving gradients (H.264, ``FPS``) and a 440 Hz sine (AAC, 16 kHz)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        picture = out.add_stream("libx264", rate=FPS) if video else None
        sound = out.add_stream("aac", rate=16000) if audio else None
        # Every stream is configured before the first packet (which writes the header).
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = size[0], size[1], "yuv420p"
        if sound is not None:
            sound.layout = "mono"
        if picture is not None:
            _gradients(out, picture, frames, size)
        if sound is not None:
            _sine(out, sound, samples=16000 * frames // FPS)
    return path


def _gradients(
    out: OutputContainer, picture: VideoStream, frames: int, size: tuple[int, int]
) -> None:
    w, h = size
    for i in range(frames):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w) * 8 + i * 10) % 256
        img[..., 1] = (np.arange(h)[:, None] * 10 + i * 3) % 256
        img[..., 2] = i * 12 % 256
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = i
        out.mux(picture.encode(frame))
    out.mux(picture.encode(None))


def _sine(out: OutputContainer, sound: AudioStream, *, samples: int) -> None:
    rate = sound.codec_context.sample_rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
    step = sound.codec_context.frame_size or 1024
    for start in range(0, samples, step):
        frame = av.AudioFrame.from_ndarray(
            wave[None, start : start + step], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = rate, start
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))


def bicubic(scale: int = 4, *, outscale: float | None = None) -> Upscaler:
    return Upscaler(
        create_model("bicubic", scale=scale),
        options=UpscaleOptions(device="cpu", outscale=outscale),
    )


def frames_of(path: Path) -> tuple[list[float], np.ndarray]:
    """Presentation times (s) and RGB frames ``(T, H, W, 3)`` of the first video stream."""
    with av.open(str(path)) as c:
        decoded = [(float(f.time), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    return [t for t, _ in decoded], np.stack([a for _, a in decoded])


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def test_clip_with_audio_round_trips(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4")
    dst = tmp_path / "clip_x4.mp4"
    result = upscale_video(src, dst, upscaler=bicubic(), segment_frames=8, batch_frames=3)
    assert (result.frames, result.segments, result.reused) == (20, 3, 0)
    with av.open(str(dst)) as c, av.open(str(src)) as s:
        video = c.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (WIDTH * 4, HEIGHT * 4)
        assert video.codec_context.name == "h264"
        assert video.codec_context.colorspace == 1  # tagged BT.709, as converted
        assert video.average_rate == FPS
        assert video.time_base == s.streams.video[0].time_base
        assert video.frames == FPS * SECONDS
        assert c.duration is not None
        assert abs(c.duration / 1e6 - SECONDS) < 0.05
        assert len(c.streams.audio) == 1
        assert c.streams.audio[0].codec_context.name == "aac"
    times, sr = frames_of(dst)
    src_times, lr = frames_of(src)
    assert times == src_times  # every frame at the source's time
    assert sr.shape == (20, HEIGHT * 4, WIDTH * 4, 3)
    # The audio is copied, packet for packet, not re-encoded.
    assert audio_packets(dst) == audio_packets(src)
    # The pictures are the bicubic upscale of the source's, within H.264 at CRF 18.
    expected = bicubic()(torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255)
    expected = (expected.permute(0, 2, 3, 1).numpy() * 255).round()
    assert np.abs(sr.astype(float) - expected).mean() < 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "clip_x4.mp4"]


def test_interrupted_run_resumes_to_the_same_file(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4")
    whole = tmp_path / "whole.mp4"
    upscale_video(src, whole, upscaler=bicubic(), segment_frames=6)
    dst = tmp_path / "resumed.mp4"
    encoded: list[int] = []

    def stop_after_two(index: int) -> None:
        encoded.append(index)
        if index == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, dst, upscaler=bicubic(), segment_frames=6, on_segment=stop_after_two)
    assert not dst.exists()  # never a partial output
    work = tmp_path / ".resumed.mp4.parts"
    assert sorted(p.name for p in work.iterdir()) == [
        "job.json",
        "segment-00000.nut",
        "segment-00001.nut",
    ]
    encoded.clear()
    result = upscale_video(
        src, dst, upscaler=bicubic(), segment_frames=6, on_segment=encoded.append
    )
    assert (result.segments, result.reused, encoded) == (4, 2, [2, 3])
    assert dst.read_bytes() == whole.read_bytes()
    assert not work.exists()


def test_segments_of_other_settings_are_not_reused(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4", audio=False)
    dst = tmp_path / "out.mp4"

    def stop(_index: int) -> None:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        upscale_video(src, dst, upscaler=bicubic(), segment_frames=5, on_segment=stop)
    result = upscale_video(src, dst, upscaler=bicubic(scale=2), segment_frames=5)
    assert (result.segments, result.reused) == (4, 0)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.width == WIDTH * 2
        assert not c.streams.audio


def test_skip_existing_keeps_a_finished_output(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=4, audio=False)
    dst = tmp_path / "clip_x4.mp4"
    dst.write_bytes(b"finished")
    result = upscale_video(src, dst, upscaler=bicubic(), skip_existing=True)
    assert result.skipped
    assert dst.read_bytes() == b"finished"
    assert main(["upscale", str(src), "--model", "bicubic", "--skip-existing", "-q"]) == 0
    assert dst.read_bytes() == b"finished"


def test_odd_output_sides_lose_a_row_or_column(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    dst = tmp_path / "odd.mkv"
    upscale_video(src, dst, upscaler=bicubic(scale=2, outscale=1.1))  # 35x26 -> 34x26
    _, frames = frames_of(dst)
    assert frames.shape == (3, 26, 34, 3)


def test_mpeg4_when_ffmpeg_has_no_libx264(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = io_video.Encoder("no-such-encoder", ())
    monkeypatch.setattr(io_video, "ENCODERS", (missing, *io_video.ENCODERS[1:]))
    src = make_clip(tmp_path / "clip.mp4", frames=5)
    dst = tmp_path / "clip_x2.mov"
    upscale_video(src, dst, upscaler=bicubic(scale=2), segment_frames=2)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.name == "mpeg4"
        assert c.streams.video[0].frames == 5
        assert len(c.streams.audio) == 1


def _bad_inputs(folder: Path) -> dict[str, tuple[Path, str]]:
    text = folder / "notes.mp4"
    text.write_text("not a video\n")
    sound = make_clip(folder / "sound.mp4", video=False)
    truncated = folder / "cut.mp4"
    whole = make_clip(folder / "whole.mp4", faststart=True).read_bytes()
    (folder / "whole.mp4").unlink()
    truncated.write_bytes(whole[: len(whole) * 6 // 10])
    no_index = folder / "cut_index.mp4"  # the index (moov) is written last: cut off with it
    whole = make_clip(folder / "whole.mp4").read_bytes()
    (folder / "whole.mp4").unlink()
    no_index.write_bytes(whole[: len(whole) * 6 // 10])
    return {
        "cut before its index": (no_index, "cut short"),
        "text": (text, "not a video file"),
        "audio only": (sound, "no video stream"),
        "truncated": (truncated, "truncated"),
        "missing": (folder / "absent.mp4", "no such file"),
    }


def test_bad_inputs_are_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for kind, (path, needle) in _bad_inputs(tmp_path).items():
        before = sorted(tmp_path.iterdir())
        with pytest.raises(VideoReadError, match=needle) as caught:
            upscale_video(path, tmp_path / "out.mp4", upscaler=bicubic())
        assert path.name in str(caught.value), kind
        assert main(["upscale", str(path), "--model", "bicubic", "-q"]) == 1, kind
        err = capsys.readouterr().err
        assert err.count("\n") == 1, (kind, err)
        assert path.name in err, kind
        assert needle in err, kind
        assert sorted(tmp_path.iterdir()) == before, kind


def test_outputs_that_cannot_be_written_are_refused_first(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=2)
    with pytest.raises(VideoWriteError, match="unknown video extension"):
        upscale_video(src, tmp_path / "clip.webm", upscaler=bicubic())
    with pytest.raises(OutputPathError, match="is a file"):
        upscale_video(src, src / "clip.mp4", upscaler=bicubic())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_without_pyav_a_video_is_one_line_naming_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=2)
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    assert main(["upscale", str(src), "--model", "bicubic", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'superres[video]'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_video_inputs_are_recognised_by_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert is_video_input(["a.png", "CLIP.MP4"])
    assert not is_video_input(["a.png", "photos/*.jpg"])
    src = make_clip(tmp_path / "clip.mp4", frames=2)
    assert main(["upscale", str(src), str(src), "--model", "bicubic", "-q"]) == 2
    assert "a video is upscaled on its own" in capsys.readouterr().err


def test_torchrun_is_refused_for_a_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_clip(tmp_path / "clip.mp4", frames=2)
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    assert main(["upscale", str(src), "--model", "bicubic", "-q"]) == 2
    assert "without torchrun" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_readme_video_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's video paragraph, run as written (the shipped x4 model) on a small clip; the
    progress bar counts frames."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("**Video**", 1)[1]
    command = re.search(r"```bash\n(.+?)\n```", block, flags=re.S)
    assert command is not None
    argv = shlex.split(command.group(1))
    assert argv[:2] == ["superres", "upscale"]
    make_clip(tmp_path / "clip.mp4", frames=6)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress bars draw on a terminal
    assert main(argv[1:]) == 0
    assert "6/6" in capsys.readouterr().err  # the bar, in frames
    with av.open(str(tmp_path / "clip_x4.mp4")) as c:
        assert c.streams.video[0].frames == 6
        assert c.streams.video[0].codec_context.width == WIDTH * 4
        assert len(c.streams.audio) == 1


_MEMORY_SCRIPT = """
import json, resource, sys
sys.path.insert(0, {tests!r})
from test_video import bicubic, make_clip
from superres.inference.video import upscale_video
from pathlib import Path

folder = Path({folder!r})
peaks = []
for frames in (60, {frames}):
    src = make_clip(folder / f"in{{frames}}.mp4", frames=frames, size=(96, 72), audio=False)
    upscale_video(src, folder / f"out{{frames}}.mp4", upscaler=bicubic(), segment_frames=40)
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
print(json.dumps(peaks))
"""


@pytest.mark.skipif(sys.platform == "win32", reason="resource.getrusage is POSIX")
def test_memory_is_bounded_by_a_batch_not_the_clip(tmp_path: Path) -> None:
    """Upscaling 180 frames peaks within 40 MB of upscaling 60 (measured: 8 MB): holding the
    upscaled clip (180 frames of 384x288 RGB: 60 MB as uint8, 240 MB as float32) would not."""
    frames = 180
    script = _MEMORY_SCRIPT.format(tests=str(ROOT / "tests"), folder=str(tmp_path), frames=frames)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    short, long = json.loads(done.stdout.strip().splitlines()[-1])
    assert long - short < 40 * 2**20, (short / 2**20, long / 2**20)
    with av.open(str(tmp_path / f"out{frames}.mp4")) as c:
        assert c.streams.video[0].frames == frames
        assert c.streams.video[0].average_rate == Fraction(FPS)
