"""A partial month with no usage outside the range is read from the month's rows (core.usage.ranges.widen):
the usual dashboard range ends today, with nothing stored after it. Against the raw events for every kind of
metric, per account, per partner and platform-wide, with the month quiet and after a later event makes it not."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core.usage.ingest import record_events
from core.usage.metrics import add_metric
from core.usage.ranges import gaps, plan, quiet, widen
from core.usage.reports import Scope, _values
from db.testing import reset_data
from tests.factories import build_world
from tests.usage.raw import raw_values

NOW = datetime(2026, 6, 1, tzinfo=UTC)
METRICS = ("pages", "documents", "peak_mb", "keywords", "unique_recipients")  # sum, count, max, latest, distinct


def test_widen_reads_each_quiet_piece_as_its_month():
    whole, pieces = plan(date(2026, 1, 10), date(2026, 4, 5))
    assert (whole, pieces) == ((date(2026, 2, 1), date(2026, 3, 1)),
                               [(date(2026, 1, 10), date(2026, 1, 31)), (date(2026, 4, 1), date(2026, 4, 5))])
    assert gaps(pieces) == [[(date(2026, 1, 1), date(2026, 1, 9))], [(date(2026, 4, 6), date(2026, 4, 30))]]
    assert widen(whole, pieces, [False, True]) == ((date(2026, 2, 1), date(2026, 4, 1)),
                                                   [(date(2026, 1, 10), date(2026, 1, 31))])
    assert widen(whole, pieces, [True, True]) == ((date(2026, 1, 1), date(2026, 4, 1)), [])
    assert widen(whole, pieces, [False, False]) == (whole, pieces)
    # no whole month: one piece inside a month (quiet on both sides), or two in adjacent months
    one = plan(date(2026, 3, 5), date(2026, 3, 20))[1]
    assert gaps(one) == [[(date(2026, 3, 1), date(2026, 3, 4)), (date(2026, 3, 21), date(2026, 3, 31))]]
    assert widen(None, one, [True]) == ((date(2026, 3, 1), date(2026, 3, 1)), [])
    two = plan(date(2026, 2, 20), date(2026, 3, 5))[1]
    assert widen(None, two, [False, True]) == ((date(2026, 3, 1), date(2026, 3, 1)), [two[0]])


def _answers(s: Session, pid: int, start: date, end: date, grain: str | None) -> tuple[dict, dict, dict]:
    def per_account(rows):  # by month: an account's value per month, summed for additive ones, else the largest
        got: dict = {}
        for r in rows:
            if r.metric in METRICS:
                k = (r.partner_id, r.account_id, r.metric)
                got[k] = got.get(k, Decimal(0)) + r.value
        return got

    acc = per_account(_values(s, Scope(pid, None), start, end, level="account", grain=grain))
    partner = {r.metric: r.value for r in _values(s, Scope(pid, None), start, end, level="total", grain=grain)
               if r.metric in METRICS}
    platform = {(r.partner_id, r.metric): r.value
                for r in _values(s, Scope(None, None), start, end, level="partner", grain=grain)
                if r.metric in METRICS}
    return acc, partner, platform


def _check(s: Session, pids: list[int], start: date, end: date) -> None:
    """Grain None against the raw events; a range inside one month by month gives the same numbers."""
    raw = {k: v for k, v in raw_values(s, start, end).items() if k[2] in METRICS}
    one_month = start.replace(day=1) == end.replace(day=1)
    for grain in (None, "month") if one_month else (None,):
        for pid in pids:
            acc, partner, platform = _answers(s, pid, start, end, grain)
            assert acc == {k: v for k, v in raw.items() if k[0] == pid}, (start, end, grain)
            want: dict = {}
            for (p, _a, m), v in raw.items():
                if p == pid:
                    want[m] = want.get(m, Decimal(0)) + v
            assert partner == want, (start, end, grain)
        want_platform: dict = {}
        for (p, _a, m), v in raw.items():
            want_platform[(p, m)] = want_platform.get((p, m), Decimal(0)) + v
        assert platform == want_platform, (start, end, grain)


def test_a_range_ending_after_the_last_event_of_its_month_reads_the_month_and_stays_exact(engine, owner_engine):
    reset_data(owner_engine)
    world = build_world(engine)
    t, u = world.a, world.b
    with Session(engine) as s:
        add_metric(s, world.admin, key="peak_mb", name="Peak storage", unit="MB", aggregation="max")
        s.commit()
    at = lambda m, d, h=12: datetime(2026, m, d, h, tzinfo=UTC)  # noqa: E731
    rows = [  # (tenant, account, metric, quantity, when, recipient)
        (t, t.account_id, "pages", "5", at(3, 2), None), (t, t.account_id, "pages", "7", at(4, 1), None),
        (t, t.account_id, "pages", "11", at(4, 9), None), (t, t.other_account_id, "documents", "1", at(4, 3), None),
        (t, t.other_account_id, "documents", "1", at(4, 8), None),
        (t, t.account_id, "peak_mb", "90", at(4, 2), None), (t, t.account_id, "peak_mb", "40", at(4, 9), None),
        (t, t.account_id, "keywords", "3", at(3, 30), None), (t, t.account_id, "keywords", "8", at(4, 9, 8), None),
        (t, t.account_id, "unique_recipients", "1", at(3, 4), "a"),
        (t, t.account_id, "unique_recipients", "1", at(4, 4), "a"),
        (t, t.account_id, "unique_recipients", "1", at(4, 6), "b"),
        (u, u.account_id, "pages", "2", at(4, 5), None), (u, u.account_id, "keywords", "4", at(4, 2), None),
    ]

    def record(batch, tag):
        with Session(engine) as s:
            for tenant in (t, u):
                events = [{"account_id": a, "event_id": f"{tag}{i}", "metric": m, "quantity": q, "occurred_at": w,
                           "properties": {"recipient": r} if r else None}
                          for i, (tn, a, m, q, w, r) in enumerate(batch) if tn is tenant]
                if events:
                    record_events(s, tenant.staff, tenant.partner_id, events, now=NOW)
            s.commit()

    record(rows, "e")
    ranges = [(date(2026, 4, 1), date(2026, 4, 9)),   # "this month", ending on the last day with usage
              (date(2026, 3, 3), date(2026, 4, 12)),  # a piece at each end, the last one quiet
              (date(2026, 4, 2), date(2026, 4, 20)),  # one piece inside the month, usage before it
              (date(2026, 3, 15), date(2026, 4, 9))]
    with Session(engine) as s:
        params = {"add": ["pages", "documents"], "mx": ["peak_mb"], "lt": ["keywords"], "uq": ["unique_recipients"]}
        # the path under test is taken: the last piece of each range is quiet for the partner and the platform
        assert quiet(s, [(date(2026, 4, 1), date(2026, 4, 9))], f" AND partner_id = {t.partner_id}", params) == [True]
        assert quiet(s, [(date(2026, 4, 1), date(2026, 4, 9))], "", params) == [True]
        assert quiet(s, [(date(2026, 4, 2), date(2026, 4, 20))], "", params) == [False]  # 1 April had usage
        for start, end in ranges:
            _check(s, [t.partner_id, u.partner_id], start, end)

    # Later events of April, after those ranges' ends: the month is no longer the pieces' answer. A larger
    # maximum, a later "latest", a new recipient, more pages, for both partners.
    record([(t, t.account_id, "peak_mb", "99", at(4, 25), None), (t, t.account_id, "keywords", "1", at(4, 28), None),
            (t, t.account_id, "unique_recipients", "1", at(4, 27), "c"), (t, t.account_id, "pages", "100", at(4, 26), None),
            (t, t.other_account_id, "documents", "1", at(4, 29), None), (u, u.account_id, "pages", "50", at(4, 30), None)],
           "late")
    with Session(engine) as s:
        assert quiet(s, [(date(2026, 4, 1), date(2026, 4, 9))], "", params) == [False]
        assert quiet(s, [(date(2026, 4, 1), date(2026, 4, 9))], f" AND partner_id = {u.partner_id}", params) == [False]
        for start, end in ranges:
            _check(s, [t.partner_id, u.partner_id], start, end)
