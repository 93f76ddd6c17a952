"""``precision="int8"`` (superres.inference.int8): NNCF quantisation calibrated on T91 crops, run
by OpenVINO on the CPU, cached, never the network unasked, and a one-line error for each thing
that can be missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.errors import DatasetNotFoundError, SuperresError
from superres.imaging import imresize
from superres.inference import UpscaleOptions, Upscaler
from superres.inference.int8 import (
    CALIBRATION_CROPS,
    Int8Network,
    Int8SupportError,
    calibration_crops,
    int8_network,
)
from superres.metrics.fidelity import psnr
from superres.models import create_model
from superres.runtime import PrecisionError, check_int8, resolve_precision


def _smooth(seed: int, height: int = 72, width: int = 88) -> np.ndarray:
    """A photo-like RGB image: low-frequency colour waves and a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / 16.0
    channels = [
        0.5 + 0.35 * np.sin(x * rng.uniform(0.5, 1.5) + y * rng.uniform(0.2, 1.0) + phase)
        for phase in rng.uniform(0, 6, size=3)
    ]
    image = np.stack(channels, axis=-1) + rng.normal(0, 0.02, size=(height, width, 3))
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def t91_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data root holding a small stand-in for T91 (5 images), and a cache of its own."""
    root = tmp_path / "data"
    folder = root / "T91" / "HR"
    folder.mkdir(parents=True)
    for index in range(5):
        Image.fromarray(_smooth(index)).save(folder / f"t{index + 1}.png")
    monkeypatch.setenv("SUPERRES_DATA", str(root))
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    return root


def _small_net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("srresnet", scale=2, num_blocks=2, num_features=16).eval()


def _lr(seed: int = 7) -> torch.Tensor:
    return torch.from_numpy(_smooth(seed, 40, 48)).permute(2, 0, 1).float() / 255


def test_calibration_crops_are_seeded_lr_crops_of_t91(t91_root: Path) -> None:
    crops = calibration_crops(2, data_root=t91_root)
    assert len(crops) == 5  # one per image, at most CALIBRATION_CROPS
    assert CALIBRATION_CROPS >= 5
    assert {tuple(c.shape) for c in crops} == {(3, 36, 36)}  # the LR is 36x44: its side
    assert all(float(c.min()) >= 0 and float(c.max()) <= 1 for c in crops)
    again = calibration_crops(2, data_root=t91_root)
    assert all(torch.equal(a, b) for a, b in zip(crops, again, strict=True))
    hr = torch.from_numpy(_smooth(0)).permute(2, 0, 1).float() / 255
    lr = imresize(hr[None], scale=0.5).clamp(0, 1)[0]  # the bicubic of the whole image
    windows = [lr[:, :, left : left + 36] for left in range(44 - 36 + 1)]
    assert any(torch.allclose(c, w, atol=1e-6) for c in crops for w in windows)
    luma = calibration_crops(2, in_channels=1, data_root=t91_root, size=16)
    assert {tuple(c.shape) for c in luma} == {(1, 16, 16)}


def test_int8_is_close_to_fp32_and_cached(t91_root: Path, tmp_path: Path) -> None:
    net = _small_net()
    cache = tmp_path / "int8-cache"
    first = int8_network(net, data_root=t91_root, cache_dir=cache)
    assert isinstance(first, Int8Network)
    assert not first.cached
    assert (first.scale, first.in_channels, first.out_channels) == (2, 3, 3)
    x = _lr()[None]
    with torch.no_grad():
        reference = net(x)
    out = first(x)
    assert out.shape == reference.shape == (1, 3, 80, 96)
    assert float(psnr(out.clamp(0, 1), reference.clamp(0, 1))[0]) > 30  # int8, not garbage
    entries = list(cache.iterdir())
    assert [sorted(p.name for p in e.iterdir()) for e in entries] == [["model.bin", "model.xml"]]
    second = int8_network(net, data_root=t91_root, cache_dir=cache)
    assert second.cached
    assert torch.equal(second(x), out)
    other = int8_network(_small_net(seed=1), data_root=t91_root, cache_dir=cache)
    assert not other.cached  # other weights, another entry
    assert len(list(cache.iterdir())) == 2


def test_a_damaged_cache_entry_is_removed_with_a_clear_error(
    t91_root: Path, tmp_path: Path
) -> None:
    net = _small_net()
    cache = tmp_path / "int8-cache"
    int8_network(net, data_root=t91_root, cache_dir=cache)
    (entry,) = cache.iterdir()
    (entry / "model.bin").write_bytes(b"not the weights")
    with pytest.raises(SuperresError, match=r"could not be loaded.*run again"):
        int8_network(net, data_root=t91_root, cache_dir=cache)
    assert not entry.exists()
    assert not int8_network(net, data_root=t91_root, cache_dir=cache).cached  # calibrated anew


def test_the_upscaler_runs_int8_and_tiles_it(t91_root: Path) -> None:
    net = _small_net()
    whole = Upscaler(net, options=UpscaleOptions(device="cpu", precision="int8", tile=None))
    assert whole.execution_path.startswith("OpenVINO int8 (")
    assert whole.autocast_dtype is None
    lr = _lr()
    out = whole(lr)
    tiled = Upscaler(
        net, options=UpscaleOptions(device="cpu", precision="int8", tile=24, overlap=8)
    )
    assert isinstance(tiled.network, Int8Network)
    assert tiled.network.cached  # the first Upscaler calibrated it
    # Static int8 (fixed ranges) is as local as float32: tiles differ from the whole image only
    # where the receptive field outgrows the overlap, as they do in float32.
    exact = UpscaleOptions(device="cpu", precision="fp32", tile=24, overlap=8)
    fp32_whole = Upscaler(net, options=replace(exact, tile=None))(lr)
    fp32_seams = Upscaler(net, options=exact)(lr) - fp32_whole
    int8_seams = tiled(lr) - out
    assert float(int8_seams.abs().mean()) < float(fp32_seams.abs().mean()) + 2e-3
    auto = Upscaler(net, options=UpscaleOptions(device="cpu", precision="int8"))
    assert auto.tile_size() is not None  # planned from the model's bf16 activations


def test_int8_refusals_name_the_fix(t91_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PrecisionError, match=r"runs on the CPU.*--device cpu"):
        check_int8(torch.device("cuda"))
    with pytest.raises(PrecisionError, match="for upscaling on the CPU"):
        resolve_precision("int8", torch.device("cpu"), training=True)
    with pytest.raises(Int8SupportError, match="no weights to quantise"):
        Upscaler(create_model("bicubic", scale=2), options=UpscaleOptions(precision="int8"))
    monkeypatch.setenv("SUPERRES_DATA", str(t91_root.parent / "empty"))
    with pytest.raises(DatasetNotFoundError, match=r"calibrated on T91.*data get t91"):
        Upscaler(_small_net(seed=3), options=UpscaleOptions(device="cpu", precision="int8"))
    monkeypatch.setitem(sys.modules, "nncf", None)
    with pytest.raises(Int8SupportError, match=r"pip install 'superres\[int8\]'"):
        Upscaler(_small_net(), options=UpscaleOptions(device="cpu", precision="int8"))


def test_superres_upscale_precision_int8(t91_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(_smooth(9, 48, 40)).save(source)
    out = tmp_path / "photo_x4.png"
    assert main(["upscale", str(source), "-o", str(out), "--precision", "int8", "-q"]) == 0
    with Image.open(out) as image:
        assert image.size == (160, 192)


def test_int8_networks_freed_in_any_order_leave_signals_working(t91_root: Path) -> None:
    """Each ``openvino.Core`` gave the main thread an alternate signal stack and, when freed, put
    back the one before it, freed or not: two int8 networks dropped in the order they were made
    left a dangling stack, and the next handled signal was a segmentation fault (it killed a test
    worker in CI). With one Core per process, a Ctrl-C after that is a KeyboardInterrupt."""
    script = textwrap.dedent(
        """
        import gc, os, signal, time, torch
        from superres.inference import UpscaleOptions, Upscaler
        from superres.models import create_model

        upscalers = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            net = create_model("srresnet", scale=2, num_blocks=2, num_features=16).eval()
            up = Upscaler(net, options=UpscaleOptions(device="cpu", precision="int8"))
            up(torch.rand(3, 24, 24))
            upscalers.append(up)
        del up
        while upscalers:
            upscalers.pop(0)
            gc.collect()
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "interrupted"


def test_openvino_and_nncf_are_imported_without_their_telemetry(tmp_path: Path) -> None:
    """A plain ``import openvino`` sends an event to Google Analytics from a forked process and
    writes ``~/intel``; ours contacts nothing, writes nothing in the home folder, and leaves
    ``openvino_telemetry`` importable for the user's own code."""
    log = tmp_path / "network.log"
    script = textwrap.dedent(
        f"""
        import socket, sys, time

        def record(*args, **kwargs):
            with open({str(log)!r}, "a") as handle:
                handle.write(repr(args[:2]) + "\\n")
            raise OSError("network blocked by the test")

        socket.getaddrinfo = record
        socket.socket.connect = lambda self, address: record(address)
        from superres.inference.int8 import import_engines
        openvino, nncf = import_engines()
        nncf.telemetry.wrapper.telemetry.send_event("probe", "probe", "probe")
        time.sleep(1.0)  # the sender is a forked process with a timeout
        import openvino_telemetry
        print("ok")
        """
    )
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert not log.exists(), log.read_text()
    assert sorted(p.name for p in home.iterdir()) == []
