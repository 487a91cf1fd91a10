"""Two small helpers of this session's performance work: the app freezes its startup objects once per process,
and the benchmark's clean-up of a partner's usage covers every usage table the schema has."""

from __future__ import annotations

import gc

from seeds import bulk


def test_startup_objects_are_frozen_once_per_process(monkeypatch):
    import pages.common as common

    calls: list[int] = []
    monkeypatch.setattr(common, "_startup_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    common.freeze_startup_objects()
    common.freeze_startup_objects()  # later runs of the script: nothing more is frozen
    assert calls == [1]


def test_the_bench_clean_up_covers_every_usage_rollup_but_not_settlements(engine):
    with engine.connect() as c:
        tables = set(bulk.usage_tables(c))
    assert {"usage_events", "usage_event_ids", "usage_daily", "usage_monthly", "usage_distinct_gaps", "usage_latest",
            "usage_partner_latest_days", "usage_distinct_span", "usage_distinct_first_days",
            "usage_partner_distinct_last_days", "usage_dimension_daily"} <= tables
    assert "usage_settlements" not in tables


def test_the_long_history_set_is_at_least_as_dense_as_the_small_one():
    """bench.run compares the dashboards on the run's events over a history as many times longer as they are
    more numerous with the small set: its months must not be lighter than the small set's, and one month more
    would make them so."""
    from datetime import UTC, datetime

    from bench.run import SMALL_MONTHS, BenchContext, long_months

    start, end = bulk.window(datetime(2026, 12, 6).date(), SMALL_MONTHS)
    assert (start, end) == (datetime(2024, 12, 1, tzinfo=UTC), datetime(2026, 12, 6, tzinfo=UTC))
    assert bulk.months_of(start, end) == 25
    assert bulk.months_of(*bulk.window(end.date())) == bulk.MONTHS == 13
    small = BenchContext(None, "", 1_000_000, start, end)  # type: ignore[arg-type]
    months = long_months(10_000_000, small)
    assert 240 <= months <= 250
    long_start, long_end = bulk.window(end.date(), months)
    assert bulk.months_of(long_start, long_end) == months
    assert 10_000_000 / (long_end - long_start).days >= 1_000_000 / (end - start).days
    one_more = bulk.window(end.date(), months + 1)
    assert 10_000_000 / (one_more[1] - one_more[0]).days < 1_000_000 / (end - start).days
