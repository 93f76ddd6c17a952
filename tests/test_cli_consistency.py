"""Rules every ``superres`` command keeps alike: output folders, option spellings, exit codes,
usage messages and the wording of model/scale refusals (README "Conventions")."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import random_set5
from superres.cli import _build_parser, main

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "superres" / "weights"
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "srresnet_x4.yaml"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """``superres ARGV`` in this process: (exit code, stdout, stderr); argparse's exits too."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose Set5 holds four random 32x32 images (scored with --allow-modified)."""
    return random_set5(tmp_path_factory.mktemp("data"), ("a", "b", "c", "d"), seed=3)


@pytest.fixture(scope="module")
def study(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("study") / "study.db"
    code = main(
        ["mos", "create", "--models", "srcnn-x4", "--datasets", "set5", "--data-root",
         str(tiny_root), "--allow-modified", "--limit", "2", "--seed", "1", "--out", str(out),
         "--device", "cpu", "-q"]
    )  # fmt: skip
    assert code == 0
    return out


def _blocker(tmp_path: Path) -> Path:
    """A plain file where a test then asks for an output folder."""
    path = tmp_path / "taken"
    path.write_text("not a folder")
    return path


# --- 1. output folders: made if missing, parents included; a file in the way is an error -------


def test_upscale_makes_its_output_folder(tmp_path: Path, tiny_root: Path) -> None:
    hr = tiny_root / "Set5" / "HR"
    out = tmp_path / "new" / "deep"
    assert main(["upscale", str(hr / "a.png"), str(hr / "b.png"), "-o", str(out),
                 "--model", "bicubic", "--scale", "2", "-q"]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.png", "b_x2.png"]
    one = tmp_path / "one" / "level" / "a.png"  # one input, -o FILE: its folder is made
    assert main(["upscale", str(hr / "a.png"), "-o", str(one), "--model", "bicubic",
                 "--scale", "2", "-q"]) == 0  # fmt: skip
    assert one.is_file()
    bare = tmp_path / "bare"  # one input, -o without an extension: a folder
    assert main(["upscale", str(hr / "a.png"), "-o", str(bare), "--model", "bicubic",
                 "--scale", "2", "-q"]) == 0  # fmt: skip
    assert [p.name for p in bare.iterdir()] == ["a_x2.png"]


def test_upscale_names_the_file_in_the_way(
    tmp_path: Path, tiny_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = tiny_root / "Set5" / "HR"
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "upscale", hr / "a.png", hr / "b.png", "-o", taken / "sub",
                           "--model", "bicubic", "--scale", "2", "-q")  # fmt: skip
    assert code == 1
    assert f"'{taken}'" in err
    assert "is a file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_upscale_refuses_a_file_name_for_several_inputs(
    tmp_path: Path, tiny_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hr = tiny_root / "Set5" / "HR"
    code, _, err = run_cli(capsys, "upscale", hr / "a.png", hr / "b.png", "-o",
                           tmp_path / "x.png", "--model", "bicubic", "--scale", "2")  # fmt: skip
    assert code == 1
    assert "names a file, but several images" in err
    assert list(tmp_path.iterdir()) == []


def test_eval_makes_the_folders_of_its_outputs(tmp_path: Path, tiny_root: Path) -> None:
    out = tmp_path / "results" / "x2"
    assert main(["eval", "--models", "bicubic", "--datasets", "set5", "--scales", "2",
                 "--data-root", str(tiny_root), "--allow-modified", "--device", "cpu", "-q",
                 "--output-json", str(out / "r.json"), "--output-csv", str(out / "csv" / "r.csv"),
                 "--save-images", str(tmp_path / "sr" / "deep")]) == 0  # fmt: skip
    assert json.loads((out / "r.json").read_text())["results"]
    assert (out / "csv" / "r.csv").is_file()
    assert len(list((tmp_path / "sr" / "deep").rglob("*.png"))) == 4


def test_eval_names_the_file_in_the_way_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = _blocker(tmp_path)
    for flag, path in (("--output-json", taken / "r.json"), ("--save-images", taken / "sr")):
        code, _, err = run_cli(capsys, "eval", "--models", "bicubic", "--datasets", "set5",
                               flag, path, "--data-root", tmp_path / "no-data")  # fmt: skip
        assert code == 1, err
        assert f"'{taken}'" in err  # named before the missing data root is noticed
        assert "is a file" in err


def test_report_makes_its_output_folder(tmp_path: Path, tiny_root: Path) -> None:
    out = tmp_path / "reports" / "today"
    assert main(["report", "--models", "bicubic", "--datasets", "set5", "--scale", "2",
                 "--data-root", str(tiny_root), "--allow-modified", "--no-niqe", "--no-lpips",
                 "--crops", "0", "--out", str(out), "--device", "cpu", "-q"]) == 0  # fmt: skip
    assert (out / "report.md").is_file()


def test_report_names_the_file_in_the_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "report", "--models", "bicubic", "--datasets", "set5",
                           "--out", taken / "report")  # fmt: skip
    assert code == 1
    assert f"'{taken}'" in err


def test_mos_create_and_results_make_their_folders(
    tmp_path: Path, tiny_root: Path, study: Path
) -> None:
    db = tmp_path / "studies" / "one" / "s.db"
    assert main(["mos", "create", "--models", "srcnn-x4", "--dataset", "set5", "--data-root",
                 str(tiny_root), "--allow-modified", "--limit", "1", "--out", str(db),
                 "--device", "cpu", "-q"]) == 0  # fmt: skip
    assert db.is_file()
    out = tmp_path / "mos" / "results"
    assert main(["mos", "results", str(study), "--out", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mos.csv", "mos.json", "mos.md", "mos.png"]


def test_mos_results_names_the_file_in_the_way(
    tmp_path: Path, study: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "mos", "results", study, "--out", taken / "r")
    assert code == 1
    assert f"'{taken}'" in err


def test_export_makes_its_output_folder(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    out = tmp_path / "onnx" / "models" / "bicubic.onnx"
    assert main(["export", "--model", "bicubic", "--scale", "2", "-o", str(out),
                 "--no-verify", "-q"]) == 0  # fmt: skip
    assert out.is_file()


def test_export_names_the_file_in_the_way(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "export", "--model", "bicubic", "-o", taken / "m.onnx")
    assert code == 1
    assert f"'{taken}'" in err


def test_metrics_makes_the_folder_of_its_json(tmp_path: Path, tiny_root: Path) -> None:
    hr = tiny_root / "Set5" / "HR"
    out = tmp_path / "scores" / "deep" / "m.json"
    assert main(["metrics", str(hr / "a.png"), str(hr / "b.png"), "--output-json", str(out)]) == 0
    assert "psnr" in json.loads(out.read_text())["mean"]


def test_extract_subimages_makes_its_output_folder_and_names_a_file_in_the_way(
    tmp_path: Path, tiny_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sub" / "images"
    args = ["--crop-size", "16", "--step", "16", "-q"]
    assert main(["data", "extract-subimages", str(tiny_root / "Set5" / "HR"), str(out), *args]) == 0
    assert len(list(out.glob("*.png"))) == 16
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "data", "extract-subimages", tiny_root / "Set5" / "HR",
                           taken / "x", *args)  # fmt: skip
    assert code == 1
    assert f"'{taken}'" in err


def test_data_get_makes_its_root(
    tmp_path: Path, data_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data" / "root"
    assert main(["data", "get", "set5", "--root", str(root), "--from", str(data_root),
                 "--yes", "-q"]) == 0  # fmt: skip
    assert len(list((root / "Set5" / "HR").glob("*.png"))) == 5
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "data", "get", "set5", "--root", taken / "r", "--from",
                           data_root, "--yes", "-q")  # fmt: skip
    assert code == 1
    assert f"'{taken}'" in err


def test_train_names_the_file_in_the_way_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = _blocker(tmp_path)
    code, _, err = run_cli(capsys, "train", RECIPE, "--out", taken / "run",
                           "--data-root", tmp_path / "no-data")  # fmt: skip
    assert code == 1
    assert f"'{taken}'" in err
    assert "is a file" in err


# --- 2. --dataset/--datasets and --scale/--scales: both spellings everywhere --------------------


def _parsers(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (sub-)command's parser with its words, e.g. ``("mos", "create")``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
    for action in subs:
        for name, child in action.choices.items():
            yield from _parsers(child, (*prefix, name))


COMMANDS = dict(_parsers(_build_parser()))


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_both_spellings_of_dataset_and_scale(words: tuple[str, ...]) -> None:
    flags = set(COMMANDS[words]._option_string_actions)
    for one, many in (("--dataset", "--datasets"), ("--scale", "--scales")):
        assert (one in flags) == (many in flags), f"{' '.join(words)}: {one} / {many}"
        if one in flags:
            assert (
                COMMANDS[words]._option_string_actions[one]
                is (COMMANDS[words]._option_string_actions[many])
            )


@pytest.mark.parametrize(
    ("argv", "dest", "value"),
    [
        (["eval", "--models", "bicubic", "--dataset", "set5"], "datasets", ["set5"]),
        (["eval", "--models", "bicubic", "--datasets", "set5", "--scale", "2", "3"], "scales",
         [2, 3]),
        (["report", "--models", "bicubic", "--dataset", "set5", "--out", "r"], "datasets",
         ["set5"]),
        (["report", "--models", "bicubic", "--datasets", "set5", "--out", "r", "--scales", "2"],
         "scale", 2),
        (["mos", "create", "--models", "srcnn-x4", "--datasets", "set14", "--out", "s.db"],
         "dataset", "set14"),
        (["upscale", "x.png", "--scales", "2"], "scale", 2),
        (["export", "--model", "bicubic", "-o", "m.onnx", "--scales", "3"], "scale", 3),
    ],
)  # fmt: skip
def test_the_other_spelling_lands_in_the_same_option(
    argv: list[str], dest: str, value: object
) -> None:
    assert getattr(_build_parser().parse_args(argv), dest) == value


# --- 3. a bad value exits 2 with one line, on every command that takes values -------------------

BAD_VALUES: dict[str, list[str]] = {
    "upscale": ["upscale", "x.png", "--tile", "-5"],
    "eval": ["eval", "--models", "bicubic", "--datasets", "nope"],
    "train": ["train", str(RECIPE), "--workers", "-1"],
    "datasets": ["datasets", "--data-root"],  # a value missing is a usage error too
    "assets list": ["assets", "list", "--data-root"],
    "assets get": ["assets", "get", "no-such-asset"],
    "data extract-subimages": ["data", "extract-subimages", "in", "out", "--crop-size", "0"],
    "data get": ["data", "get", "no-such-set"],
    "data list": ["data", "list", "--root"],
    "data verify": ["data", "verify", "no-such-set"],
    "mos create": ["mos", "create", "--models", "srcnn-x4", "--dataset", "nope", "--out", "s.db"],
    "mos serve": ["mos", "serve", "study.db", "--port", "http"],
    "mos results": ["mos", "results"],  # the study file missing
    "metrics": ["metrics", "sr.png", "--crop-border", "four"],
    "report": ["report", "--models", "bicubic", "--datasets", "set5", "--scale", "0", "--out", "r"],
    "export": ["export", "--model", "bicubic", "-o", "m.onnx", "--scale", "0"],
}
#: Commands without a value to get wrong.
NO_VALUES = {"models", "samples"}


def test_every_command_has_a_bad_value_case() -> None:
    assert {" ".join(w) for w in COMMANDS} == set(BAD_VALUES) | NO_VALUES


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_exits_2_with_one_line(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *BAD_VALUES[name])
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"superres {name}: error: "), err
    assert out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["eval", "--models", "bicubic", "--datasets", "set5", "--scales", "0"],
        ["eval", "--models", "bicubic", "--datasets", "set5", "--scales", "x4"],
        ["metrics", "a.png", "b.png", "--crop-border", "-1"],
        ["data", "extract-subimages", "{hr}", "out", "--step", "-3"],
        ["mos", "create", "--models", "srcnn-x4", "--dataset", "set5", "--out", "s", "--limit",
         "0"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)  # fmt: skip
def test_out_of_range_numbers_exit_2(
    argv: list[str],
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hr = tiny_root / "Set5" / "HR"
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{hr}", str(hr)) for a in argv]
    argv = [str(hr / "a.png") if a == "a.png" else str(hr / "b.png") if a == "b.png" else a
            for a in argv]  # fmt: skip
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("superres ")


# --- 4. an unknown option shows that command's usage --------------------------------------------


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_an_unknown_option_shows_that_commands_usage(
    words: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, *words, "--no-such-option")
    assert code == 2
    assert f"usage: superres {' '.join(words)} " in err
    assert err.strip().splitlines()[-1] == (
        f"superres {' '.join(words)}: error: unrecognized arguments: --no-such-option"
    )


# --- 5. --weights FILE --model NAME: the file must hold that model -------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["upscale", "sample:astronaut", "-o", "{tmp}/a.png"],
        ["export", "-o", "{tmp}/m.onnx", "--no-verify"],
    ],
    ids=lambda argv: argv[0],
)
def test_weights_of_another_model_are_refused(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = WEIGHTS_DIR / "srresnet-x4.safetensors"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run_cli(capsys, *argv, "--weights", weights, "--model", "edsr-baseline-x4")
    assert code != 0
    line = err.strip().splitlines()[-1]
    assert str(weights) in line  # the file
    assert "holds a srresnet model, not 'edsr-baseline-x4'" in line  # what it is
    assert "leave out the model name" in line  # the fix
    assert list(tmp_path.iterdir()) == []


def test_eval_takes_names_and_files_as_separate_rows() -> None:
    """eval has no --model to check a file against: every name and every file is its own row."""
    flags = COMMANDS[("eval",)]._option_string_actions
    assert "--model" not in flags
    assert flags["--models"].nargs == "+"
    assert flags["--weights"].nargs == "+"


# --- 6. a model asked for a scale it has not ------------------------------------------------------


def test_eval_says_the_model_has_no_such_scale(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "eval", "--models", "srresnet-x2", "--scales", "4",
                           "--datasets", "set5")  # fmt: skip
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "model 'srresnet-x2' has no x4 (it upscales x2 only)" in line
    assert "weights file" not in line


def test_eval_says_a_weights_file_has_no_such_scale(capsys: pytest.CaptureFixture[str]) -> None:
    weights = WEIGHTS_DIR / "srresnet-x2.safetensors"
    code, _, err = run_cli(capsys, "eval", "--weights", weights, "--scales", "4",
                           "--datasets", "set5")  # fmt: skip
    assert code == 2
    assert f"weights file '{weights}' upscales x2" in err
