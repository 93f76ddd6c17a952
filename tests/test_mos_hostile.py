"""The MOS server under hostile requests: each refused with a status and a message, none stored.

One table of requests a careless or hostile rater (or a page on another site) could send: no or
another rater's token, another Host, oversized or malformed bodies, out-of-range scores, unknown or
crafted ids. Each must get the expected status with an ``error`` message and leave the ratings
table as it was; afterwards the two real raters still rate normally. With
``SUPERRES_WRITE_RELIABILITY=1`` the table becomes the "MOS server: hostile requests" section of
docs/reliability.md, with the blinding checks (id randomness, one encoding and one byte size per
image). The 2000 concurrent ratings run against a real server in tests/test_mos_e2e.py (slow).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from reliability import enabled, table, write_section
from superres.mos import create_study
from superres.mos.server import create_app
from test_mos import MODEL, _write_dataset


@dataclass(frozen=True)
class Raters:
    """Two registered raters on one study, and an item to rate."""

    client: TestClient
    ann: dict[str, str]  # her Authorization header
    bob: dict[str, str]
    item: dict[str, str]
    app: object


Send = Callable[[Raters], httpx.Response]


@dataclass(frozen=True)
class Request:
    name: str
    what: str
    send: Send
    status: int
    needle: str  # in the response's error message


def _rate(body: dict[str, object], auth: str = "ann") -> Send:
    def send(r: Raters) -> httpx.Response:
        headers = {"ann": r.ann, "bob": r.bob, "none": {}}[auth]
        return r.client.post("/api/ratings", json=body, headers=headers)

    return send


def _score(score: object) -> Send:
    def send(r: Raters) -> httpx.Response:
        body = {"rater_id": "ann", "item_id": r.item["item_id"], "score": score}
        return r.client.post("/api/ratings", json=body, headers=r.ann)

    return send


def _raw(path: str, content: bytes | Iterator[bytes], **headers: str) -> Send:
    def send(r: Raters) -> httpx.Response:
        return r.client.post(path, content=content, headers={**r.ann, **headers})

    return send


def _get(path: str | Callable[[Raters], str], auth: str = "ann", **headers: str) -> Send:
    def send(r: Raters) -> httpx.Response:
        url = path(r) if callable(path) else path
        who = {"ann": r.ann, "bob": r.bob, "none": {}}[auth]
        return r.client.get(url, headers={**who, **headers})

    return send


def _host(base: str) -> Send:
    def send(r: Raters) -> httpx.Response:
        return TestClient(r.app, base_url=base).get("/")  # type: ignore[arg-type]

    return send


def _register(rater: str, auth: str = "none") -> Send:
    def send(r: Raters) -> httpx.Response:
        headers = {"ann": r.ann, "bob": r.bob, "none": {}}[auth]
        return r.client.post("/api/raters", json={"rater_id": rater}, headers=headers)

    return send


def _chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
    yield b'{"rater_id": "'
    for _ in range(100):
        yield b"a" * 100


def _image(r: Raters) -> str:
    return r.item["image_url"]


def _ann_rating(r: Raters) -> dict[str, object]:
    return {"rater_id": "ann", "item_id": r.item["item_id"], "score": 4}


def _as(auth: str, header: dict[str, str] | None = None) -> Send:
    def send(r: Raters) -> httpx.Response:
        headers = header if header is not None else {"ann": r.ann, "bob": r.bob, "none": {}}[auth]
        return r.client.post("/api/ratings", json=_ann_rating(r), headers=headers)

    return send


_BEARER = "Authorization: Bearer"
_SCORE = "score"
_BOGUS = {"Authorization": "Bearer " + "x" * 43}

# fmt: off
REQUESTS: tuple[Request, ...] = (
    Request("no-token-progress", "read ann's progress without a token",
            _get("/api/raters/ann", auth="none"), 401, _BEARER),
    Request("no-token-rating", "rate as ann without a token", _as("none"), 401, _BEARER),
    Request("no-token-image", "fetch an item's image without a token",
            _get(_image, auth="none"), 401, _BEARER),
    Request("basic-auth", "HTTP Basic instead of a bearer token",
            _get("/api/raters/ann", auth="none", Authorization="Basic YW5uOg=="), 401, _BEARER),
    Request("bogus-token", "a well-formed token nobody was issued",
            _as("none", _BOGUS), 403, "token"),
    Request("other-rater-progress", "bob's token reading ann's progress",
            _get("/api/raters/ann", auth="bob"), 403, "ann"),
    Request("other-rater-rating", "bob's token rating as ann", _as("bob"), 403, "ann"),
    Request("claim-a-name", "bob registering ann's name", _register("ann", "bob"), 403, "taken"),
    Request("claim-anonymously", "a new client registering ann's name", _register("ann"), 403,
            "taken"),
    Request("other-host", "a page on evil.example (DNS rebinding)",
            _host("http://evil.example"), 400, "127.0.0.1"),
    Request("lookalike-host", "Host 127.0.0.1.evil.example",
            _host("http://127.0.0.1.evil.example:8000"), 400, "127.0.0.1"),
    Request("long-body", "a 5 kB registration body",
            _raw("/api/raters", b"{" + b" " * 5000 + b"}"), 413, "4096 bytes"),
    Request("long-stream", "a 10 kB body without Content-Length",
            _raw("/api/raters", _chunks()), 413, "4096 bytes"),
    Request("not-json", "a form body sent as JSON",
            _raw("/api/ratings", b"score=3", **{"content-type": "application/json"}), 422, ""),
    Request("score-0", "score 0", _score(0), 422, "from 1 (bad) to 5"),
    Request("score-6", "score 6", _score(6), 422, "from 1 (bad) to 5"),
    Request("score-negative", "score -1", _score(-1), 422, "from 1 (bad) to 5"),
    Request("score-fraction", "score 3.5", _score(3.5), 422, "valid integer"),
    Request("score-string", "score '3'", _score("3"), 422, "valid integer"),
    Request("score-bool", "score true", _score(True), 422, "valid integer"),
    Request("score-null", "score null", _score(None), 422, "valid integer"),
    Request("score-huge", "score 10**30", _score(10**30), 422, _SCORE),
    Request("score-nan", "score NaN (a JSON extension)",
            _raw("/api/ratings", b'{"rater_id": "ann", "item_id": "x", "score": NaN}',
                 **{"content-type": "application/json"}), 422, ""),
    Request("missing-score", "a rating without a score",
            _rate({"rater_id": "ann", "item_id": "x"}), 422, "score: Field required"),
    Request("extra-field", "a rating that names a method",
            _rate({"rater_id": "ann", "item_id": "x", "score": 3, "method": "hr"}), 422, ""),
    Request("unknown-item", "a rating of an item that does not exist",
            _rate({"rater_id": "ann", "item_id": "f00d", "score": 3}), 404, "unknown item"),
    Request("unknown-image", "the image of an item that does not exist",
            _get("/images/f00d.png"), 404, ""),
    Request("traversal-image", "an image path with ../",
            _get("/images/..%2f..%2fetc%2fpasswd.png"), 404, ""),
    Request("traversal-rater", "rater id '../etc'", _register("../etc"), 422, "invalid rater id"),
    Request("sql-rater", "rater id with SQL", _register("a'; DROP TABLE ratings;--"), 422,
            "invalid rater id"),
    Request("long-rater", "a 300-character rater id", _register("a" * 300), 422,
            "invalid rater id"),
    Request("api-docs", "the generated API docs (they would list the routes)",
            _get("/docs"), 404, ""),
    Request("openapi", "the OpenAPI schema", _get("/openapi.json"), 404, ""),
)
# fmt: on


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    expected: str
    got: str
    passed: bool


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _write_dataset(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("template") / "study.db"
    create_study(out, [MODEL], "set5", root=root, seed=7, device="cpu", allow_modified=True)
    return out


@pytest.fixture(scope="module")
def record() -> Iterator[dict[str, list[Row]]]:
    rows: dict[str, list[Row]] = {"requests": [], "blinding": []}
    yield rows
    if enabled() and len(rows["requests"]) == len(REQUESTS) and rows["blinding"]:
        write_section("MOS server: hostile requests", _section(rows))


def _section(rows: dict[str, list[Row]]) -> str:
    failed = sum(not r.passed for group in rows.values() for r in group)
    intro = (
        f"`tests/test_mos_hostile.py` sent {len(REQUESTS)} hostile requests to a MOS study's "
        "server, each on a fresh study with two registered raters. Each must get its status "
        "with an error message and store nothing; afterwards both raters still rate. Failing "
        f"now: {failed}. The 2000 concurrent ratings are `tests/test_mos_e2e.py` (slow), against "
        "a real server."
    )
    cells = [(r.name, r.what, r.expected, r.got, _yes(r.passed)) for r in rows["requests"]]
    requests = table(("request", "what", "expected", "got", "pass"), cells)
    blinding = table(
        ("check", "expected", "measured", "pass"),
        [(r.name, r.expected, r.got, _yes(r.passed)) for r in rows["blinding"]],
    )
    return f"{intro}\n\n{requests}\n\nBlinding:\n\n{blinding}"


def _yes(passed: bool) -> str:
    return "yes" if passed else "**no**"


def _raters(study: Path) -> Raters:
    app = create_app(study)
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    ann = client.post("/api/raters", json={"rater_id": "ann"}).json()
    bob = client.post("/api/raters", json={"rater_id": "bob"}).json()
    return Raters(
        client=client,
        ann={"Authorization": f"Bearer {ann['token']}"},
        bob={"Authorization": f"Bearer {bob['token']}"},
        item=ann["item"],
        app=app,
    )


def _stored(study: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(study) as conn:
        return conn.execute("SELECT rater_id, item_id, score FROM ratings").fetchall()


@pytest.mark.parametrize("request_", REQUESTS, ids=[r.name for r in REQUESTS])
def test_hostile_request_is_refused(
    request_: Request, study: Path, record: dict[str, list[Row]]
) -> None:
    raters = _raters(study)
    response = request_.send(raters)
    try:
        error = str(response.json().get("error", ""))
    except ValueError:
        error = f"(no JSON: {response.text[:60]!r})"
    problems = []
    if response.status_code != request_.status:
        problems.append(f"status {response.status_code}")
    if not error or request_.needle not in error:
        problems.append(f"message {error!r} lacks {request_.needle!r}")
    if _stored(study):
        problems.append(f"stored {_stored(study)}")
    # The real raters are unaffected.
    ok = raters.client.post("/api/ratings", json=_ann_rating(raters), headers=raters.ann)
    if ok.status_code != 201:
        problems.append(f"ann could not rate afterwards ({ok.status_code})")
    expected = f"{request_.status}" + (f", says {request_.needle!r}" if request_.needle else "")
    got = f"{response.status_code}: {error}"
    record["requests"].append(Row(request_.name, request_.what, expected, got, not problems))
    assert not problems, (problems, response.text)


def test_ids_and_encodings_do_not_unblind(template: Path, record: dict[str, list[Row]]) -> None:
    with sqlite3.connect(template) as conn:
        items = conn.execute("SELECT image, method, item_id, png FROM items").fetchall()
    ids = [item_id for _, _, item_id, _ in items]
    # Each id is hex of secrets.token_hex: 4 bits a character.
    bits = min(4 * len(item_id) for item_id in ids)
    headers = {png[:8] + png[12:16] for _, _, _, png in items}  # signature + first chunk type
    sizes: dict[str, set[int]] = {}
    for image, _, _, png in items:
        sizes.setdefault(image, set()).add(len(png))
    distinct = max(len(s) for s in sizes.values())
    checks = [
        Row("id randomness", "", ">= 128 bits", f"{bits} bits", bits >= 128),
        Row("ids unique", "", f"{len(ids)}", f"{len(set(ids))}", len(set(ids)) == len(ids)),
        Row("encodings", "", "one (PNG, stored)", f"{len(headers)}", len(headers) == 1),
        Row("byte sizes per image", "", "1", f"{distinct}", distinct == 1),
    ]
    record["blinding"].extend(checks)
    assert all(c.passed for c in checks), checks
