"""Fuzzing the weights loader: random metadata and tensor shapes load or raise a SuperresError.

Hypothesis draws our format's metadata (architectures, constructor arguments of any JSON type,
broken JSON) over real and random tensors, and third-party state dicts (the key names of every
layout :mod:`superres.models.convert` knows, random shapes and dtypes). :func:`load_weights`
must return a model or raise :class:`~superres.errors.SuperresError`, never anything else, and
a refusal must be one line. The default run is bounded (well under 20 s); ``-m slow`` runs more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import tiny_model
from superres.errors import SuperresError
from superres.models import list_models
from superres.models.limits import LIMITS
from superres.models.weights_file import load_weights, read_metadata, save_weights

_QUICK = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_LONG = settings(_QUICK, max_examples=1500, derandomize=False)

_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.sampled_from([0, 1, 2, 3, 4, 8, 64, 4096, -1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)
_ARGUMENTS = sorted({name for limits in LIMITS.values() for name in limits})
_KWARGS = st.dictionaries(st.sampled_from(_ARGUMENTS) | st.text(max_size=8), _JSON, max_size=6)
_ARCHITECTURES = st.sampled_from(list_models()) | st.text(max_size=12)
_FLOATS = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
_DTYPES = st.sampled_from([*_FLOATS, torch.int8, torch.uint8, torch.bool, torch.int64])
_SHAPES = st.lists(st.integers(min_value=0, max_value=5), max_size=4).map(tuple)

#: Key names of every layout convert.py recognises, plus a few nobody uses.
_KEYS = [
    *(f"conv_first.{p}" for p in ("weight", "bias")),
    "prelu_first.weight",
    "conv_last.weight",
    "conv_body.weight",
    "conv_up1.weight",
    "conv_up2.weight",
    "conv_hr.weight",
    "upsample.0.weight",
    "body.0.conv1.weight",
    "body.0.bn1.weight",
    "body.0.bn1.num_batches_tracked",
    "body.0.rdb1.conv1.weight",
    "body.0.body.0.weight",
    "head.0.weight",
    "tail.0.0.weight",
    "tail.1.weight",
    "sub_mean.weight",
    "sub_mean.bias",
    "model.0.weight",
    "model.1.sub.0.RDB1.conv1.0.weight",
    "model.3.weight",
    "RRDB_trunk.0.RDB1.conv1.weight",
    "trunk_conv.weight",
    "conv_after_body.weight",
    "upconv1.weight",
    "block1.0.weight",
    "block1.1.weight",
    "block2.conv1.weight",
    "conv1.weight",
    "conv2.weight",
    "conv3.weight",
    "conv1.bias",
    "conv2.bias",
    "conv3.bias",
    "module.x",
]


def _tensor(dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.ones(shape).to(dtype)


_STATES = st.dictionaries(
    st.sampled_from(_KEYS), st.builds(_tensor, _DTYPES, _SHAPES), min_size=1, max_size=10
)


def _outcome(path: Path, scale: int | None) -> nn.Module | str:
    """The loaded model, or the message of the SuperresError refusing the file."""
    try:
        return load_weights(path, scale=scale)
    except SuperresError as exc:
        return str(exc)


def _loads_or_refuses(path: Path, scale: int | None = None) -> None:
    outcome = _outcome(path, scale)
    if isinstance(outcome, str):
        assert "\n" not in outcome
        assert str(path) in outcome
    else:
        assert isinstance(outcome, nn.Module)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors and metadata of a valid tiny SRResNet x2 in our format."""
    from safetensors.torch import load_file

    path = save_weights(
        tiny_model("srresnet", scale=2), tmp_path_factory.mktemp("fuzz") / "base.safetensors"
    )
    return load_file(str(path)), read_metadata(path)


def _own_file(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], **changes: Any
) -> Path:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={**metadata, **changes})
    return path


_METADATA = {"architecture": _ARCHITECTURES, "kwargs": _KWARGS, "real_tensors": st.booleans()}


def _metadata_loads_or_refuses(
    base: tuple[dict[str, torch.Tensor], dict],
    tmp_path: Path,
    architecture: str,
    kwargs: dict[str, Any],
    real_tensors: bool,
) -> None:
    """Our format with a drawn architecture and arguments, over real tensors or almost none."""
    tensors, metadata = base
    if not real_tensors:
        tensors = {"conv_first.weight": torch.zeros(2, 3)}
    # On top of the base model's own arguments, so that some files are valid and load.
    text = json.dumps({**json.loads(metadata["kwargs"]), **kwargs})  # NaN, Infinity allowed
    path = _own_file(
        tmp_path / "own.safetensors", tensors, metadata, architecture=architecture, kwargs=text
    )
    _loads_or_refuses(path)


_STATE = {"state": _STATES, "scale": st.none() | st.sampled_from([2, 3, 4])}


def _state_loads_or_refuses(
    tmp_path: Path, state: dict[str, torch.Tensor], scale: int | None
) -> None:
    """A third-party state dict: layout keys with drawn shapes and dtypes."""
    path = tmp_path / "state.pth"
    torch.save(state, path)
    _loads_or_refuses(path, scale)


test_random_metadata_loads_or_refuses = _QUICK(given(**_METADATA)(_metadata_loads_or_refuses))
test_random_state_dicts_load_or_refuse = _QUICK(given(**_STATE)(_state_loads_or_refuses))
test_random_metadata_long = pytest.mark.slow(_LONG(given(**_METADATA)(_metadata_loads_or_refuses)))
test_random_state_dicts_long = pytest.mark.slow(_LONG(given(**_STATE)(_state_loads_or_refuses)))


@_QUICK
@given(key=st.sampled_from(["kwargs", "architecture", "scale", "format"]), text=st.text())
def test_random_metadata_text_loads_or_refuses(
    base: tuple[dict[str, torch.Tensor], dict], tmp_path: Path, key: str, text: str
) -> None:
    tensors, metadata = base
    _loads_or_refuses(_own_file(tmp_path / "text.safetensors", tensors, metadata, **{key: text}))
