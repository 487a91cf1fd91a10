"""POST /v1/usage/events and GET /v1/usage/summary through a real uvicorn, with real API keys."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

from sqlalchemy import text

from tests.api.conftest import auth


def ev(acc, eid, metric="documents", q=1, at="2026-01-05T10:00:00Z", **kw):
    return {"account_id": acc, "event_id": eid, "metric": metric, "quantity": q, "occurred_at": at, **kw}


def test_post_events_accepts_and_reports_duplicates(world, client, make_key, db):
    a = world.a
    h = auth(make_key(a.staff, ["usage:write", "usage:read"]))
    r = client.post("/v1/usage/events", headers=h, json={"events": [
        ev(a.account_id, "e1", q=2.5), ev(a.account_id, "e2", q="3"), ev(a.account_id, "e1", q=9)]})
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3, "accepted": 2, "duplicates": 1, "corrections": 0, "refused": 0, "errors": []}
    r = client.post("/v1/usage/events", headers=h, json={"events": [ev(a.account_id, "e2", q="3"),
                                                                      ev(a.account_id, "e3", q="0.000001"),
                                                                      ev(a.account_id, "e4", q=100, at="2026-01-06T00:00:00Z")]})
    assert r.json()["accepted"] == 2 and r.json()["duplicates"] == 1
    r = client.get("/v1/usage/summary", headers=h, params={"start": "2026-01-01", "end": "2026-01-31"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [  # exact: quantities never pass through float, and never as 1E+2
        {"account_id": a.account_id, "metric": "documents", "day": "2026-01-05", "value": "5.500001"},
        {"account_id": a.account_id, "metric": "documents", "day": "2026-01-06", "value": "100"}]
    with db.connect() as c:  # the one ingestion path audited the batch as the key
        who = c.execute(text("SELECT actor_email FROM audit_log WHERE action = 'usage.import'")).scalars().all()
    assert who and all(w.startswith("api-key:") for w in who)


def test_refused_events_are_listed_with_index_and_nothing_is_written(world, client, make_key, db):
    a, b = world.a, world.b
    h = auth(make_key(a.staff, ["usage:write"]))
    r = client.post("/v1/usage/events", headers=h, json={"events": [
        ev(a.account_id, "ok1"), ev(a.account_id, "bad1", q=-1), ev(b.account_id, "foreign"),
        ev(a.account_id, "bad2", metric="nope")]})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    p = r.json()
    assert p["status"] == 422 and p["accepted"] == 0 and p["refused"] == 3
    by_index = {e["index"]: e["pointer"] for e in p["errors"]}
    assert by_index == {1: "#/events/1/quantity", 2: "#/events/2/account_id", 3: "#/events/3/metric"}
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM usage_events")).scalar() == 0


def test_scopes_limit_what_a_key_may_do(world, client, make_key):
    a = world.a
    read_only = auth(make_key(a.staff, ["usage:read"]))
    r = client.post("/v1/usage/events", headers=read_only, json={"events": [ev(a.account_id, "x")]})
    assert r.status_code == 403 and r.json()["title"] == "Forbidden"
    writer = auth(make_key(a.staff, ["usage:write"]))
    assert client.get("/v1/usage/summary", headers=writer,
                      params={"start": "2026-01-01", "end": "2026-01-02"}).status_code == 403
    assert client.get("/v1/statements", headers=writer).status_code == 403
    assert client.post("/v1/accounts", headers=writer, json={"name": "X", "country": "NO"}).status_code == 403


def test_missing_bad_and_revoked_keys_get_401(world, client, make_key, db):
    from sqlalchemy.orm import Session

    from core.accounts import apikeys

    assert client.get("/v1/statements").status_code == 401
    r = client.get("/v1/statements", headers=auth("rck_1_1_" + "x" * 43))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    token = make_key(world.a.staff, ["statements:read"])
    assert client.get("/v1/statements", headers=auth(token)).status_code == 200
    key_id = int(token.split("_")[2])
    with Session(db) as s, s.begin():
        apikeys.revoke_key(s, world.a.staff, world.a.partner_id, key_id)
    assert client.get("/v1/statements", headers=auth(token)).status_code == 401
    # a secret of another key with this key's id: refused (the hash is compared, not just the id)
    other = make_key(world.a.staff, ["statements:read"])
    forged = f"rck_{world.a.partner_id}_{key_id}_{other.split('_', 3)[3]}"
    assert client.get("/v1/statements", headers=auth(forged)).status_code == 401


def test_idempotency_key_replays_the_answer_and_refuses_another_body(world, client, make_key, db):
    a = world.a
    h = {**auth(make_key(a.staff, ["usage:write"])), "Idempotency-Key": "batch-1"}
    body = {"events": [ev(a.account_id, "i1"), ev(a.account_id, "i2")]}
    first = client.post("/v1/usage/events", headers=h, json=body)
    again = client.post("/v1/usage/events", headers=h, json=body)
    assert first.json()["accepted"] == 2
    assert again.json() == first.json()  # the first answer, not "2 duplicates"
    assert again.headers.get("idempotent-replayed") == "true"
    other = client.post("/v1/usage/events", headers=h, json={"events": [ev(a.account_id, "i3")]})
    assert other.status_code == 422 and "different request" in other.json()["detail"]
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM usage_events")).scalar() == 2
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'usage.import'")).scalar() == 1


def test_concurrent_retries_with_one_idempotency_key_do_the_work_once(world, client, make_key, api_url, db):
    import httpx

    a = world.a
    h = {**auth(make_key(a.staff, ["usage:write"])), "Idempotency-Key": "same"}
    body = {"events": [ev(a.account_id, f"c{i}") for i in range(500)]}
    answers = []

    def send():
        answers.append(httpx.post(f"{api_url}/v1/usage/events", headers=h, json=body, timeout=60).json())

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [x["accepted"] for x in answers] == [500] * 4
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'usage.import'")).scalar() == 1


def test_limits_body_size_batch_size_and_bad_json(world, db, make_key):
    import httpx

    from api.main import create_app
    from tests.api.servers import serve

    a = world.a
    h = auth(make_key(a.staff, ["usage:write"]))
    with serve(create_app(db, rate=1000, burst=1000, max_body=2000)) as url, httpx.Client(base_url=url) as c:
        big = {"events": [ev(a.account_id, f"b{i}") for i in range(40)]}
        r = c.post("/v1/usage/events", headers=h, json=big)
        assert r.status_code == 413 and r.json()["status"] == 413
        r = c.post("/v1/usage/events", headers={**h, "Content-Type": "application/json"}, content=b"{not json")
        assert r.status_code == 400

        def chunks():  # no Content-Length: counted while it streams
            yield b'{"events": ['
            for i in range(40):
                yield json.dumps(ev(a.account_id, f"s{i}")).encode() + b","
            yield b"{}]}"

        r = c.post("/v1/usage/events", headers={**h, "Content-Type": "application/json"}, content=chunks())
        assert r.status_code == 413 and r.json()["status"] == 413
        r = c.post("/v1/accounts", headers={**h, "Content-Type": "application/json"}, content=chunks())
        assert r.status_code == 413 and r.json()["type"] == "/problems/too-large"  # read by FastAPI itself
        r = c.get("/v1/nothing-here", headers=h)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    with serve(create_app(db, rate=1000, burst=1000)) as url, httpx.Client(base_url=url, timeout=60) as c:
        r = c.post("/v1/usage/events", headers=h,
                   content=json.dumps({"events": [ev(a.account_id, f"n{i}") for i in range(10_001)]}))
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/events"
        r = c.post("/v1/usage/events", headers=h, json={"events": [], "extra": 1})
        assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "#/extra"


def test_rate_limit_answers_429_with_retry_after(world, db, make_key):
    import httpx

    from api.main import create_app
    from tests.api.servers import serve

    h = auth(make_key(world.a.staff, ["statements:read"]))
    other = auth(make_key(world.a.staff, ["statements:read"], name="other"))
    with serve(create_app(db, rate=0.5, burst=3)) as url, httpx.Client(base_url=url) as c:
        codes = [c.get("/v1/statements", headers=h).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.get("/v1/statements", headers=h)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["type"] == "/problems/rate-limited"
        assert c.get("/v1/statements", headers=other).status_code == 200  # per key


def test_last_used_is_updated_on_every_use(world, client, make_key, db):
    token = make_key(world.a.staff, ["statements:read"])
    with db.connect() as c:
        assert c.execute(text("SELECT last_used_at FROM api_keys")).scalar() is None
    client.get("/v1/statements", headers=auth(token))
    with db.connect() as c:
        used = c.execute(text("SELECT last_used_at FROM api_keys")).scalar()
    assert used is not None and used <= datetime.now(UTC)
