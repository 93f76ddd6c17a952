"""Recipe text -> plain data: reading the file, parsing YAML, ``--set`` overrides, quoting values.

Whatever a recipe file or an override holds (bytes that are not UTF-8, YAML nested thousands of
levels deep, integers of thousands of digits, impossible dates, anchors that expand to a billion
leaves), what comes out is plain data or a :class:`~superres.errors.ConfigError` with one line
that names the file and the problem. :func:`brief` quotes a value in an error message in bounded
length, so a value that aliases itself a billion times is quoted, not expanded.
"""

from __future__ import annotations

import copy
import reprlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from superres.errors import ConfigError

_BRIEF = reprlib.Repr()
_BRIEF.maxlevel = 3
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = _BRIEF.maxset = 6
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlong = 40


def brief(value: object) -> str:
    """``repr(value)``, shortened with ``...`` past a few items, levels and characters."""
    return _BRIEF.repr(value)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (PyYAML's own text spans lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        context = f" ({exc.context})" if exc.context else ""
        return " ".join(f"{where}{exc.problem}{context}".split())
    return " ".join(str(exc).split())


def parse_yaml(text: str, *, what: str) -> Any:
    """``yaml.safe_load(text)``; any failure is a one-line ConfigError about ``what``.

    Raises:
        ConfigError: not YAML, nested too deeply for the parser, or a value YAML cannot build
            (an integer of more digits than Python converts, a date that does not exist).
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what}: not valid YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(
            f"{what}: nested too deeply for the YAML parser; a recipe needs a few levels"
        ) from None
    except ValueError as exc:  # int('9' * 5000), a timestamp such as 2001-13-45
        reason = " ".join(str(exc).split())
        if "integer string conversion" in reason:
            reason = "an integer of more digits than Python reads (4300)"
        raise ConfigError(f"{what}: a value YAML cannot read: {reason}") from None


def read_recipe_text(path: Path) -> str:
    """The UTF-8 text of the recipe file at ``path``.

    Raises:
        ConfigError: missing, unreadable, or not UTF-8.
    """
    if not path.is_file():
        raise ConfigError(
            f"recipe {str(path)!r} does not exist; pass a YAML file such as "
            "configs/srresnet_x4.yaml"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the recipe: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {data[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}: {exc.reason}); save the recipe as UTF-8"
        ) from None


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["train.total_iters=10", "data.train_roots=[T91]"]`` applied to a copy of ``data``.

    Values are parsed as YAML. A path into a section that is not a mapping is an error; unknown
    keys are caught later by :func:`~superres.training.config.recipe_from_dict`.
    """
    result = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects section.key=value, got {brief(item)}")
        value = parse_yaml(text, what=f"--set {brief(item)}") if text.strip() else None
        parts = key.strip().split(".")
        node: Any = result
        for part in parts[:-1]:
            child = node.get(part) if isinstance(node, dict) else None
            if child is None:
                child = {}
                node[part] = child
            if not isinstance(child, dict):
                raise ConfigError(f"--set {brief(item)}: {brief(part)} is not a section")
            node = child
        node[parts[-1]] = value
    return result
