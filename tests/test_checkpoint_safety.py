"""Interrupted or failing runs never lose the last good state (issue: reliability).

A diverging run does not write non-finite weights over good ones; a full or read-only disk is one
line naming the folder, with the last good state still loadable; temporary files left by a killed
run are removed when it resumes.
"""

from __future__ import annotations

import errno
import math
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import test_training
from superres.cli import main
from superres.errors import SuperresError
from superres.models import load_weights
from superres.training import checkpoint
from superres.training.checkpoint import STATE_FILE, WEIGHTS_LAST, load_state
from superres.training.config import recipe_from_dict
from superres.training.trainer import train

REPO = test_training.REPO
run_options = test_training.run_options
tiny_recipe = test_training.tiny_recipe
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images


def _recipe(**train: Any) -> dict[str, Any]:
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", **train)
    data["validation"]["every"] = 1000
    return data


def _finite(path: Path) -> bool:
    state = load_weights(path).state_dict()
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_a_diverging_run_keeps_the_last_finite_checkpoint(tiny_root: Path, tmp_path: Path) -> None:
    data = _recipe(total_iters=30, checkpoint_every=1, log_every=10)
    data["train"]["optimizer"]["lr"] = 1e8
    out = tmp_path / "run"
    with pytest.raises(SuperresError) as caught:
        train(recipe_from_dict(data), run_options(out, tiny_root))
    message = str(caught.value)
    assert "non-finite" in message or "diverged" in message
    assert "iteration" in message
    assert len(message.splitlines()) == 1
    # Iteration 1's weights are finite (one huge step); iteration 2's are not: 1 is kept, named.
    assert "iteration 2" in message
    assert f"{out / STATE_FILE} (iteration 1)" in message
    assert _finite(out / WEIGHTS_LAST)
    state = load_state(out / STATE_FILE)
    assert state["step"] == 1
    assert checkpoint.first_non_finite(state) is None
    assert not list(out.glob(".*.tmp"))


def _failing_torch_save(after: int, error: OSError) -> Any:
    calls = {"n": 0}
    real = torch.save

    def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > after:
            raise error
        real(obj, f, *args, **kwargs)

    return save


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EROFS, "Read-only file system"),
        PermissionError(errno.EACCES, "Permission denied"),
    ],
    ids=["disk-full", "read-only", "permission"],
)
def test_a_failing_disk_is_one_line_and_keeps_the_last_good_state(
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: OSError,
) -> None:
    data = _recipe(total_iters=6, checkpoint_every=2, log_every=1)
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    # The first training state (iteration 2) is written; the second one fails.
    monkeypatch.setattr(torch, "save", _failing_torch_save(1, error))
    argv = ["train", str(config), "--out", str(out), "--device", "cpu", "--precision", "fp32"]
    argv += ["--workers", "0", "--no-tensorboard", "-q", "--memory-format", "channels_last"]
    argv += ["--data-root", str(tiny_root)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert str(out) in err
    assert "iteration 2" in err  # where the last good state is
    assert not list(out.glob(".*.tmp"))
    assert load_state(out / STATE_FILE)["step"] == 2
    assert _finite(out / WEIGHTS_LAST)
    monkeypatch.undo()
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    assert main([*argv, "--resume", "auto"]) == 0
    assert load_state(out / STATE_FILE)["step"] == 6


def test_resume_removes_the_temporary_files_of_a_killed_run(
    tiny_root: Path, tmp_path: Path
) -> None:
    data = _recipe(total_iters=2, checkpoint_every=2)
    out = tmp_path / "run"
    train(recipe_from_dict(data), run_options(out, tiny_root))
    # What a SIGKILL during atomic writes leaves behind (see superres.io.files.atomic_write).
    leftovers = [out / f".{STATE_FILE}.k1x2c3q7.tmp", out / f".{WEIGHTS_LAST}.9zzq_a0b.tmp"]
    for path in leftovers:
        path.write_bytes(b"\0" * 4096)
    unrelated = out / "notes.tmp"
    unrelated.write_text("mine")
    data["train"]["total_iters"] = 4
    train(recipe_from_dict(data), run_options(out, tiny_root, resume="auto"))
    assert not any(p.exists() for p in leftovers)
    assert unrelated.read_text() == "mine"
    assert load_state(out / STATE_FILE)["step"] == 4


def test_the_finite_check_covers_every_floating_tensor() -> None:
    good = {"a": torch.ones(2), "steps": torch.tensor(3)}
    assert checkpoint.first_non_finite(good) is None
    bad = {"a": torch.ones(2), "b": torch.tensor([1.0, math.nan])}
    assert checkpoint.first_non_finite(bad) == "b"
