"""The Pricing page's margin preview: for the customer's usage of last month, the client's price, the platform's
charge (rate card) and the margin; a plan below cost gets a warning, and can still be saved."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.billing import plans
from core.usage.ingest import record_events
from db.engine import unit_of_work
from tests.apptest import app, texts
from tests.billing_factories import make_plan
from tests.test_margin import PAGES_LOW
from tests.test_ratecards import standard
from tests.when import TODAY

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)

PAGE = "pages/pricing.py"

LAST_MONTH = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=10)


def _setup(world, db):
    a = world.a
    standard(db, world.admin)  # pages: 1–1000 at 0.05, then 0.04
    pid, plan_id = make_plan(db, a.staff, code="low", spec_=PAGES_LOW)  # the client pays 0.03 a page
    with unit_of_work(db) as s:
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
        record_events(s, a.staff, a.partner_id, [{
            "account_id": a.account_id, "metric": "pages", "quantity": "1200", "event_id": "lm-1",
            "occurred_at": datetime.combine(LAST_MONTH, datetime.min.time(), UTC).isoformat()}])
    return pid, plan_id


def _metrics(at) -> dict[str, str]:
    return {m.label.split(" (")[0]: m.value for m in at.metric}


def test_customer_tab_shows_price_cost_margin_and_warns_below_cost(world, db):
    a = world.a
    _setup(world, db)
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_customer").select(a.account_id).run()
    assert not at.exception, at.exception
    m = _metrics(at)
    # 1,200 × 0.03 = 36.00; the card: 1,000 × 0.05 + 200 × 0.04 = 58.00
    assert (m["Client price"], m["Platform charge"], m["Margin"]) == ("EUR 36.00", "EUR 58.00", "EUR -22.00")
    assert any("Below cost" in w.value for w in at.warning)


def test_editing_a_plan_previews_its_margin_and_below_cost_is_not_refused(world, db):
    a = world.a
    pid, plan_id = _setup(world, db)
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_edit").select((pid, plan_id)).run()
    at.selectbox(key="pr_edit_margin_cust").select(a.account_id).run()
    assert not at.exception, at.exception
    assert _metrics(at)["Margin"] == "EUR -22.00"
    assert any("Below cost" in w.value for w in at.warning)
    at.date_input(key="pr_eff_version").set_value(date(2024, 5, 1))
    next(b for b in at.button if b.label == "Save as new version").click().run()
    assert not at.error, [e.value for e in at.error]
    with Session(db) as s:
        assert len(plans.versions_of(s, pid, plan_id)) == 2


def test_a_plan_above_cost_has_no_warning_and_customers_see_no_margin(world, db):
    a = world.a
    _setup(world, db)
    _, fair = make_plan(db, a.staff, code="fair", spec_={**PAGES_LOW, "charges": [
        {**PAGES_LOW["charges"][0], "unit_price": "0.06"}]})
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_customer").select(a.account_id).run()
    at.selectbox(key="pr_cust_margin_plan").select((a.partner_id, fair)).run()
    assert _metrics(at)["Margin"] == "EUR 14.00"
    assert not any("Below cost" in w.value for w in at.warning)
    manager = app(a.users["manager"], PAGE)
    assert not manager.exception
    assert "Margin" not in _metrics(manager) and "Platform charge" not in texts(manager)
