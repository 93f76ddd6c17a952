"""The trainer end to end: every recipe, overfitting, SIGKILL + resume, DDP with gloo, the CLI."""

from __future__ import annotations

import copy
import csv
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch import nn

from superres.cli import main
from superres.data.catalog import DATASETS
from superres.data.datasets import bicubic_downscale
from superres.errors import ConfigError, SuperresError
from superres.imaging.resize import imresize
from superres.metrics.fidelity import psnr
from superres.models import load_weights
from superres.training.config import RunOptions, load_recipe, recipe_from_dict
from superres.training.trainer import (
    Trainer,
    fastest_memory_format,
    loss_kwargs_for_run,
    train,
)

REPO = Path(__file__).resolve().parents[1]
#: The shipped recipes; configs/experiments/ holds experiment plans and arm overlays, not recipes.
CONFIGS = sorted(
    p for p in (REPO / "configs").rglob("*.yaml") if "experiments" not in p.relative_to(REPO).parts
)
IDS = [str(p.relative_to(REPO / "configs").with_suffix("")) for p in CONFIGS]

#: Tiny widths per architecture, so every recipe runs in a second on a CPU.
TINY_MODELS: dict[str, dict[str, Any]] = {
    "srcnn": {"num_features": [8, 4]},
    "srresnet": {"num_features": 8, "num_blocks": 1},
    "edsr": {"num_features": 8, "num_blocks": 1},
    "edsr-baseline": {"num_features": 8, "num_blocks": 1},
    "rrdbnet": {"num_features": 8, "num_blocks": 1, "num_grow_ch": 4},
    "compact": {"num_features": 8, "num_convs": 2},
}

#: Tiny widths per discriminator.
TINY_DISCRIMINATORS: dict[str, dict[str, Any]] = {
    "vgg": {"num_features": 4, "num_blocks": 2, "pool_size": 2},
    "patch": {"num_features": 4, "num_layers": 2},
}


def _smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A photo-like uint8 RGB image: smooth gradients plus a little texture."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = []
    for _ in range(3):
        fx, fy = rng.uniform(0.02, 0.15, 2).tolist()
        phase = rng.uniform(0, 6.28)
        channels.append(0.5 + 0.35 * np.sin(fx * x + fy * y + phase))
    img = np.stack(channels, -1) + rng.normal(0, 0.03, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with T91/, BSD200/ and Set5/ folders of small synthetic images."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for folder, count, size in (
        ("T91", 6, (52, 60)),
        ("BSD200", 3, (60, 52)),
        ("Set5", 5, (48, 48)),
    ):
        hr = root / folder / "HR"
        hr.mkdir(parents=True)
        # Set5 is a benchmark set: its names must be the catalog's (any other set is an error).
        names = DATASETS.get("set5").stems if folder == "Set5" else None
        for i in range(count):
            name = names[i] if names else f"img{i:02d}"
            Image.fromarray(_smooth_image(rng, *size)).save(hr / f"{name}.png")
    return root


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")


def tiny_recipe(path: Path, **train_overrides: Any) -> dict[str, Any]:
    """``path``'s recipe shrunk to tiny widths, patches and iteration counts."""
    return shrink_recipe(yaml.safe_load(path.read_text()), **train_overrides)


def shrink_recipe(data: dict[str, Any], **train_overrides: Any) -> dict[str, Any]:
    """A copy of the recipe ``data`` shrunk to tiny widths, patches and iteration counts."""
    data = copy.deepcopy(data)
    data["model"].update(TINY_MODELS[data["model"]["name"]])
    if "discriminator" in data:
        data["discriminator"].update(TINY_DISCRIMINATORS[data["discriminator"]["name"]])
    scale = data["scale"]
    data["data"].update({"gt_size": 8 * scale if scale != 4 else 32, "batch_size": 2, "repeat": 1})
    losses = []
    for term in data["train"]["losses"]:
        term = dict(term)
        if term["name"] == "perceptual":  # no ImageNet VGG19 offline: random weights, on purpose
            term.pop("weights", None)
            term["pretrained"] = False
            if term.get("network", "vgg19") == "vgg19":
                term["layer_weights"] = {"relu2_2": 1.0}
        if term["name"] == "mix":  # MS-SSIM's five scales need 161 px; tiny patches use "same"
            term["padding"] = "same"
        losses.append(term)
    data["train"]["losses"] = losses
    data["train"].update(
        {"total_iters": 3, "log_every": 1, "checkpoint_every": 2, "pretrained": None}
    )
    data["train"].update(train_overrides)
    data["validation"] = {"dataset": "set5", "every": 2, "num_samples": 1}
    if data["data"].get("degradation") is not None:  # degraded Set5 LR: generated, cached
        data["validation"]["dataset"] = "set5-real"
    return data


def run_options(out: Path, root: Path, **kwargs: Any) -> RunOptions:
    defaults: dict[str, Any] = {
        "out_dir": out,
        "data_root": root,
        "device": "cpu",
        "precision": "fp32",
        "num_workers": 0,
        "progress": False,
        "tensorboard": False,
        # one layout, not a timed choice per run (the layout test below covers auto)
        "memory_format": "channels_last",
    }
    defaults.update(kwargs)
    return RunOptions(**defaults)


def read_log(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# --- configs ------------------------------------------------------------------------------------


def test_every_recipe_is_shipped() -> None:
    names = {p.stem for p in CONFIGS}
    wanted = {
        "srcnn_x4",
        "srresnet_x4",
        "srresnet_x2",
        "srgan_x4",
        "srgan_ssim_x2",
        "srgan_ssim_x4",
        "srgan_deep_x4",
        "edsr_baseline_x4",
        "edsr_x4",
        "esrgan_psnr_x4",
        "esrgan_x4",
        "esrgan_pro_x4",
    }
    assert wanted <= names


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_recipe_loads_and_cites_its_source(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    assert recipe.source
    assert path.read_text().lstrip().startswith("#")
    assert "/work" not in path.read_text()
    assert "shared" not in path.read_text()
    assert recipe_from_dict(yaml.safe_load(recipe.to_yaml())) == recipe


@pytest.mark.parametrize("path", CONFIGS, ids=IDS)
def test_every_recipe_trains_and_its_checkpoint_is_usable(
    path: Path, tiny_root: Path, tmp_path: Path
) -> None:
    recipe = recipe_from_dict(tiny_recipe(path))
    out = tmp_path / "run"
    scores = train(recipe, run_options(out, tiny_root))
    assert set(scores) == {"psnr", "ssim"}
    weights = out / "weights_last.safetensors"
    assert weights.is_file()
    assert (out / "state_last.pt").is_file()
    assert (out / "weights_best.safetensors").is_file()
    model = load_weights(weights)
    assert vars(model)["arch_name"] == recipe.model.name
    rows = read_log(out / "train_log.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]

    # The checkpoint is accepted by `superres upscale --weights` and `superres eval --weights`.
    channels = 1 if recipe.data.channels == "y" else 3
    image = tmp_path / "in.png"
    array = _smooth_image(np.random.default_rng(1), 12, 10)
    Image.fromarray(array[..., 0] if channels == 1 else array).save(image)
    result = tmp_path / "out.png"
    assert main(["upscale", str(image), "-o", str(result), "--weights", str(weights), "-q"]) == 0
    with Image.open(result) as im:
        assert im.size == (10 * recipe.scale, 12 * recipe.scale)
    argv = ["eval", "--weights", str(weights), "--datasets", "set5"]
    assert main([*argv, "--data-root", str(tiny_root), "-q"]) == 0


def test_unknown_keys_and_bad_values_are_named() -> None:
    data = yaml.safe_load((REPO / "configs" / "srresnet_x4.yaml").read_text())
    data["train"]["totl_iters"] = 3
    with pytest.raises(ConfigError, match="total_iters"):
        recipe_from_dict(data)
    data = yaml.safe_load((REPO / "configs" / "srresnet_x4.yaml").read_text())
    data["model"]["num_blok"] = 3
    with pytest.raises(ConfigError, match="num_blocks"):
        recipe_from_dict(data)
    with pytest.raises(ConfigError, match="expected an integer"):
        load_recipe(REPO / "configs" / "srresnet_x4.yaml", ["train.total_iters=ten"])
    with pytest.raises(ConfigError, match="expected a number"):
        load_recipe(REPO / "configs" / "srresnet_x4.yaml", ["train.optimizer.lr=fast"])


def test_builder_keywords_are_typed_at_load_time() -> None:
    path = REPO / "configs" / "srresnet_x4.yaml"
    # BasicSR-style `loss_weight: 1e-2` is a string to YAML 1.1; the loss gets the number.
    recipe = load_recipe(path, ["train.losses=[{name: l1, loss_weight: 1e-2}]"])
    assert recipe.train.losses[0].kwargs == {"loss_weight": 0.01}
    with pytest.raises(ConfigError, match=r"model\.num_blocks: expected an integer, got 'abc'"):
        load_recipe(path, ["model.num_blocks=abc"])
    with pytest.raises(ConfigError, match=r"train\.losses\[0\] \(l1\)\.loss_weight: expected a"):
        load_recipe(path, ["train.losses=[{name: l1, loss_weight: heavy}]"])
    with pytest.raises(ConfigError, match=r"train\.losses is empty"):
        load_recipe(path, ["train.losses=[]"])


def test_exponent_numbers_without_a_dot_are_numbers() -> None:
    # PyYAML (YAML 1.1) reads 1e-4 as a string; recipes and --set mean the number.
    path = REPO / "configs" / "srresnet_x4.yaml"
    recipe = load_recipe(path, ["train.optimizer.lr=1e-4", "train.optimizer.eps=-2E+3"])
    assert recipe.train.optimizer.lr == 1e-4
    assert recipe.train.optimizer.eps == -2000.0
    data = yaml.safe_load(path.read_text())
    data["train"]["optimizer"]["lr"] = "3e-5"
    assert recipe_from_dict(data).train.optimizer.lr == 3e-5
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe("no/such/recipe.yaml")


def test_cli_set_overrides_and_refuses_to_overwrite_a_run(
    tiny_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_recipe(REPO / "configs" / "edsr_baseline_x4.yaml")))
    out = tmp_path / "run"
    argv = ["train", str(config), "--out", str(out), "--device", "cpu", "--workers", "0"]
    argv += ["--data-root", str(tiny_root), "--no-tensorboard", "-q"]
    assert main([*argv, "--set", "train.total_iters=2"]) == 0
    assert [int(r["step"]) for r in read_log(out / "train_log.csv")] == [1, 2]
    before = (out / "state_last.pt").read_bytes()
    assert main([*argv, "--set", "train.total_iters=2"]) == 1
    assert "--resume auto" in capsys.readouterr().err
    assert (out / "state_last.pt").read_bytes() == before  # nothing overwritten
    # --resume auto continues, also to a longer total; the rest of the recipe must not change.
    assert main([*argv, "--set", "train.total_iters=2", "--resume", "auto"]) == 0
    changed = ["--set", "train.optimizer.lr=0.5", "--set", "data.batch_size=3"]
    assert main([*argv, "--set", "train.total_iters=4", *changed, "--resume", "auto"]) == 1
    err = capsys.readouterr().err
    assert "different recipe (data.batch_size: 2 -> 3; train.optimizer.lr: 0.0001 -> 0.5)" in err
    assert "train.total_iters" not in err.split("(only")[0]  # allowed, so not listed as a change
    assert (out / "state_last.pt").read_bytes() == before
    assert main([*argv, "--set", "train.total_iters=4", "--resume", "auto"]) == 0
    assert [int(r["step"]) for r in read_log(out / "train_log.csv")] == [1, 2, 3, 4]


def test_gan_stage_starts_from_the_psnr_checkpoint(tiny_root: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    psnr_recipe = recipe_from_dict(tiny_recipe(REPO / "configs" / "srresnet_x4.yaml"))
    train(psnr_recipe, run_options(runs / "srresnet_x4", tiny_root))
    data = tiny_recipe(
        REPO / "configs" / "srgan_x4.yaml", pretrained="srresnet_x4/weights_last.safetensors"
    )
    trainer = Trainer(recipe_from_dict(data), run_options(runs / "srgan_x4", tiny_root))
    # On the CPU both networks train in channels_last (oneDNN's fast layout).
    for net in (trainer.net_g, trainer.net_d):
        assert net is not None
        conv = next(m for m in net.modules() if isinstance(m, nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    parent = load_weights(runs / "srresnet_x4" / "weights_last.safetensors")
    for key, value in parent.state_dict().items():
        assert torch.equal(trainer.net_g.state_dict()[key], value), key
    data["train"]["pretrained"] = "missing/weights.safetensors"
    with pytest.raises(ConfigError, match="not found"):
        Trainer(recipe_from_dict(data), run_options(runs / "other", tiny_root))


def test_gan_logs_both_players_and_plots(tiny_root: Path, tmp_path: Path) -> None:
    recipe = recipe_from_dict(tiny_recipe(REPO / "configs" / "esrgan_x4.yaml", d_init_iters=1))
    out = tmp_path / "run"
    train(recipe, run_options(out, tiny_root))
    rows = read_log(out / "train_log.csv")
    assert "loss_gan" not in rows[0] or rows[0]["loss_gan"] in ("", None)
    assert float(rows[-1]["loss_gan"]) > 0
    assert float(rows[-1]["loss_d"]) > 0
    assert float(rows[-1]["loss_percep"]) >= 0
    for plot in ("loss.png", "gan.png", "val_psnr_ssim.png"):
        assert (out / "plots" / plot).is_file(), plot


# --- learning -----------------------------------------------------------------------------------


def test_srresnet_overfits_one_image_beyond_bicubic(tmp_path: Path) -> None:
    """A small SRResNet trained for 200 iterations on one sharp-edged image out-scores bicubic
    on it by more than 1 dB (measured: about 2 dB)."""
    rng = np.random.default_rng(0)
    hr_array = np.full((48, 48, 3), 40, np.uint8)
    for _ in range(12):  # coloured rectangles: edges that bicubic blurs and a network can learn
        y, x = rng.integers(0, 40, 2)
        h, w = rng.integers(4, 20, 2)
        hr_array[y : y + h, x : x + w] = rng.integers(0, 256, 3)
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(hr_array).save(folder / "only.png")
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml")
    data["scale"] = 2
    data["model"].update({"num_features": 32, "num_blocks": 2})
    data["data"].update({"train_roots": [str(folder)], "gt_size": 48, "batch_size": 4, "repeat": 4})
    data["train"].update(
        {
            "total_iters": 200,
            "log_every": 50,
            "checkpoint_every": 200,
            "optimizer": {"name": "adam", "lr": 1e-3},
        }
    )
    data["validation"] = {"dataset": None, "every": 1000}
    trainer = Trainer(recipe_from_dict(data), run_options(tmp_path / "run", tmp_path))
    trainer.fit()
    hr = torch.from_numpy(hr_array).permute(2, 0, 1).float() / 255
    lq = bicubic_downscale(hr, 2)
    with torch.no_grad():
        sr = trainer.net_g.eval()(lq[None]).clamp(0, 1)[0]
    bicubic = imresize(lq[None], scale=2).clamp(0, 1)[0]
    gain = float(psnr(sr, hr, crop_border=2)) - float(psnr(bicubic, hr, crop_border=2))
    assert gain > 1.0, gain


# --- resume and distributed ---------------------------------------------------------------------


def _cli_env(root: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"SUPERRES_DATA": str(root), "SUPERRES_CACHE": str(cache), "OMP_NUM_THREADS": "1"})
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli_recipe(
    tmp_path: Path, root: Path, name: str, changes: dict[str, dict[str, Any]]
) -> tuple[Path, dict[str, str]]:
    """The tiny recipe of ``configs/<name>`` with the keys of ``changes`` (section -> keys)
    changed, written to a YAML file for ``superres train``, and the environment the command
    runs in (data ``root``)."""
    recipe = tiny_recipe(REPO / "configs" / name)
    for section, keys in changes.items():
        recipe[section].update(keys)
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(recipe))
    return config, _cli_env(root, tmp_path / "cache")


@pytest.mark.parametrize("pipeline", ["device", "loader"])
def test_sigkill_then_resume_continues_to_the_same_losses(
    tiny_root: Path, tmp_path: Path, pipeline: str
) -> None:
    train = {"total_iters": 60, "checkpoint_every": 5, "log_every": 1}
    changes = {"data": {"pipeline": pipeline}, "train": train, "validation": {"every": 1000}}
    config, env = _cli_recipe(tmp_path, tiny_root, "srresnet_x4.yaml", changes)
    base = [sys.executable, "-m", "superres", "train", str(config), "--device", "cpu"]
    # One layout for both runs (auto times both and could pick either); the resumed run keeps
    # the killed one's, from its checkpoint.
    base += ["--workers", "0", "--no-tensorboard", "-q", "--memory-format", "channels_last"]

    reference = tmp_path / "reference"
    subprocess.run([*base, "--out", str(reference)], env=env, check=True, timeout=300)

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(killed)], env=env)
    log = killed / "train_log.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) > 12:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows_at_kill = len(read_log(log))
    assert rows_at_kill < 60, "the run finished before it could be killed; make it longer"
    subprocess.run([*base, "--out", str(killed), "--resume", "auto"], env=env, check=True)

    expected = read_log(reference / "train_log.csv")
    resumed = read_log(log)
    assert [r["step"] for r in resumed] == [r["step"] for r in expected]
    for want, got in zip(expected, resumed, strict=True):
        for key in ("loss_pix", "loss_total", "lr"):
            assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-6, abs=1e-9), (
                want["step"],
                key,
            )
    a = load_weights(reference / "weights_last.safetensors").state_dict()
    b = load_weights(killed / "weights_last.safetensors").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("pipeline", ["device", "loader"])
def test_two_process_gloo_ddp_matches_one_process(
    tiny_root: Path, tmp_path: Path, pipeline: str
) -> None:
    train = {"total_iters": 4, "checkpoint_every": 4, "log_every": 1}
    changes = {"data": {"pipeline": pipeline, "batch_size": 4}, "train": train}
    config, env = _cli_recipe(tmp_path, tiny_root, "edsr_baseline_x4.yaml", changes)
    # fp32 on both sides: the check is agreement to float rounding (two half-batch gradients
    # averaged vs one full batch sum in another order). Under bf16 autocast, which `auto` picks
    # on CPUs with native bf16, that reordering is amplified by 8-bit mantissas (2e-5 seen).
    tail = ["train", str(config), "--device", "cpu", "--precision", "fp32", "--workers", "0"]
    tail += ["--no-tensorboard", "-q", "--memory-format", "channels_last"]

    single = tmp_path / "single"
    subprocess.run(
        [sys.executable, "-m", "superres", *tail, "--out", str(single)],
        env=env,
        check=True,
        timeout=300,
    )
    double = tmp_path / "double"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    launcher += ["--master_addr", "127.0.0.1", "--master_port", str(_free_port())]
    subprocess.run(
        [*launcher, "-m", "superres", *tail, "--out", str(double)],
        env=env,
        check=True,
        timeout=300,
    )
    a = load_weights(single / "weights_last.safetensors").state_dict()
    b = load_weights(double / "weights_last.safetensors").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    one, two = read_log(single / "train_log.csv"), read_log(double / "train_log.csv")
    for x, y in zip(one, two, strict=True):
        assert float(x["loss_pix"]) == pytest.approx(float(y["loss_pix"]), rel=1e-4)


def test_errors_name_the_problem(tiny_root: Path, tmp_path: Path) -> None:
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml")
    data["data"]["train_roots"] = ["no_such_folder"]
    with pytest.raises(ConfigError, match="no_such_folder"):
        Trainer(recipe_from_dict(data), run_options(tmp_path / "a", tiny_root))
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml")
    data["data"]["batch_size"] = 1000
    with pytest.raises(SuperresError, match="fewer than one batch"):
        Trainer(recipe_from_dict(data), run_options(tmp_path / "b", tiny_root))


def test_losses_get_the_run_data_root_where_they_take_one(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "trunk.safetensors").write_bytes(b"")
    run = {"data_root": tmp_path, "scale": 4}
    # LPIPS takes data_root and download: it gets the run's, unless the recipe names a root.
    assert loss_kwargs_for_run("lpips", {"net": "squeeze"}, **run) == {
        "net": "squeeze",
        "data_root": str(tmp_path),
        "download": False,
    }
    assert loss_kwargs_for_run("lpips", {}, **run, download=True)["download"] is True
    assert loss_kwargs_for_run("lpips", {"data_root": "/elsewhere"}, **run)["data_root"] == (
        "/elsewhere"
    )
    # A relative weights path resolves against the data root when it is not found here.
    kwargs = {"network": "squeezenet1_1", "weights": "weights/trunk.safetensors"}
    resolved = loss_kwargs_for_run("perceptual", kwargs, **run)
    assert resolved["weights"] == str(tmp_path / "weights" / "trunk.safetensors")
    assert resolved["data_root"] == str(tmp_path)
    assert kwargs["weights"] == "weights/trunk.safetensors"  # the recipe is not modified
    assert loss_kwargs_for_run("l1", {"loss_weight": 2.0}, **run) == {"loss_weight": 2.0}


def test_the_pattern_guard_follows_the_recipe_scale(tmp_path: Path) -> None:
    run = {"data_root": tmp_path, "scale": 4}
    assert loss_kwargs_for_run("subpixel_pattern", {"loss_weight": 100.0}, **run) == {
        "loss_weight": 100.0,
        "scale": 4,
    }
    assert loss_kwargs_for_run("subpixel_pattern", {"scale": 4}, **run) == {"scale": 4}
    with pytest.raises(ConfigError, match="contradicts the recipe's scale 4"):
        loss_kwargs_for_run("subpixel_pattern", {"scale": 2}, **run)
    assert "scale" not in loss_kwargs_for_run("l1", {}, **run)  # L1 takes no scale


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--time-limit", "0"], "--time-limit must be a positive number of seconds"),
        (["--time-limit", "-5"], "--time-limit must be a positive number of seconds"),
        (["--workers", "-1"], "--workers must be 0 or more"),
    ],
)
def test_cli_run_options_are_checked_before_any_work(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = ["train", str(REPO / "configs" / "srcnn_x4.yaml"), "--out", str(out), "-q"]
    assert main([*argv, "--data-root", str(tmp_path / "no_data"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_the_layout_is_measured_on_cpu_and_kept_by_a_resumed_run(
    tiny_root: Path, tmp_path: Path
) -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1)
    model = nn.Sequential(conv, nn.BatchNorm2d(8)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.get_rng_state()
    cpu = torch.device("cpu")
    choice, seconds = fastest_memory_format(
        model, input_shape=(2, 3, 12, 12), device=cpu, amp_dtype=None
    )
    assert choice in ("channels_last", "contiguous")
    assert set(seconds) == {"channels_last", "contiguous"}
    assert choice == min(seconds, key=lambda k: seconds[k])
    # the model (batch-norm statistics too) and the global random stream are untouched
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert torch.equal(torch.get_rng_state(), state)
    assert conv.weight.is_contiguous()
    assert fastest_memory_format(
        model, input_shape=(2, 3, 12, 12), device=torch.device("meta"), amp_dtype=None
    ) == ("contiguous", {})

    recipe = recipe_from_dict(tiny_recipe(REPO / "configs" / "srresnet_x4.yaml"))
    out = tmp_path / "run"
    first = Trainer(recipe, run_options(out, tiny_root, memory_format="contiguous"))
    assert first.memory_format == "contiguous"
    first.fit()
    assert not next(first.net_g.parameters()).is_contiguous(memory_format=torch.channels_last)
    # auto on resume: the run's own layout, not a new measurement
    resumed = Trainer(
        recipe,
        run_options(out, tiny_root, resume="auto", memory_format="auto"),
        resume_from=out / "state_last.pt",
    )
    assert resumed.memory_format == "contiguous"
    with pytest.raises(ConfigError, match="unknown memory format"):
        Trainer(recipe, run_options(tmp_path / "x", tiny_root, memory_format="nhwc"))


class _LayoutLog(nn.Module):
    """A convolution that notes the layout of each input it sees (in a class attribute: the
    probe times deep copies)."""

    seen: list[str] = []  # noqa: RUF012 - shared by the copies on purpose

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nhwc = x.is_contiguous(memory_format=torch.channels_last)
        self.seen.append("channels_last" if nhwc else "contiguous")
        return self.conv(x)


def test_the_layout_probe_warms_both_layouts_up_before_it_times_them_in_turn() -> None:
    # Timing one layout's steps and then the other's favoured the second, which found the
    # process warm (it picked NCHW for SRResNet's bf16 step, 1.07x slower than channels_last).
    _LayoutLog.seen.clear()
    fastest_memory_format(
        _LayoutLog(), input_shape=(2, 3, 8, 8), device=torch.device("cpu"), amp_dtype=None
    )
    assert _LayoutLog.seen == ["channels_last", "contiguous"] * 3


def test_a_run_from_before_the_device_pipeline_resumes_on_either_pipeline(
    tiny_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from superres.training.checkpoint import load_state, save_state

    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", total_iters=2)
    out = tmp_path / "run"
    Trainer(recipe_from_dict(data), run_options(out, tiny_root)).fit()
    # what an older version stored: a recipe without data.pipeline (it used the DataLoader)
    state = load_state(out / "state_last.pt")
    stored = yaml.safe_load(state["recipe"])
    del stored["data"]["pipeline"]
    state["recipe"] = yaml.safe_dump(stored)
    save_state(out / "state_last.pt", state)

    longer = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", total_iters=3)
    options = run_options(out, tiny_root, resume="auto")
    with caplog.at_level("WARNING", logger="superres.training.checkpoint"):
        resumed = Trainer(recipe_from_dict(longer), options, resume_from=out / "state_last.pt")
    assert resumed.data.device_batches is not None
    assert "data.pipeline changed from 'loader' to 'device'" in caplog.text
    longer["data"]["pipeline"] = "loader"  # or exactly as it ran
    caplog.clear()
    with caplog.at_level("WARNING", logger="superres.training.checkpoint"):
        again = Trainer(recipe_from_dict(longer), options, resume_from=out / "state_last.pt")
    assert again.data.loader is not None
    assert "data.pipeline" not in caplog.text


def test_a_warm_start_keeps_its_average_at_the_pretrained_weights(
    tiny_root: Path, tmp_path: Path
) -> None:
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", total_iters=2, ema_decay=0.999)
    first = Trainer(recipe_from_dict(data), run_options(tmp_path / "a", tiny_root))
    first.fit()
    start = tmp_path / "a" / "weights_last.safetensors"
    data["train"].update({"pretrained": str(start), "total_iters": 3})
    tuned = Trainer(recipe_from_dict(data), run_options(tmp_path / "b", tiny_root))
    assert tuned.ema is not None
    assert not tuned.ema.warmup  # a fresh run from random weights warms up; this one does not
    assert first.ema is not None
    assert first.ema.warmup
    before = {k: v.clone() for k, v in tuned.ema.module.state_dict().items()}
    tuned.fit()
    raw = dict(tuned.net_g.state_dict())
    for key, value in tuned.ema.module.state_dict().items():
        if value.is_floating_point() and "weight" in key:
            ema_move = float((value - before[key]).abs().max())
            raw_move = float((raw[key] - before[key]).abs().max())
            assert ema_move <= 0.01 * raw_move + 1e-9, key  # three steps at decay 0.999
