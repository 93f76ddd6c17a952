"""superres.training support modules: optimisers, per-iteration LR schedules (warm-up, milestones,
cosine, resumable state), gradient clipping, the weight EMA, and the run logger (CSV, TensorBoard,
PNG plots, image grids, resume truncation, the no-op logger of non-zero ranks)."""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch import nn

from superres.errors import ConfigError, IncompatibleWeightsError
from superres.io.files import current_umask
from superres.training.ema import ModelEMA, unwrap_model
from superres.training.logging import NullLogger, TrainingLogger
from superres.training.optim import build_optimizer, build_scheduler, clip_gradients, lr_factor
from superres.training.run_files import read_csv_log

# --- optimisers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cls"), [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)]
)
def test_build_optimizer_names(name: Any, cls: type) -> None:
    net = nn.Linear(3, 2)
    opt = build_optimizer(
        net.parameters(), name=name, lr=2e-4, betas=(0.9, 0.99), weight_decay=0.01, eps=1e-7
    )
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 2e-4
    assert group["betas"] == (0.9, 0.99)
    assert group["weight_decay"] == 0.01
    assert group["eps"] == 1e-7


def test_build_optimizer_param_groups() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = build_optimizer(
        [{"params": a.parameters()}, {"params": b.parameters(), "lr": 1e-5}], name="adam", lr=1e-4
    )
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-5]


def test_build_optimizer_unknown_name_suggests() -> None:
    with pytest.raises(ConfigError, match=r"unknown optimizer 'adan'.*'adam'"):
        build_optimizer(nn.Linear(2, 2).parameters(), name="adan", lr=1e-4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": 0.0},
        {"lr": -1e-4},
        {"lr": float("nan")},
        {"lr": 1e-4, "betas": (0.9,)},
        {"lr": 1e-4, "betas": (0.9, 1.0)},
        {"lr": 1e-4, "weight_decay": -0.1},
        {"lr": 1e-4, "eps": 0.0},
    ],
)
def test_build_optimizer_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        build_optimizer(nn.Linear(2, 2).parameters(), name="adam", **kwargs)


# --- lr_factor ------------------------------------------------------------------------------------


def _factors(n: int, **kwargs: Any) -> list[float]:
    return [lr_factor(i, **kwargs) for i in range(n)]


def test_lr_factor_constant_and_warmup() -> None:
    assert _factors(3, name="constant", total_iters=10) == [1.0, 1.0, 1.0]
    assert _factors(6, name="constant", total_iters=10, warmup_iters=4) == pytest.approx(
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    )


def test_lr_factor_step() -> None:
    got = _factors(8, name="step", total_iters=100, step_size=3, gamma=0.5)
    assert got == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])


def test_lr_factor_multistep_esrgan() -> None:
    """ESRGAN's PSNR stage: 2e-4 halved every 200k iterations (milestones are absolute)."""
    kwargs: dict[str, Any] = {
        "name": "multistep",
        "total_iters": 1_000_000,
        "milestones": [200_000, 400_000, 600_000, 800_000],
        "gamma": 0.5,
    }
    expected = {0: 1, 199_999: 1, 200_000: 0.5, 399_999: 0.5, 400_000: 0.25, 800_000: 1 / 16}
    for iteration, factor in expected.items():
        assert lr_factor(iteration, **kwargs) == factor, iteration
    assert lr_factor(999_999, **kwargs) * 2e-4 == pytest.approx(1.25e-5)


def test_lr_factor_warmup_composes_with_multistep() -> None:
    got = _factors(6, name="multistep", total_iters=10, warmup_iters=4, milestones=[2], gamma=0.1)
    assert got == pytest.approx([0.25, 0.5, 0.075, 0.1, 0.1, 0.1])


def test_lr_factor_cosine() -> None:
    kwargs: dict[str, Any] = {"name": "cosine", "total_iters": 100}
    assert lr_factor(0, **kwargs) == 1.0
    assert lr_factor(25, **kwargs) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(50, **kwargs) == pytest.approx(0.5)
    assert lr_factor(100, **kwargs) == pytest.approx(0.0)
    assert lr_factor(150, **kwargs) == pytest.approx(0.0)  # held at the floor past the end
    assert lr_factor(50, **kwargs, eta_min_factor=0.1) == pytest.approx(0.55)
    assert lr_factor(100, **kwargs, eta_min_factor=0.1) == pytest.approx(0.1)
    factors = _factors(101, **kwargs)
    assert all(a >= b for a, b in itertools.pairwise(factors))


def test_lr_factor_cosine_after_warmup() -> None:
    kwargs: dict[str, Any] = {"name": "cosine", "total_iters": 100, "warmup_iters": 10}
    assert lr_factor(0, **kwargs) == pytest.approx(0.1)
    assert lr_factor(9, **kwargs) == pytest.approx(1.0)
    assert lr_factor(10, **kwargs) == pytest.approx(1.0)
    assert lr_factor(55, **kwargs) == pytest.approx(0.5)  # halfway through the 90 cosine steps
    assert lr_factor(100, **kwargs) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "poly", "total_iters": 10}, "unknown learning-rate schedule"),
        ({"name": "cosin", "total_iters": 10}, "Did you mean 'cosine'"),
        ({"name": "cosine", "total_iters": 0}, "total_iters"),
        ({"name": "cosine", "total_iters": 10, "warmup_iters": -1}, "warmup_iters"),
        ({"name": "step", "total_iters": 10}, "step_size"),
        ({"name": "cosine", "total_iters": 10, "step_size": 5}, "only used by the 'step'"),
        ({"name": "multistep", "total_iters": 10}, "milestones"),
        ({"name": "multistep", "total_iters": 10, "milestones": [5, 3]}, "strictly increasing"),
        ({"name": "multistep", "total_iters": 10, "milestones": [0, 3]}, "positive"),
        ({"name": "cosine", "total_iters": 10, "milestones": [5]}, "only used by the 'multistep'"),
        ({"name": "step", "total_iters": 10, "step_size": 2, "gamma": 0.0}, "gamma"),
    ],
)
def test_schedule_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        lr_factor(0, **kwargs)
    with pytest.raises(ConfigError, match=match):
        build_scheduler(
            build_optimizer(nn.Linear(2, 2).parameters(), name="adam", lr=1.0), **kwargs
        )


def test_schedule_keywords_are_checked_as_a_signature_would() -> None:
    opt = build_optimizer(nn.Linear(2, 2).parameters(), name="adam", lr=1e-4)
    bad: dict[str, Any] = {"name": "cosine", "total_iters": 10, "warmup": 2}
    with pytest.raises(TypeError, match="Did you mean 'warmup_iters'"):
        lr_factor(0, **bad)
    with pytest.raises(TypeError, match="'warmup'"):
        build_scheduler(opt, **bad)
    with pytest.raises(TypeError, match="eta_min"):  # the scheduler's keyword, not lr_factor's
        lr_factor(0, name="cosine", total_iters=10, eta_min=0.1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing schedule argument 'name'"):
        lr_factor(0, total_iters=10)  # type: ignore[call-arg]


def test_build_scheduler_bad_eta_min() -> None:
    opt = build_optimizer(nn.Linear(2, 2).parameters(), name="adam", lr=1e-4)
    with pytest.raises(ConfigError, match="eta_min"):
        build_scheduler(opt, name="cosine", total_iters=10, eta_min=1e-3)
    with pytest.raises(ConfigError, match="eta_min"):
        build_scheduler(opt, name="cosine", total_iters=10, eta_min=-1.0)


def _train_step(net: nn.Module, opt: torch.optim.Optimizer, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 3, generator=gen)
    opt.zero_grad()
    net(x).square().mean().backward()
    opt.step()


def test_scheduler_applies_lr_factor_per_iteration() -> None:
    net = nn.Linear(3, 1)
    opt = build_optimizer(net.parameters(), name="adam", lr=2e-4)
    kwargs: dict[str, Any] = {"name": "multistep", "total_iters": 20, "milestones": [5, 10]}
    sched = build_scheduler(opt, warmup_iters=3, **kwargs)
    for i in range(15):
        expected = 2e-4 * lr_factor(i, warmup_iters=3, **kwargs)
        assert opt.param_groups[0]["lr"] == pytest.approx(expected), i
        _train_step(net, opt, i)
        sched.step()


def test_scheduler_cosine_eta_min_per_group() -> None:
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    opt = build_optimizer(
        [{"params": a.parameters()}, {"params": b.parameters(), "lr": 1e-3}], name="adam", lr=1e-2
    )
    sched = build_scheduler(opt, name="cosine", total_iters=10, eta_min=1e-4)
    for _ in range(10):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-4, 1e-4])


def _make_run(
    config: dict[str, Any],
) -> tuple[nn.Linear, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    torch.manual_seed(0)
    net = nn.Linear(3, 1)
    opt = build_optimizer(net.parameters(), name="adamw", lr=1e-2, weight_decay=0.01)
    return net, opt, build_scheduler(opt, **config)


def test_scheduler_state_round_trip_continues_identically() -> None:
    config: dict[str, Any] = {
        "name": "cosine",
        "total_iters": 20,
        "warmup_iters": 4,
        "eta_min": 1e-4,
    }
    net, opt, sched = _make_run(config)
    for i in range(7):
        _train_step(net, opt, i)
        sched.step()
    live = {"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    # The schedule itself is rebuilt from the config: the state holds counters only.
    assert all(fn is None for fn in live["sched"]["lr_lambdas"])
    buffer = io.BytesIO()  # serialised as a checkpoint is (state_dicts share the live tensors)
    torch.save(live, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    def continue_run(
        net: nn.Linear, opt: torch.optim.Optimizer, sched: Any
    ) -> tuple[list[float], torch.Tensor]:
        lrs = []
        for i in range(7, 15):
            lrs.append(opt.param_groups[0]["lr"])
            _train_step(net, opt, i)
            sched.step()
        return lrs, net.weight.detach().clone()

    lrs_a, weight_a = continue_run(net, opt, sched)

    net2, opt2, sched2 = _make_run(config)
    net2.load_state_dict(saved["net"])
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    lrs_b, weight_b = continue_run(net2, opt2, sched2)
    assert lrs_a == lrs_b
    assert torch.equal(weight_a, weight_b)


# --- gradient clipping ----------------------------------------------------------------------------


def test_clip_gradients() -> None:
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert clip_gradients([p], None) is None
    assert torch.equal(p.grad, torch.tensor([3.0, 4.0]))
    norm = clip_gradients([p], 1.0)
    assert norm == pytest.approx(5.0)
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    assert clip_gradients([p], 10.0) == pytest.approx(1.0, rel=1e-5)  # below the limit: unchanged
    with pytest.raises(ConfigError, match="max_norm"):
        clip_gradients([p], 0.0)


# --- EMA ------------------------------------------------------------------------------------------


def _fill(net: nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)


def test_ema_decay_without_warmup() -> None:
    net = nn.Linear(2, 2)
    _fill(net, 1.0)
    ema = ModelEMA(net, decay=0.9, warmup=False)
    _fill(net, 2.0)
    ema.update(net)
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 1.0 + 0.1 * 2.0))
    _fill(net, 0.0)
    ema.update(net)
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.9 * 1.1))
    assert ema.num_updates == 2


def test_ema_warmup_decay() -> None:
    net = nn.Linear(2, 2)
    ema = ModelEMA(net, decay=0.999)
    assert ema.effective_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert ema.effective_decay(1) == pytest.approx(2 / 11)
    assert ema.effective_decay(10**6) == 0.999
    _fill(net, 1.0)
    with torch.no_grad():
        for p in ema.module.parameters():
            p.fill_(0.0)
    ema.update(net)  # d = 0.1
    ema.update(net)  # d = 2/11
    expected = 1 - 0.1 * (2 / 11)  # ema after two steps towards 1 from 0
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, expected))


def test_ema_copy_is_frozen_and_separate() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)).train()
    ema = ModelEMA(net)
    assert ema.module is not net
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    assert all(p.requires_grad for p in net.parameters())
    ema.update(net)
    assert not ema.module.training


def test_ema_copies_buffers() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    ema = ModelEMA(net, decay=0.99)
    net(torch.rand(2, 3, 8, 8))  # updates the running statistics
    ema.update(net)
    bn, ema_bn = net.get_submodule("1"), ema.module.get_submodule("1")
    assert isinstance(bn, nn.BatchNorm2d)
    assert isinstance(ema_bn, nn.BatchNorm2d)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(ema_bn.get_buffer(name), bn.get_buffer(name)), name
    assert int(ema_bn.get_buffer("num_batches_tracked")) == 1


class _FakeDDP(nn.Module):
    """The shape of DistributedDataParallel: a module holding the network as ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def test_ema_unwraps_ddp_style_wrappers() -> None:
    net = nn.Linear(2, 2)
    assert unwrap_model(_FakeDDP(_FakeDDP(net))) is net
    assert unwrap_model(nn.DataParallel(net)) is net
    ema = ModelEMA(_FakeDDP(net), decay=0.5, warmup=False)
    assert set(ema.module.state_dict()) == {"weight", "bias"}
    _fill(net, 3.0)
    with torch.no_grad():
        for p in ema.module.parameters():
            p.fill_(1.0)
    ema.update(_FakeDDP(net))
    for p in ema.module.parameters():
        assert torch.allclose(p, torch.full_like(p, 2.0))


def test_unwrap_keeps_models_with_a_submodule_named_module() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = nn.Linear(2, 2)
            self.head = nn.Linear(2, 2)

    net = Net()
    assert unwrap_model(net) is net


def test_ema_state_round_trip() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ema = ModelEMA(net, decay=0.9)
    for value in (1.0, 2.0, 3.0):
        _fill(net, value)
        ema.update(net)
    state = ema.state_dict()
    assert state["num_updates"] == 3

    ema2 = ModelEMA(nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)), decay=0.9)
    ema2.load_state_dict(state)
    assert ema2.num_updates == 3
    assert ema2.effective_decay() == ema.effective_decay()
    _fill(net, 4.0)
    ema.update(net)
    ema2.update(net)
    for a, b in zip(
        ema.module.state_dict().values(), ema2.module.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


def test_ema_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="decay"):
        ModelEMA(nn.Linear(2, 2), decay=1.0)
    ema = ModelEMA(nn.Linear(2, 2))
    with pytest.raises(IncompatibleWeightsError, match="num_updates"):
        ema.load_state_dict({"module": {}})
    with pytest.raises(IncompatibleWeightsError, match="do not fit"):
        ema.load_state_dict(ModelEMA(nn.Linear(3, 3)).state_dict())
    with pytest.raises(ValueError, match="differ"):
        ema.update(nn.Sequential(nn.Linear(2, 2)))


# --- logging --------------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_png(path: Path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()


def _psnr_run(out: Path, *, last: int = 20, start: int = 0, val_every: int = 10) -> None:
    with TrainingLogger(out, total_iters=last, start_iter=start, progress=False) as logger:
        for step in range(start + 1, last + 1):
            logger.log_train(step, {"loss_pix": 1.0 / step}, lr=1e-4)
            if step % val_every == 0:
                logger.log_val(step, {"psnr": 20.0 + step / 10, "ssim": 0.5 + step / 100})


def test_logger_psnr_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with TrainingLogger(out, total_iters=20, progress=False) as logger:
        for step in range(1, 21):
            logger.log_train(step, {"loss_pix": 1.0 / step}, lr=1e-4)
            if step == 3:  # flushed per row: readable while the run goes on
                assert [r["step"] for r in _rows(out / "train_log.csv")] == ["1", "2", "3"]
            if step % 10 == 0:
                logger.log_val(step, {"psnr": 20.0 + step, "ssim": 0.8, "loss_pix": 0.1})
        sample = logger.log_images(
            20,
            {"lq": torch.rand(3, 4, 5), "sr": torch.rand(3, 16, 20), "gt": torch.rand(1, 16, 20)},
        )

    train = _rows(out / "train_log.csv")
    assert list(train[0]) == ["step", "time", "lr", "loss_pix"]
    assert [int(r["step"]) for r in train] == list(range(1, 21))
    assert float(train[4]["loss_pix"]) == pytest.approx(0.2)
    assert float(train[0]["lr"]) == 1e-4
    val = _rows(out / "val_log.csv")
    assert [(r["step"], r["psnr"]) for r in val] == [("10", "30.0"), ("20", "40.0")]
    columns = read_csv_log(out / "val_log.csv")
    assert columns["ssim"].tolist() == [0.8, 0.8]

    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    for name in ("loss.png", "val_psnr_ssim.png"):
        _assert_png(out / "plots" / name)
    assert not (out / "plots" / "gan.png").exists()  # no GAN columns in a PSNR run
    assert sample is not None
    assert sample == out / "samples" / "step_00000020.png"
    _assert_png(sample)
    with Image.open(sample) as grid:  # lq enlarged x4 beside sr and gt, under a label strip
        assert grid.height > 16
        assert grid.width >= 3 * 20
    assert not list(out.rglob("*.tmp"))
    # Written atomically, yet with the permissions a plain open() gives (not mkstemp's 0600).
    expected_mode = 0o666 & ~current_umask()
    for path in (out / "train_log.csv", out / "val_log.csv", out / "plots" / "loss.png"):
        assert path.stat().st_mode & 0o777 == expected_mode, path


def test_logger_gan_run_with_new_columns(tmp_path: Path) -> None:
    out = tmp_path / "gan"
    with TrainingLogger(out, total_iters=12, tensorboard=False, progress=False) as logger:
        for step in range(1, 13):
            values = {"loss_pix": 0.1, "loss_percep": 1.0 / step, "loss_gan": 0.005}
            if step > 4:  # the discriminator starts later: its columns appear mid-run
                values |= {"loss_d_real": 0.6, "loss_d_fake": 0.7}
            logger.log_train(step, values, lr=1e-4)
        logger.log_val(12, {"psnr": 25.0, "ssim": 0.7})
    rows = _rows(out / "train_log.csv")
    assert list(rows[0]) == [
        "step", "time", "lr", "loss_pix", "loss_percep", "loss_gan", "loss_d_real", "loss_d_fake"
    ]  # fmt: skip
    assert len(rows) == 12
    assert rows[0]["loss_d_real"] == ""
    assert rows[11]["loss_d_fake"] == "0.7"
    for name in ("loss.png", "gan.png", "val_psnr_ssim.png"):
        _assert_png(out / "plots" / name)
    assert not (out / "tensorboard").exists()


def test_logger_resume_truncates_logs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _psnr_run(out, last=20)  # killed at 20, last checkpoint at 12
    with (out / "train_log.csv").open("a", encoding="utf-8") as handle:
        handle.write("21,17000")  # a row cut off by SIGKILL
    _psnr_run(out, last=15, start=12, val_every=5)
    train = _rows(out / "train_log.csv")
    assert [int(r["step"]) for r in train] == list(range(1, 16))
    assert float(train[-1]["loss_pix"]) == pytest.approx(1 / 15)
    assert [r["step"] for r in _rows(out / "val_log.csv")] == ["10", "15"]
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) == 2


def test_logger_new_run_replaces_old_logs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    _psnr_run(out, last=20)
    with TrainingLogger(out, total_iters=5, tensorboard=False, progress=False) as logger:
        logger.log_train(1, {"loss_l1": 0.5}, lr=1e-3)
    assert [(r["step"], list(r)[-1]) for r in _rows(out / "train_log.csv")] == [("1", "loss_l1")]
    assert not (out / "val_log.csv").exists()
    assert (out / "plots" / "loss.png").is_file()
    assert not (out / "plots" / "val_psnr_ssim.png").exists()  # the old run's figure is gone


def test_logger_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with TrainingLogger(tmp_path, total_iters=10, start_iter=4, tensorboard=False) as logger:
        for step in range(5, 11):
            logger.log_train(step, {"loss_pix": 0.25}, lr=1e-4)
    err = capsys.readouterr().err
    assert "10/10" in err
    assert "loss_pix=0.25" in err


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda lg: lg.log_train(1, {"lr": 0.1}, lr=1e-4), "reserved"),
        (lambda lg: lg.log_train(1, {"step": 0.1}, lr=1e-4), "reserved"),
        (lambda lg: lg.log_train(-1, {"loss": 0.1}, lr=1e-4), "step"),
        (lambda lg: lg.log_images(1, {"sr": torch.rand(2, 3, 4, 4)}), "expected"),
    ],
)
def test_logger_bad_input(
    tmp_path: Path, call: Callable[[TrainingLogger], object], match: str
) -> None:
    with (
        TrainingLogger(tmp_path, total_iters=5, tensorboard=False, progress=False) as logger,
        pytest.raises(ValueError, match=match),
    ):
        call(logger)


def test_null_logger(tmp_path: Path) -> None:
    out = tmp_path / "rank1"
    with NullLogger(out, total_iters=10, start_iter=0, tensorboard=True, progress=True) as logger:
        logger.log_train(1, {"loss_pix": 0.1}, lr=1e-4)
        logger.log_val(1, {"psnr": 30.0})
        assert logger.log_images(1, {"sr": torch.rand(3, 4, 4)}) is None
        assert logger.plot() == []
    logger.close()
    assert not out.exists()
