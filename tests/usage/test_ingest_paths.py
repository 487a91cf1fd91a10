"""The two ways a batch is written agree: the direct path (every event new; groups by a hash aggregate of the
stage, then each group's events at its last time) and the staged INSERT ... ON CONFLICT fallback (some event
already stored; groups by ordered aggregates of the rows really inserted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.usage.ingest import record_events
from db.testing import reset_data
from tests.factories import build_world

NOW = datetime(2026, 6, 1, tzinfo=UTC)
BASE = datetime(2026, 1, 1, tzinfo=UTC)
DAILY = ("SELECT metric, day, qty_sum, events, qty_max, last_at, last_event_id, last_qty, distinct_values "
         "FROM usage_daily WHERE account_id = :a ORDER BY metric, day")
MONTHLY = ("SELECT metric, month, qty_sum, events, qty_max, last_at, last_event_id, last_qty "
           "FROM usage_monthly WHERE account_id = :a ORDER BY metric, month")

event = st.fixed_dictionaries({
    # few distinct times, so that "latest" often has to break a tie on the event id
    "minutes": st.sampled_from([0, 1, 60 * 24, 60 * 24 * 40]),
    "eid": st.text(alphabet="aZz9-é€", min_size=1, max_size=4),
    "metric": st.sampled_from(["documents", "data_mb", "keywords", "unique_recipients"]),
    "q": st.decimals(min_value=0, max_value=10**17, places=6, allow_nan=False, allow_infinity=False),
    "recipient": st.sampled_from(["a", "b", "1"]),
})


def _events(account_id: int, evs: list[dict]) -> list[dict]:
    return [{"account_id": account_id, "event_id": e["eid"], "metric": e["metric"], "quantity": e["q"],
             "occurred_at": BASE + timedelta(minutes=e["minutes"]), "properties": {"recipient": e["recipient"]}}
            for e in evs]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evs=st.lists(event, min_size=1, max_size=40))
def test_direct_copy_and_staged_fallback_agree(engine, owner_engine, evs):
    reset_data(owner_engine)  # TRUNCATE: the owner's right
    t = build_world(engine).a
    direct, staged = t.account_id, t.other_account_id
    with Session(engine) as s:
        # staged: one event id of the batch is stored already, so the batch takes the ON CONFLICT path
        marker = {"account_id": staged, "event_id": "stored-before", "metric": "messages", "quantity": 1,
                  "occurred_at": BASE - timedelta(days=90)}
        record_events(s, t.staff, t.partner_id, [marker], now=NOW)
        s.commit()
        r1 = record_events(s, t.staff, t.partner_id, _events(direct, evs), now=NOW)
        r2 = record_events(s, t.staff, t.partner_id, _events(staged, evs) + [marker], now=NOW)
        s.commit()
        assert (r1.inserted, r1.duplicates) == (r2.inserted, r2.duplicates - 1)
        assert [(g.metric, g.day, g.quantity, g.events, g.first_event_id, g.last_event_id) for g in r1.groups] == \
               [(g.metric, g.day, g.quantity, g.events, g.first_event_id, g.last_event_id) for g in r2.groups]
        for q in (DAILY, MONTHLY):
            a = s.execute(text(q), {"a": direct}).all()
            b = [r for r in s.execute(text(q), {"a": staged}).all() if r.metric != "messages"]
            assert a == b


def test_big_quantities_are_summed_exactly(world, session):
    a = world.a
    big = Decimal("999999999999999999.999999")  # the largest quantity NUMERIC(24, 6) holds
    evs = [{"account_id": a.account_id, "event_id": f"b{i}", "metric": "documents", "quantity": big,
            "occurred_at": BASE} for i in range(1000)]
    res = record_events(session, a.staff, a.partner_id, evs, now=NOW)
    assert res.groups[0].quantity == big * 1000
    assert session.execute(text("SELECT qty_sum FROM usage_daily WHERE account_id = :a"),
                           {"a": a.account_id}).scalar_one() == big * 1000


def test_text_with_copys_special_characters_is_stored_exactly(engine, owner_engine):
    """The batch reaches the database through COPY's text format: backslashes, tabs, new lines and carriage
    returns in event ids, sources and property values arrive unchanged, whatever the quantity's notation (a
    guard for any faster hand-made COPY text: one without the escapes fails it)."""
    reset_data(owner_engine)
    world = build_world(engine)
    t = world.a
    nasty = ["tab\there", "back\\slash", "new\nline", "cr\rreturn", "\\N", "end\\", "é€\\t"]
    events = [{"account_id": t.account_id, "event_id": f"id-{i}-{v}", "metric": "documents",
               "quantity": q, "occurred_at": BASE + timedelta(minutes=i), "source": f"src {v}",
               "properties": {"note": v, "nested": {"k": [v, None, 1.5]}}}
              for i, (v, q) in enumerate(zip(nasty, ["1", "1E+3", "0.000001", "12.5", 7, Decimal("2E-6"), "3"],
                                             strict=True))]
    with Session(engine) as s:
        assert record_events(s, t.staff, t.partner_id, events, now=NOW).inserted == len(events)
        s.commit()
        got = {r.event_id: r for r in s.execute(text(
            "SELECT event_id, source, properties, quantity, occurred_at FROM usage_events WHERE account_id = :a"),
            {"a": t.account_id})}
    for i, e in enumerate(events):
        r = got[e["event_id"]]
        assert (r.source, r.properties, r.occurred_at) == (e["source"], e["properties"], BASE + timedelta(minutes=i))
        assert r.quantity == Decimal(str(e["quantity"]))
