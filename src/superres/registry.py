"""A small explicit name -> entry registry.

Entries are added in exactly one place per kind (``superres.models`` lists every architecture in one
table), never by scanning file names, so a broken module cannot silently drop out of the list
and an import error names the file that broke. Unknown names raise the error class the owner
passes in, with close matches suggested.

This module imports nothing of ours.
"""

from __future__ import annotations

import fnmatch
import functools
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def builder_target(builder: Any) -> Any:
    """The class or function a registered builder calls: ``functools.partial``s unwrapped
    (``edsr_baseline`` is ``EDSR`` with other defaults), so its family and annotations are read
    from the real constructor."""
    while isinstance(builder, functools.partial):
        builder = builder.func
    return builder


def builder_hints(builder: Any) -> dict[str, Any]:
    """A builder's keyword annotations, resolved (a class's from its ``__init__``, a partial's
    from what it calls); ``{}`` where they cannot be (a name imported for type checkers only:
    the constructor checks that keyword itself)."""
    target = builder_target(builder)
    try:
        return typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    except Exception:
        return {}


class Registry(Generic[T]):
    """An ordered mapping from lower-case names to entries of type ``T``.

    Args:
        kind: what the names denote ("model", "dataset"), used in messages.
        unknown_error: called as ``unknown_error(name, known_names)`` to build the exception raised
            for a name that is not registered.
    """

    def __init__(self, kind: str, unknown_error: Callable[[str, Iterable[str]], Exception]) -> None:
        self.kind = kind
        self._unknown_error = unknown_error
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        """Register ``entry`` under ``name``; a name can be registered once."""
        key = name.lower()
        if key in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[key] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry for ``name`` (case-insensitive); unknown names raise with suggestions."""
        try:
            return self._entries[name.lower()]
        except KeyError:
            raise self._unknown_error(name, self._entries) from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names in registration order, optionally filtered by a glob (``"sr*"``)."""
        if pattern is None:
            return list(self._entries)
        return [n for n in self._entries if fnmatch.fnmatch(n, pattern.lower())]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
