"""How `superres train` starts (issue: workflows, item 8): it says what it does before the
dataset scan, refuses a changed recipe before the scan, leaves no empty run folder when the start
fails, and writes the resolved recipe and a text log into the run folder."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import test_training
from superres.cli import main
from superres.errors import SuperresError
from superres.training import trainer as trainer_module
from superres.training.checkpoint import RECIPE_FILE, STATE_FILE
from superres.training.config import recipe_from_checkpoint, recipe_from_dict
from superres.training.run_files import TEXT_LOG
from superres.training.trainer import train

REPO = test_training.REPO
run_options = test_training.run_options
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images


def _recipe(**train_keys: Any) -> dict[str, Any]:
    data = test_training.tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", **train_keys)
    data["validation"]["every"] = 1000
    return data


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    empty_root = tmp_path / "no-data"
    empty_root.mkdir()
    with pytest.raises(SuperresError, match="not found"):
        train(recipe_from_dict(_recipe(total_iters=2)), run_options(out, empty_root))
    assert not out.exists()
    # A folder that was there before is kept, even when empty.
    out.mkdir()
    with pytest.raises(SuperresError):
        train(recipe_from_dict(_recipe(total_iters=2)), run_options(out, empty_root))
    assert out.is_dir()


def test_the_run_folder_holds_the_recipe_and_a_text_log(
    tiny_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    recipe = recipe_from_dict(_recipe(total_iters=4, checkpoint_every=2, log_every=2))
    with caplog.at_level(logging.INFO, logger="superres"):
        train(recipe, run_options(out, tiny_root))
    assert recipe_from_checkpoint((out / RECIPE_FILE).read_text(), source="recipe.yaml") == recipe
    log = (out / TEXT_LOG).read_text().splitlines()
    # From the first line on, before the dataset was read, with times.
    assert "reading the training set" in log[0]
    assert any("training set:" in line for line in log)
    assert all(line[:4].isdigit() for line in log)
    # The terminal's first line says what runs, before the scan.
    first = next(r.getMessage() for r in caplog.records if r.name.startswith("superres"))
    assert first.startswith(f"{recipe.name}: srresnet x4 for 4 iterations into {out}")
    # A resume appends to the log and rewrites the recipe with its new length.
    longer = recipe_from_dict(_recipe(total_iters=6, checkpoint_every=2, log_every=2))
    with caplog.at_level(logging.INFO, logger="superres"):
        train(longer, run_options(out, tiny_root, resume="auto"))
    assert (out / TEXT_LOG).read_text().count("reading the training set") == 2
    assert (
        recipe_from_checkpoint(
            (out / RECIPE_FILE).read_text(), source="recipe.yaml"
        ).train.total_iters
        == 6
    )


def test_a_changed_recipe_is_refused_before_the_dataset_scan(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    train(recipe_from_dict(_recipe(total_iters=2)), run_options(out, tiny_root))
    assert (out / STATE_FILE).is_file()
    changed = _recipe(total_iters=4)
    changed["train"]["optimizer"]["lr"] = 0.5

    def no_scan(*_: object, **__: object) -> None:
        raise AssertionError("the dataset was scanned before the recipe was checked")

    monkeypatch.setattr(trainer_module, "build_training_data", no_scan)
    with pytest.raises(SuperresError, match="lr"):
        train(recipe_from_dict(changed), run_options(out, tiny_root, resume="auto"))


def test_an_unknown_option_shows_the_commands_usage(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, prog in (
        (["eval", "--datasets", "set5", "--bogus"], "superres eval"),
        (["upscale", "x.png", "--nope"], "superres upscale"),
        (["data", "extract-subimages", "a", "b", "--zzz"], "superres data extract-subimages"),
        (["train", "r.yaml", "--unknown", "1"], "superres train"),
    ):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert f"usage: {prog}" in err, err
        assert f"{prog}: error: unrecognized arguments: " in err


def test_quiet_keeps_info_out_of_the_terminal_but_in_the_records(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(total_iters=1)))
    # The bad data root fails after the first INFO line: -q shows only the error.
    done = subprocess.run(
        [sys.executable, "-m", "superres", "train", str(recipe), "--out", str(tmp_path / "o"),
         "--data-root", str(tmp_path / "none"), "-q", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("superres train: error: ")
    assert "INFO" not in done.stderr
    assert not (tmp_path / "o").exists()


def test_a_recipe_file_that_cannot_be_written_is_one_line(
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An ``OSError`` no command turned into a message still ends in one line and exit 1."""
    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump(_recipe(total_iters=2)))
    out = tmp_path / "run"

    def refuse(path: Path, text: str) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(trainer_module, "atomic_write_text", refuse)
    argv = ["train", str(config), "--out", str(out), "--device", "cpu", "--workers", "0"]
    code = main([*argv, "--no-tensorboard", "-q", "--data-root", str(tiny_root)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1, err
    assert "No space left on device" in err
    assert RECIPE_FILE in err
