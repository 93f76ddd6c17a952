"""The rating web app: FastAPI on one study file (``superres mos serve``).

What a rater's browser receives is blind by construction: the page, JSON with progress and
opaque item ids (random hex from the study seed), and PNG bytes. No route returns a method,
model or dataset image name; results are computed offline by ``superres mos results``.

API (all JSON errors are ``{"error": "<what was wrong and what to do>"}``):

======================================  ==========================================================
``GET /``                               the rating page
``POST /api/raters``                    ``{"rater_id": "ann"}`` registers or resumes a rater;
                                        ``{}`` makes up a new id. 201 (new) or 200, progress
``GET /api/raters/{rater_id}``          progress and the next unrated item; 404 unknown rater
``POST /api/ratings``                   ``{"rater_id", "item_id", "score": 1..5}``; progress and
                                        the next item. 201 stored, 200 unchanged or updated;
                                        422 bad score or body; 404 unknown rater or item
``GET /images/{item_id}.png``           the item's image; 404 unknown item
======================================  ==========================================================

Progress is ``{"rater_id", "total", "done", "finished", "item"}`` where ``item`` is
``{"item_id", "image_url", "width", "height", "number"}`` or ``null`` once all are rated.

**Ratings** are committed in their own transaction before the answer is sent, so closing the
browser loses nothing and a reload resumes at the first unrated item of the rater's order
(:func:`~superres.mos.study.rater_order`). One rating per (rater, item): posting the same score
again is a no-op (``"status": "unchanged"``); a different score **overwrites** the earlier one
(``"status": "updated"``, ``updated_at`` set), which is how the page's "previous image" button
corrects a slip of the finger. A rater's latest judgement of an image is their judgement.

**Concurrency**: every request opens its own SQLite connection (in the worker thread that
serves it); the file is in WAL mode and writers take ``BEGIN IMMEDIATE`` with a 30 s busy
timeout, so simultaneous posts queue instead of failing, and readers never block.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from superres.errors import ConfigError, SuperresError
from superres.mos.page import PAGE
from superres.mos.study import connection, now_utc, open_study, rater_order

__all__ = ["ApiError", "bind_socket", "create_app", "serve"]

logger = logging.getLogger(__name__)

_RATER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}")
_SCORE_HELP = "score must be an integer from 1 (bad) to 5 (excellent)"


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RaterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rater_id: StrictStr | None = None


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rater_id: StrictStr
    item_id: StrictStr
    # Strict: 3.0, "3" and true are not integers and are refused, not coerced.
    score: StrictInt


@dataclass(frozen=True)
class _Item:
    item_id: str
    width: int
    height: int


def _check_rater_id(rater_id: str) -> str:
    rater_id = rater_id.strip()
    if not _RATER_ID.fullmatch(rater_id):
        raise ApiError(
            422,
            f"invalid rater id {rater_id[:80]!r}: use 1 to 64 letters, digits, spaces or "
            "_ . @ -, starting with a letter or digit",
        )
    return rater_id


class _Study:
    """The study file plus what never changes in it (the items), loaded once."""

    def __init__(self, path: Path) -> None:
        info = open_study(path)
        self.path = info.path
        self.seed = info.seed
        with connection(self.path) as conn:
            # In the header already when `mos create` wrote the file; set again in case the file
            # was copied by a tool that changed it.
            conn.execute("PRAGMA journal_mode = WAL")
            rows = conn.execute("SELECT item_id, width, height FROM items").fetchall()
        if not rows:
            raise SuperresError(f"study {str(path)!r} has no items; create it again")
        self.items = {r[0]: _Item(r[0], int(r[1]), int(r[2])) for r in rows}
        self.order = lru_cache(maxsize=4096)(self._order)

    def _order(self, rater_id: str) -> tuple[str, ...]:
        return tuple(rater_order(list(self.items), rater_id, self.seed))

    def item(self, item_id: str) -> _Item:
        item = self.items.get(item_id)
        if item is None:
            raise ApiError(404, f"unknown item {item_id[:80]!r}; take item ids from the API")
        return item

    def rater_exists(self, conn: sqlite3.Connection, rater_id: str) -> bool:
        row = conn.execute("SELECT 1 FROM raters WHERE rater_id = ?", (rater_id,)).fetchone()
        return row is not None

    def require_rater(self, conn: sqlite3.Connection, rater_id: str) -> None:
        if not self.rater_exists(conn, rater_id):
            raise ApiError(
                404,
                f"unknown rater {rater_id[:80]!r}; register first (POST /api/raters, or enter "
                "the name on the start page)",
            )

    def progress(self, conn: sqlite3.Connection, rater_id: str) -> dict[str, Any]:
        query = "SELECT item_id FROM ratings WHERE rater_id = ?"
        rated = {r[0] for r in conn.execute(query, (rater_id,))}
        total = len(self.items)
        nxt = next((i for i in self.order(rater_id) if i not in rated), None)
        item = None
        if nxt is not None:
            it = self.items[nxt]
            item = {
                "item_id": it.item_id,
                "image_url": f"/images/{it.item_id}.png",
                "width": it.width,
                "height": it.height,
                "number": len(rated) + 1,
            }
        return {
            "rater_id": rater_id,
            "total": total,
            "done": len(rated),
            "finished": nxt is None,
            "item": item,
        }


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    about_score = False
    for error in exc.errors():
        loc = [str(x) for x in error.get("loc", ()) if x != "body"]
        about_score = about_score or "score" in loc
        where = ".".join(loc) or "body"
        text = f"{where}: {error.get('msg', 'invalid')}"
        if error.get("type") != "missing" and loc and "input" in error:
            text += f" (got {error['input']!r:.80})"
        parts.append(text)
    message = "invalid request: " + "; ".join(parts)
    if about_score:
        message += f"; {_SCORE_HELP}"
    return message


@contextlib.contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A ``BEGIN IMMEDIATE`` transaction: committed on success, rolled back on any error.

    IMMEDIATE takes the write lock before reading, so two identical posts cannot both see "no
    rating yet" (or "no such rater"); the second waits and then finds the first.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _register_rater(
    conn: sqlite3.Connection, study: _Study, wanted: str | None
) -> tuple[str, bool]:
    """The rater id (``wanted``, checked, or a new random one) and whether it was created."""
    if wanted is None:
        rater_id = f"rater-{secrets.token_hex(3)}"
        while study.rater_exists(conn, rater_id):
            rater_id = f"rater-{secrets.token_hex(3)}"
    else:
        rater_id = _check_rater_id(wanted)
    created = not study.rater_exists(conn, rater_id)
    if created:
        conn.execute("INSERT INTO raters VALUES (?, ?)", (rater_id, now_utc()))
    return rater_id, created


def _store_rating(conn: sqlite3.Connection, body: RatingIn) -> str:
    """Store, overwrite or keep the rater's score of the item: ``stored``, ``updated`` or
    ``unchanged``."""
    row = conn.execute(
        "SELECT score FROM ratings WHERE rater_id = ? AND item_id = ?",
        (body.rater_id, body.item_id),
    ).fetchone()
    now = now_utc()
    if row is None:
        conn.execute(
            "INSERT INTO ratings VALUES (?, ?, ?, ?, ?)",
            (body.rater_id, body.item_id, body.score, now, now),
        )
        return "stored"
    if row[0] != body.score:
        conn.execute(
            "UPDATE ratings SET score = ?, updated_at = ? WHERE rater_id = ? AND item_id = ?",
            (body.score, now, body.rater_id, body.item_id),
        )
        return "updated"
    return "unchanged"


def create_app(db_path: str | os.PathLike[str]) -> FastAPI:
    """The rating app for the study file ``db_path`` (checked now: missing or not a study raises
    :class:`~superres.mos.study.StudyError`). Serve it with uvicorn, or use :func:`serve`."""
    study = _Study(Path(db_path))
    # No /docs, /redoc or /openapi.json: raters get the page and the API it calls, nothing else.
    app = FastAPI(title="Image quality study", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    @app.post("/api/raters")
    def register(body: RaterIn | None = None) -> JSONResponse:
        wanted = body.rater_id if body is not None else None
        with connection(study.path) as conn:
            with _write_transaction(conn):
                rater_id, created = _register_rater(conn, study, wanted)
            payload = study.progress(conn, rater_id)
        payload["created"] = created
        return JSONResponse(payload, status_code=201 if created else 200)

    @app.get("/api/raters/{rater_id}")
    def rater(rater_id: str) -> dict[str, Any]:
        with connection(study.path) as conn:
            study.require_rater(conn, rater_id)
            return study.progress(conn, rater_id)

    @app.post("/api/ratings")
    def rate(body: RatingIn) -> JSONResponse:
        if not 1 <= body.score <= 5:
            raise ApiError(422, f"invalid score {body.score}: {_SCORE_HELP}")
        study.item(body.item_id)
        with connection(study.path) as conn:
            study.require_rater(conn, body.rater_id)
            with _write_transaction(conn):
                status = _store_rating(conn, body)
            payload = study.progress(conn, body.rater_id)
        payload.update(status=status, rated_item_id=body.item_id, score=body.score)
        return JSONResponse(payload, status_code=201 if status == "stored" else 200)

    @app.get("/images/{item_id}.png")
    def image(item_id: str) -> Response:
        study.item(item_id)
        with connection(study.path) as conn:
            (png,) = conn.execute("SELECT png FROM items WHERE item_id = ?", (item_id,)).fetchone()
        # Immutable content under an id that never changes: the browser may keep it.
        return Response(
            bytes(png), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    return app


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free port), or a clear error.

    Binding before uvicorn starts turns "address in use" into a message with the fix, and lets
    tests ask for a free port without a race.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise SuperresError(
            f"cannot listen on {host}:{port}: {exc}; pick another --port "
            "(e.g. --port 8001) or stop the program that uses it"
        ) from exc


def serve(
    db_path: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
) -> None:
    """Serve the study ``db_path`` with uvicorn until interrupted (Ctrl+C)."""
    if not 0 <= port <= 65535:
        raise ConfigError(
            f"--port must be in 0..65535, got {port}; 0 picks a free port, e.g. --port 8001"
        )
    import uvicorn

    app = create_app(db_path)
    sock = bind_socket(host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        logger.warning(
            "listening on %s: anyone who can reach this machine can rate (there are no "
            "passwords); use the default 127.0.0.1 unless that is intended",
            host,
        )
    shown = f"[{host}]" if ":" in host else host
    bound = sock.getsockname()[1]
    logger.info("rating page: http://%s:%d/ (Ctrl+C stops the server)", shown, bound)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
    server.run(sockets=[sock])
