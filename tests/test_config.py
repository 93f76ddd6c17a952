"""Recipes: loading builds new frozen values and changes nothing it was given."""

from __future__ import annotations

from pathlib import Path

import yaml

from superres.training.config import LossConfig, ModelConfig, recipe_from_dict

REPO = Path(__file__).resolve().parents[1]


def test_typing_builder_keywords_builds_new_sections_and_mutates_none() -> None:
    data = yaml.safe_load((REPO / "configs" / "srresnet_x4.yaml").read_text())
    model = ModelConfig(name=data["model"]["name"], kwargs={"num_blocks": 2})
    # `1e-2` without a dot is a string to YAML 1.1; the loaded recipe holds the number.
    term = LossConfig(name="l1", kwargs={"loss_weight": "1e-2"})
    data["model"] = model
    data["train"]["losses"] = [term]
    recipe = recipe_from_dict(data)
    assert recipe.train.losses[0].kwargs == {"loss_weight": 0.01}
    assert recipe.model.kwargs == {"num_blocks": 2}
    # The sections given are left exactly as they were: the typed values are new ones.
    assert term.kwargs == {"loss_weight": "1e-2"}
    assert recipe.train.losses[0] is not term
    assert recipe.model.kwargs is not model.kwargs
    assert recipe_from_dict(recipe.to_dict()) == recipe


def test_a_partial_builder_types_its_keywords_as_the_class_it_builds() -> None:
    # edsr-baseline is functools.partial(EDSR, ...): its annotations are EDSR's.
    data = yaml.safe_load((REPO / "configs" / "edsr_baseline_x4.yaml").read_text())
    data["model"] = {"name": "edsr-baseline", "res_scale": "1e-1"}
    assert recipe_from_dict(data).model.kwargs["res_scale"] == 0.1
