"""Where webhook events come from: a crossed usage threshold (through ingestion), a low balance and a
declined automatic purchase (outbox notifications), a finalised statement and a created account (audit)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.notify import outbox, webhooks
from tests.api.cycle_helpers import month_to_bill
from tests.statements_helpers import MONTH, generate
from tests.test_alerts import api_world, requests  # noqa: F401  (fixture)


def _subscribe(db, actor, types):
    with Session(db) as s, s.begin():
        webhooks.create_endpoint(s, actor, actor.partner_id, url="https://hooks.example/x", event_types=types)


def _events(db):
    with db.connect() as c:
        return c.execute(text("SELECT event_type, payload FROM webhook_deliveries ORDER BY id")).all()


def test_threshold_crossed_is_a_webhook_and_an_email(api_world, db):  # noqa: F811
    a = api_world.a
    _subscribe(db, a.staff, ["usage.threshold_crossed"])
    with db.begin() as c:
        c.execute(text(
            "INSERT INTO usage_daily (partner_id, account_id, metric, day, qty_sum, events, qty_max, last_at, "
            "last_event_id, last_qty) VALUES (:p, :a, 'api_requests', '2024-04-02', 500000, 500000, 1, "
            "'2024-04-02T10:00:00Z', 'bulk', 1)"), {"p": a.partner_id, "a": a.account_id})
    requests(db, a, a.account_id, 1, date(2024, 4, 3), "x")
    requests(db, a, a.account_id, 1, date(2024, 4, 4), "y")  # once per crossing
    [(kind, payload)] = _events(db)
    assert kind == "usage.threshold_crossed"
    data = payload["data"]
    assert (data["account_id"], data["metric"], Decimal(data["threshold"]), Decimal(data["quantity"])) == (
        a.account_id, "api_requests", 500000, 500001)  # decimal strings, never floats
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM outbox WHERE kind = 'threshold_crossed'")).scalar() == 1


def test_wallet_notifications_and_statement_finalised(world, db):
    a = world.a
    _subscribe(db, a.staff, ["wallet.balance_low", "wallet.autobuy_declined", "statement.finalised"])
    with db.begin() as c:
        outbox.notify(c, a.partner_id, "low_balance", "Low", "Buy credits.")
        outbox.notify(c, a.partner_id, "auto_buy_failed", "Declined", "Card declined.")
    month_to_bill(world, db)
    generate(db, a.staff, a.partner_id, MONTH)  # drafts: no event
    assert [e.event_type for e in _events(db)] == ["wallet.balance_low", "wallet.autobuy_declined"]
    from core.statements import lifecycle
    from db.engine import unit_of_work

    with db.connect() as c:
        sid = c.execute(text("SELECT id FROM statements WHERE partner_id = :p"), {"p": a.partner_id}).scalar()
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, sid)
    kind, payload = _events(db)[-1]
    assert kind == "statement.finalised"
    assert payload["data"]["id"] == str(sid) and payload["data"]["number"] and Decimal(payload["data"]["total"]) == 206


def test_a_rolled_back_action_sends_nothing(world, db):
    from core.accounts import accounts

    a = world.a
    _subscribe(db, a.staff, ["account.created"])
    with Session(db) as s:
        accounts.create_account(s, a.staff, name="Never", country="NO")
        s.rollback()
    assert _events(db) == []
