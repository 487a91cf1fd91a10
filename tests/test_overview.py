"""The landing page per role: staff see customers, usage and alerts; a Manager sees the month's cost so
far; Users and Annotators see usage without prices."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from core import overview
from core.usage import ingest as usage
from db.engine import unit_of_work
from pages.common import visible_pages
from tests.apptest import app, texts
from tests.billing_factories import PAGES_SPEC, make_plan

TODAY = date.today()


def _usage_and_plan(world, engine):
    a = world.a
    _, plan_id = make_plan(engine, a.staff, code="pp", spec_=PAGES_SPEC, effective_from=TODAY.replace(day=1))
    from core.billing import plans

    with unit_of_work(engine) as s:
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=TODAY.replace(day=1))
        usage.record_events(s, a.staff, a.partner_id, [{
            "account_id": a.account_id, "metric": "pages", "quantity": "1200", "event_id": "ov-1",
            "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}])


def test_overview_service_per_role(world, engine, session):
    _usage_and_plan(world, engine)
    staff = overview.overview(session, world.a.staff)
    assert staff.customers_active == 2 and staff.usage[0].key == "pages" and staff.usage[0].value == 1200
    assert staff.month_to_date is None
    mgr = overview.overview(session, world.a.users["manager"])
    # 1,000 × 0.10 + 200 × 0.08 = 116.00, plus the 90.00 base fee
    assert mgr.month_to_date.total == 206 and mgr.plan_name
    annot = overview.overview(session, world.a.users["annotator"])
    assert annot.month_to_date is None and annot.usage[0].value == 1200 and not annot.open_alerts
    other = overview.overview(session, world.b.staff)
    assert other.usage == []


def test_overview_page_shows_prices_only_to_those_allowed(world, engine):
    _usage_and_plan(world, engine)
    at = app(world.a.users["manager"])
    assert "EUR 206.00" in [m.value for m in at.metric]
    at = app(world.a.users["annotator"])
    values = [m.value for m in at.metric]
    assert "1,200" in values and not any("EUR" in v for v in values) and "EUR" not in texts(at)
    assert "Active customer accounts" in [m.label for m in app(world.a.staff).metric]


def test_customers_see_one_usage_page():
    from core.accounts.actor import Actor

    manager = Actor(user_id=1, partner_id=1, role="manager", email="m@x", display_name="M", account_id=5)
    titles = {p[1]: p[2] for p in visible_pages(manager)}
    assert "pages/usage_dashboard.py" not in titles and titles["pages/usage_account.py"] == "Usage"
