from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import PermissionDenied
from core.usage import ingest as usage
from core.usage.aggregates import period_usage
from core.usage.ingest import record_events
from core.usage.reports import account_series, usage_history, usage_summary, usage_trend

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def batch(acc, n=200, prefix="e"):
    return [{"account_id": acc, "event_id": f"{prefix}{i}", "metric": "documents", "quantity": "1",
             "occurred_at": f"2026-01-{1 + i % 28:02d}T12:00:00Z", "properties": {"mailing": f"M{i % 3}"}}
            for i in range(n)]


def test_same_batch_from_two_connections_at_once(world, db):
    a = world.a
    barrier = threading.Barrier(2)
    results, errors = [], []

    def send():
        try:
            with Session(db) as s:
                s.execute(text("SELECT 1"))
                barrier.wait()
                results.append(record_events(s, a.staff, a.partner_id, batch(a.account_id), now=NOW))
                s.commit()
        except Exception as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.inserted for r in results) == [0, 200]
    assert sorted(r.duplicates for r in results) == [0, 200]
    with Session(db) as s:
        assert period_usage(s, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))["documents"] == 200
        assert s.execute(text("SELECT sum(qty_sum) FROM usage_monthly")).scalar() == 200


def test_hooks_get_inserted_groups_in_the_transaction(world, session):
    a = world.a
    seen = []
    saved = list(usage.on_events_recorded)
    usage.on_events_recorded.append(lambda s, p, groups: seen.append((p, groups)))
    try:
        record_events(session, a.staff, a.partner_id, batch(a.account_id, 30), now=NOW)
        record_events(session, a.staff, a.partner_id, batch(a.account_id, 30), now=NOW)  # all duplicates
    finally:
        usage.on_events_recorded[:] = saved  # keep the billing hooks for the tests that follow
    (p, groups), (_, none) = seen
    assert p == a.partner_id and none == []
    assert sum(g.events for g in groups) == 30 and sum(g.quantity for g in groups) == 30
    g = next(g for g in groups if g.day == date(2026, 1, 1))
    assert (g.first_event_id, g.last_event_id, g.events) == ("e0", "e28", 2)


@pytest.fixture
def used(world, session):
    a, b = world.a, world.b
    record_events(session, a.staff, a.partner_id, batch(a.account_id, 50), now=NOW)
    record_events(session, a.staff, a.partner_id, batch(a.other_account_id, 20), now=NOW)
    record_events(session, b.staff, b.partner_id, batch(b.account_id, 7), now=NOW)
    session.commit()
    return world


JAN = {"start": date(2026, 1, 1), "end": date(2026, 1, 31)}


def test_scopes_per_role(used, session):
    a, b = used.a, used.b
    assert usage_summary(session, used.admin, **JAN).totals["documents"] == 77
    assert usage_summary(session, used.admin, partner_id=b.partner_id, **JAN).totals["documents"] == 7
    assert usage_summary(session, a.staff, **JAN).totals["documents"] == 70
    with pytest.raises(PermissionDenied):
        usage_summary(session, a.staff, partner_id=b.partner_id, **JAN)
    for role in ("manager", "user", "annotation_manager", "annotator"):
        actor = a.users[role]
        assert usage_summary(session, actor, **JAN).totals["documents"] == 50
        with pytest.raises(PermissionDenied):
            usage_summary(session, actor, partner_id=a.partner_id, account_id=a.other_account_id, **JAN)
        with pytest.raises(PermissionDenied):
            usage_history(session, actor, a.partner_id, a.other_account_id, **JAN)
    with pytest.raises(PermissionDenied):
        usage_history(session, b.staff, a.partner_id, a.account_id, **JAN)


def test_summary_trend_history(used, session):
    a = used.a
    s = usage_summary(session, a.staff, **JAN)
    assert s.top["documents"][0] == ("Customer a1", Decimal(50))
    assert s.previous_totals.get("documents", 0) == 0 and s.change("documents") is None
    trend = usage_trend(session, a.staff, metric="documents", grain="week", **JAN)
    assert sum(p.value for p in trend) == 70
    assert {p.label for p in trend} == {"Customer a1", "Customer a2"}
    top1 = usage_trend(session, a.staff, metric="documents", grain="month", top=1, **JAN)
    assert {p.label for p in top1} == {"Customer a1", "Other customers"}
    series = account_series(session, a.users["user"], a.partner_id, a.account_id, **JAN)
    assert sum(p.value for p in series) == 50 and len({p.bucket for p in series}) == 28
    page = usage_history(session, a.staff, a.partner_id, a.account_id, limit=20, **JAN)
    assert len(page.rows) == 20 and page.has_more
    last = usage_history(session, a.staff, a.partner_id, a.account_id, limit=20, offset=40, **JAN)
    assert len(last.rows) == 10 and not last.has_more
    m1 = usage_history(session, a.staff, a.partner_id, a.account_id, prop_key="mailing", prop_value="M1", **JAN)
    assert len(m1.rows) == 17
    assert not usage_summary(session, a.staff, start=date(2024, 1, 1), end=date(2024, 1, 31)).has_data
