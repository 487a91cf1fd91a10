"""The fast validation path accepts exactly what the reference validation accepts, with the same rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from core.usage import ingest as usage
from core.usage import validation
from core.usage.metrics import get_metrics

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _variants(acc: int) -> list[dict]:
    base = {"account_id": acc, "metric": "documents", "quantity": "1", "occurred_at": "2026-01-05T10:00:00Z",
            "event_id": "e"}
    odd = [
        {"quantity": Decimal("2.5")}, {"quantity": 7}, {"quantity": 2.5}, {"quantity": " 3 "},
        {"quantity": Decimal("1.0000000")}, {"quantity": "1.0000001"}, {"quantity": "-1"}, {"quantity": "NaN"},
        {"quantity": True}, {"quantity": None}, {"quantity": 10 ** 18}, {"quantity": "1e17"},
        {"occurred_at": datetime(2026, 1, 5, 10)}, {"occurred_at": datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=2)))},
        {"occurred_at": date(2026, 1, 5)}, {"occurred_at": " 2026-01-05T10:00:00+01:00 "}, {"occurred_at": "yesterday"},
        {"occurred_at": NOW + timedelta(hours=1)}, {"occurred_at": NOW + timedelta(hours=1, seconds=1)},
        {"occurred_at": "1999-12-31T23:59:59Z"},
        {"account_id": str(acc)}, {"account_id": f" {acc} "}, {"account_id": "x"}, {"account_id": True},
        {"account_id": 999_999_999},
        {"metric": " documents "}, {"metric": "nope"}, {"metric": None},
        {"event_id": " padded "}, {"event_id": 12}, {"event_id": ""}, {"event_id": "x" * 101},
        {"source": "  "}, {"source": "s" * 61}, {"source": 5}, {"source": " cli "},
        {"properties": {"a": 1, "ü": "ø"}}, {"properties": '{"a": 1}'}, {"properties": "[1]"}, {"properties": ""},
        {"properties": {"big": "x" * 5000}},
        {"metric": "unique_recipients", "properties": {"recipient": "r"}},
        {"metric": "unique_recipients", "properties": {"recipient": ""}},
        {"metric": "unique_recipients"},
        {"extra": 1},
    ]
    return [base] + [{**base, **o, "event_id": o.get("event_id", f"v{i}")} for i, o in enumerate(odd)]


def _reference(session, pid, events):
    try:
        return validation._check_reference(session, pid, events, get_metrics(session), default_source="api",
                                      first_row=1, now=NOW)
    except validation.BatchValidationError as exc:
        return ("error", exc.errors)


def test_fast_path_agrees_with_reference_row_by_row(world, session):
    a = world.a
    for ev in _variants(a.account_id):
        events = [ev, {**ev}]  # and an in-batch duplicate
        ref = _reference(session, a.partner_id, events)
        try:
            fast = validation.check_events(session, a.partner_id, events, now=NOW)
        except validation.BatchValidationError as exc:
            fast = ("error", exc.errors)
        assert fast == ref, ev
        try:
            rows, dups, accounts = validation._fast_rows(events, get_metrics(session), "api", NOW)
        except validation._Slow:
            continue
        if not validation._accounts_ok(session, a.partner_id, accounts):
            assert fast[0] == "error", ev
            continue
        assert (rows, dups) == ref, ev  # whatever the fast path decides alone, the reference agrees with


def test_fast_path_whole_batch_and_foreign_account(world, session):
    a, b = world.a, world.b
    good = [{"account_id": a.account_id, "metric": "pages", "quantity": Decimal(i), "event_id": f"g{i}",
             "occurred_at": NOW - timedelta(minutes=i), "properties": {"k": i} if i % 2 else None}
            for i in range(50)]
    assert validation.check_events(session, a.partner_id, good, now=NOW) == _reference(session, a.partner_id, good)
    bad = good + [{**good[0], "account_id": b.account_id, "event_id": "foreign"}]
    with pytest.raises(validation.BatchValidationError) as exc:
        usage.record_events(session, a.staff, a.partner_id, bad, now=NOW)
    assert set(exc.value.rows) == {51}
