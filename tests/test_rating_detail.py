"""Rating from the database with usage detail (issue 13): a price per value of an event property (one statement
line per value) and a percentage charge with per-transaction rules, from the events as ingested."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

from sqlalchemy.orm import Session

from core.billing import rating
from core.billing.usage_detail import needs
from core.pricing import plan_from_dict
from core.usage.ingest import record_events
from core.usage.periods import lock_period
from tests.billing_factories import make_plan
from tests.test_rating import assign

NOW = datetime(2024, 12, 31, tzinfo=UTC)
APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)

SMS = {"currency": "EUR", "timing": "in_arrears", "charges": [
    {"id": "sms", "metric": "messages", "model": "per_unit", "unit_price": "0.08", "label": "SMS", "unit": "messages",
     "dimension": "country", "dimension_prices": [{"value": "NO", "label": "Norway", "unit_price": "0.05"},
                                                  {"value": "SE", "label": "Sweden", "unit_price": "0.06"}]}],
    "fees": []}
PAYMENTS = {"currency": "EUR", "timing": "in_arrears", "charges": [
    {"id": "pay", "metric": "documents", "model": "percentage", "label": "Payments", "unit": "EUR",
     "rate": "1.2", "fixed_fee": "0.10", "free_events": "3", "free_amount": "500"}], "fees": []}


def record(engine, tenant, events):
    with Session(engine) as s, s.begin():
        record_events(s, tenant.staff, tenant.partner_id, events, now=NOW)


def test_sms_by_country_one_line_per_country(world, db, session):
    a = world.a
    _, plan_id = make_plan(db, a.staff, code="sms", spec_=SMS)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    events = []
    for i, (country, qty) in enumerate([("NO", 700), ("SE", 200), ("NO", 500), ("DK", 100), (None, 50),
                                        ("SE", 300)]):
        ev = {"account_id": a.account_id, "event_id": f"m{i}", "metric": "messages", "quantity": str(qty),
              "occurred_at": f"2024-04-{i + 2:02d}T10:00:00Z"}
        if country:
            ev["properties"] = {"country": country}
        events.append(ev)
    events.append({"account_id": a.account_id, "event_id": "may", "metric": "messages", "quantity": "999",
                   "occurred_at": "2024-05-02T10:00:00Z", "properties": {"country": "NO"}})
    record(db, a, events)
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert [(ln.label, ln.explanation, ln.amount) for ln in r.lines] == [
        ("SMS – Norway", "1,200 messages: 1,200 × 0.05", D("60.00")),
        ("SMS – Sweden", "500 messages: 500 × 0.06", D("30.00")),
        ("SMS – other values", "150 messages: 150 × 0.08", D("12.00")),
    ]
    assert r.total == D("102.00")


def test_events_awaiting_a_correction_are_left_out_like_the_aggregates(world, db, session):
    a = world.a
    _, plan_id = make_plan(db, a.staff, code="sms", spec_=SMS)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    record(db, a, [{"account_id": a.account_id, "event_id": "x1", "metric": "messages", "quantity": "100",
                    "occurred_at": "2024-04-03T10:00:00Z", "properties": {"country": "NO"}}])
    with Session(db) as s, s.begin():
        lock_period(s, a.partner_id, a.account_id, APR1, APR30)
    record(db, a, [{"account_id": a.account_id, "event_id": "x2", "metric": "messages", "quantity": "40",
                    "occurred_at": "2024-04-04T10:00:00Z", "properties": {"country": "NO"}}])
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert [(ln.label, ln.quantity) for ln in r.lines] == [("SMS – Norway", D(100))]


def test_lago_percentage_example_from_ingested_events(world, db, session):
    """https://getlago.com/docs/guide/plans/charges/charge-models/percentage: the first 3 transactions or 500 are
    free; 200, 100, 100, 50 → 0.10 + 1.2 % of 50 = 0.70."""
    a = world.a
    _, plan_id = make_plan(db, a.staff, code="pay", spec_=PAYMENTS)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    record(db, a, [{"account_id": a.account_id, "event_id": f"t{i}", "metric": "documents", "quantity": str(q),
                    "occurred_at": f"2024-04-10T10:0{i}:00Z"} for i, q in enumerate([200, 100, 100, 50])])
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert r.total == D("0.70")
    assert r.lines[0].explanation == "450 EUR: 1.2% of 50.00 (400.00 free) + 1 × 0.10 per transaction (3 free)"


def test_only_charges_that_need_detail_read_the_events():
    assert set(needs(plan_from_dict(SMS))) == {"messages"}
    assert needs(plan_from_dict(PAYMENTS))["documents"].events is True
    plain = {**PAYMENTS, "charges": [{**PAYMENTS["charges"][0], "free_events": None, "free_amount": None,
                                      "fixed_fee": None}]}
    assert needs(plan_from_dict(plain)) == {}
