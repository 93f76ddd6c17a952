"""Fuzzing the weights loader: random metadata and tensor shapes load or raise a SuperresError.

Hypothesis draws our format's metadata (architectures, constructor arguments of any JSON type,
broken JSON) over real and random tensors, and third-party state dicts (the key names of every
layout :mod:`superres.models.convert` knows, random shapes and dtypes). :func:`load_weights`
must return a model or raise :class:`~superres.errors.SuperresError`, never anything else, and
a refusal must be one line. The default run is bounded (well under 20 s); ``-m slow`` runs more.
With ``SUPERRES_WRITE_RELIABILITY=1`` the counts become the "Fuzzing: weights loader" section of
docs/reliability.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import tiny_model
from reliability import enabled, table, write_section
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


#: The inputs, one row of the section each.
KINDS = {
    "metadata": "our format: drawn architecture and constructor arguments (any JSON)",
    "metadata text": "our format: random text as one metadata value",
    "state dict": "a third-party .pth: layout key names, drawn shapes and dtypes",
}


@pytest.fixture(scope="module")
def tried() -> Iterator[Counter[str]]:
    """``"<kind> <ending>"`` -> files; the docs/reliability.md section when asked for."""
    counts: Counter[str] = Counter()
    yield counts
    missing = [kind for kind in KINDS if not counts[f"{kind} tried"]]  # a -k selection
    if not missing and enabled():
        write_section("Fuzzing: weights loader", _section(counts))


def _section(counts: Counter[str]) -> str:
    header = ("input", "tried", "loaded a model", "refused (SuperresError)", "other (a bug)")
    rows = [
        (text, *(str(counts[f"{kind} {end}"]) for end in ("tried", "loaded", "refused", "other")))
        for kind, text in KINDS.items()
    ]
    total = sum(counts[f"{kind} tried"] for kind in KINDS)
    intro = (
        f"`tests/test_fuzz_weights.py` (Hypothesis) handed `superres.models.load_weights` {total} "
        "generated weights files in this run. Each must give a model or a `SuperresError` of one "
        "line naming the file; any other exception fails the test (and is counted as other)."
    )
    return f"{intro}\n\n{table(header, rows)}"


def _loads_or_refuses(path: Path, kind: str, tried: Counter[str], scale: int | None = None) -> None:
    tried[f"{kind} tried"] += 1
    try:
        model = load_weights(path, scale=scale)
    except SuperresError as exc:
        tried[f"{kind} refused"] += 1
        message = str(exc)
    except BaseException:
        tried[f"{kind} other"] += 1
        raise
    else:
        tried[f"{kind} loaded"] += 1
        assert isinstance(model, nn.Module)
        return
    assert "\n" not in message
    assert str(path) in message


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
    tried: Counter[str],
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
    _loads_or_refuses(path, "metadata", tried)


_STATE = {"state": _STATES, "scale": st.none() | st.sampled_from([2, 3, 4])}


def _state_loads_or_refuses(
    tmp_path: Path, state: dict[str, torch.Tensor], scale: int | None, tried: Counter[str]
) -> None:
    """A third-party state dict: layout keys with drawn shapes and dtypes."""
    path = tmp_path / "state.pth"
    torch.save(state, path)
    _loads_or_refuses(path, "state dict", tried, scale)


test_random_metadata_loads_or_refuses = _QUICK(given(**_METADATA)(_metadata_loads_or_refuses))
test_random_state_dicts_load_or_refuse = _QUICK(given(**_STATE)(_state_loads_or_refuses))
test_random_metadata_long = pytest.mark.slow(_LONG(given(**_METADATA)(_metadata_loads_or_refuses)))
test_random_state_dicts_long = pytest.mark.slow(_LONG(given(**_STATE)(_state_loads_or_refuses)))


@_QUICK
@given(key=st.sampled_from(["kwargs", "architecture", "scale", "format"]), text=st.text())
def test_random_metadata_text_loads_or_refuses(
    base: tuple[dict[str, torch.Tensor], dict],
    tmp_path: Path,
    key: str,
    text: str,
    tried: Counter[str],
) -> None:
    tensors, metadata = base
    path = _own_file(tmp_path / "text.safetensors", tensors, metadata, **{key: text})
    _loads_or_refuses(path, "metadata text", tried)
