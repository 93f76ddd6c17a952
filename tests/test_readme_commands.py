"""Every command of README.md's "## Using it" section runs, as written.

The commands are read from the section's fenced ``bash`` blocks, so a command added there is
tested without touching this file. Each runs in a fresh folder (``superres`` in this process,
``mkdir`` as the shell does) holding the tiny inputs it names (:data:`INPUTS`), with
``SUPERRES_DATA`` at the real benchmark sets. Only the paths in :data:`SUBSTITUTIONS` are
replaced; a command this file cannot run fails, unless :data:`SKIPPED` names why (a GPU, a
server). The slow ones (:data:`SLOW`) run with ``-m slow``. After a command, the files it was
asked to write exist, and a ``PSNR / SSIM`` pair in its comment is what it printed.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import REPO_ROOT
from superres.cli import main
from superres.io.image import write_image
from superres.io.samples import load_sample

README = REPO_ROOT / "README.md"
SECTION = "## Using it"

#: README paths that stand for the reader's own files, and what they become here.
SUBSTITUTIONS = {
    "/data/sr": "{data}",
    "netG_epoch_4_100.pth": "{data}/weights/srgan_leftthomas/netG_epoch_4_100.pth",
}

#: Commands not run, with why (a machine or a process this test does not have).
SKIPPED = {
    "superres upscale big.tif --tile 512 --device cuda --backproject 2": "needs a CUDA GPU",
    "superres mos serve study.db": "serves until stopped; test_mos_e2e serves a study to a browser",
}

#: Commands that take more than a few seconds on a CPU: they run with ``-m slow``.
SLOW = {
    "superres eval --models bicubic --datasets set5 set14 bsd100 urban100 --scales 2 4 "
    "--data-root /data/sr --output-json results.json --output-csv results.csv",
    "superres eval --models srresnet-x4 edsr-baseline-x4 --datasets set5 set14 --published",
    "superres report --models bicubic srresnet-x4 srgan-x4 --datasets set5 set14 --out report/",
    "superres mos create --models srresnet-x4 srgan-x4 --dataset set14 --out study.db",
    "superres upscale Set5/LR_bicubic_x4 -o sr --fp32",
    "superres eval --models edsr-baseline-x4 --datasets set5 --scales 4",
    "superres eval --models bicubic --weights netG_epoch_4_100.pth --datasets set5",
    "superres metrics sr Set5/HR --crop-border 4",
    "superres upscale photo.png --model srgan-x4 --realism 0.6",
    "superres upscale photo.png --model esrgan-6b-x4 --realism 0.6 --realism-space pixels",
    "superres upscale a.jpg b.png -o out/ --scale 2",
    "superres mos results study.db",
    "superres upscale clip.mp4 -o clip_x4.mp4",
    "superres export --model srresnet-x4 --onnx srresnet-x4.onnx",
    "superres upscale photo.png --precision int8",
    "superres eval --models bicubic edsr-baseline-x4 --datasets bsd100-real --limit 5",
}

#: Options whose value is a file or folder the command must leave behind.
_OUTPUT_FLAGS = {"-o", "--out", "--output-json", "--output-csv", "--onnx"}


@dataclass(frozen=True)
class Command:
    """One README command: its words as written and the comment after it."""

    text: str
    comment: str


def readme_commands() -> list[Command]:
    """The commands of the section's ``bash`` blocks, continuation lines joined."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    commands: list[Command] = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            code, _, comment = line.partition("  #")
            if code.strip():
                commands.append(Command(" ".join(code.split()), comment.strip(" #")))
    return commands


COMMANDS = readme_commands()


def _image(path: Path, size: int = 48, seed: int = 0) -> None:
    """A photo-like input: a crop of a bundled sample, ``size`` pixels square."""
    rgb = load_sample("chelsea").rgb[:, 100 + seed : 100 + seed + size, 150 : 150 + size]
    write_image(path, rgb.contiguous())


def _folder_of_pairs(kind: str) -> Callable[[Path, Path], None]:
    def build(path: Path, data: Path) -> None:
        del data
        path.mkdir()
        for i, name in enumerate(("one", "two")):
            _image(path / (f"{name}_x4.png" if kind == "sr" else f"{name}.png"), seed=i)

    return build


def _study(path: Path, data: Path) -> None:
    """A small study of the real Set5 (two images, the smallest shipped model)."""
    del data
    assert main(["mos", "create", "--models", "srcnn-x4", "--dataset", "set5", "--limit", "2",
                 "--seed", "1", "--out", str(path), "--device", "cpu", "-q"]) == 0  # fmt: skip


def _sr_of_set5(path: Path, data: Path) -> None:
    """``sr/``: what ``upscale Set5/LR_bicubic_x4 -o sr`` writes, here the HR images themselves."""
    path.mkdir()
    for hr in sorted((data / "Set5" / "HR").glob("*.png")):
        shutil.copyfile(hr, path / f"{hr.stem}_x4.png")


def _clip(path: Path, data: Path) -> None:
    """Four 32x32 frames of H.264 (the ``video`` extra, PyAV)."""
    del data
    av = pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            pixels = (torch.arange(32 * 32 * 3) * (i + 1) % 256).reshape(32, 32, 3)
            frame = av.VideoFrame.from_ndarray(pixels.to(torch.uint8).numpy(), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def _real_esrgan_file(seed: int) -> Callable[[Path, Path], None]:
    """A small SRVGGNetCompact in Real-ESRGAN's release layout (``params_ema``, ``body.N``)."""

    def build(path: Path, data: Path) -> None:
        del data
        from superres.models import create_model

        torch.manual_seed(seed)
        net = create_model("compact", scale=4, num_features=8, num_convs=2)
        torch.save({"params_ema": net.state_dict()}, path)

    return build


#: Inputs a README command names, made in its folder when it names them.
INPUTS: dict[str, Callable[[Path, Path], None]] = {
    "photo.png": lambda p, d: _image(p),
    "big.tif": lambda p, d: _image(p, size=64),
    "a.jpg": lambda p, d: _image(p, seed=1),
    "photo.jpg": lambda p, d: _image(p, seed=5),
    "b.png": lambda p, d: _image(p, seed=2),
    "sr.png": lambda p, d: _image(p, seed=3),
    "hr.png": lambda p, d: _image(p, seed=4),
    "results": _folder_of_pairs("sr"),
    "hr": _folder_of_pairs("hr"),
    "study.db": _study,
    "Set5": lambda p, d: p.symlink_to(d / "Set5", target_is_directory=True),
    "sr": _sr_of_set5,
    "clip.mp4": _clip,
    "realesr-general-x4v3.pth": _real_esrgan_file(0),
    "realesr-general-wdn-x4v3.pth": _real_esrgan_file(1),
}


def _words(command: Command, data: Path) -> list[str]:
    words = shlex.split(command.text)
    return [SUBSTITUTIONS.get(w, w).format(data=data) for w in words]


def _prepare(words: list[str], folder: Path, data: Path) -> None:
    """Make the inputs the command names (not what it writes: ``-o sr`` is its output)."""
    if words[0] != "superres":
        return
    outputs = {words[i + 1] for i, w in enumerate(words[:-1]) if w in _OUTPUT_FLAGS}
    for word in words[1:]:
        for name in {word, word.split("/")[0]}:
            if name in INPUTS and name not in outputs and not (folder / name).exists():
                INPUTS[name](folder / name, data)


def _run(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run one command as the shell would; returns what it printed."""
    if words[0] == "mkdir":
        for name in words[1:]:
            Path(name).mkdir()
        return ""
    if words[0] != "superres":
        pytest.fail(f"no way to run {words[0]!r} (README commands run `superres` or `mkdir`)")
    capsys.readouterr()
    code = main(words[1:])
    out, err = capsys.readouterr()
    assert code == 0, f"{' '.join(words)} exited {code}:\n{err}"
    return out


def _param(command: Command) -> object:
    marks = [pytest.mark.slow] if command.text in SLOW else []
    return pytest.param(command, marks=marks, id=command.text)


def test_the_section_has_commands_and_the_lists_name_only_them() -> None:
    texts = {c.text for c in COMMANDS}
    assert len(texts) >= 10
    assert set(SKIPPED) <= texts, set(SKIPPED) - texts
    assert texts >= SLOW, SLOW - texts


@pytest.mark.parametrize("command", [_param(c) for c in COMMANDS])
def test_readme_command_runs(
    command: Command,
    data_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if command.text in SKIPPED:
        pytest.skip(SKIPPED[command.text])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUPERRES_DATA", str(data_root))
    words = _words(command, data_root)
    _prepare(words, tmp_path, data_root)
    out = _run(words, capsys)
    for i, word in enumerate(words[:-1]):
        if word in _OUTPUT_FLAGS:
            assert Path(words[i + 1]).exists(), f"{words[i + 1]} was not written"
    for psnr, ssim in re.findall(r"(\d+\.\d+) / (\d\.\d+)", command.comment):
        assert f"{psnr} / {ssim}" in out, out
