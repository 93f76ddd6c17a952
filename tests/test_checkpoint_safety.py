"""Interrupted or failing runs never lose the last good state (issue: reliability).

A diverging run does not write non-finite weights over good ones; a full or read-only disk is one
line naming the folder, with the last good state still loadable; temporary files left by a killed
run are removed when it resumes. With ``SUPERRES_WRITE_RELIABILITY=1`` what each case did becomes
the "Checkpoints: divergence, disk full, read-only" section of docs/reliability.md.
"""

from __future__ import annotations

import errno
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

import test_training
from reliability import enabled, table, write_section
from superres.cli import main
from superres.errors import SuperresError
from superres.models import load_weights
from superres.training import checkpoint, run_files
from superres.training.checkpoint import STATE_FILE, WEIGHTS_LAST, load_state
from superres.training.config import recipe_from_dict
from superres.training.trainer import train

REPO = test_training.REPO
run_options = test_training.run_options
tiny_recipe = test_training.tiny_recipe
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images


#: Rows of (case, what was done, what happened, the last good state afterwards, pass).
Row = tuple[str, str, str, str, bool]
_CASES = 6 + 4  # the rows the tests below record (4: the real full disks)


@pytest.fixture(scope="module")
def record() -> Iterator[list[Row]]:
    rows: list[Row] = []
    yield rows
    if enabled() and len(rows) == _CASES:
        failed = sum(not row[-1] for row in rows)
        intro = (
            "`tests/test_checkpoint_safety.py` made runs diverge, fail to write (disk full, "
            "read-only, no permission: the write fails as the kernel would fail it) and die "
            "between writes. Each must end in one line naming the folder and the last good "
            f"state, keep that state loadable and resume from it. Failing now: {failed}."
        )
        cells = [(*row[:-1], "yes" if row[-1] else "**no**") for row in rows]
        body = table(("case", "what", "what happened", "afterwards", "pass"), cells)
        write_section("Checkpoints: divergence, disk full, read-only", f"{intro}\n\n{body}")


def _recipe(**train: Any) -> dict[str, Any]:
    data = tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", **train)
    data["validation"]["every"] = 1000
    return data


def _finite(path: Path) -> bool:
    state = load_weights(path).state_dict()
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


def test_a_diverging_run_keeps_the_last_finite_checkpoint(
    tiny_root: Path, tmp_path: Path, record: list[Row]
) -> None:
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
    state = load_state(out / STATE_FILE)
    kept = f"state at iteration {state['step']}, weights finite: {_finite(out / WEIGHTS_LAST)}"
    passed = (
        "iteration 2" in message
        and f"{out / STATE_FILE} (iteration 1)" in message
        and _finite(out / WEIGHTS_LAST)
        and state["step"] == 1
        and checkpoint.first_non_finite(state) is None
        and not list(out.glob(".*.tmp"))
    )
    shown = message.replace(str(tmp_path), "TMP")
    record.append(("divergence", "lr 1e8, a checkpoint every iteration", shown, kept, passed))
    assert passed, message


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
    record: list[Row],
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
    code = main(argv)
    err = capsys.readouterr().err.strip()
    one_line = code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    named = str(out) in err and "iteration 2" in err  # where the last good state is
    kept = not list(out.glob(".*.tmp")) and load_state(out / STATE_FILE)["step"] == 2
    kept = kept and _finite(out / WEIGHTS_LAST)
    monkeypatch.undo()
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    resumed = main([*argv, "--resume", "auto"]) == 0 and load_state(out / STATE_FILE)["step"] == 6
    what = f"the 2nd training state's write fails ({error.strerror})"
    after = "state at iteration 2 kept; " + ("resumed to 6" if resumed else "**resume failed**")
    shown = err.replace(str(tmp_path), "TMP")
    record.append((f"write fails: {error.strerror}", what, shown, after, one_line and named))
    assert one_line, err
    assert named, err
    assert kept
    assert resumed


def test_a_failing_sample_write_is_the_same_one_line(
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    record: list[Row],
) -> None:
    """Logs, plots and samples go through the same message as the checkpoints."""
    data = _recipe(total_iters=6, checkpoint_every=2, log_every=1)
    data["validation"]["every"] = 4
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    real = run_files.atomic_write_bytes

    def write(path: Path, payload: bytes) -> None:
        if "samples" in Path(path).parts:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(run_files, "atomic_write_bytes", write)
    argv = ["train", str(config), "--out", str(out), "--device", "cpu", "--precision", "fp32"]
    argv += ["--workers", "0", "--no-tensorboard", "-q", "--data-root", str(tiny_root)]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    passed = code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    passed = passed and "samples/step_00000004.png" in err and "(iteration 2)" in err
    passed = passed and load_state(out / STATE_FILE)["step"] == 2 and not list(out.rglob(".*.tmp"))
    shown = err.replace(str(tmp_path), "TMP")
    what = "the validation sample at iteration 4 cannot be written (No space left on device)"
    record.append(("sample write fails", what, shown, "state at iteration 2 kept", passed))
    assert passed, err


def _mount_tmpfs(folder: Path, size: int) -> bool:
    folder.mkdir(exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    try:
        return subprocess.run(command, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


def _unmount(folder: Path) -> None:
    subprocess.run(["umount", str(folder)], capture_output=True, check=False)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_really_full_disk_is_one_line_and_keeps_the_last_good_state(
    record: list[Row],
    tiny_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Runs into tmpfs file systems too small for the whole run (the kernel's own ENOSPC)."""
    data = _recipe(total_iters=6, checkpoint_every=2, log_every=1)
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(data))
    argv = ["train", str(config), "--device", "cpu", "--precision", "fp32", "--workers", "0"]
    argv += ["--no-tensorboard", "-q", "--data-root", str(tiny_root)]
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SUPERRES_OFFLINE", "1")
    assert main([*argv, "--out", str(tmp_path / "ref")]) == 0
    whole = _folder_bytes(tmp_path / "ref")
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, 10 * whole):
        pytest.skip("cannot mount a tmpfs here (needs root): the mocked write failures above stand")
    _unmount(disk)
    capsys.readouterr()
    failures = []
    for fraction in (0.35, 0.6, 0.85, 0.95):
        size = int(fraction * whole) // 4096 * 4096
        assert _mount_tmpfs(disk, size)
        try:
            out = disk / "run"
            code = main([*argv, "--out", str(out)])
            err = capsys.readouterr().err.strip().splitlines()
            last = err[-1] if err else ""
            one_line = code == 1 and "Traceback" not in "\n".join(err)
            one_line = one_line and "No space left on device" in last and str(out) in last
            one_line = one_line and all(line.startswith("WARNING") for line in err[:-1])
            state = out / STATE_FILE
            step = load_state(state)["step"] if state.is_file() else 0
            kept = not list(out.rglob(".*.tmp")) and (step == 0 or _finite(out / WEIGHTS_LAST))
            subprocess.run(["mount", "-o", f"remount,size={10 * whole}", str(disk)], check=True)
            resumed = main([*argv, "--out", str(out), "--resume", "auto"]) == 0
            resumed = resumed and load_state(state)["step"] == 6
            capsys.readouterr()
        finally:
            _unmount(disk)
        what = f"tmpfs of {size // 1024} kB, the whole run needs {whole // 1024} kB"
        shown = last.replace(str(tmp_path), "TMP")
        after = (f"state at iteration {step} kept; " if step else "no state yet; ") + (
            "resumed to 6" if resumed else "**resume failed**"
        )
        passed = one_line and kept and resumed
        record.append(("disk really full", what, shown, after, passed))
        if not passed:
            failures.append((size, err, step, resumed))
    assert not failures, failures


def test_resume_removes_the_temporary_files_of_a_killed_run(
    tiny_root: Path, tmp_path: Path, record: list[Row]
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
    passed = not any(p.exists() for p in leftovers) and unrelated.read_text() == "mine"
    passed = passed and load_state(out / STATE_FILE)["step"] == 4
    what = "2 hidden .tmp files of a killed run's writes (4 kB each) and a user's notes.tmp"
    record.append(("killed mid-write", what, "resumed", "the 2 .tmp removed, notes.tmp kept",
                   passed))  # fmt: skip
    assert passed


def test_the_finite_check_covers_every_floating_tensor() -> None:
    good = {"a": torch.ones(2), "steps": torch.tensor(3)}
    assert checkpoint.first_non_finite(good) is None
    bad = {"a": torch.ones(2), "b": torch.tensor([1.0, math.nan])}
    assert checkpoint.first_non_finite(bad) == "b"
