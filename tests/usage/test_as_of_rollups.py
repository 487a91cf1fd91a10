"""The "as of" rollups (migration 0027): a range that ends after every event of its scope reads latest metrics
and distinct counts from the rows kept by the day each account's latest event and each value's last occurrence
fell on. Against the raw events, per account, per partner and platform-wide, after batches that move those
days later (and leave them where they are, for late events of earlier days)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.usage.as_of import usable
from core.usage.ingest import record_events
from core.usage.reports import Scope, _values
from db.testing import reset_data
from tests.factories import build_world
from tests.usage.raw import raw_values

METRICS = ["keywords", "active_clients", "unique_recipients"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
LAST_DAY = date(2026, 2, 20)  # no event after it: a range ending on or after it is read "as of"

event = st.fixed_dictionaries({
    "acc": st.integers(0, 2),
    "eid": st.integers(0, 30),
    "metric": st.sampled_from(METRICS),
    "q": st.decimals(min_value=0, max_value=100, places=2, allow_nan=False, allow_infinity=False),
    "day": st.integers(0, (LAST_DAY - BASE.date()).days),
    "hour": st.sampled_from([0, 12]),  # equal times: the event id decides the latest
    "recipient": st.sampled_from(["a", "b", "c"]),
})


def _check(s: Session, partner_ids: list[int], start: date, end: date, path: set[str]) -> None:
    raw = {k: v for k, v in raw_values(s, start, end).items() if k[2] in METRICS}
    for pid in partner_ids:
        params = {"p": pid, "lt": ["keywords", "active_clients"], "uq": ["unique_recipients"]}
        assert usable(s, pid, start, end, params) >= path
        got = {(r.partner_id, r.account_id, r.metric): r.value
               for r in _values(s, Scope(pid, None), start, end, level="account") if r.metric in METRICS}
        assert got == {k: v for k, v in raw.items() if k[0] == pid}, (start, end)
        partner = {r.metric: r.value for r in _values(s, Scope(pid, None), start, end, level="total")
                   if r.metric in METRICS}
        assert partner == {m: sum(v for k, v in raw.items() if k[0] == pid and k[2] == m) for m in METRICS
                           if any(k[0] == pid and k[2] == m for k in raw)}, (start, end)
    platform = {(r.partner_id, r.metric): r.value for r in _values(s, Scope(None, None), start, end, level="partner")
                if r.metric in METRICS}
    want: dict = {}
    for (p, _a, m), v in raw.items():
        want[(p, m)] = want.get((p, m), Decimal(0)) + v
    assert platform == want, (start, end)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(event, min_size=1, max_size=20), min_size=1, max_size=4),
       start_off=st.integers(0, 60), end_off=st.integers(0, 20), first_end=st.integers(0, 60))
def test_ranges_ending_after_or_starting_before_every_event_match_the_raw_events(engine, owner_engine, batches,
                                                                                 start_off, end_off, first_end):
    reset_data(owner_engine)
    world = build_world(engine)
    t, u = world.a, world.b
    accounts = [(t, t.account_id), (t, t.other_account_id), (u, u.account_id)]
    with Session(engine) as s:
        for i, batch in enumerate(batches):  # later batches bring events of earlier and of later days
            for tenant in (t, u):  # (and some event ids again: duplicates, which change nothing)
                events = [{"account_id": accounts[e["acc"]][1], "event_id": f"e{i * (e['eid'] % 2)}-{e['eid']}",
                           "metric": e["metric"],
                           "quantity": e["q"],
                           "occurred_at": BASE + timedelta(days=e["day"], hours=e["hour"]),
                           "properties": {"recipient": e["recipient"]}}
                          for e in batch if accounts[e["acc"]][0] is tenant]
                if events:
                    record_events(s, tenant.staff, tenant.partner_id, events, now=NOW)
            s.commit()
        oldest, newest = s.execute(text("SELECT min(day), max(day) FROM usage_events")).one()
        end = newest + timedelta(days=end_off)
        _check(s, [t.partner_id, u.partner_id], end - timedelta(days=start_off), end, {"lt", "uq"})
        # a range starting before every event: distinct values by their first day
        start = oldest - timedelta(days=end_off)
        _check(s, [t.partner_id, u.partner_id], start, oldest + timedelta(days=first_end), {"uq_first"})


def test_later_batches_move_the_days_and_a_range_ending_before_the_newest_event_is_not_read_as_of(world, session):
    t = world.a
    for day in (2, 20):  # two batches: the second moves the latest event and the value's last day later
        record_events(session, t.staff, t.partner_id, [
            {"account_id": t.account_id, "event_id": f"k{day}", "metric": "keywords", "quantity": str(day // 2 + 3),
             "occurred_at": datetime(2026, 3, day, tzinfo=UTC)},
            {"account_id": t.account_id, "event_id": f"r{day}", "metric": "unique_recipients", "quantity": "1",
             "occurred_at": datetime(2026, 3, day, tzinfo=UTC), "properties": {"recipient": "x"}},
        ], now=NOW)
    early = {r.metric: r.value for r in _values(session, Scope(t.partner_id, None), date(2026, 3, 1),
                                                date(2026, 3, 10), level="total")}  # read by first days
    assert early["unique_recipients"] == 1 and early["keywords"] == Decimal(4)
    record_events(session, t.staff, t.partner_id, [  # a late event of an earlier day: the value's first day moves
        {"account_id": t.account_id, "event_id": "r-late", "metric": "unique_recipients", "quantity": "1",
         "occurred_at": datetime(2026, 2, 27, tzinfo=UTC), "properties": {"recipient": "x"}}], now=NOW)
    for eid, qty in (("k20z", "5"), ("k0", "99")):  # at the same time: the greater event id is the latest
        record_events(session, t.staff, t.partner_id, [
            {"account_id": t.account_id, "event_id": eid, "metric": "keywords", "quantity": qty,
             "occurred_at": datetime(2026, 3, 20, tzinfo=UTC)}], now=NOW)
    params = {"p": t.partner_id, "lt": ["keywords"], "uq": ["unique_recipients"]}
    assert usable(session, t.partner_id, date(2026, 3, 5), date(2026, 3, 10), params) == set()
    assert usable(session, t.partner_id, date(2026, 3, 5), date(2026, 3, 20), params) == {"lt", "uq"}
    assert usable(session, t.partner_id, date(2026, 3, 1), date(2026, 3, 10), params) == set()
    assert usable(session, t.partner_id, date(2026, 2, 1), date(2026, 3, 10), params) == {"uq_first"}
    for start, end, want in ((date(2026, 2, 1), date(2026, 2, 26), None), (date(2026, 2, 1), date(2026, 2, 27), 1),
                             (date(2026, 3, 1), date(2026, 3, 10), 1), (date(2026, 2, 28), date(2026, 3, 1), None),
                             (date(2026, 2, 1), date(2026, 3, 10), 1)):
        got = {r.metric: r.value for r in _values(session, Scope(t.partner_id, None), start, end, level="total")}
        assert got.get("unique_recipients") == want, (start, end)
    before = {r.metric: r.value for r in _values(session, Scope(t.partner_id, None), date(2026, 3, 1),
                                                 date(2026, 3, 10), level="total")}
    assert before["keywords"] == Decimal(4) and before["unique_recipients"] == 1
    after = {r.metric: r.value for r in _values(session, Scope(t.partner_id, None), date(2026, 3, 10),
                                                date(2026, 3, 31), level="total")}
    assert after["keywords"] == Decimal(5) and after["unique_recipients"] == 1
    both = {r.metric: r.value for r in _values(session, Scope(t.partner_id, None), date(2026, 3, 1),
                                               date(2026, 3, 31), level="partner")}
    assert both["keywords"] == Decimal(5) and both["unique_recipients"] == 1
