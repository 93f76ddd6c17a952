"""docs/reliability.md: sections that test modules regenerate from what their tests observed.

A module collects its rows while it runs and, at the end, calls :func:`write_section` with its
``## Title`` and body. Nothing is written unless ``SUPERRES_WRITE_RELIABILITY=1`` (normal runs leave
the tree clean); other sections of the file are kept as they are, in their order, so each module
owns its own sections. Regenerate with, e.g.::

    SUPERRES_WRITE_RELIABILITY=1 .venv/bin/python -m pytest tests/test_hostile_images.py -q
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
ENV = "SUPERRES_WRITE_RELIABILITY"

_PREAMBLE = """# Reliability

What superres does with hostile inputs, as observed by the test suite. Each section is written by
the test module it names when the suite runs with `SUPERRES_WRITE_RELIABILITY=1` (see
`tests/reliability.py`); edit the tests, not this file.
"""


def enabled() -> bool:
    """True when this run should rewrite the report's sections."""
    return os.environ.get(ENV) == "1"


def write_section(title: str, body: str, *, path: Path = REPORT) -> None:
    """Replace the ``## title`` section of ``path`` with ``body`` (or append it), keeping the
    preamble and every other section as they are."""
    text = path.read_text(encoding="utf-8") if path.exists() else _PREAMBLE
    parts = re.split(r"(?m)^(?=## )", text)
    head, sections = parts[0], parts[1:]
    new = f"## {title}\n\n{body.strip()}\n\n"
    for i, section in enumerate(sections):
        if section.splitlines()[0].strip() == f"## {title}":
            sections[i] = new
            break
    else:
        sections.append(new)
    blocks = [block.strip("\n") + "\n" for block in (head, *sections)]
    path.write_text("\n".join(blocks), encoding="utf-8")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; ``|`` and line breaks inside cells are escaped."""

    def cell(value: str) -> str:
        return " ".join(value.split()).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
