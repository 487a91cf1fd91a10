"""Webhooks against a real HTTP receiver that verifies the signature and fails on purpose a few times."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.errors import PermissionDenied, ValidationError
from core.notify import outbox, webhooks
from tests.api.conftest import auth
from tests.api.servers import serve


class Receiver:
    """Answers 500 to the first `fail` deliveries, then 204; records what it verified."""

    def __init__(self, fail: int = 0):
        self.fail, self.secret = fail, ""
        self.seen: list[dict] = []
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            body = await request.body()
            ok = webhooks.verify(self.secret, request.headers.get("Reseller-Signature"), body)
            self.seen.append({"ok": ok, "event": json.loads(body), "id": request.headers.get("Reseller-Event-Id")})
            if not ok:
                return Response(status_code=400)
            if self.fail > 0:
                self.fail -= 1
                return Response("busy", status_code=500)
            return Response(status_code=204)


def _endpoint(db, actor, url, types=("account.created", "statement.finalised")):
    with Session(db) as s, s.begin():
        new = webhooks.create_endpoint(s, actor, actor.partner_id, url=url, event_types=list(types))
        return new.endpoint.id, new.secret


def _deliveries(db):
    with db.connect() as c:
        return c.execute(text("SELECT id, status, attempts, response_code, last_error, event_type, replay_of "
                              "FROM webhook_deliveries ORDER BY id")).all()


def test_signed_delivery_with_retries_backoff_and_replay(world, db, client, make_key):
    a = world.a
    recv = Receiver(fail=2)
    with serve(recv.app) as url:
        _, recv.secret = _endpoint(db, a.staff, f"{url}/hook")
        # a machine provisions a customer: the account.created event is queued with the account
        r = client.post("/v1/accounts", headers=auth(make_key(a.staff, ["accounts:write"])),
                        json={"name": "Hooked Ltd", "country": "NO"})
        assert r.status_code == 201
        [d] = _deliveries(db)
        assert (d.status, d.attempts, d.event_type) == ("pending", 0, "account.created")
        t0 = datetime.now(UTC)
        assert webhooks.deliver_due(db, t0) == 1  # 500
        assert webhooks.deliver_due(db, t0 + timedelta(seconds=30)) == 0  # backing off (1 minute)
        assert webhooks.deliver_due(db, t0 + timedelta(minutes=1)) == 1  # 500 again
        [d] = _deliveries(db)
        assert (d.status, d.attempts, d.response_code) == ("pending", 2, 500) and "HTTP 500" in d.last_error
        assert webhooks.deliver_due(db, t0 + timedelta(minutes=2)) == 0  # next after 2 more minutes
        assert webhooks.deliver_due(db, t0 + timedelta(minutes=3)) == 1  # delivered
        [d] = _deliveries(db)
        assert (d.status, d.attempts, d.response_code, d.last_error) == ("delivered", 3, 204, None)
        assert [s["ok"] for s in recv.seen] == [True, True, True]
        event = recv.seen[-1]["event"]
        assert event["type"] == "account.created" and event["data"]["name"] == "Hooked Ltd"
        assert event["data"]["id"] == str(r.json()["account"]["id"]) and recv.seen[-1]["id"] == event["id"]
        # replay: a copy with the same event id, delivered again
        with Session(db) as s, s.begin():
            webhooks.replay(s, a.staff, a.partner_id, d.id)
        assert webhooks.deliver_due(db, t0 + timedelta(minutes=4)) == 1
        assert [x.status for x in _deliveries(db)] == ["delivered", "delivered"]
        assert _deliveries(db)[1].replay_of == d.id
        assert recv.seen[-1]["id"] == event["id"]


def test_deliveries_give_up_after_a_day(world, db):
    recv = Receiver(fail=10_000)
    with serve(recv.app) as url:
        _, recv.secret = _endpoint(db, world.a.staff, f"{url}/hook")
        with Session(db) as s, s.begin():
            accounts.create_account(s, world.a.staff, name="Never heard of", country="NO")
        t = datetime.now(UTC)
        for _ in range(40):
            webhooks.deliver_due(db, t)
            t += timedelta(hours=2)
        [d] = _deliveries(db)
    assert d.status == "failed" and 10 <= d.attempts <= 25  # 1, 2, 4 ... 120 minutes apart, for a day


def test_events_reach_only_subscribed_endpoints_of_the_partner(world, db):
    a, b = world.a, world.b
    _endpoint(db, a.staff, "http://127.0.0.1:9/a", types=["wallet.balance_low"])
    _endpoint(db, b.staff, "http://127.0.0.1:9/b", types=["wallet.balance_low", "account.created"])
    with db.begin() as c:
        outbox.notify(c, a.partner_id, "low_balance", "Low", "Buy credits.")
        outbox.notify(c, a.partner_id, "charge_declined", "Declined", "no event for this kind")
    with Session(db) as s, s.begin():
        accounts.create_account(s, a.staff, name="Only A", country="NO")
    rows = _deliveries(db)
    assert [r.event_type for r in rows] == ["wallet.balance_low"]
    with db.connect() as c:
        payload = c.execute(text("SELECT payload FROM webhook_deliveries")).scalar()
    assert payload["partner_id"] == a.partner_id and payload["data"]["subject"] == "Low"


def test_signature_verification():
    body = b'{"a":1}'
    header = webhooks.sign("whsec_x", 1_800_000_000, body)
    assert webhooks.verify("whsec_x", header, body, now=1_800_000_100)
    assert not webhooks.verify("whsec_y", header, body, now=1_800_000_100)  # wrong secret
    assert not webhooks.verify("whsec_x", header, b'{"a":2}', now=1_800_000_100)  # body changed
    assert not webhooks.verify("whsec_x", header, body, now=1_800_001_000)  # too old: a replay
    assert not webhooks.verify("whsec_x", "garbage", body)


def test_endpoint_rules(world, db):
    a = world.a
    with Session(db) as s, s.begin():
        with pytest.raises(ValidationError):
            webhooks.create_endpoint(s, a.staff, a.partner_id, url="ftp://x", event_types=["account.created"])
        with pytest.raises(ValidationError):
            webhooks.create_endpoint(s, a.staff, a.partner_id, url="https://x.example", event_types=["nope"])
        with pytest.raises(PermissionDenied):
            webhooks.create_endpoint(s, a.users["manager"], a.partner_id, url="https://x.example",
                                     event_types=["account.created"])
        with pytest.raises(PermissionDenied):
            webhooks.list_endpoints(s, a.staff, world.b.partner_id)


def test_disabled_endpoint_fails_its_pending_deliveries(world, db):
    a = world.a
    ep, _ = _endpoint(db, a.staff, "http://127.0.0.1:9/x")
    with Session(db) as s, s.begin():
        accounts.create_account(s, a.staff, name="X", country="NO")
        webhooks.set_endpoint_active(s, a.staff, a.partner_id, ep, False)
    webhooks.deliver_due(db, datetime.now(UTC))
    [d] = _deliveries(db)
    assert (d.status, d.last_error) == ("failed", "endpoint disabled")


def test_unreachable_receiver_is_an_error_not_a_crash(world, db):
    _endpoint(db, world.a.staff, "http://127.0.0.1:9/x")  # port 9: nothing listens
    with Session(db) as s, s.begin():
        accounts.create_account(s, world.a.staff, name="X", country="NO")
    assert webhooks.deliver_due(db, datetime.now(UTC)) == 1
    [d] = _deliveries(db)
    assert d.status == "pending" and d.response_code is None and "ConnectError" in d.last_error


def test_private_addresses_are_refused_unless_allowed(world, db, monkeypatch):
    monkeypatch.delenv("RC_WEBHOOKS_ALLOW_PRIVATE")
    a = world.a
    with Session(db) as s, s.begin():
        for url in ("http://127.0.0.1:8000/x", "http://localhost/x", "http://10.1.2.3/x", "http://[::1]/x",
                    "http://169.254.169.254/latest"):
            with pytest.raises(ValidationError):
                webhooks.create_endpoint(s, a.staff, a.partner_id, url=url, event_types=["account.created"])
    monkeypatch.setenv("RC_WEBHOOKS_ALLOW_PRIVATE", "1")
    ep, _ = _endpoint(db, a.staff, "http://127.0.0.1:9/x")
    monkeypatch.delenv("RC_WEBHOOKS_ALLOW_PRIVATE")  # checked again at delivery (a name may resolve anywhere)
    with Session(db) as s, s.begin():
        accounts.create_account(s, a.staff, name="X", country="NO")
    webhooks.deliver_due(db, datetime.now(UTC))
    [d] = _deliveries(db)
    assert d.status == "pending" and d.last_error.startswith("refused: 127.0.0.1 resolves to a non-public")
