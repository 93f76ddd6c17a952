"""Fuzzing the recipe loader: any file and ``--set`` overrides give a recipe or a ConfigError.

:func:`~superres.training.config.load_recipe` (what ``superres train CONFIG --set KEY=VALUE``
calls) on any bytes, with any overrides, must either return a frozen :class:`Recipe` that survives
the round trip through the YAML a checkpoint stores, or raise
:class:`~superres.errors.ConfigError` with a one-line message of bounded length: never another
exception, whatever YAML or the checks underneath raise. Inputs: random text and bytes; every
shipped ``configs/**/*.yaml`` with keys dropped, values of other types, huge, negative and
non-finite numbers, unknown keys and deep nesting; the shipped files' text damaged line by line;
anchors and aliases that expand exponentially ("billion laughs") or refer to themselves; non-UTF-8
bytes; random dotted overrides. The default run is bounded and deterministic (a few hundred
inputs, seconds); ``-m slow`` runs many more. With ``SUPERRES_WRITE_RELIABILITY=1`` the counts
become the "Fuzzing: recipe loader" section of docs/reliability.md.
"""

from __future__ import annotations

import copy
import dataclasses
import tempfile
import tracemalloc
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability import enabled, table, write_section
from superres.errors import ConfigError
from superres.training.config import Recipe, load_recipe, recipe_from_dict

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    str(p.relative_to(REPO / "configs")): p.read_text(encoding="utf-8")
    for p in sorted((REPO / "configs").rglob("*.yaml"))
    if "experiments" not in p.relative_to(REPO).parts  # experiment plans, not recipes
}
PARSED = {name: yaml.safe_load(text) for name, text in SHIPPED.items()}
NAMES = tuple(SHIPPED)

DEFAULT_EXAMPLES = 40
SLOW_EXAMPLES = 1500
#: A refusal is one line a person reads: it quotes what it got, not all of it.
MAX_MESSAGE = 2000

# --- values and mutations -----------------------------------------------------------------------

_EXTREMES: list[Any] = [
    0,
    -1,
    -(2**63),
    2**63,
    10**30,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    5e-324,
    True,
    None,
    "",
    "1e-4",
    [],
    {},
]
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
    | st.sampled_from(_EXTREMES)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
#: Every key of every shipped recipe (at any depth), so unknown keys are often near-misses.
_KEYS = sorted(
    {str(k) for data in PARSED.values() for k in yaml.safe_dump(data).split() if k.endswith(":")}
)
_KEY_NAMES = st.sampled_from([k.rstrip(":") for k in _KEYS]) | st.text(max_size=10)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path of keys and indices into ``node``'s mappings and lists, ``()`` included."""
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            paths += _paths(value, (*prefix, i))
    return paths


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _nested(value: Any, depth: int, as_list: bool) -> Any:
    for _ in range(depth):
        value = [value] if as_list else {"x": value}
    return value


_MUTATIONS = ("drop", "retype", "retype", "extreme", "extreme", "unknown key", "nest")


@st.composite
def mutated_recipe(draw: st.DrawFn) -> bytes:
    """A shipped recipe with a few keys dropped, added, retyped, made extreme or nested."""
    data = copy.deepcopy(PARSED[draw(st.sampled_from(NAMES))])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        kind = draw(st.sampled_from(_MUTATIONS))
        node = _at(data, path)
        if kind == "unknown key" and isinstance(node, dict):
            node[draw(_KEY_NAMES)] = draw(_VALUES)
            continue
        if not path:
            continue
        parent, key = _at(data, path[:-1]), path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "retype":
            parent[key] = draw(_VALUES)
        elif kind == "extreme":
            parent[key] = draw(st.sampled_from(_EXTREMES))
        else:
            parent[key] = _nested(node, draw(st.integers(1, 200)), draw(st.booleans()))
    return yaml.safe_dump(data, default_flow_style=draw(st.booleans())).encode()


#: What a line's value may become in the text: huge, non-finite, odd YAML types.
_TEXT_VALUES = [
    "9" * 5000,
    "-" + "9" * 400,
    "1" + "0" * 400 + ".5",
    ".nan",
    "-.inf",
    "1e999",
    "0x1F",
    "0o17",
    "2001-13-45",
    "2001-02-03",
    "!!binary 'AAAA'",
    "!!binary '#'",
    "!!python/object:os.system",
    "!!set {a, b}",
    "~",
    "'unterminated",
    "[1, 2",
    "{a: 1",
    "*undefined",
    "&anchor 3",
    "|\n  text",
    "? complex\n: key",
]


@st.composite
def mutated_text(draw: st.DrawFn) -> bytes:
    """A shipped recipe's text with lines dropped, doubled, re-indented or given odd values."""
    lines = SHIPPED[draw(st.sampled_from(NAMES))].splitlines()
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(("drop", "double", "indent", "value", "value", "insert")))
        if kind == "drop":
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "indent":
            lines[at] = " " * draw(st.integers(0, 7)) + lines[at].lstrip()
        elif kind == "value" and ":" in lines[at]:
            head = lines[at].split(":", 1)[0]
            lines[at] = f"{head}: {draw(st.sampled_from(_TEXT_VALUES))}"
        else:
            lines.insert(at, draw(st.text(max_size=30)))
        if not lines:
            lines = [""]
    return "\n".join(lines).encode("utf-8", "surrogatepass")


@st.composite
def aliased(draw: st.DrawFn) -> bytes:
    """A shipped recipe with one value made of anchors and aliases: a "billion laughs" list that
    expands to ``width ** depth`` leaves, shared mappings, or a list that contains itself."""
    data = copy.deepcopy(PARSED[draw(st.sampled_from(NAMES))])
    shape = draw(st.sampled_from(("laughs", "laughs", "shared mappings", "self")))
    if shape == "laughs":
        width, depth = draw(st.integers(2, 10)), draw(st.integers(2, 6))
        value: Any = [draw(st.sampled_from(["lol", 8, 1.5, {"name": "l1"}]))] * width
        for _ in range(depth - 1):
            value = [value] * width
    elif shape == "shared mappings":
        term = {"name": draw(st.sampled_from(["l1", "mse", "srresnet", "lol"]))}
        value = [term] * draw(st.integers(2, 50))
    else:
        value = []
        value.append(value)
    paths = [p for p in _paths(data) if p]
    path = draw(st.sampled_from(paths))
    _at(data, path[:-1])[path[-1]] = value
    text = yaml.safe_dump(data)
    assert "*id" in text or shape == "self"
    return text.encode()


@st.composite
def non_utf8(draw: st.DrawFn) -> bytes:
    """A shipped recipe's bytes with invalid UTF-8 inserted, or in another encoding."""
    text = SHIPPED[draw(st.sampled_from(NAMES))]
    kind = draw(st.sampled_from(("insert", "utf-16", "latin-1 text")))
    if kind == "utf-16":
        return text.encode("utf-16")
    if kind == "latin-1 text":
        return (text + "\n# Müller, café\n").encode("latin-1")
    data = bytearray(text.encode())
    at = draw(st.integers(0, len(data)))
    data[at:at] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xfe"]))
    return bytes(data)


@st.composite
def deeply_nested(draw: st.DrawFn, *, deep: bool) -> bytes:
    """Flow or block YAML nested hundreds of levels deep, or (``deep``) up to 30000.

    PyYAML's scanner takes time quadratic in the depth of flow collections until its parser runs
    out of stack (seconds at a thousand levels), so only the long run draws those depths; the
    default run meets them once each in :func:`test_yaml_nested_past_the_parsers_stack`.
    """
    depths = st.integers(1, 200)
    depth = draw(depths | st.sampled_from([1000, 5000, 30000]) if deep else depths)
    style = draw(st.sampled_from(("flow list", "flow mapping", "block")))
    if style == "flow list":
        return ("model: " + "[" * depth + "]" * depth).encode()
    if style == "flow mapping":
        return ("model: " + "{a: " * depth + "1" + "}" * depth).encode()
    depth = min(depth, 3000)
    return "".join(" " * i + "a:\n" for i in range(depth)).encode()


def _dotted(data: Any) -> list[str]:
    return [".".join(map(str, p)) for p in _paths(data) if p]


@st.composite
def overrides(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A shipped recipe and ``--set`` items: its own keys (or made-up ones) = random YAML."""
    name = draw(st.sampled_from(NAMES))
    keys = st.sampled_from(_dotted(PARSED[name])) | st.text(max_size=12)
    values = (
        _VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())
        | st.sampled_from([v for v in _TEXT_VALUES if "\n" not in v])
        | st.text(max_size=12)
    )
    items = st.tuples(keys, st.sampled_from(["=", "=", ":", ""]), values).map("".join)
    return name, draw(st.lists(items, min_size=1, max_size=4))


INPUTS = {
    "random text": st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")),
    "random bytes": st.binary(max_size=400),
    "shipped recipe, keys dropped, retyped, extreme, unknown, nested": mutated_recipe(),
    "shipped recipe text, lines damaged": mutated_text(),
    "anchors and aliases (billion laughs, self-reference)": aliased(),
    "non-UTF-8 bytes": non_utf8(),
    "deep nesting": deeply_nested(deep=False),
    "--set overrides on a shipped recipe": overrides(),
}

#: The long run also draws depths past the YAML parser's stack.
SLOW_INPUTS = {**INPUTS, "deep nesting": deeply_nested(deep=True)}

# --- the property -------------------------------------------------------------------------------


#: How one input can end: the columns of the section after "tried".
ENDINGS = ("recipe", "ConfigError", "other")


@pytest.fixture(scope="module")
def tried() -> Iterator[Counter[str]]:
    """``"<kind>: <ending>"`` -> how many inputs; the section of docs/reliability.md on request."""
    counts: Counter[str] = Counter()
    yield counts
    every_kind_ran = all(counts[f"{kind}: tried"] > 0 for kind in INPUTS)
    if every_kind_ran and enabled():
        write_section("Fuzzing: recipe loader", _section(counts))


def _section(counts: Counter[str]) -> str:
    rows = [
        (kind, *(str(counts[f"{kind}: {ending}"]) for ending in ("tried", *ENDINGS)))
        for kind in INPUTS
    ]
    total = sum(counts[f"{kind}: tried"] for kind in INPUTS)
    intro = (
        f"`tests/test_fuzz_recipes.py` (Hypothesis) handed "
        f"`superres.training.config.load_recipe` (what `superres train CONFIG --set KEY=VALUE` "
        f"calls) {total} generated recipe files and overrides in this run. Each must give a "
        "frozen recipe that survives the YAML round trip of a checkpoint, or a `ConfigError` "
        f"with one line of at most {MAX_MESSAGE} characters; any other exception fails the test "
        "(and is counted as other)."
    )
    header = ("input", "tried", "recipe", "ConfigError", "other (a bug)")
    return f"{intro}\n\n{table(header, rows)}"


def check_one(path: Path, items: Sequence[str], kind: str, tried: Counter[str]) -> None:
    """``load_recipe(path, items)`` gives a frozen recipe or a one-line ConfigError."""
    tried[f"{kind}: tried"] += 1
    try:
        recipe = load_recipe(path, items)
    except ConfigError as exc:
        tried[f"{kind}: ConfigError"] += 1
        message = str(exc)
        assert "\n" not in message, message
        assert 0 < len(message) <= MAX_MESSAGE, message[:300]
        return
    except BaseException:
        tried[f"{kind}: other"] += 1
        raise
    tried[f"{kind}: recipe"] += 1
    assert isinstance(recipe, Recipe)
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.name = "changed"  # type: ignore[misc]
    # What a checkpoint stores and a resumed run reads back.
    assert recipe_from_dict(yaml.safe_load(recipe.to_yaml())) == recipe


#: Every run: no deadline (a deep input takes a while), no example database in the tree.
_EVERY_RUN = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _fuzz(kind: str, examples: int, tried: Counter[str]) -> None:
    default = examples == DEFAULT_EXAMPLES
    strategy = (INPUTS if default else SLOW_INPUTS)[kind]
    # The default run draws the same inputs every time.
    chosen = settings(_EVERY_RUN, max_examples=examples, derandomize=default)

    with tempfile.TemporaryDirectory() as folder:

        @chosen
        @given(data=strategy)
        def run(data: bytes | tuple[str, list[str]]) -> None:
            if isinstance(data, tuple):  # --set items on a shipped recipe
                check_one(REPO / "configs" / data[0], data[1], kind, tried)
            else:
                path = Path(folder) / "recipe.yaml"
                path.write_bytes(data)
                check_one(path, (), kind, tried)

        run()


RUNS = [DEFAULT_EXAMPLES, pytest.param(SLOW_EXAMPLES, marks=pytest.mark.slow)]


@pytest.mark.parametrize("examples", RUNS, ids=["default", "long"])
@pytest.mark.parametrize("kind", INPUTS)
def test_loader_gives_a_recipe_or_its_error(kind: str, examples: int, tried: Counter[str]) -> None:
    _fuzz(kind, examples, tried)


@pytest.mark.parametrize(
    "text",
    [
        "model: " + "{a: " * 30000 + "1" + "}" * 30000,
        "model: " + "[" * 600 + "]" * 600,
        "".join(" " * i + "a:\n" for i in range(3000)),
    ],
    ids=["flow-mapping-30000", "flow-list-600", "block-3000"],
)
def test_yaml_nested_past_the_parsers_stack(tmp_path: Path, text: str, tried: Counter[str]) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    tried["deep nesting: tried"] += 1
    with pytest.raises(ConfigError, match="nested too deeply") as caught:
        load_recipe(path)
    tried["deep nesting: ConfigError"] += 1
    assert "\n" not in str(caught.value)


def _laughs(depth: int, width: int = 10) -> str:
    """YAML flow text of ``width ** depth`` leaves in ``depth`` anchors, each aliased."""
    text = "&l0 [" + ", ".join(["lol"] * width) + "]"
    for i in range(1, depth):
        text = f"&l{i} [{text}, " + ", ".join([f"*l{i - 1}"] * (width - 1)) + "]"
    return text


@pytest.mark.parametrize(
    ("where", "items", "expected"),
    [
        ("model", (), "model: expected a mapping"),
        ("lol", (), "unknown key 'lol'"),
        (None, ("data.train_roots=" + _laughs(9),), r"data\.train_roots\[0\]: expected a str"),
        (None, ("train.losses=[{name: mix, sigmas: " + _laughs(9) + "}]",), r"sigmas\[0\]"),
    ],
    ids=["as-the-model", "as-an-unknown-key", "as-train-roots", "as-a-loss-keyword"],
)
def test_a_billion_laughs_is_refused_in_little_memory(
    tmp_path: Path, where: str | None, items: tuple[str, ...], expected: str
) -> None:
    """10**9 leaves in 2 kB of YAML: quoted in the refusal, never expanded (the loss keyword
    was once kept unchecked, to expand when the recipe was written to a checkpoint)."""
    path = tmp_path / "laughs.yaml"
    recipe = SHIPPED["srresnet_x4.yaml"]
    path.write_text(recipe + (f"\n{where}: {_laughs(9)}\n" if where else ""))
    if where == "model":
        path.write_text(f"name: laughs\nscale: 4\nmodel: {_laughs(9)}\n")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=expected) as caught:
            load_recipe(path, items)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message
    assert len(message) <= MAX_MESSAGE
    assert peak < 20 * 2**20, peak
