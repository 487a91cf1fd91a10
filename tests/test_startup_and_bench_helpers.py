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
