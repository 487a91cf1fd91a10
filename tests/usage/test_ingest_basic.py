from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text

from core.errors import PermissionDenied
from core.usage import periods
from core.usage.aggregates import period_usage
from core.usage.ingest import record_events
from core.usage.validation import BatchValidationError


def ev(acc, eid, metric="documents", q="1", at="2026-01-05T10:00:00Z", **kw):
    return {"account_id": acc, "event_id": eid, "metric": metric, "quantity": q, "occurred_at": at, **kw}


NOW = datetime(2026, 3, 1, tzinfo=UTC)


def test_record_and_period_usage(world, session):
    a = world.a
    res = record_events(session, a.staff, a.partner_id, [
        ev(a.account_id, "e1", q="2.5"),
        ev(a.account_id, "e2", q="3"),
        ev(a.account_id, "e3", metric="data_mb", q="10"),
        ev(a.account_id, "e4", metric="data_mb", q="7"),
        ev(a.account_id, "e5", metric="keywords", q="5", at="2026-01-06T00:00:00Z"),
        ev(a.account_id, "e6", metric="keywords", q="4", at="2026-01-07T00:00:00Z"),
        ev(a.account_id, "e7", metric="unique_recipients", properties={"recipient": "x"}),
        ev(a.account_id, "e8", metric="unique_recipients", properties={"recipient": "x"}, at="2026-01-09T00:00:00Z"),
        ev(a.account_id, "e9", metric="unique_recipients", properties={"recipient": "y"}),
        ev(a.account_id, "e10", metric="api_requests", q="0"),
        ev(a.account_id, "e11", metric="api_requests", q="1500"),
        ev(a.account_id, "e1", q="99"),  # in-batch duplicate
    ], now=NOW)
    session.commit()
    assert (res.inserted, res.duplicates, res.corrections) == (11, 1, 0)
    u = period_usage(session, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))
    assert u["documents"] == Decimal("5.5")
    assert u["data_mb"] == Decimal("17")  # MB transferred: summed
    assert u["keywords"] == Decimal("4")  # latest value
    assert u["unique_recipients"] == 2  # distinct values of the property
    assert u["api_requests"] == 1500  # requests reported per event: summed
    assert u["pages"] == 0
    again = record_events(session, a.staff, a.partner_id, [ev(a.account_id, "e1", q="2.5")], now=NOW)
    assert (again.inserted, again.duplicates) == (0, 1)


def test_bad_rows(world, session):
    a, b = world.a, world.b
    with pytest.raises(BatchValidationError) as exc:
        record_events(session, a.staff, a.partner_id, [
            ev(a.account_id, "ok"),
            ev(b.account_id, "x1"),
            ev(a.account_id, "x2", metric="nope"),
            ev(a.account_id, "x3", q="-1"),
            ev(a.account_id, "x4", q="abc"),
            ev(a.account_id, "x5", at="yesterday"),
            ev(a.account_id, "x6", at="2027-01-01T00:00:00Z"),
        ], now=NOW)
    assert set(exc.value.rows) == {2, 3, 4, 5, 6, 7}
    assert session.execute(text("select count(*) from usage_events")).scalar() == 0


def test_permission(world, session):
    a, b = world.a, world.b
    with pytest.raises(PermissionDenied):
        record_events(session, b.staff, a.partner_id, [ev(a.account_id, "e1")], now=NOW)
    with pytest.raises(PermissionDenied):
        record_events(session, a.users["manager"], a.partner_id, [ev(a.account_id, "e1")], now=NOW)


def test_locked_period_goes_to_corrections(world, session):
    a = world.a
    periods.lock_period(session, a.partner_id, a.account_id, date(2026, 1, 1))
    res = record_events(session, a.staff, a.partner_id, [ev(a.account_id, "late"),
                                                          ev(a.account_id, "feb", at="2026-02-02T00:00:00Z")],
                        now=NOW)
    assert (res.inserted, res.corrections) == (1, 1)
    assert periods.is_locked(session, a.partner_id, a.account_id, date(2026, 1, 20))
    assert period_usage(session, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))["documents"] == 0


def test_partly_stored_batch_counts_only_the_new_events(world, session):
    """A batch with an event already stored (here in the middle, so the direct COPY fails on it) is
    inserted idempotently instead; a batch whose first or last event is stored goes there directly."""
    a = world.a
    first = record_events(session, a.staff, a.partner_id, [ev(a.account_id, "p1"), ev(a.account_id, "p2")], now=NOW)
    again = record_events(session, a.staff, a.partner_id,
                          [ev(a.account_id, f"p{i}", q=str(i)) for i in (3, 2, 4)], now=NOW)
    session.commit()
    assert (first.inserted, again.inserted, again.duplicates) == (2, 2, 1)
    assert [(g.first_event_id, g.last_event_id, g.events) for g in again.groups] == [("p3", "p4", 2)]
    u = period_usage(session, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))
    assert u["documents"] == Decimal(1 + 1 + 3 + 4)
    assert session.execute(text("SELECT count(*) FROM usage_events WHERE account_id = :a"),
                           {"a": a.account_id}).scalar() == 4
    retry = record_events(session, a.staff, a.partner_id, [ev(a.account_id, "p4"), ev(a.account_id, "p5")], now=NOW)
    assert (retry.inserted, retry.duplicates) == (1, 1)
