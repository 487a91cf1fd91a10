"""Aggregates equal the raw events after random batches (property-based)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from core.usage.aggregates import period_usage
from core.usage.ingest import record_events
from core.usage.metrics import add_metric
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
def test_aggregates_equal_raw_events(engine, owner_engine, batches, start_off, length):
    reset_data(owner_engine)  # TRUNCATE: the owner's right
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


def test_max_and_latest_over_partial_months_read_the_months_row_only_when_it_is_the_answer(engine, owner_engine):
    """Partial months of max and latest metrics take the month's row where the month's maximum or latest event
    lies inside the range and the days otherwise: every case below against the raw events, per account and
    for the partner, with and without monthly buckets."""
    reset_data(owner_engine)
    world = build_world(engine)
    t = world.a
    acc, other = t.account_id, t.other_account_id
    with Session(engine) as s:  # no built-in metric is a max: an operator's
        add_metric(s, world.admin, key="peak_mb", name="Peak storage", unit="MB", aggregation="max")
        s.commit()
    at = lambda d, h=12: datetime(2026, 3, d, h, tzinfo=UTC)  # noqa: E731
    rows = [  # (account, metric, quantity, when)
        (acc, "peak_mb", "90", at(2)), (acc, "peak_mb", "40", at(10)), (acc, "peak_mb", "50", at(28)),  # max before
        (other, "peak_mb", "70", at(12)), (other, "peak_mb", "70", at(3)),  # the maximum on both sides: equal
        (acc, "keywords", "7", at(25)), (acc, "keywords", "3", at(11)),  # the latest after the range's end
        (other, "keywords", "5", at(2)),  # every event outside the range
        (other, "peak_mb", "1", datetime(2026, 4, 2, tzinfo=UTC)), (acc, "keywords", "9", datetime(2026, 4, 30, tzinfo=UTC)),
    ]
    with Session(engine) as s:
        record_events(s, t.staff, t.partner_id, [
            {"account_id": a, "event_id": f"p{i}", "metric": m, "quantity": q, "occurred_at": w}
            for i, (a, m, q, w) in enumerate(rows)], now=NOW)
        s.commit()
        for start, end in [(date(2026, 3, 5), date(2026, 4, 30)), (date(2026, 3, 5), date(2026, 3, 20)),
                           (date(2026, 2, 1), date(2026, 3, 20)), (date(2026, 3, 1), date(2026, 4, 10)),
                           (date(2026, 3, 10), date(2026, 5, 31)), (date(2026, 2, 15), date(2026, 3, 2))]:
            raw = {k: v for k, v in raw_values(s, start, end, t.partner_id).items() if k[2] in ("peak_mb", "keywords")}
            for grain in (None, "month"):
                got: dict = {}
                for r in _values(s, Scope(t.partner_id, None), start, end, level="account", grain=grain):
                    if r.metric in ("peak_mb", "keywords"):
                        key = (r.partner_id, r.account_id, r.metric)
                        got[key] = max(got.get(key, Decimal(0)), r.value) if grain else r.value
                if grain is None:
                    assert got == raw, (start, end)
                partner = {r.metric: r.value for r in _values(s, Scope(t.partner_id, None), start, end,
                                                               level="partner") if r.metric in ("peak_mb", "keywords")}
                assert partner == {m: sum(v for k, v in raw.items() if k[2] == m) for m in ("peak_mb", "keywords")
                                   if any(k[2] == m for k in raw)}, (start, end)
