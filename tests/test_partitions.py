"""usage_events partitioned by month (migration 0020): events land in their month's partition (or the DEFAULT
one), the app role makes partitions only through usage_ensure_partitions, and the idempotency key
(usage_event_ids) keeps an event id counted once even when a replay carries an occurred_at in another month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

from core.usage import ingest as usage
from core.usage.partitions import add_months, ensure_partitions
from db.engine import unit_of_work

OCT = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
NOV = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def _ev(aid: int, eid: str, when: datetime, qty: str = "5", metric: str = "pages") -> dict:
    return {"account_id": aid, "metric": metric, "quantity": qty, "event_id": eid, "occurred_at": when.isoformat()}


def _record(engine, actor, pid, events):
    with unit_of_work(engine) as s:
        return usage.record_events(s, actor, pid, events, now=NOW)


def _where(engine, eid: str) -> list[tuple[str, date]]:
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(
            "SELECT tableoid::regclass::text, day FROM usage_events WHERE event_id = :e"), {"e": eid})]


def _monthly(engine, pid: int) -> dict[date, Decimal]:
    with engine.connect() as c:
        return dict((r[0], r[1]) for r in c.execute(text("SELECT month, qty_sum FROM usage_monthly WHERE partner_id = :p AND metric = 'pages'"),
                              {"p": pid}).all())


def test_usage_events_is_partitioned_by_month_on_day(owner_engine, db):
    with owner_engine.connect() as c:
        strategy, key = c.execute(text(
            "SELECT p.partstrat, pg_get_partkeydef(p.partrelid) FROM pg_partitioned_table p "
            "WHERE p.partrelid = CAST('public.usage_events' AS regclass)")).one()
        default = c.execute(text("SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = 'usage_parts' AND c.relname = 'usage_events_default'")).scalar()
    assert (strategy, key, default) == ("r", "RANGE (day)", "DEFAULT")


def test_events_land_in_their_month_and_the_default_partition_catches_the_rest(world, db, owner_engine):
    a = world.a
    with owner_engine.begin() as c:
        c.execute(text("SELECT usage_ensure_partitions('2026-10-01', '2026-10-01')"))
    _record(db, a.staff, a.partner_id, [_ev(a.account_id, "oct", OCT), _ev(a.account_id, "mar25",
                                                                          datetime(2025, 3, 3, tzinfo=UTC))])
    assert _where(db, "oct") == [("usage_parts.usage_events_2026_10", date(2026, 10, 15))]
    assert _where(db, "mar25") == [("usage_parts.usage_events_default", date(2025, 3, 3))]
    # the worker's job, as the app role: this month and the next three, plus the months waiting in DEFAULT
    ensure_partitions(db, date(2026, 12, 4))
    assert _where(db, "mar25") == [("usage_parts.usage_events_2025_03", date(2025, 3, 3))]
    with db.connect() as c:
        parts = set(c.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                   "WHERE i.inhparent = CAST('usage_events' AS regclass)")).scalars())
    assert {"usage_events_2026_12", "usage_events_2027_01", "usage_events_2027_03", "usage_events_2025_03"} <= parts
    assert ensure_partitions(db, date(2026, 12, 4)) == 0  # idempotent
    # the aggregates are untouched by moving rows between partitions
    assert _monthly(db, a.partner_id) == {date(2026, 10, 1): Decimal("5"), date(2025, 3, 1): Decimal("5")}


def test_the_app_role_has_no_ddl_and_the_function_refuses_silly_ranges(db):
    with db.begin() as c, pytest.raises(ProgrammingError, match="permission denied"):
        c.execute(text("CREATE TABLE usage_parts.usage_events_2030_01 PARTITION OF usage_events "
                       "FOR VALUES FROM ('2030-01-01') TO ('2030-02-01')"))
    with db.begin() as c, pytest.raises(ProgrammingError, match="at most 120 months"):
        c.execute(text("SELECT usage_ensure_partitions('2020-01-01', '2035-01-01')"))
    with db.begin() as c, pytest.raises(ProgrammingError, match="must not be before"):
        c.execute(text("SELECT usage_ensure_partitions('2027-01-01', '2026-01-01')"))


def test_a_replay_with_another_occurred_at_in_another_month_never_counts_twice(world, db, owner_engine):
    """The partitioned table's key includes day, so only usage_event_ids can see that "e1" in November is
    the "e1" stored in October: the partitioned table alone accepts the November copy (checked below)."""
    a = world.a
    with owner_engine.begin() as c:
        c.execute(text("SELECT usage_ensure_partitions('2026-10-01', '2026-11-01')"))
    first = _record(db, a.staff, a.partner_id, [_ev(a.account_id, "e1", OCT, "5")])
    assert (first.inserted, first.duplicates) == (1, 0)
    # alone (the probe path), at the front of a batch, and in the middle of a batch (the COPY fails on
    # the key, the staged ON CONFLICT path takes over)
    again = _record(db, a.staff, a.partner_id, [_ev(a.account_id, "e1", NOV, "7")])
    assert (again.inserted, again.duplicates) == (0, 1)
    mixed = _record(db, a.staff, a.partner_id, [_ev(a.account_id, "e2", NOV, "1"), _ev(a.account_id, "e1", NOV, "7"),
                                                _ev(a.account_id, "e3", NOV, "2")])
    assert (mixed.inserted, mixed.duplicates) == (2, 1)
    assert _where(db, "e1") == [("usage_parts.usage_events_2026_10", date(2026, 10, 15))]
    assert _monthly(db, a.partner_id) == {date(2026, 10, 1): Decimal("5"), date(2026, 11, 1): Decimal("3")}
    with db.connect() as c:
        keys = c.execute(text("SELECT event_id, day FROM usage_event_ids WHERE partner_id = :p ORDER BY 1"),
                         {"p": a.partner_id}).all()
    assert [tuple(k) for k in keys] == [("e1", date(2026, 10, 15)), ("e2", date(2026, 11, 20)),
                                        ("e3", date(2026, 11, 20))]
    # the CSV preview says the same
    with unit_of_work(db) as s:
        p = usage.preview_events(s, a.staff, a.partner_id, [_ev(a.account_id, "e1", NOV), _ev(a.account_id, "e4", NOV)])
    assert (p.new, p.duplicates) == (1, 1)
    with db.begin() as c:  # what the key of usage_events alone would let through
        c.execute(text("INSERT INTO usage_events (partner_id, account_id, event_id, metric, quantity, occurred_at, day, "
                       "source) VALUES (:p, :a, 'e1', 'pages', 7, :t, :d, 'test')"),
                  {"p": a.partner_id, "a": a.account_id, "t": NOV, "d": NOV.date()})
        c.rollback()
    # the same id in another account is another event
    other = _record(db, a.staff, a.partner_id, [_ev(a.other_account_id, "e1", NOV, "4")])
    assert other.inserted == 1


def test_month_arithmetic():
    assert add_months(date(2026, 12, 4), 1) == date(2027, 1, 1)
    assert add_months(date(2026, 1, 31), -1) == date(2025, 12, 1)
    assert add_months(date(2026, 3, 1), -14) == date(2025, 1, 1)


def test_the_worker_keeps_the_months_ahead(db):
    from core.worker import jobs

    assert jobs.run_periodic(db, "usage.partitions", datetime(2027, 6, 2, tzinfo=UTC)).startswith("created ")
    with db.connect() as c:
        parts = set(c.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                   "WHERE i.inhparent = CAST('usage_events' AS regclass)")).scalars())
    assert {"usage_events_2027_06", "usage_events_2027_09"} <= parts
