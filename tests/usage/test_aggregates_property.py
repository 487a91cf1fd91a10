"""Aggregates equal the raw events after random batches (property-based)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core.usage.aggregates import period_usage
from core.usage.ingest import record_events
from core.usage.reports import Scope, _values
from db.testing import reset_data
from tests.factories import build_world
from tests.usage.raw import raw_values

METRICS = ["documents", "api_requests", "data_mb", "keywords", "unique_recipients"]
BASE = datetime(2025, 12, 20, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)

event = st.fixed_dictionaries({
    "acc": st.integers(0, 1),
    "eid": st.integers(0, 40),
    "metric": st.sampled_from(METRICS),
    "q": st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False, allow_infinity=False),
    "minutes": st.integers(0, 60 * 24 * 75),
    "recipient": st.sampled_from(["a", "b", "c", "d"]),
})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(event, min_size=1, max_size=25), min_size=1, max_size=4),
       start_off=st.integers(0, 40), length=st.integers(0, 60))
def test_aggregates_equal_raw_events(engine, batches, start_off, length):
    reset_data(engine)
    world = build_world(engine)
    t = world.a
    accounts = [t.account_id, t.other_account_id]
    with Session(engine) as s:
        for batch in batches:
            events = [{"account_id": accounts[e["acc"]], "event_id": f"e{e['eid']}", "metric": e["metric"],
                       "quantity": e["q"], "occurred_at": BASE + timedelta(minutes=e["minutes"]),
                       "properties": {"recipient": e["recipient"]}} for e in batches[0] + batch]
            record_events(s, t.staff, t.partner_id, events, now=NOW)
            s.commit()
        start = date(2025, 12, 20) + timedelta(days=start_off)
        end = start + timedelta(days=length)
        raw = raw_values(s, start, end, t.partner_id)
        for acc in accounts:
            billed = period_usage(s, t.partner_id, acc, start, end)
            for m in METRICS:
                assert billed[m] == raw.get((t.partner_id, acc, m), Decimal(0)), (acc, m)
        agg = {(r.partner_id, r.account_id, r.metric): r.value
               for r in _values(s, Scope(t.partner_id, None), start, end, level="account")}
        assert {k: v for k, v in agg.items() if v} == {k: v for k, v in raw.items() if v}
        platform = {(r.partner_id, r.metric): r.value for r in _values(s, Scope(None, None), start, end, level="partner")}
        for m in METRICS:
            expected = sum((v for k, v in raw.items() if k[2] == m), Decimal(0))
            assert platform.get((t.partner_id, m), Decimal(0)) == expected
