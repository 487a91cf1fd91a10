"""Closed months' distinct counts (migration 0021): the rollups ingestion keeps equal a rebuild from the daily
distinct values, whatever the order and concurrency of the batches, and the dashboards' answers from them
equal the raw events for ranges with whole months, at every level and grain."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.usage.ingest import record_events
from core.usage.reports import Scope, _values
from db.testing import reset_data
from tests.factories import build_world
from tests.usage.raw import raw_values

BASE = datetime(2025, 11, 1, tzinfo=UTC)  # five months of events: Nov 2025 - Mar 2026
NOW = datetime(2026, 6, 1, tzinfo=UTC)
METRICS = ["unique_recipients", "documents", "api_requests", "data_mb", "keywords"]

_REBUILT_GAPS = """
SELECT partner_id, metric, month, prev, account_id, count(*) FROM (
  SELECT partner_id, metric, account_id, month, coalesce(lag(month) OVER (
           PARTITION BY partner_id, metric, account_id, value ORDER BY month), DATE '0001-01-01') AS prev
  FROM (SELECT DISTINCT partner_id, metric, account_id, value, CAST(date_trunc('month', day) AS date) AS month
        FROM usage_distinct) d) x
GROUP BY 1, 2, 3, 4, 5"""


_RAW_BY_DAY = """
SELECT day, e.account_id, e.metric,
       CASE m.aggregation WHEN 'sum' THEN sum(quantity) WHEN 'count' THEN count(*) WHEN 'max' THEN max(quantity)
            WHEN 'latest' THEN (array_agg(quantity ORDER BY occurred_at DESC, event_id DESC))[1]
            ELSE count(DISTINCT properties ->> m.property) END AS v
FROM usage_events e JOIN metrics m ON m.key = e.metric
WHERE NOT correction AND day BETWEEN :s AND :e AND e.partner_id = :p
GROUP BY day, e.account_id, e.metric, m.aggregation, m.property"""


def rollups_match_daily_values(s: Session) -> None:
    """usage_distinct_monthly and both gap tables equal what usage_distinct (kept per day) implies."""
    months = set(s.execute(text("SELECT partner_id, metric, account_id, value, month FROM usage_distinct_monthly")))
    expected_months = set(s.execute(text(
        "SELECT DISTINCT partner_id, metric, account_id, value, CAST(date_trunc('month', day) AS date) "
        "FROM usage_distinct")))
    assert months == expected_months
    gaps = {tuple(r[:5]): r[5] for r in s.execute(text(
        "SELECT partner_id, metric, month, prev_month, account_id, value_count FROM usage_distinct_gaps")) if r[5]}
    assert gaps == {tuple(r[:5]): r[5] for r in s.execute(text(_REBUILT_GAPS))}
    partner = {tuple(r[:4]): r[4] for r in s.execute(text(
        "SELECT partner_id, metric, month, prev_month, value_count FROM usage_partner_distinct_gaps")) if r[4]}
    summed: dict = {}
    for (p, m, mo, prev, _a), n in gaps.items():
        summed[(p, m, mo, prev)] = summed.get((p, m, mo, prev), 0) + n
    assert partner == summed


def _events(world, accounts, batch) -> list[dict]:
    return [{"account_id": accounts[e["acc"]], "event_id": f"e{e['eid']}", "metric": e["metric"],
             "quantity": e["q"], "occurred_at": BASE + timedelta(days=e["day"], minutes=e["eid"]),
             "properties": {"recipient": e["recipient"]}} for e in batch]


event = st.fixed_dictionaries({
    "acc": st.integers(0, 1),
    "eid": st.integers(0, 60),
    "metric": st.sampled_from(METRICS),
    "q": st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False, allow_infinity=False),
    "day": st.integers(0, 150),
    "recipient": st.sampled_from(["a", "b", "c", "d", "e"]),
})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(event, min_size=1, max_size=30), min_size=1, max_size=5),
       start_off=st.integers(0, 60), length=st.integers(25, 120))
def test_rollups_and_dashboards_equal_raw_events(engine, owner_engine, batches, start_off, length):
    reset_data(owner_engine)
    world = build_world(engine)
    t = world.a
    accounts = [t.account_id, t.other_account_id]
    with Session(engine) as s:
        for batch in batches:  # batches arrive in any month order, repeating values and event ids
            record_events(s, t.staff, t.partner_id, _events(world, accounts, batch), now=NOW)
            s.commit()
        rollups_match_daily_values(s)
        start = date(2025, 11, 1) + timedelta(days=start_off)
        end = start + timedelta(days=length)
        raw = {k: v for k, v in raw_values(s, start, end, t.partner_id).items() if v}
        for grain in (None, "month"):
            got = {(r.partner_id, r.account_id, r.metric): r.value
                   for r in _values(s, Scope(t.partner_id, None), start, end, level="account") if r.value}
            assert got == raw, grain
        platform = {(r.partner_id, r.metric): r.value
                    for r in _values(s, Scope(None, None), start, end, level="partner")}
        total = {r.metric: r.value for r in _values(s, Scope(t.partner_id, None), start, end, level="total")}
        for m in METRICS:
            expected = sum((v for k, v in raw.items() if k[2] == m), Decimal(0))
            assert platform.get((t.partner_id, m), Decimal(0)) == expected == total.get(m, Decimal(0)), m
        # by month: every month bucket on its own equals the raw events of that part of the range
        by_month = {(r.b, r.account_id, r.metric): r.value
                    for r in _values(s, Scope(t.partner_id, None), start, end, grain="month", level="account")
                    if r.value}
        expected_months: dict = {}
        d = start
        while d <= end:
            nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
            for (_p, a, m), v in raw_values(s, d, min(end, nxt - timedelta(days=1)), t.partner_id).items():
                if v:
                    expected_months[(d.replace(day=1), a, m)] = v
            d = nxt
        assert by_month == expected_months
        # by day: the day's distinct values (usage_daily.distinct_values) and every other aggregation
        by_day = {(r.b, r.account_id, r.metric): r.value
                  for r in _values(s, Scope(t.partner_id, None), start, end, grain="day", level="account") if r.value}
        assert by_day == {(r.day, r.account_id, r.metric): r.v for r in s.execute(text(_RAW_BY_DAY),
                          {"s": start, "e": end, "p": t.partner_id}) if r.v}


def test_out_of_order_months_and_a_value_coming_back(engine, owner_engine):
    """A value seen in March, then January, then February: its gaps move as the months arrive."""
    reset_data(owner_engine)
    t = build_world(engine).a

    def send(s, eid, day):
        record_events(s, t.staff, t.partner_id, [{
            "account_id": t.account_id, "event_id": eid, "metric": "unique_recipients", "quantity": 1,
            "occurred_at": datetime.combine(day, datetime.min.time(), UTC), "properties": {"recipient": "r1"}}],
            now=NOW)
        s.commit()

    with Session(engine) as s:
        send(s, "m", date(2026, 3, 5))
        send(s, "j", date(2026, 1, 5))
        gaps = dict(s.execute(text("SELECT month, prev_month FROM usage_distinct_gaps WHERE value_count <> 0")).all())
        assert gaps == {date(2026, 1, 1): date(1, 1, 1), date(2026, 3, 1): date(2026, 1, 1)}
        send(s, "f", date(2026, 2, 5))
        rollups_match_daily_values(s)
        scope = Scope(t.partner_id, None)
        for start, end, n in ((date(2026, 1, 1), date(2026, 3, 31), 1), (date(2026, 2, 1), date(2026, 2, 28), 1),
                              (date(2026, 1, 10), date(2026, 3, 4), 1), (date(2026, 1, 10), date(2026, 3, 31), 1),
                              (date(2026, 1, 6), date(2026, 2, 4), 0)):
            got = {r.metric: r.value for r in _values(s, scope, start, end, level="total")}
            assert got.get("unique_recipients", Decimal(0)) == n, (start, end)


def test_concurrent_batches_of_one_account_keep_the_gaps_exact(engine, owner_engine):
    """Two writers sending the same values in different months at once: the per-account lock makes the
    second read the first's months, so no previous month is missed."""
    reset_data(owner_engine)
    t = build_world(engine).a
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for i in range(6):
                with Session(engine) as s:
                    record_events(s, t.staff, t.partner_id, [{
                        "account_id": t.account_id, "event_id": f"w{w}-{i}-{v}", "metric": "unique_recipients",
                        "quantity": 1, "occurred_at": datetime(2026, 1 + (i * 2 + w) % 5, 3 + w, tzinfo=UTC),
                        "properties": {"recipient": f"r{v}"}} for v in range(4)], now=NOW)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    with Session(engine) as s:
        rollups_match_daily_values(s)


def test_trend_of_additive_metrics_from_rollups_equals_every_customers_rows(engine, owner_engine):
    """usage_trend of a sum/count metric reads only the top customers' rows plus the partner rollups; its
    points equal the stacking of every customer's rows (the generic path), at every grain and top."""
    from collections import defaultdict

    from core.usage.reports import usage_trend

    reset_data(owner_engine)
    world = build_world(engine)
    t = world.a
    accounts = [t.account_id, t.other_account_id]
    names = {t.account_id: "Customer a1", t.other_account_id: "Customer a2"}
    with Session(engine) as s:
        record_events(s, t.staff, t.partner_id, [{
            "account_id": accounts[i % 2], "event_id": f"t{i}", "metric": ("documents", "api_requests")[i % 3 % 2],
            "quantity": Decimal(i % 7), "occurred_at": BASE + timedelta(days=(i * 13) % 150, minutes=i)}
            for i in range(300)], now=NOW)
        s.commit()
        start, end = date(2025, 11, 17), date(2026, 3, 9)
        for metric in ("documents", "api_requests"):
            for grain in ("day", "week", "month"):
                for top in (1, 8):
                    rows = _values(s, Scope(t.partner_id, None), start, end, grain=grain, level="account",
                                   metric=metric)
                    size: dict = defaultdict(Decimal)
                    for r in rows:
                        size[(r.partner_id, r.account_id)] += r.value
                    keep = {k for k, _ in sorted(size.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]}
                    want: dict = defaultdict(Decimal)
                    for r in rows:
                        k = (r.partner_id, r.account_id)
                        want[(r.b, names[r.account_id] if k in keep else "Other customers")] += r.value
                    got = {(p.bucket, p.label): p.value for p in usage_trend(
                        s, t.staff, metric=metric, start=start, end=end, grain=grain, top=top)}
                    assert got == {k: v for k, v in want.items() if v}, (metric, grain, top)
