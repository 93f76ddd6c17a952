"""The model registry and the dataset catalog: lookup, suggestions, scale checks."""

from __future__ import annotations

import pytest
import torch

from superres.data.catalog import get_dataset_info, list_datasets
from superres.errors import UnknownDatasetError, UnknownModelError, UnsupportedScaleError
from superres.models import InvalidModelArgumentError, create_model, list_models
from superres.registry import Registry


def test_registry_suggests_close_names() -> None:
    reg: Registry[int] = Registry("thing", UnknownModelError)
    reg.add("srresnet", 1)
    reg.add("srcnn", 2)
    assert reg.get("SRResNet") == 1  # case-insensitive
    with pytest.raises(UnknownModelError, match=r"Did you mean 'srresnet'") as info:
        reg.get("srresnt")
    assert "Known models: srcnn, srresnet" in str(info.value)
    assert reg.names("sr*") == ["srresnet", "srcnn"]
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("SRCNN", 3)


def test_unknown_model_message_names_the_fix() -> None:
    with pytest.raises(UnknownModelError, match=r"unknown model 'bicubc'.*Did you mean 'bicubic'"):
        create_model("bicubc")


def test_bicubic_model_shapes_and_scales() -> None:
    assert "bicubic" in list_models()
    for scale in (2, 3, 4, 8):
        model = create_model("bicubic", scale=scale)
        out = model(torch.rand(2, 3, 7, 5))
        assert out.shape == (2, 3, 7 * scale, 5 * scale)
    with pytest.raises(UnsupportedScaleError, match="scale 0"):
        create_model("bicubic", scale=0)
    with pytest.raises(InvalidModelArgumentError, match="valid arguments: scale, in_channels"):
        create_model("bicubic", scale=4, num_block=3)


def test_dataset_catalog() -> None:
    assert {"set5", "set14", "bsd100", "urban100"} <= set(list_datasets("test"))
    assert get_dataset_info("Set14").folder == "Set14"
    with pytest.raises(UnknownDatasetError, match=r"Did you mean 'set14'"):
        get_dataset_info("set41")
