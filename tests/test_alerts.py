"""Threshold alerts: recorded once per crossing and month, from real usage ingestion; who sees them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.billing import alerts, plans
from core.errors import Conflict, PermissionDenied
from core.usage import ingest as usage
from core.usage.ingest import record_events
from db.models.billing import BillingAlert
from tests.billing_factories import API_SPEC, make_plan

NOW = datetime(2024, 12, 31, tzinfo=UTC)


def requests(engine, tenant, account_id, n, day, prefix):
    """n API requests (aggregation: count) on `day`, through the real ingestion path (hooks included)."""
    with Session(engine) as s, s.begin():
        record_events(s, tenant.staff, tenant.partner_id, [
            {"account_id": account_id, "event_id": f"{prefix}-{i}", "metric": "api_requests", "quantity": "1",
             "occurred_at": f"{day.isoformat()}T10:00:00Z"} for i in range(n)], now=NOW)


def n_alerts(session) -> int:
    return session.scalar(select(func.count()).select_from(BillingAlert))


@pytest.fixture
def api_world(world, db):
    a = world.a
    _, plan_id = make_plan(db, a.staff, code="api", spec_=API_SPEC)
    with Session(db) as s, s.begin():
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    return world


def test_threshold_alert_recorded_once_at_500001(api_world, db, session):
    a = api_world.a
    assert alerts.on_events_recorded in usage.on_events_recorded
    # 500,000 requests so far (written as one daily aggregate: 500k events through ingestion is slow);
    # at the threshold there is no alert
    with Session(db) as s, s.begin():
        s.execute(text(
            "INSERT INTO usage_daily (partner_id, account_id, metric, day, qty_sum, events, qty_max, last_at, "
            "last_event_id, last_qty) VALUES (:p, :a, 'api_requests', '2024-04-02', 500000, 500000, 1, "
            "'2024-04-02T10:00:00Z', 'bulk', 1)"), {"p": a.partner_id, "a": a.account_id})
        assert alerts.check_thresholds(s, a.partner_id, [a.account_id], date(2024, 4, 2)) == 0
    # the 500,001st request arrives through ingestion: the hook records one alert
    requests(db, a, a.account_id, 1, date(2024, 4, 3), "x")
    rows = alerts.list_alerts(session, a.staff)
    assert len(rows) == 1
    al = rows[0]
    assert (al.account_id, al.metric, al.charge_id, al.period_start) == (
        a.account_id, "api_requests", "api", date(2024, 4, 1))
    assert al.quantity == 500001 and al.threshold == 500000
    assert "500,001 requests exceeds the threshold of 500,000 by 1" in al.message
    # more usage in the same month: still one alert; re-checking is idempotent
    requests(db, a, a.account_id, 3, date(2024, 4, 20), "y")
    with Session(db) as s, s.begin():
        assert alerts.check_thresholds(s, a.partner_id, [a.account_id], date(2024, 4, 30)) == 0
    assert n_alerts(session) == 1
    # a new month starts from zero: no alert in May with 3 requests
    requests(db, a, a.account_id, 3, date(2024, 5, 2), "z")
    assert n_alerts(session) == 1


def test_alert_visibility_and_acknowledge(api_world, db, session):
    a = api_world.a
    with Session(db) as s, s.begin():
        s.add(BillingAlert(partner_id=a.partner_id, account_id=a.account_id, metric="api_requests", charge_id="api",
                           period_start=date(2024, 4, 1), threshold=500000, quantity=500001, message="crossed"))
    mgr = api_world.actor("manager")
    assert len(alerts.list_alerts(session, mgr)) == 1
    assert len(alerts.list_alerts(session, api_world.admin)) == 1
    assert alerts.list_alerts(session, api_world.b.staff) == []  # tenant B sees nothing of A
    assert alerts.list_alerts(session, a.staff, start=date(2024, 5, 1)) == []
    for role in ("user", "annotation_manager", "annotator"):
        with pytest.raises(PermissionDenied):
            alerts.list_alerts(session, api_world.actor(role))
    alert_id = alerts.list_alerts(session, a.staff)[0].id
    with pytest.raises(PermissionDenied):
        alerts.acknowledge_alert(session, api_world.b.staff, a.partner_id, alert_id)
    with pytest.raises(PermissionDenied):
        alerts.acknowledge_alert(session, api_world.actor("user"), a.partner_id, alert_id)
    alerts.acknowledge_alert(session, mgr, a.partner_id, alert_id)
    session.flush()
    assert alerts.list_alerts(session, a.staff, open_only=True) == []
    with pytest.raises(Conflict):
        alerts.acknowledge_alert(session, a.staff, a.partner_id, alert_id)


def test_hook_only_rerates_accounts_with_a_threshold_on_touched_metrics(api_world, db, session):
    a = api_world.a
    _, pages_plan = make_plan(db, a.staff, code="pages")
    with Session(db) as s, s.begin():
        plans.assign_plan(s, a.staff, a.partner_id, a.other_account_id, plan_id=pages_plan,
                          effective_from=date(2024, 1, 1))
    may = (date(2024, 5, 1), date(2024, 5, 31))
    both = {a.account_id, a.other_account_id}
    assert alerts.threshold_accounts(session, a.partner_id, both, {"api_requests"}, *may) == {a.account_id}
    assert alerts.threshold_accounts(session, a.partner_id, both, {"pages"}, *may) == set()
    assert alerts.threshold_accounts(session, a.partner_id, both, {"api_requests"},
                                     date(2023, 5, 1), date(2023, 5, 31)) == set()  # plan starts in 2024
    assert alerts.threshold_accounts(session, api_world.b.partner_id, both, {"api_requests"}, *may) == set()
