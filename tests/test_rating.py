"""Rating against the database: segments from assignments × versions, usage from core.usage.ingest, overrides,
previews, permissions, and partner client-count bands from real accounts and usage."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import SYSTEM
from core.billing import plans, rating
from core.errors import PermissionDenied
from core.usage.ingest import record_events
from tests.billing_factories import BANDS_SPEC, PAGES_SPEC, make_plan, spec

NOW = datetime(2024, 12, 31, tzinfo=UTC)
APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)


def pages(engine, tenant, account_id, *days_qty, prefix="e"):
    """Record `pages` usage: (day, quantity) pairs, committed."""
    with Session(engine) as s, s.begin():
        record_events(s, tenant.staff, tenant.partner_id, [
            {"account_id": account_id, "event_id": f"{prefix}{i}", "metric": "pages", "quantity": str(q),
             "occurred_at": f"{d.isoformat()}T12:00:00Z"} for i, (d, q) in enumerate(days_qty)], now=NOW)


def assign(engine, actor, partner_id, account_id, plan_id, day, overrides=None, plan_partner_id=None):
    with Session(engine) as s, s.begin():
        plans.assign_plan(s, actor, partner_id, account_id, plan_id=plan_id, effective_from=day, overrides=overrides,
                          plan_partner_id=plan_partner_id)


def test_single_plan_month(world, db, session):
    a = world.a
    _, plan_id = make_plan(db, a.staff)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    pages(db, a, a.account_id, (date(2024, 4, 3), 700), (date(2024, 4, 20), 500), (date(2024, 5, 1), 999))
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert [(ln.label, ln.quantity, ln.amount) for ln in r.lines] == [
        ("pages", D(1200), D("116.00")), ("base", D(0), D("90.00"))]
    assert r.lines[0].explanation == "1,200 pages: 1,000 × 0.10 + 200 × 0.08"
    assert r.total == D("206.00") and r.currency == "EUR"


def test_two_segment_month_shows_both_parts(world, db, session):
    """A new version from 11 April: the old prices for 1–10 April, the new ones for 11–30 April."""
    a = world.a
    pid, plan_id = make_plan(db, a.staff, spec_=spec(PAGES_SPEC, charges=[
        {"id": "pages", "metric": "pages", "model": "per_unit", "unit_price": "0.10", "unit": "pages"}]))
    assign(db, a.staff, pid, a.account_id, plan_id, date(2024, 1, 1))
    with Session(db) as s, s.begin():
        plans.new_version(s, a.staff, pid, plan_id, effective_from=date(2024, 4, 11), spec=spec(PAGES_SPEC, charges=[
            {"id": "pages", "metric": "pages", "model": "per_unit", "unit_price": "0.08", "unit": "pages"}],
            fees=[{"id": "base", "kind": "base", "amount": "120"}]))
    pages(db, a, a.account_id, (date(2024, 4, 5), 1000), (date(2024, 4, 11), 1500), (date(2024, 4, 30), 500))
    segs = rating.segments_for(session, pid, a.account_id, APR1, APR30)
    assert [(s.start, s.end, s.usage["pages"]) for s in segs] == [
        (APR1, date(2024, 4, 10), D(1000)), (date(2024, 4, 11), APR30, D(2000))]
    r = rating.rate_account(session, a.staff, pid, a.account_id, APR1, APR30)
    assert [(ln.label, ln.amount) for ln in r.lines] == [
        ("pages (2024-04-01 – 2024-04-10)", D("100.00")), ("base (2024-04-01 – 2024-04-10)", D("30.00")),
        ("pages (2024-04-11 – 2024-04-30)", D("160.00")), ("base (2024-04-11 – 2024-04-30)", D("80.00"))]
    assert r.total == D("370.00")


def test_plan_change_mid_month_and_overrides(world, db, session):
    a = world.a
    pid, cheap = make_plan(db, a.staff, code="cheap")
    _, other = make_plan(db, a.staff, code="flat", spec_=spec(PAGES_SPEC, charges=[], fees=[
        {"id": "flat", "kind": "flat", "amount": "300"}]))
    assign(db, a.staff, pid, a.account_id, cheap, date(2024, 1, 1), overrides={"fees.base.amount": "60"})
    assign(db, a.staff, pid, a.account_id, other, date(2024, 4, 16))
    r = rating.rate_account(session, a.staff, pid, a.account_id, APR1, APR30)
    assert [(ln.label, ln.amount) for ln in r.lines] == [
        ("pages (2024-04-01 – 2024-04-15)", D("0.00")), ("base (2024-04-01 – 2024-04-15)", D("30.00")),
        ("flat (2024-04-16 – 2024-04-30)", D("150.00"))]
    assert "prorated 15/30 days" in r.lines[1].explanation


def test_no_plan_rates_to_zero_and_gaps_are_free(world, db, session):
    a = world.a
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert r.lines == () and r.total == 0 and r.currency == "EUR"
    _, plan_id = make_plan(db, a.staff)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 4, 21))
    r = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert [ln.amount for ln in r.lines if ln.fee_id] == [D("30.00")]  # 90 × 10/30


def test_preview_month_to_date(world, db, session):
    a = world.a
    _, plan_id = make_plan(db, a.staff)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    pages(db, a, a.account_id, (date(2024, 4, 3), 700), (date(2024, 4, 20), 500))
    r = rating.preview_month_to_date(session, a.staff, a.partner_id, a.account_id, today=date(2024, 4, 10))
    assert (r.period_start, r.period_end) == (APR1, APR30)
    assert [(ln.quantity, ln.amount) for ln in r.lines] == [(D(700), D("70.00")), (D(0), D("90.00"))]
    assert r.total == D("160.00")


def test_rating_permissions(world, db, session):
    a = world.a
    mgr = world.actor("manager")
    assert rating.rate_account(session, mgr, a.partner_id, a.account_id, APR1, APR30).total == 0
    for actor, acc in [(mgr, a.other_account_id), (world.actor("user"), a.account_id),
                       (world.actor("annotator"), a.account_id), (world.b.staff, a.account_id)]:
        with pytest.raises(PermissionDenied):
            rating.rate_account(session, actor, a.partner_id, acc, APR1, APR30)
    with pytest.raises(PermissionDenied):
        rating.rate_partner(session, world.b.staff, a.partner_id, APR1, APR30)


def _band_world(db, world):
    """Partner A with 251 customer accounts (the world's two included). Active clients per month:
    Jan 99, Feb 100, Mar 250, Apr 251; plus usage that never counts."""
    a = world.a
    with Session(db, expire_on_commit=False) as s, s.begin():
        ids = [a.account_id, a.other_account_id] + [
            accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name=f"Client {i}", country="NO").id
            for i in range(249)]
        extra = [accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name=f"Extra {i}", country="NO").id
                 for i in range(3)]
    events = []
    for month, n in ((1, 99), (2, 100), (3, 250), (4, 251)):
        for acc in ids[:n]:
            events.append({"account_id": acc, "event_id": f"m{month}", "metric": "documents", "quantity": "1",
                           "occurred_at": f"2024-{month:02d}-15T08:00:00Z"})
        # never counts: the always-included year-end integration, and a metric that does not count
        events.append({"account_id": extra[0], "event_id": f"ye{month}", "metric": "documents", "quantity": "1",
                       "occurred_at": f"2024-{month:02d}-15T08:00:00Z", "properties": {"integration": "year_end"}})
        events.append({"account_id": extra[1], "event_id": f"api{month}", "metric": "api_requests", "quantity": "1",
                       "occurred_at": f"2024-{month:02d}-15T08:00:00Z"})
        if month >= 3:  # deleted on 10 March (below): its March usage does not make it an active client
            events.append({"account_id": extra[2], "event_id": f"del{month}", "metric": "documents", "quantity": "1",
                           "occurred_at": f"2024-03-0{month}T08:00:00Z"})
    with Session(db) as s, s.begin():
        record_events(s, a.staff, a.partner_id, events, now=NOW)
        accounts.delete_account(s, SYSTEM, a.partner_id, extra[2])
        s.execute(text("UPDATE customer_accounts SET deleted_at = '2024-03-10T09:00:00Z' WHERE id = :i"),
                  {"i": extra[2]})
    return ids, extra


def test_partner_bands_99_100_250_251(world, db, session):
    a = world.a
    ids, extra = _band_world(db, world)
    house = house_partner(session).id
    _, bands = make_plan(db, world.admin, code="bands", partner_id=house, spec_=BANDS_SPEC, subject="partner")
    with Session(db) as s, s.begin():
        plans.assign_partner_plan(s, world.admin, a.partner_id, plan_id=bands, effective_from=date(2024, 1, 1))
    expected = {1: (99, "200.00"), 2: (100, "500.00"), 3: (250, "500.00"), 4: (251, "1000.00")}
    for month, (clients, amount) in expected.items():
        start, end = rating.month_of(date(2024, month, 1))
        assert rating.partner_active_clients(session, a.partner_id, start, end) == clients
        r = rating.rate_partner(session, world.admin, a.partner_id, start, end)
        assert [(ln.quantity, ln.amount) for ln in r.lines] == [(D(clients), D(amount))]
    # the staff of the partner see what the platform charges them
    assert rating.rate_partner(session, a.staff, a.partner_id, APR1, APR30).total == D("1000.00")
    # exclusions are configurable: without the property exclusion the year-end client counts too
    assert rating.partner_active_clients(session, a.partner_id, APR1, APR30, exclude_properties={}) == 252
    assert rating.partner_active_clients(session, a.partner_id, APR1, APR30, exclude_metrics={"documents"}) == 0
    assert rating.partner_active_clients(session, world.b.partner_id, APR1, APR30) == 0
    # an account deleted later still counts before its deletion (re-rating the past gives the same answer)
    assert rating.partner_active_clients(session, a.partner_id, date(2024, 3, 1), date(2024, 3, 9)) == 1
