"""The usage dashboard page (AppTest)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.usage import ingest as usage
from core.usage.metrics import add_metric
from db.engine import unit_of_work
from tests.apptest import app

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)


def _record(engine, a, metric: str, event_id: str) -> None:
    with unit_of_work(engine) as s:
        usage.record_events(s, a.staff, a.partner_id, [{
            "account_id": a.account_id, "metric": metric, "quantity": "3", "event_id": event_id,
            "occurred_at": (clock.now() - timedelta(minutes=1)).isoformat()}])


def _metric_options(at) -> list[str]:
    return [box.options for box in at.selectbox if box.label == "Metric"][0]


def test_a_metric_added_by_an_operator_shows_its_name_at_once(world, engine):
    """The page cached the metric catalogue for a minute, so a metric added in that minute showed as its key
    ("integration_syncs") instead of its name (and the browser tour lost the option when the cache expired)."""
    a = world.a
    _record(engine, a, "pages", "dash-1")
    at = app(a.staff, "pages/usage_dashboard.py")
    assert not at.exception and "Pages" in _metric_options(at)
    with unit_of_work(engine) as s:
        add_metric(s, world.admin, key="integration_syncs", name="Integration syncs", unit="syncs",
                   aggregation="sum")
    _record(engine, a, "integration_syncs", "dash-2")
    at = app(a.staff, "pages/usage_dashboard.py")
    assert not at.exception
    assert "Integration syncs" in _metric_options(at) and "integration_syncs" not in _metric_options(at)
