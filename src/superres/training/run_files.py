"""The files a training run writes as it goes: its text log, its CSV logs, atomic writes.

A write that fails (disk full, read-only, no permission) raises :class:`RunOutputError`, which
the trainer turns into the one-line message that names the last good training state. The CSV
format (columns that grow, rows flushed as written, trimmed on resume) is described in
:mod:`superres.training.logging`.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

import numpy as np

from superres.errors import SuperresError
from superres.io.files import atomic_write_bytes

__all__ = [
    "TEXT_LOG",
    "CsvLog",
    "RunOutputError",
    "TextLog",
    "format_row",
    "read_csv_log",
    "write_run_file",
]


#: The run folder's copy of everything the run logged (appended to on resume).
TEXT_LOG: Final = "train.log"


class TextLog(logging.Handler):
    """The run's text log: every ``superres`` record from its creation on, kept in memory until
    :meth:`open` names the run folder (which does not exist yet while a run starts), then
    appended to ``out_dir/train.log`` with its time; a resumed run appends to the same file.
    It holds the records the logging configuration lets through (``superres train``: INFO and
    above, also with ``-q``, which quiets only the terminal)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
        self._early: list[logging.LogRecord] | None = []
        self._file: io.TextIOWrapper | None = None
        logging.getLogger("superres").addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is not None:
            try:
                self._file.write(self.format(record) + "\n")
                self._file.flush()
            except OSError:  # disk full: the run goes on; its checkpoint write reports the disk
                with contextlib.suppress(OSError):
                    self._file.close()
                self._file = None
        elif self._early is not None:
            self._early.append(record)

    def open(self, out_dir: Path) -> Path:
        """From now on write to ``out_dir/train.log``, starting with the records kept so far."""
        path = out_dir / TEXT_LOG
        self._file = path.open("a", encoding="utf-8")
        for record in self._early or ():
            self.emit(record)
        self._early = None
        return path

    def close(self) -> None:
        logging.getLogger("superres").removeHandler(self)
        if self._file is not None:
            self._file.close()
            self._file = None
        self._early = None
        super().close()


class RunOutputError(SuperresError):
    """A log, plot or sample of the run could not be written (disk full, read-only, ...).

    ``error`` is the ``OSError``; the trainer turns it into the one-line message that names the
    last good training state.
    """

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")
        self.path = path
        self.error = error


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Raise a failed write of ``path`` as :class:`RunOutputError`."""
    try:
        yield
    except OSError as exc:
        raise RunOutputError(path, exc) from exc


def write_run_file(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path`` atomically, creating its folder (a run's ``plots/``)."""
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV log; an incomplete last line (killed mid-write) is dropped."""
    if not path.is_file():
        return [], []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
    return header, rows


def _row_step(row: Mapping[str, str]) -> int | None:
    try:
        return int(row.get("step", ""))
    except ValueError:
        return None


def _csv_bytes(header: Sequence[str], rows: Sequence[Mapping[str, str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(header), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def read_csv_log(path: Path) -> dict[str, np.ndarray]:
    """Columns of a CSV log as float64 arrays (empty or bad cells are NaN); ``{}`` if absent."""
    header, rows = _read_rows(Path(path))
    columns: dict[str, np.ndarray] = {}
    for key in header:
        values = np.full(len(rows), np.nan)
        for i, row in enumerate(rows):
            with contextlib.suppress(TypeError, ValueError):
                values[i] = float(row.get(key) or "nan")
        columns[key] = values
    return columns


class CsvLog:
    """An append-only CSV file whose header grows when new keys appear (see module docstring)."""

    def __init__(self, path: Path, fixed: Sequence[str], keep_until: int | None) -> None:
        self.path = path
        self.fixed = tuple(fixed)
        header, rows = _read_rows(path) if keep_until is not None else ([], [])
        if keep_until is not None:
            rows = [r for r in rows if (s := _row_step(r)) is not None and s <= keep_until]
        self.header: list[str] = header if header else []
        if self.header:
            write_run_file(path, _csv_bytes(self.header, rows))
        elif path.exists():
            path.unlink()
        self._handle: io.TextIOWrapper | None = None
        self._writer: csv.DictWriter[str] | None = None
        if self.header:
            self._open()

    def _open(self) -> None:
        with _writing(self.path):
            self._handle = self.path.open("a", encoding="utf-8", newline="")
        self._writer = csv.DictWriter(
            self._handle, fieldnames=self.header, restval="", lineterminator="\n"
        )

    def _close_handle(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # every row was flushed (or reported) as written
                self._handle.close()
        self._handle = None
        self._writer = None

    def write(self, row: Mapping[str, str]) -> None:
        new_keys = [k for k in row if k not in self.header]
        if not self.header:
            self.header = [*self.fixed, *(k for k in row if k not in self.fixed)]
            write_run_file(self.path, _csv_bytes(self.header, []))
            self._open()
        elif new_keys:
            self._close_handle()
            _, rows = _read_rows(self.path)
            self.header = [*self.header, *new_keys]
            write_run_file(self.path, _csv_bytes(self.header, rows))
            self._open()
        if self._writer is None or self._handle is None:  # pragma: no cover - opened above
            raise RuntimeError(f"{self.path} is not open")
        with _writing(self.path):
            self._writer.writerow(row)
            self._handle.flush()

    def close(self) -> None:
        self._close_handle()


def format_row(
    step: int, values: Mapping[str, float], reserved: Sequence[str], **fixed: float
) -> dict[str, str]:
    if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
        raise ValueError(f"step must be an integer >= 0 (the iteration number); got {step!r}.")
    row = {"step": str(int(step)), "time": f"{time.time():.3f}"}
    row.update({k: repr(float(v)) for k, v in fixed.items()})
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"log keys must be non-empty strings; got {key!r}.")
        if key in reserved:
            raise ValueError(
                f"log key {key!r} is reserved for the logger's own column "
                f"({', '.join(reserved)}); rename it."
            )
        row[key] = repr(float(value))
    return row
