"""MOS study: creation, the rating API (blind, validated, idempotent, resumable), the statistics.

Studies are made from a tiny synthetic dataset (four 32x32 images under a temporary Set5/HR/)
with SRCNN as the model, so each creation takes about a second on a CPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from fastapi.testclient import TestClient

from superres.cli import main
from superres.errors import UnknownDatasetError, UnknownModelError, UnsupportedScaleError
from superres.io.image import read_image, write_image
from superres.mos import (
    CI_METHOD,
    StudyError,
    StudyExistsError,
    StudyNotFoundError,
    compute_results,
    create_study,
    format_markdown,
    mean_ci,
    open_study,
    rater_order,
    t_quantile,
    write_results,
)
from superres.mos import study as study_module
from superres.mos.server import create_app

MODEL = "srcnn-x4"
IMAGES = ("img_a", "img_b", "img_c", "img_gray")
# Every method label a rater must never see, and the dataset's image names.
SECRETS = (MODEL, "srcnn", "bicubic", *IMAGES)


def _write_dataset(root: Path) -> Path:
    hr_dir = root / "Set5" / "HR"
    hr_dir.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0, 1, 32)
    for i, name in enumerate(IMAGES):
        # Smooth content plus noise: something for the model to work on, in 32 x 32 pixels.
        base = 0.5 * ramp[None, :, None] + 0.3 * ramp[None, None, :] * (i + 1) / 4
        rgb = (base + 0.15 * torch.rand(3, 32, 32, generator=gen)).clamp(0, 1)
        write_image(hr_dir / f"{name}.png", rgb, grayscale=name == "img_gray")
    return root


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def template(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("template") / "study.db"
    create_study(out, [MODEL], "set5", root=tiny_root, seed=7, device="cpu", allow_modified=True)
    return out


def _client(study: Path) -> TestClient:
    """A client of the study's app, as a browser on this machine reaches it."""
    return TestClient(create_app(study), base_url="http://127.0.0.1:8000")


@pytest.fixture
def client(study: Path) -> TestClient:
    return _client(study)


def _ratings(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT rater_id, item_id, score FROM ratings").fetchall()
    return {(r, i): s for r, i, s in rows}


def _items_by_method(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT method, item_id FROM items ORDER BY image").fetchall()
    out: dict[str, list[str]] = {}
    for method, item in rows:
        out.setdefault(method, []).append(item)
    return out


def _register(client: TestClient, rater: str | None) -> dict:
    """Register (or resume) ``rater``; the client then sends the token it was issued."""
    response = client.post("/api/raters", json={} if rater is None else {"rater_id": rater})
    assert response.status_code in (200, 201), response.text
    progress = response.json()
    if "token" in progress:
        client.headers["Authorization"] = f"Bearer {progress['token']}"
    return progress


# --- creating -------------------------------------------------------------------------------------


def test_create_stores_every_version_of_every_image(template: Path, tiny_root: Path) -> None:
    info = open_study(template)
    assert info.dataset == "set5"
    assert info.scale == 4
    assert info.seed == 7
    assert info.methods == (MODEL, "bicubic", "hr")
    assert info.kinds == {MODEL: "model", "bicubic": "bicubic", "hr": "hr"}
    assert info.images == IMAGES
    assert info.num_items == len(IMAGES) * 3
    with sqlite3.connect(template) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT item_id, image, method, width, height, png FROM items")
        items = rows.fetchall()
    assert len({i[0] for i in items}) == len(items)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i[0]) for i in items)  # 128 bits
    for _, image, method, width, height, png in items:
        decoded = PIL.Image.open(io.BytesIO(png))
        assert decoded.format == "PNG"
        assert decoded.size == (width, height) == (32, 32)
        assert decoded.mode == ("L" if image == "img_gray" else "RGB")
        assert not decoded.info.get("text")  # no metadata chunk that could name the method
        if method == "hr":  # the HR original, bit-exact
            original = read_image(tiny_root / "Set5" / "HR" / f"{image}.png").rgb
            stored = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255
            stored = torch.from_numpy(stored).permute(2, 0, 1)
            assert torch.equal(stored, original)
    assert not list(template.parent.glob(".*tmp*")), "temporary files left behind"


def test_the_seed_gives_the_pixels_and_orders_but_never_the_ids(
    template: Path, tiny_root: Path, tmp_path: Path
):
    again = tmp_path / "again.db"
    create_study(
        again, [MODEL], "set5", root=tiny_root, seed=7, device="cpu", limit=2, allow_modified=True
    )
    query = "SELECT image, method, item_id, png FROM items"
    with sqlite3.connect(template) as a, sqlite3.connect(again) as b:
        first = {(r[0], r[1]): r[2:] for r in a.execute(query)}
        second = {(r[0], r[1]): r[2:] for r in b.execute(query)}
    # The first two images with the pixels the full study gave them, under fresh ids: knowing
    # the seed (or brute-forcing it) maps no id to its image or method.
    assert len(second) == 2 * 3
    assert all(first[key][1] == second[key][1] for key in second)
    assert not {first[key][0] for key in second} & {second[key][0] for key in second}
    assert open_study(again).images == IMAGES[:2]


def test_every_version_of_an_image_has_the_same_byte_size(template: Path) -> None:
    with sqlite3.connect(template) as conn:
        rows = conn.execute("SELECT image, method, length(png) FROM items").fetchall()
    sizes: dict[str, set[int]] = {}
    for image, _, size in rows:
        sizes.setdefault(image, set()).add(size)
    # One size per image (the HR, the model's and bicubic's versions alike), and one per mode.
    assert all(len(s) == 1 for s in sizes.values()), sizes
    assert len({s for image, (s,) in sizes.items() if image != "img_gray"}) == 1


def test_create_refuses_to_overwrite(study: Path, tiny_root: Path, capsys) -> None:
    before = study.read_bytes()
    with pytest.raises(StudyExistsError, match="never overwritten"):
        create_study(study, [MODEL], "set5", root=tiny_root)
    argv = ["mos", "create", "--models", MODEL, "--dataset", "set5", "--out", str(study)]
    assert main([*argv, "--data-root", str(tiny_root), "-q"]) == 1
    assert "never overwritten" in capsys.readouterr().err
    assert study.read_bytes() == before


def test_create_names_unknown_models_and_datasets(tiny_root: Path, tmp_path: Path, capsys):
    out = tmp_path / "s.db"
    with pytest.raises(UnknownModelError, match="Did you mean 'srcnn-x4'"):
        create_study(out, ["srcnn-x5"], "set5", root=tiny_root)
    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'set15'.*'set5'"):
        create_study(out, [MODEL], "set15", root=tiny_root)
    with pytest.raises(UnsupportedScaleError, match="different factors"):
        create_study(out, ["srresnet-x2", "srresnet-x4"], "set5", root=tiny_root)
    with pytest.raises(StudyError, match="HR original"):
        create_study(out, ["HR"], "set5", root=tiny_root)
    with pytest.raises(StudyError, match="--limit"):
        create_study(out, [MODEL], "set5", root=tiny_root, limit=0)
    argv = ["mos", "create", "--dataset", "set5", "--out", str(out), "--data-root", str(tiny_root)]
    assert main([*argv, "--models", "edsr-x4", "-q"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'edsr-x4'" in err
    assert "edsr-baseline-x4" in err
    assert list(tmp_path.iterdir()) == []


def test_create_writes_atomically(tiny_root: Path, tmp_path: Path, monkeypatch) -> None:
    calls = []
    real = study_module._encode_png

    def failing(rgb: torch.Tensor, *, grayscale: bool) -> bytes:
        calls.append(1)
        if len(calls) == 5:
            raise OSError("disk full")
        return real(rgb, grayscale=grayscale)

    monkeypatch.setattr(study_module, "_encode_png", failing)
    with pytest.raises(OSError, match="disk full"):
        create_study(
            tmp_path / "s.db", [MODEL], "set5", root=tiny_root, device="cpu", allow_modified=True
        )
    assert list(tmp_path.iterdir()) == []  # neither the study nor a temporary file


def test_cli_create_and_limit(tiny_root: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "s.db"
    argv = ["mos", "create", "--models", "bicubic", "--dataset", "set5", "--out", str(out)]
    assert (
        main(
            [
                *argv,
                "--data-root",
                str(tiny_root),
                "--limit",
                "1",
                "--seed",
                "3",
                "-q",
                "--allow-modified",
            ]
        )
        == 0
    )
    assert "1 images x 2 methods" in capsys.readouterr().out
    info = open_study(out)
    assert info.methods == ("bicubic", "hr")  # bicubic is the anchor, listed once
    assert info.num_items == 2


def test_opening_something_that_is_not_a_study(tmp_path: Path) -> None:
    with pytest.raises(StudyNotFoundError, match="mos create"):
        create_app(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()  # opening never creates a file
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StudyError, match="not a MOS study"):
        open_study(other)
    (tmp_path / "text.db").write_text("hello")
    with pytest.raises(StudyError, match="not a MOS study"):
        open_study(tmp_path / "text.db")


# --- the rating API -------------------------------------------------------------------------------


def test_rate_everything_roundtrip(client: TestClient, study: Path) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "Image quality study" in page.text
    progress = _register(client, "ann")
    assert progress["created"] is True
    assert (progress["total"], progress["done"], progress["finished"]) == (12, 0, False)
    given = {}
    for k in range(12):
        item = progress["item"]
        assert item["number"] == k + 1
        image = client.get(item["image_url"])
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        assert PIL.Image.open(io.BytesIO(image.content)).size == (item["width"], item["height"])
        score = k % 5 + 1
        response = client.post(
            "/api/ratings", json={"rater_id": "ann", "item_id": item["item_id"], "score": score}
        )
        assert response.status_code == 201, response.text
        progress = response.json()
        assert progress["status"] == "stored"
        assert progress["done"] == k + 1
        given[("ann", item["item_id"])] = score
    assert progress["finished"] is True
    assert progress["item"] is None
    assert _ratings(study) == given
    assert len(given) == 12  # every item exactly once


def test_rater_never_sees_a_method_or_image_name(client: TestClient) -> None:
    seen = [client.get("/").text]
    images: list[bytes] = []
    seen.extend(json.dumps(_register(client, rater)) for rater in (None, "bob"))
    progress = client.get("/api/raters/bob").json()
    seen.append(json.dumps(progress))
    for score in (1, 5, 3):
        item = progress["item"]
        seen.append(item["image_url"])
        image = client.get(item["image_url"])
        images.append(image.content.lower())
        seen.append(json.dumps(dict(image.headers)))
        response = client.post(
            "/api/ratings", json={"rater_id": "bob", "item_id": item["item_id"], "score": score}
        )
        seen.append(response.text)
        progress = response.json()
    # Errors are rater-facing too.
    seen.append(client.post("/api/ratings", json={"rater_id": "bob", "item_id": "x"}).text)
    seen.append(client.get("/images/nope.png").text)
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == 404
    text = "\n".join(seen).lower()
    for secret in SECRETS:
        assert secret.lower() not in text, secret
        assert all(secret.lower().encode() not in png for png in images), secret
    assert not re.search(r"\bhr\b", text)  # (not in the PNG bytes: two letters occur by chance)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (0, "from 1 (bad) to 5"),
        (6, "from 1 (bad) to 5"),
        (-1, "from 1 (bad) to 5"),
        (3.5, "valid integer"),
        (3.0, "valid integer"),
        ("3", "valid integer"),
        (True, "valid integer"),
        (None, "valid integer"),
    ],
)
def test_invalid_scores_are_rejected(client: TestClient, study: Path, score, expected) -> None:
    item = _register(client, "cy")["item"]["item_id"]
    response = client.post("/api/ratings", json={"rater_id": "cy", "item_id": item, "score": score})
    assert response.status_code == 422
    message = response.json()["error"]
    assert "score" in message
    assert expected in message
    assert _ratings(study) == {}


def test_malformed_bodies_are_rejected_with_a_message(client: TestClient) -> None:
    item = _register(client, "cy")["item"]["item_id"]
    missing = client.post("/api/ratings", json={"rater_id": "cy", "item_id": item})
    assert missing.status_code == 422
    assert "score: Field required" in missing.json()["error"]
    extra = {"rater_id": "cy", "item_id": item, "score": 3, "method": "x"}
    assert client.post("/api/ratings", json=extra).status_code == 422
    not_json = client.post(
        "/api/ratings", content=b"score=3", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422
    assert "error" in not_json.json()


def test_unknown_items_and_raters_are_404(client: TestClient, study: Path) -> None:
    item = _register(client, "dee")["item"]["item_id"]
    response = client.post("/api/ratings", json={"rater_id": "dee", "item_id": "f00d", "score": 3})
    assert response.status_code == 404
    assert "unknown item 'f00d'" in response.json()["error"]
    response = client.post("/api/ratings", json={"rater_id": "nobody", "item_id": item, "score": 3})
    assert response.status_code == 404
    assert "unknown rater 'nobody'" in response.json()["error"]
    assert "register first" in response.json()["error"]
    assert client.get("/api/raters/nobody").status_code == 404
    assert client.get("/images/f00d.png").status_code == 404
    bad = client.post("/api/raters", json={"rater_id": "../etc"})
    assert bad.status_code == 422
    assert "invalid rater id" in bad.json()["error"]
    assert _ratings(study) == {}


def test_duplicate_posts_are_idempotent_and_a_new_score_overwrites(
    client: TestClient, study: Path
) -> None:
    item = _register(client, "eve")["item"]["item_id"]
    body = {"rater_id": "eve", "item_id": item, "score": 4}
    first = client.post("/api/ratings", json=body)
    second = client.post("/api/ratings", json=body)
    assert (first.status_code, first.json()["status"]) == (201, "stored")
    assert (second.status_code, second.json()["status"]) == (200, "unchanged")
    assert second.json()["done"] == 1
    assert _ratings(study) == {("eve", item): 4}
    changed = client.post("/api/ratings", json={**body, "score": 2})
    assert (changed.status_code, changed.json()["status"]) == (200, "updated")
    assert changed.json()["done"] == 1
    assert _ratings(study) == {("eve", item): 2}


def test_reload_resumes_at_the_next_unrated_item(study: Path) -> None:
    client = _client(study)
    progress = _register(client, "fay")
    seen = []
    for score in (2, 4, 5):
        seen.append(progress["item"]["item_id"])
        progress = client.post(
            "/api/ratings", json={"rater_id": "fay", "item_id": seen[-1], "score": score}
        ).json()
    expected_next = progress["item"]["item_id"]
    # "Reload": a new server process on the same file; the rater comes back with its token.
    again = _client(study)
    again.headers["Authorization"] = client.headers["Authorization"]
    resumed = again.get("/api/raters/fay").json()
    assert (resumed["done"], resumed["total"]) == (3, 12)
    assert resumed["item"]["item_id"] == expected_next
    assert _register(again, "fay")["created"] is False
    # The order is the rater's own shuffle, reproducible from the rater id alone.
    order = rater_order(list(_ratings_items(study)), "fay", open_study(study).seed)
    assert order[:4] == [*seen, expected_next]
    assert rater_order(order, "fay", 7) == rater_order(sorted(order), "fay", 7)
    assert rater_order(order, "gus", 7) != rater_order(order, "fay", 7)


def _ratings_items(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT item_id FROM items")]


def test_new_rater_gets_an_id(client: TestClient) -> None:
    for response in (client.post("/api/raters", json={}), client.post("/api/raters")):
        assert response.status_code == 201
        assert re.fullmatch(r"rater-[0-9a-f]{6}", response.json()["rater_id"])
        assert len(response.json()["token"]) >= 43  # 256 bits, URL-safe base64


def test_a_rater_reaches_only_their_own_ratings(client: TestClient, study: Path) -> None:
    ann = _register(client, "ann")
    ann_auth = {"Authorization": f"Bearer {ann['token']}"}
    item = ann["item"]
    bob = client.post("/api/raters", json={"rater_id": "bob"}).json()
    bob_auth = {"Authorization": f"Bearer {bob['token']}"}
    client.headers.pop("Authorization")
    rating = {"rater_id": "ann", "item_id": item["item_id"], "score": 4}
    # No token: refused everywhere but the page and registration.
    for response in (
        client.get("/api/raters/ann"),
        client.post("/api/ratings", json=rating),
        client.get(item["image_url"]),
        client.get("/api/raters/ann", headers={"Authorization": "Basic YW5uOg=="}),
    ):
        assert response.status_code == 401, response.text
        assert "Authorization: Bearer" in response.json()["error"]
    # Another rater's token: cannot read ann's progress, rate as ann, or take over her name.
    assert client.get("/api/raters/ann", headers=bob_auth).status_code == 403
    assert client.post("/api/ratings", json=rating, headers=bob_auth).status_code == 403
    taken = client.post("/api/raters", json={"rater_id": "ann"}, headers=bob_auth)
    assert taken.status_code == 403
    assert "taken" in taken.json()["error"]
    assert client.post("/api/raters", json={"rater_id": "ann"}).status_code == 403
    bogus = {"Authorization": "Bearer " + "x" * 43}
    assert client.get(item["image_url"], headers=bogus).status_code == 403
    assert _ratings(study) == {}
    # Her own token: everything works, and resuming issues no new token.
    assert client.post("/api/ratings", json=rating, headers=ann_auth).status_code == 201
    resumed = client.post("/api/raters", json={"rater_id": "ann"}, headers=ann_auth)
    assert (resumed.status_code, "token" in resumed.json()) == (200, False)
    assert client.get(item["image_url"], headers=bob_auth).status_code == 200
    assert _ratings(study) == {("ann", item["item_id"]): 4}
    with sqlite3.connect(study) as conn:
        stored = dict(conn.execute("SELECT rater_id, token_sha256 FROM raters"))
    assert ann["token"] not in stored.values()  # only its SHA-256 is kept
    assert len(stored["ann"]) == 64


def test_other_hosts_and_long_bodies_are_refused(study: Path) -> None:
    app = create_app(study)
    for base in ("http://evil.example", "http://127.0.0.1.evil.example:8000", "http://testserver"):
        response = TestClient(app, base_url=base).get("/")
        assert response.status_code == 400, base
        assert "127.0.0.1" in response.json()["error"]
    for base in ("http://localhost:8000", "http://[::1]:8000", "http://127.0.0.1"):
        assert TestClient(app, base_url=base).get("/").status_code == 200, base
    assert TestClient(create_app(study, hosts=("*",))).get("/").status_code == 200
    client = _client(study)
    huge = client.post("/api/raters", content=b"{" + b" " * 5000 + b"}")
    assert huge.status_code == 413
    assert "4096 bytes" in huge.json()["error"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"rater_id": "'
        for _ in range(100):
            yield b"a" * 100

    assert client.post("/api/raters", content=chunks()).status_code == 413
    with sqlite3.connect(study) as conn:
        assert conn.execute("SELECT COUNT(*) FROM raters").fetchone() == (0,)


def test_a_study_of_the_first_format_is_served_and_its_raters_claimed(study: Path) -> None:
    with sqlite3.connect(study) as conn:  # as superres-mos/1 wrote it: raters without tokens
        conn.executescript(
            """
            UPDATE meta SET value = 'superres-mos/1' WHERE key = 'format';
            CREATE TABLE old_raters (rater_id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
            INSERT INTO old_raters VALUES ('old', 't');
            DROP TABLE raters;
            ALTER TABLE old_raters RENAME TO raters;
            """
        )
    client = _client(study)
    claimed = client.post("/api/raters", json={"rater_id": "old"})
    assert (claimed.status_code, claimed.json()["created"]) == (200, False)
    token = claimed.json()["token"]
    # Claimed once: from now on the name needs that token.
    assert client.post("/api/raters", json={"rater_id": "old"}).status_code == 403
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/raters/old", headers=auth).status_code == 200
    assert open_study(study).format == "superres-mos/1"


# --- statistics and results -----------------------------------------------------------------------


def test_t_quantiles_match_the_tables() -> None:
    # Two-sided 95% critical values of Student's t (any statistics table), and the normal limit.
    table = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 9: 2.2622, 30: 2.0423, 120: 1.9799}
    for df, value in table.items():
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-4)
    assert t_quantile(0.975, 1e9) == pytest.approx(1.959964, abs=1e-6)
    assert t_quantile(0.025, 3) == pytest.approx(-3.1824, abs=1e-4)
    assert t_quantile(0.5, 5) == 0.0


def test_mean_ci_against_a_hand_computation() -> None:
    ci = mean_ci([5, 4, 4, 3])
    # mean 4; s^2 = (1 + 0 + 0 + 1) / 3; half width = t(0.975, 3) * s / sqrt(4)
    assert ci.mean == 4.0
    assert ci.std == pytest.approx(math.sqrt(2 / 3))
    assert ci.half_width == pytest.approx(3.182446305284 * math.sqrt(2 / 3) / 2)
    assert (ci.low, ci.high) == pytest.approx((4 - 1.2992283, 4 + 1.2992283))
    assert mean_ci([2, 2]).half_width == 0.0
    clipped = mean_ci([5, 5, 4], bounds=(1, 5))
    assert clipped.high == 5.0
    assert clipped.low == pytest.approx(clipped.mean - clipped.half_width)
    assert mean_ci([1, 1, 2], bounds=(1, 5)).low == 1.0
    assert math.isnan(mean_ci([5], bounds=(1, 5)).high)
    assert math.isnan(mean_ci([5]).half_width)
    assert mean_ci([]).n == 0


def test_results_from_hand_made_ratings(study: Path, tmp_path: Path, capsys) -> None:
    items = _items_by_method(study)
    ratings = [
        ("r1", items[MODEL][0], 5),
        ("r1", items[MODEL][1], 4),
        ("r2", items[MODEL][2], 4),
        ("r2", items[MODEL][3], 3),
        ("r1", items["bicubic"][0], 2),
        ("r2", items["bicubic"][1], 2),
        ("r2", items["hr"][0], 5),
    ]
    with sqlite3.connect(study) as conn:
        rows = [("r1",), ("r2",), ("r3",)]
        conn.executemany("INSERT INTO raters (rater_id, created_at) VALUES (?, 't')", rows)
        conn.executemany("INSERT INTO ratings VALUES (?, ?, ?, 't', 't')", ratings)
    results = compute_results(study)
    assert (results.ratings, results.raters, results.images, results.items) == (7, 2, 4, 12)
    by = {m.method: m for m in results.methods}
    assert list(by) == [MODEL, "bicubic", "hr"]
    half = 3.182446305284 * math.sqrt(2 / 3) / 2  # t(0.975, 3) * s / sqrt(n) = 1.2992
    assert by[MODEL].mos == 4.0
    assert by[MODEL].ci_half_width == pytest.approx(half)
    assert by[MODEL].ci_low == pytest.approx(4 - half)
    assert (by[MODEL].ratings, by[MODEL].raters) == (4, 2)
    assert (by["bicubic"].mos, by["bicubic"].ci_half_width, by["bicubic"].raters) == (2.0, 0, 2)
    assert by["hr"].mos == 5.0
    assert by["hr"].ci_half_width is None  # one rating: no interval
    table = format_markdown(results)
    # The interval's upper end is clipped to the scale: a MOS cannot exceed 5.
    assert by[MODEL].ci_high == 5.0
    assert f"| {MODEL} | 4.00 | [2.70, 5.00] (±1.30) | 0.82 | 4 | 2 |" in table
    assert "| hr (original) | 5.00 | – | – | 1 | 1 |" in table

    paths = write_results(results, tmp_path / "out")
    assert [p.name for p in paths] == ["mos.md", "mos.csv", "mos.json", "mos.png"]
    rows = list(csv.DictReader(paths[1].open(encoding="utf-8")))
    assert rows[0]["method"] == MODEL
    assert float(rows[0]["ci_half_width"]) == pytest.approx(half)
    assert rows[2]["ci_half_width"] == ""
    data = json.loads(paths[2].read_text(encoding="utf-8"))
    assert data["ci_method"] == CI_METHOD
    assert data["methods"][0]["mos"] == 4.0
    assert paths[3].read_bytes().startswith(b"\x89PNG")

    assert main(["mos", "results", str(study), "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "7 ratings from 2 rater(s)" in printed
    assert "t(0.975, n-1)" in printed
    assert (tmp_path / "cli" / "mos.png").is_file()
    assert main(["mos", "results", str(study)]) == 0  # default folder beside the study
    assert (study.parent / "study_results" / "mos.json").is_file()


def test_results_cli_on_a_missing_study(tmp_path: Path, capsys) -> None:
    assert main(["mos", "results", str(tmp_path / "nope.db")]) == 1
    assert "mos create" in capsys.readouterr().err
    assert main(["mos", "serve", str(tmp_path / "nope.db"), "--port", "0"]) == 1
