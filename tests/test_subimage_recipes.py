"""A recipe that trains on large images through sub-images cut on first use (issue: datasets,
item 4): ``data.subimages`` cuts each training folder into overlapping squares in the cache,
reuses them on the next run, cuts again when a source changed, and refuses settings that would
make no sense (squares smaller than the patch, a hold-out of squares of the training images)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import test_training
from superres.data.prepare import MANIFEST_NAME, prepared_subimages
from superres.errors import ConfigError
from superres.training.config import recipe_from_dict
from superres.training.trainer import resolve_train_files, train

REPO = test_training.REPO
run_options = test_training.run_options
tiny_root = test_training.tiny_root  # the fixture: a data root of small synthetic images


def _big_images(folder: Path, count: int = 2, size: tuple[int, int] = (100, 130)) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"big{i}.png")
    return folder


def _recipe(train_roots: list[str], **subimages: Any) -> dict[str, Any]:
    data = test_training.tiny_recipe(REPO / "configs" / "srresnet_x4.yaml", total_iters=2)
    data["validation"]["every"] = 1000
    data["data"]["train_roots"] = train_roots
    data["data"]["subimages"] = subimages
    return data


def test_a_run_trains_on_sub_images_cut_once_into_the_cache(
    tiny_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    big = _big_images(tmp_path / "Big" / "HR")
    data = _recipe([str(big)], crop_size=48, step=40)
    recipe = recipe_from_dict(data)
    files = resolve_train_files(recipe.data.train_roots, tiny_root, subimages=recipe.data.subimages)
    # 100 x 130 with 48-px squares every 40 px, plus a border-aligned last one: rows 0, 40, 52 and
    # columns 0, 40, 80, 82 -> 3 x 4 squares per image.
    assert len(files) == 2 * 12
    folder = files[0].parent
    assert folder.is_relative_to(tmp_path / "cache" / "subimages")
    assert folder.name == "c48-s40-t0"
    assert folder.parent.name.startswith("Big-")  # named by the set, not by its HR folder
    assert {Image.open(f).size for f in files} == {(48, 48)}
    recorded = json.loads((folder / MANIFEST_NAME).read_text())
    assert (recorded["crop_size"], recorded["step"], recorded["thresh_size"]) == (48, 40, 0)

    train(recipe, run_options(tmp_path / "run", tiny_root))  # the run takes the same squares
    first = {f: f.stat().st_mtime_ns for f in files}
    with caplog.at_level(logging.INFO, logger="superres"):
        again = prepared_subimages(big, crop_size=48, step=40)
    assert again == folder
    assert "(0 cut now)" in caplog.text
    assert {f: f.stat().st_mtime_ns for f in files} == first

    # Other parameters: a folder of their own, the first one kept.
    other = prepared_subimages(big, crop_size=64, step=64)
    assert other.name == "c64-s64-t0"
    assert other.parent == folder.parent
    assert len(list(folder.glob("*.png"))) == 24

    # A source that changed: its squares are cut again, not kept stale.
    pixels = np.zeros((100, 130, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(big / "big0.png")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="superres"):
        prepared_subimages(big, crop_size=48, step=40)
    assert "(24 cut now)" in caplog.text or "(12 cut now)" in caplog.text
    assert np.asarray(Image.open(folder / "big0_s001.png")).max() == 0


def test_catalog_sets_take_sub_images_too(
    tiny_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPERRES_CACHE", str(tmp_path / "cache"))
    recipe = recipe_from_dict(_recipe(["t91"], crop_size=32, step=32))
    files = resolve_train_files(recipe.data.train_roots, tiny_root, subimages=recipe.data.subimages)
    # T91 here: 6 images of 52 x 60 -> rows 0, 20 and columns 0, 28: 4 squares each.
    assert len(files) == 6 * 4
    assert files[0].parent.parent.name.startswith("T91-")


@pytest.mark.parametrize(
    ("subimages", "extra", "message"),
    [
        ({"crop_size": 16}, {}, "at least data.gt_size"),
        ({"step": 0}, {}, "step 0 at least 1"),
        ({"thresh_size": -1}, {}, "thresh_size at least 0"),
        ({}, {"holdout_fraction": 0.2}, "hold out squares"),
    ],
)
def test_senseless_sub_image_settings_are_refused(
    subimages: dict[str, int], extra: dict[str, float], message: str
) -> None:
    data = _recipe(["t91"], **subimages)
    data["data"].update(extra)
    with pytest.raises(ConfigError, match=message):
        recipe_from_dict(data)
