"""The rating web app: FastAPI on one study file (``superres mos serve``).

What a rater's browser receives is blind by construction: the page, JSON with progress and
opaque item ids (128 random bits each, drawn with :mod:`secrets` when the study was made), and
PNG bytes stored uncompressed, so every version of an image has the same byte size. No route
returns a method, model or dataset image name; results are computed offline by
``superres mos results``.

**Raters own their ratings**: registering a new rater id returns a ``token`` (256 random bits;
the study keeps only its SHA-256). Every other request carries it as ``Authorization: Bearer
TOKEN``: without one it is refused (401), with another rater's it is refused (403), so nobody
can read or change another rater's progress or scores, or take over a name already in use.
The page keeps the token in the browser's local storage, so a reload resumes the rater.

**The server guards its door**: a request whose ``Host`` is not the served name is refused
(400; this stops DNS-rebinding pages in the rater's browser from reaching a study served on
localhost), and a body over :data:`MAX_BODY_BYTES` is refused (413) before it is read whole.

API (all JSON errors are ``{"error": "<what was wrong and what to do>"}``):

======================================  ==========================================================
``GET /``                               the rating page
``POST /api/raters``                    ``{"rater_id": "ann"}`` registers a rater (201, with
                                        its ``token``) or resumes it with its token (200); a
                                        taken id without its token: 403. ``{}`` makes up an id
``GET /api/raters/{rater_id}``          progress and the next unrated item (token); 404 unknown
``POST /api/ratings``                   ``{"rater_id", "item_id", "score": 1..5}`` (token);
                                        progress and the next item. 201 stored, 200 unchanged or
                                        updated; 422 bad score or body; 404 unknown rater or item
``GET /images/{item_id}.png``           the item's image (any rater's token); 404 unknown item
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
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from superres.errors import ConfigError, SuperresError
from superres.mos.page import PAGE
from superres.mos.study import LEGACY_FORMAT, connection, now_utc, open_study, rater_order

__all__ = ["LOCAL_HOSTS", "MAX_BODY_BYTES", "ApiError", "bind_socket", "create_app", "serve"]

logger = logging.getLogger(__name__)

_RATER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.@-]{0,63}")
_SCORE_HELP = "score must be an integer from 1 (bad) to 5 (excellent)"
#: The names of this machine that a study served on a loopback address answers to.
LOCAL_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")
#: The largest request body accepted: a rating is under 200 bytes.
MAX_BODY_BYTES = 4096
_TOKEN_HELP = (
    "send the token your registration returned as 'Authorization: Bearer TOKEN' (the rating "
    "page does this for you; open it again in the browser you started in)"
)

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


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


def _token_digest(token: str) -> str:
    """What the study stores of a rater's token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _token_matches(digest: str | None, token: str | None) -> bool:
    """Whether ``token`` is the one whose digest the study stores (None never matches)."""
    return (
        digest is not None
        and token is not None
        and secrets.compare_digest(digest, _token_digest(token))
    )


def _bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _require_token(request: Request) -> str:
    token = _bearer_token(request)
    if token is None:
        raise ApiError(401, f"no rater token: {_TOKEN_HELP}")
    return token


class _Study:
    """The study file plus what never changes in it (the items), loaded once."""

    def __init__(self, path: Path) -> None:
        info = open_study(path)
        self.path = info.path
        self.seed = info.seed
        if info.format == LEGACY_FORMAT:
            logger.warning(
                "%s was made by an older superres: its item ids follow from its seed and its "
                "PNG sizes differ per method, so a determined rater could tell the methods "
                "apart; create the study again for a blind one",
                self.path,
            )
        with connection(self.path) as conn:
            # In the header already when `mos create` wrote the file; set again in case the file
            # was copied by a tool that changed it.
            conn.execute("PRAGMA journal_mode = WAL")
            columns = {r[1] for r in conn.execute("PRAGMA table_info(raters)")}
            if "token_sha256" not in columns:  # a study of the first format: raters get tokens
                conn.execute("ALTER TABLE raters ADD COLUMN token_sha256 TEXT")
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
        return self.stored_digest(conn, rater_id) is not None

    @staticmethod
    def stored_digest(conn: sqlite3.Connection, rater_id: str) -> tuple[str | None] | None:
        """``(token digest,)`` of the rater (digest None: a rater of an old study), or None."""
        query = "SELECT token_sha256 FROM raters WHERE rater_id = ?"
        return conn.execute(query, (rater_id,)).fetchone()

    def authorize(self, conn: sqlite3.Connection, rater_id: str, token: str) -> None:
        """Pass when ``token`` is ``rater_id``'s; else 404 (no such rater) or 403 (not theirs)."""
        row = self.stored_digest(conn, rater_id)
        if row is None:
            raise ApiError(
                404,
                f"unknown rater {rater_id[:80]!r}; register first (POST /api/raters, or enter "
                "the name on the start page)",
            )
        if not _token_matches(row[0], token):
            raise ApiError(
                403,
                f"this token was not issued to rater {rater_id[:80]!r}; "
                "a rater sees only their own ratings",
            )

    def authorize_any(self, conn: sqlite3.Connection, token: str) -> None:
        """Pass when ``token`` belongs to some rater of the study (the images' rule), else 403."""
        query = "SELECT 1 FROM raters WHERE token_sha256 = ?"
        if conn.execute(query, (_token_digest(token),)).fetchone() is None:
            raise ApiError(403, f"unknown rater token: {_TOKEN_HELP}")

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
    conn: sqlite3.Connection, study: _Study, wanted: str | None, token: str | None
) -> tuple[str, str | None, bool]:
    """Register ``wanted`` (checked; None: a new random id) or resume it with its ``token``.

    Returns the rater id, the token issued now (None when resumed with the rater's own) and
    whether the rater is new. A rater of a study made before raters had tokens is claimed by
    its first registration, which issues its token.
    """
    if wanted is None:
        rater_id = f"rater-{secrets.token_hex(3)}"
        while study.rater_exists(conn, rater_id):
            rater_id = f"rater-{secrets.token_hex(3)}"
    else:
        rater_id = _check_rater_id(wanted)
    row = study.stored_digest(conn, rater_id)
    if row is not None and row[0] is not None:
        if not _token_matches(row[0], token):
            raise ApiError(
                403,
                f"rater id {rater_id[:80]!r} is taken: resume in the browser that started it, "
                "or choose another name",
            )
        return rater_id, None, False
    issued = secrets.token_urlsafe(32)
    if row is None:
        conn.execute(
            "INSERT INTO raters (rater_id, created_at, token_sha256) VALUES (?, ?, ?)",
            (rater_id, now_utc(), _token_digest(issued)),
        )
    else:
        conn.execute(
            "UPDATE raters SET token_sha256 = ? WHERE rater_id = ?",
            (_token_digest(issued), rater_id),
        )
    return rater_id, issued, row is None


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


def _host_name(header: str) -> str:
    """``Host`` header -> the name alone: ``[::1]:8000`` -> ``::1``, ``a.b:80`` -> ``a.b``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


class _Guard:
    """ASGI middleware: refuse an unexpected ``Host`` and an over-long body, as JSON errors.

    The body is read here, up to ``max_body`` bytes, before the app sees any of it, so a huge
    or endless upload costs at most ``max_body`` bytes of memory.
    """

    def __init__(self, app: Any, *, hosts: Sequence[str], max_body: int) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}
        self.max_body = max_body

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = _host_name(headers.get("host", ""))
        if "*" not in self.hosts and host not in self.hosts:
            served = ", ".join(sorted(self.hosts))
            message = f"this study is served as {served}, not {host[:80]!r}; open one of those"
            await _send_error(send, 400, message)
            return
        too_long = f"request body over {self.max_body} bytes; a rating is a small JSON object"
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _send_error(send, 413, too_long)
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_error(send, 413, too_long)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _send_error(send: _Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _add_error_handlers(app: FastAPI) -> None:
    """Every error, ours or the framework's, answers ``{"error": message}``."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Unknown routes and methods answer like every other error: {"error": ...}.
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_message(exc)}, status_code=422)


def create_app(
    db_path: str | os.PathLike[str],
    *,
    hosts: Sequence[str] = LOCAL_HOSTS,
    max_body: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The rating app for the study file ``db_path`` (checked now: missing or not a study raises
    :class:`~superres.mos.study.StudyError`). Serve it with uvicorn, or use :func:`serve`.

    Args:
        hosts: the ``Host`` names it answers to (``"*"``: any); others get 400.
        max_body: the largest request body in bytes; longer ones get 413.
    """
    study = _Study(Path(db_path))
    # No /docs, /redoc or /openapi.json: raters get the page and the API it calls, nothing else.
    app = FastAPI(title="Image quality study", docs_url=None, redoc_url=None, openapi_url=None)

    _add_error_handlers(app)

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(PAGE, headers={"Cache-Control": "no-store"})

    @app.post("/api/raters")
    def register(request: Request, body: RaterIn | None = None) -> JSONResponse:
        wanted = body.rater_id if body is not None else None
        with connection(study.path) as conn:
            with _write_transaction(conn):
                rater_id, issued, created = _register_rater(
                    conn, study, wanted, _bearer_token(request)
                )
            payload = study.progress(conn, rater_id)
        payload["created"] = created
        if issued is not None:
            payload["token"] = issued
        return JSONResponse(payload, status_code=201 if created else 200)

    @app.get("/api/raters/{rater_id}")
    def rater(request: Request, rater_id: str) -> dict[str, Any]:
        token = _require_token(request)
        with connection(study.path) as conn:
            study.authorize(conn, rater_id, token)
            return study.progress(conn, rater_id)

    @app.post("/api/ratings")
    def rate(request: Request, body: RatingIn) -> JSONResponse:
        token = _require_token(request)
        if not 1 <= body.score <= 5:
            raise ApiError(422, f"invalid score {body.score}: {_SCORE_HELP}")
        study.item(body.item_id)
        with connection(study.path) as conn:
            study.authorize(conn, body.rater_id, token)
            with _write_transaction(conn):
                status = _store_rating(conn, body)
            payload = study.progress(conn, body.rater_id)
        payload.update(status=status, rated_item_id=body.item_id, score=body.score)
        return JSONResponse(payload, status_code=201 if status == "stored" else 200)

    @app.get("/images/{item_id}.png")
    def image(request: Request, item_id: str) -> Response:
        token = _require_token(request)
        study.item(item_id)
        with connection(study.path) as conn:
            study.authorize_any(conn, token)
            (png,) = conn.execute("SELECT png FROM items WHERE item_id = ?", (item_id,)).fetchone()
        # Immutable content under an id that never changes: the browser may keep it.
        return Response(
            bytes(png), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
        )

    app.add_middleware(_Guard, hosts=hosts, max_body=max_body)
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
    """Serve the study ``db_path`` with uvicorn until interrupted (Ctrl+C).

    On a loopback ``host`` the app answers to this machine's names only (:data:`LOCAL_HOSTS`);
    on a named address to that name too; on a wildcard (``0.0.0.0``, ``::``) to any name, since
    raters may reach it by any of the machine's names.
    """
    if not 0 <= port <= 65535:
        raise ConfigError(
            f"--port must be in 0..65535, got {port}; 0 picks a free port, e.g. --port 8001"
        )
    import uvicorn

    wildcard = host in ("", "0.0.0.0", "::")
    hosts = ("*",) if wildcard else tuple(dict.fromkeys((host.strip("[]"), *LOCAL_HOSTS)))
    app = create_app(db_path, hosts=hosts)
    sock = bind_socket(host, port)
    if host not in LOCAL_HOSTS:
        logger.warning(
            "listening on %s: anyone who can reach this machine can register as a rater; use "
            "the default 127.0.0.1 unless that is intended",
            host,
        )
    shown = f"[{host}]" if ":" in host else host
    bound = sock.getsockname()[1]
    logger.info("rating page: http://%s:%d/ (Ctrl+C stops the server)", shown, bound)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level))
    server.run(sockets=[sock])
