"""Creating and opening a MOS study: one self-contained SQLite file.

**Protocol** (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network", CVPR 2017, section 3.4): every image of a benchmark set is shown in every
method's version, the HR original and bicubic upscaling included as anchors, one image at a time
and in random order; raters score each on a 1 (bad) to 5 (excellent) scale and never learn which
method made it. All versions of an image have the HR size (the mod-cropped HR, ``scale`` times the
LR) and the same file size (PNG without compression), and item ids are 128 random bits from
:mod:`secrets`, unrelated to the seed, so neither size nor name gives anything away.

**Why the images live inside the database (BLOB column) and not in a folder beside it**: the
study is then one file that can be copied, archived or mailed whole; creating it is one atomic
rename (a half-written study can never be mistaken for a finished one); images and their item
ids cannot drift apart (a moved or renamed folder, an edited PNG); and the server needs nothing
but the file. Set14 at x4 with three models and the two anchors is ~46 MB, well within what
SQLite stores comfortably.

Schema (``format = superres-mos/2``; ``/1`` studies lack the raters' tokens, which the server
adds, and have seeded item ids and compressed PNGs)::

    meta     (key TEXT PRIMARY KEY, value TEXT)                  format, dataset, scale, seed, ...
    methods  (method TEXT PRIMARY KEY, kind TEXT, position INT)  kind: model | bicubic | hr
    images   (image TEXT PRIMARY KEY, position INT, width INT, height INT, grayscale INT,
              lq_source TEXT)                                    the dataset's images (file stems)
    items    (item_id TEXT PRIMARY KEY, image TEXT, method TEXT, width INT, height INT, png BLOB)
             one (image, method) pair; item_id is random hex, the only name a rater sees
    raters   (rater_id TEXT PRIMARY KEY, created_at TEXT, token_sha256 TEXT)
             token_sha256: SHA-256 of the token the server issued the rater
    ratings  (rater_id TEXT, item_id TEXT, score INT CHECK 1..5, created_at TEXT, updated_at TEXT,
              PRIMARY KEY (rater_id, item_id))                   one rating per rater and item

Times are UTC ISO 8601. The file is left in WAL mode so that the server's concurrent writers and
a ``superres mos results`` reader do not block each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import random
import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import PIL.Image
import torch
from tqdm import tqdm

from superres.errors import SuperresError, UnknownModelError, UnsupportedScaleError
from superres.io.files import check_output_folder, make_output_folder

if TYPE_CHECKING:
    from superres.data.datasets import BenchmarkImage

__all__ = [
    "BICUBIC_METHOD",
    "FORMAT",
    "HR_METHOD",
    "LEGACY_FORMAT",
    "StudyError",
    "StudyExistsError",
    "StudyInfo",
    "StudyNotFoundError",
    "connect",
    "create_study",
    "open_study",
    "rater_order",
]

logger = logging.getLogger(__name__)

FORMAT = "superres-mos/2"
#: Studies written before raters had tokens and item ids were secret; still opened and served.
LEGACY_FORMAT = "superres-mos/1"
#: Method labels of the two anchors every study has.
HR_METHOD = "hr"
BICUBIC_METHOD = "bicubic"

_SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE methods (
    method   TEXT PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('model', 'bicubic', 'hr')),
    position INTEGER NOT NULL
);
CREATE TABLE images (
    image     TEXT PRIMARY KEY,
    position  INTEGER NOT NULL,
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    grayscale INTEGER NOT NULL,
    lq_source TEXT NOT NULL
);
CREATE TABLE items (
    item_id TEXT PRIMARY KEY,
    image   TEXT NOT NULL REFERENCES images (image),
    method  TEXT NOT NULL REFERENCES methods (method),
    width   INTEGER NOT NULL,
    height  INTEGER NOT NULL,
    png     BLOB NOT NULL,  -- last column: queries of the other columns skip the blob's pages
    UNIQUE (image, method)
);
CREATE TABLE raters (
    rater_id     TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    token_sha256 TEXT UNIQUE
);
CREATE TABLE ratings (
    rater_id   TEXT NOT NULL REFERENCES raters (rater_id),
    item_id    TEXT NOT NULL REFERENCES items (item_id),
    score      INTEGER NOT NULL CHECK (typeof(score) = 'integer' AND score BETWEEN 1 AND 5),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (rater_id, item_id)
);
CREATE INDEX ratings_by_item ON ratings (item_id);
"""


# --- errors ---------------------------------------------------------------------------------------


class StudyError(SuperresError):
    """A MOS study cannot be created or opened (bad arguments, not a study file, ...)."""


class StudyExistsError(StudyError, FileExistsError):
    """``mos create`` was pointed at a file that exists; studies are never overwritten."""

    def __str__(self) -> str:  # FileExistsError would otherwise format an errno-style message
        return str(self.args[0])


class StudyNotFoundError(StudyError, FileNotFoundError):
    """The study database does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


# --- opening --------------------------------------------------------------------------------------


def now_utc() -> str:
    """The current time as UTC ISO 8601 with seconds, e.g. ``2024-05-01T12:00:00+00:00``."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection to an existing study file (never creates one), in autocommit mode.

    Transactions are explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``); writers wait up to 30 s for
    each other instead of failing with "database is locked".
    """
    p = Path(path)
    if not p.is_file():
        raise StudyNotFoundError(
            f"study {str(p)!r} not found; create one with `superres mos create --models ... "
            f"--dataset ... --out {p}`, or check the path"
        )
    # mode=rw: a typo in a path must not create an empty database.
    conn = sqlite3.connect(
        p.resolve().as_uri() + "?mode=rw", uri=True, timeout=30.0, isolation_level=None
    )
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextlib.contextmanager
def connection(path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """:func:`connect`, closed again on exit (``sqlite3``'s own context manager does not close)."""
    conn = connect(path)
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True)
class StudyInfo:
    """What a study file says about itself.

    Attributes:
        path: the database file.
        dataset: catalog name of the benchmark set (``"set14"``).
        scale: the upscaling factor of every method.
        seed: the study's seed: with the rater id, each rater's order.
        format: :data:`FORMAT`, or :data:`LEGACY_FORMAT` for a study of an older superres.
        methods: method labels in table order: the models as given, then ``bicubic``, ``hr``.
        kinds: ``{method: "model" | "bicubic" | "hr"}``.
        images: the dataset image names (file stems), in dataset order.
        num_items: ``len(images) * len(methods)``.
    """

    path: Path
    dataset: str
    scale: int
    seed: int
    format: str
    methods: tuple[str, ...]
    kinds: dict[str, str]
    images: tuple[str, ...]
    num_items: int


def open_study(path: str | os.PathLike[str]) -> StudyInfo:
    """Read and check a study file's metadata.

    Raises:
        StudyNotFoundError: no such file.
        StudyError: the file is not a study database (another SQLite file, not SQLite at all, or
            a study of an unknown format version).
    """
    p = Path(path)
    with connection(p) as conn:
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            methods = conn.execute("SELECT method, kind FROM methods ORDER BY position").fetchall()
            images = [r[0] for r in conn.execute("SELECT image FROM images ORDER BY position")]
            (num_items,) = conn.execute("SELECT COUNT(*) FROM items").fetchone()
        except sqlite3.DatabaseError as exc:
            raise StudyError(
                f"{str(p)!r} is not a MOS study database ({exc}); pass the file that "
                "`superres mos create` wrote"
            ) from exc
    if meta.get("format") not in (FORMAT, LEGACY_FORMAT):
        raise StudyError(
            f"{str(p)!r} has format {meta.get('format')!r}, expected {FORMAT!r}; it was not "
            "written by `superres mos create` (or by a newer superres: upgrade)"
        )
    return StudyInfo(
        path=p,
        dataset=meta["dataset"],
        scale=int(meta["scale"]),
        seed=int(meta["seed"]),
        format=meta["format"],
        methods=tuple(m for m, _ in methods),
        kinds=dict(methods),
        images=tuple(images),
        num_items=int(num_items),
    )


def rater_order(item_ids: Sequence[str], rater_id: str, seed: int) -> list[str]:
    """The order in which ``rater_id`` sees the items: a shuffle seeded by the study seed and the
    rater id, so the same rater always gets the same order (reloads, restarts) and different
    raters get independent ones.

    The seed comes from SHA-256 rather than ``hash()``, which changes between Python processes.
    """
    order = sorted(item_ids)
    digest = hashlib.sha256(f"{seed}:{rater_id}".encode()).digest()
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


# --- creating -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Method:
    """One method of a new study: its network, ready to run on ``device`` (None: the HR)."""

    label: str
    kind: str
    network: torch.nn.Module | None
    device: torch.device


def _resolve_models(
    names: Sequence[str], files: Mapping[str, Path]
) -> tuple[list[tuple[str, int | None]], int]:
    """Canonical labels with their fixed scale (None: any), and the study's scale; ``files``:
    weights files by label (checked: they load)."""
    from superres.models import MODELS
    from superres.models.catalog import WEIGHTS
    from superres.models.weights import load_model

    if not names and not files:
        raise StudyError("no models given: pass --models NAME ... (e.g. --models srgan-x4)")
    resolved: list[tuple[str, int | None]] = []
    for label, path in files.items():
        if label in (HR_METHOD, BICUBIC_METHOD) or any(label == seen for seen, _ in resolved):
            raise StudyError(f"weights file {path}: its name {label!r} is taken; rename the file")
        resolved.append((label, int(getattr(load_model(weights=path), "scale", 4))))
    for name in names:
        if name.lower() == HR_METHOD:
            raise StudyError(
                f"{name!r} is not a model: the HR original is in every study as the anchor "
                f"{HR_METHOD!r}; leave it out of --models"
            )
        if name in WEIGHTS:
            entry = WEIGHTS.get(name)
            label, fixed = entry.name, entry.scale
        elif name in MODELS:
            label, fixed = MODELS.get(name).name, None
        else:
            raise UnknownModelError(name, [*MODELS, *WEIGHTS])
        if label == BICUBIC_METHOD:
            continue  # bicubic is an anchor of every study already
        if any(label == seen for seen, _ in resolved):
            raise StudyError(f"model {label!r} is given twice in --models; list each model once")
        resolved.append((label, fixed))
    scales = sorted({s for _, s in resolved if s is not None})
    if len(scales) > 1:
        listing = ", ".join(f"{label} x{s}" for label, s in resolved if s is not None)
        raise UnsupportedScaleError(
            f"the models upscale by different factors ({listing}); a study compares versions of "
            "one image at one size, so pick models of one scale"
        )
    return resolved, scales[0] if scales else 4


def _encode_png(rgb: torch.Tensor, *, grayscale: bool) -> bytes:
    """Float ``(3, H, W)`` in [0, 1] -> PNG bytes (8-bit, rounded once; no metadata chunks)."""
    from superres.io.image import quantize_image

    hwc = quantize_image(rgb, grayscale=grayscale)
    image = PIL.Image.fromarray(hwc[..., 0] if grayscale else hwc)
    buf = io.BytesIO()
    # Uncompressed: the byte size then depends on the image's size alone, never on its content
    # (compressed, a smooth bicubic image is ~25% smaller than the HR and names its method).
    image.save(buf, "PNG", compress_level=0)
    return buf.getvalue()


def _item_ids(count: int) -> list[str]:
    """``count`` distinct ids of 128 bits from :mod:`secrets`: nothing, not even the study's
    seed, maps an id to its image or method."""
    ids: dict[str, None] = {}
    while len(ids) < count:
        ids[secrets.token_hex(16)] = None
    return list(ids)


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` to ``out`` without ever replacing an existing ``out``."""
    appeared = StudyExistsError(
        f"study {str(out)!r} appeared while this one was being created; it was left "
        "untouched. Pass another --out"
    )
    try:
        os.link(tmp, out)  # fails if out exists, unlike os.replace
    except FileExistsError:
        raise appeared from None
    except OSError:  # a filesystem without hard links: check, then rename (tiny race window)
        if out.exists():
            raise appeared from None
        os.rename(tmp, out)
        return
    tmp.unlink()


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def create_study(
    out: str | os.PathLike[str],
    models: Sequence[str],
    dataset: str,
    *,
    root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    seed: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
    allow_modified: bool = False,
    weights: Sequence[str | os.PathLike[str]] = (),
) -> StudyInfo:
    """Create a blind MOS study of ``models`` on ``dataset`` in the new file ``out``.

    Every (image, method) pair becomes an item: each model's output on the dataset's LR image
    (official LR files where the dataset ships them, else MATLAB bicubic of the mod-cropped HR),
    plus the bicubic upscaling and the HR original as anchors, stored as 8-bit PNG (gray images
    as gray). Item ids are 128 random bits each (:mod:`secrets`).

    Args:
        out: the database to create; its folder must exist and the file must not.
        models: pretrained names (``"srgan-x4"``, see ``superres models``) or parameter-free
            registry models; all of one scale (4 when none has a fixed scale). ``bicubic`` is
            always included as an anchor and need not be listed.
        dataset: catalog name (``"set14"``).
        root: data root (default: ``SUPERRES_DATA``, else the user cache).
        limit: use only the first ``limit`` images of the dataset (sorted by name).
        seed: with each rater id, the seed of the raters' orders; default: a random seed,
            stored in the study.
        device: where the models run (``"auto"``, ``"cpu"``, ``"cuda:0"``, ...).
        progress: show a progress bar.
        allow_modified: accept a benchmark set whose files differ from the catalog's.
        weights: weights files (a training run's, an experiment's arms), each a method named by
            its file stem, beside ``models`` (which may then be empty).

    The file is written under a temporary name beside ``out`` and published with a no-replace
    link only when complete, so ``out`` is either absent or a finished study.

    Raises:
        StudyExistsError: ``out`` exists. StudyError: bad arguments (no models, reserved or
        duplicate names, ``limit`` < 1, missing folder). UnknownModelError, UnknownDatasetError,
        DatasetNotFoundError, UnsupportedScaleError, MissingWeightsError: from the catalogs.
    """
    from superres.data.datasets import BenchmarkSet

    out_path = Path(out)
    seed = _check_study_args(out_path, limit=limit, seed=seed)
    # Everything that can fail on a typo fails here, before any image is computed.
    files = {Path(w).stem: Path(w) for w in weights}
    resolved, scale = _resolve_models(models, files)
    bench = BenchmarkSet(dataset, scale, root=root, cache=False, allow_modified=allow_modified)
    labels = [label for label, _ in resolved]
    methods = _study_methods(labels, scale, device, files)
    meta = _study_meta(dataset=bench.info.name, scale=scale, seed=seed, models=labels, limit=limit)
    _write_study(
        out_path,
        meta=meta,
        methods=methods,
        images=bench,
        count=len(bench) if limit is None else min(limit, len(bench)),
        scale=scale,
        progress=progress,
    )
    info = open_study(out_path)
    logger.info(
        "created %s: %d images x %d methods = %d items (%s x%d)",
        out_path,
        len(info.images),
        len(info.methods),
        info.num_items,
        info.dataset,
        scale,
    )
    return info


def _write_study(
    out_path: Path,
    *,
    meta: dict[str, str],
    methods: Sequence[_Method],
    images: Sequence[BenchmarkImage],
    count: int,
    scale: int,
    progress: bool,
) -> None:
    """Write the study of the first ``count`` of ``images`` to a temporary file, then publish it
    as ``out_path`` (never replacing a file there)."""
    ids = iter(_item_ids(count * len(methods)))
    make_output_folder(out_path.parent, "--out")
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.executemany(
                "INSERT INTO methods VALUES (?, ?, ?)",
                [(m.label, m.kind, i) for i, m in enumerate(methods)],
            )
            with tqdm(
                total=count * len(methods), desc="mos", unit="img", disable=not progress or None
            ) as bar:
                for index in range(count):
                    _insert_image(conn, images[index], index, methods, scale, ids, bar)
            conn.execute("COMMIT")
            # Persistent in the file header: the server's writers and readers do not block each
            # other. Closing the last connection checkpoints and removes the -wal file.
            conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
        _publish(tmp, out_path)
    finally:
        _remove_sqlite_files(tmp)


def _check_study_args(out_path: Path, *, limit: int | None, seed: int | None) -> int:
    """The study's seed (drawn when ``None``), once ``out_path``, ``limit``, ``seed`` are valid."""
    if out_path.exists():
        raise StudyExistsError(
            f"{str(out_path)!r} exists; a study is never overwritten (its ratings would be "
            "lost). Pass another --out, or delete the file yourself if it is really unwanted"
        )
    check_output_folder(out_path.parent, "--out")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise StudyError(f"--limit must be a positive number of images, got {limit!r}")
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise StudyError(f"--seed must be an integer >= 0, got {seed!r}")
    return seed


def _study_methods(
    labels: Sequence[str], scale: int, device: str | torch.device, files: Mapping[str, Path]
) -> list[_Method]:
    """The models, then the bicubic and HR anchors, each network ready to run on ``device``.

    The networks run as the report runs them (the evaluation protocol: float32, the fused path
    on a CPU, rounded half-up to 8 bit), so raters see exactly the images the report scores.
    """
    from superres.evaluation.protocol import prepare_network
    from superres.models.weights import load_model
    from superres.runtime import resolve_device

    kinds = [(label, "model") for label in labels] + [(BICUBIC_METHOD, "bicubic")]

    def build(label: str) -> torch.nn.Module:
        if label in files:
            return load_model(weights=files[label])
        return load_model(label, scale=scale)

    models = [(label, kind, build(label)) for label, kind in kinds]
    run_on = resolve_device(device)
    methods = [
        _Method(label, kind, prepare_network(model, run_on, fused=True), run_on)
        for label, kind, model in models
    ]
    return [*methods, _Method(HR_METHOD, "hr", None, run_on)]


def _study_meta(
    *, dataset: str, scale: int, seed: int, models: Sequence[str], limit: int | None
) -> dict[str, str]:
    """The ``meta`` table of a new study."""
    from superres._version import __version__

    return {
        "format": FORMAT,
        "dataset": dataset,
        "scale": str(scale),
        "seed": str(seed),
        "models": json.dumps(list(models)),
        "limit": "" if limit is None else str(limit),
        "created_at": now_utc(),
        "protocol": "SRGAN (Ledig et al., CVPR 2017): 1 (bad) .. 5 (excellent), "
        "blind, random order per rater, HR and bicubic anchors",
        "superres_version": __version__,
    }


def _insert_image(
    conn: sqlite3.Connection,
    pair: BenchmarkImage,
    index: int,
    methods: Sequence[_Method],
    scale: int,
    ids: Iterator[str],
    bar: tqdm,
) -> None:
    """Insert image ``index`` of the set and every method's version of it as items.

    Inserted per image, so memory holds one image's versions at a time.
    """
    from superres.evaluation.protocol import super_resolve

    height, width = int(pair.hr.shape[-2]), int(pair.hr.shape[-1])
    conn.execute(
        "INSERT INTO images VALUES (?, ?, ?, ?, ?, ?)",
        (pair.name, index, width, height, int(pair.grayscale), pair.lq_source),
    )
    rows: list[tuple[str, str, str, int, int, bytes]] = []
    for method in methods:
        bar.set_postfix_str(f"{pair.name} {method.label}", refresh=False)
        if method.network is None:
            rgb = pair.hr
        else:
            rgb = super_resolve(method.network, pair.lq, scale, device=method.device).float()
        if tuple(rgb.shape[-2:]) != (height, width):
            raise StudyError(
                f"{method.label} made a {tuple(rgb.shape[-2:])} image of "
                f"{pair.name}, expected the HR size {(height, width)}"
            )
        png = _encode_png(rgb, grayscale=pair.grayscale)
        rows.append((next(ids), pair.name, method.label, width, height, png))
        bar.update(1)
    conn.executemany(
        "INSERT INTO items (item_id, image, method, width, height, png) VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
