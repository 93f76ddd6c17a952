"""Kill and resume trials: ``superres train`` killed with SIGKILL resumes to the same run.

Each trial starts ``python -m superres train`` on a tiny recipe, kills it with SIGKILL at one
moment (after some rows of its log, or as soon as a temporary file of a checkpoint write shows
up, to land inside :func:`superres.io.files.atomic_write`), counts the ``.tmp`` files left, and
resumes it with ``--resume auto``. The resumed run must log the same per-step losses and end with
the same weights as one uninterrupted reference run (shared by every trial), and leave no
``.tmp``. The default run has 3 trials; ``-m slow`` runs 12. With ``SUPERRES_WRITE_RELIABILITY=1``
the trials become the "Kill and resume" section of docs/reliability.md.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import test_training
from reliability import enabled, table, write_section
from superres.models import load_weights

read_log = test_training.read_log
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images

TOTAL_ITERS = 30
#: Checkpoints often, so that some kills land inside a write.
CHECKPOINT_EVERY = 2
_LOSSES = ("loss_pix", "loss_total", "lr")


@dataclass(frozen=True)
class Trial:
    """Kill after ``rows`` log rows; with ``in_write``, at the first ``.tmp`` seen after them."""

    rows: int
    in_write: bool = False

    @property
    def moment(self) -> str:
        if self.in_write:
            return f"first checkpoint write after {self.rows} log rows"
        return f"after {self.rows} log rows"


_DEFAULT = [Trial(2), Trial(5, in_write=True), Trial(17)]
_SLOW = [Trial(0), Trial(1), Trial(8), Trial(11), Trial(22), Trial(27)]
_SLOW += [Trial(k, in_write=True) for k in (0, 12, 24)]
TRIALS = [*_DEFAULT, *(pytest.param(t, marks=pytest.mark.slow) for t in _SLOW)]


@dataclass(frozen=True)
class Run:
    """The command every trial runs (without ``--out``) and its environment."""

    command: list[str]
    env: dict[str, str]
    reference: Path


@pytest.fixture(scope="module")
def run(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The tiny recipe's command, and its uninterrupted reference run."""
    folder = tmp_path_factory.mktemp("kill")
    train = {"total_iters": TOTAL_ITERS, "checkpoint_every": CHECKPOINT_EVERY, "log_every": 1}
    changes = {"train": train, "validation": {"every": 1000}}
    config, env = test_training._cli_recipe(folder, tiny_root, "srresnet_x4.yaml", changes)
    command = [sys.executable, "-m", "superres", "train", str(config), "--device", "cpu"]
    # One layout for every run (auto times both and could pick either).
    command += ["--workers", "0", "--no-tensorboard", "-q", "--memory-format", "channels_last"]
    reference = folder / "reference"
    subprocess.run([*command, "--out", str(reference)], env=env, check=True, timeout=300)
    return Run(command, env, reference)


@pytest.fixture(scope="module")
def rows() -> Iterator[list[tuple[str, ...]]]:
    """One row per trial; the section of docs/reliability.md when asked for."""
    found: list[tuple[str, ...]] = []
    yield found
    if enabled() and len(found) >= len(_DEFAULT):
        write_section("Kill and resume", _section(found))


def _section(found: list[tuple[str, ...]]) -> str:
    intro = (
        f"`tests/test_kill_resume.py` ran {len(found)} trials in this run: `superres train` on a "
        f"tiny SRResNet recipe ({TOTAL_ITERS} iterations, a checkpoint every {CHECKPOINT_EVERY}) "
        "killed with SIGKILL at the moment given, then `--resume auto`. The resumed run must log "
        "the per-step losses of an uninterrupted run and end with its weights (within 1e-6; "
        "bit-exact says whether they are identical), with no `.tmp` file left."
    )
    header = ("kill moment", "step at kill", ".tmp left", "resumed bit-exact", ".tmp after resume")
    return f"{intro}\n\n{table(header, found)}"


def _temporary(out: Path) -> list[Path]:
    """What :func:`superres.io.files.atomic_write` leaves when killed mid-write."""
    return sorted(out.glob(".*.tmp"))


def _kill(run: Run, out: Path, trial: Trial) -> tuple[int, int]:
    """Start the run into ``out`` and SIGKILL it at ``trial``'s moment: (log rows, .tmp left)."""
    proc = subprocess.Popen([*run.command, "--out", str(out)], env=run.env)
    log = out / "train_log.csv"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            logged = len(log.read_text().splitlines()) - 1 if log.is_file() else 0
            if logged >= trial.rows and (not trial.in_write or _temporary(out)):
                break
            time.sleep(0.001 if trial.in_write else 0.005)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    return (len(read_log(log)) if log.is_file() else 0), len(_temporary(out))


def _same_run(reference: Path, out: Path) -> bool:
    """Assert that ``out`` logged and saved what ``reference`` did; True when bit-exact."""
    expected, resumed = read_log(reference / "train_log.csv"), read_log(out / "train_log.csv")
    assert [r["step"] for r in resumed] == [r["step"] for r in expected]
    exact = True
    for want, got in zip(expected, resumed, strict=True):
        for key in _LOSSES:
            assert float(got[key]) == pytest.approx(float(want[key]), rel=1e-6, abs=1e-9)
            exact = exact and got[key] == want[key]
    a = load_weights(reference / "weights_last.safetensors").state_dict()
    b = load_weights(out / "weights_last.safetensors").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-7)
        exact = exact and torch.equal(a[key], b[key])
    return exact


@pytest.mark.parametrize("trial", TRIALS, ids=lambda t: t.moment.replace(" ", "-"))
def test_a_killed_run_resumes_to_the_uninterrupted_one(
    run: Run, trial: Trial, tmp_path: Path, rows: list[tuple[str, ...]]
) -> None:
    out = tmp_path / "killed"
    at_kill, left = _kill(run, out, trial)
    resume = [*run.command, "--out", str(out), "--resume", "auto"]
    subprocess.run(resume, env=run.env, check=True, timeout=300)
    after = len(_temporary(out))
    exact = _same_run(run.reference, out)
    rows.append((trial.moment, str(at_kill), str(left), "yes" if exact else "no", str(after)))
    assert after == 0
