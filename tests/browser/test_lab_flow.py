"""Billing-model lab in a real browser: staff compare a customer's current plan with a model edited on the
spot, see the chart and the savings, and apply the model from a date."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from core import clock
from core.billing import plans
from core.usage.ingest import record_events
from tests.billing_factories import make_plan
from tests.browser.conftest import login, rerun, shot
from tests.factories import PASSWORD
from tests.test_lab import DOCS_SPEC


def _seed(world, engine) -> None:
    a = world.a
    _, plan_id = make_plan(engine, a.staff, code="docs", spec_=DOCS_SPEC)
    now = clock.now().replace(hour=0, minute=0, second=1, microsecond=0)
    with Session(engine) as s, s.begin():
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id,
                          effective_from=clock.today() - timedelta(days=400))
        record_events(s, a.staff, a.partner_id, [
            {"account_id": a.account_id, "event_id": f"lab{i}", "metric": "documents" if i % 2 else "pages",
             "quantity": 400 + 37 * i if i % 2 else 1500 + 90 * i, "occurred_at": now - timedelta(days=10 + 25 * i)}
            for i in range(14)])


def test_compare_and_apply_in_the_browser(world, engine, app_url, page):
    _seed(world, engine)
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Billing-model lab").first.click()
    page.get_by_role("heading", name="Billing-model lab").first.wait_for(timeout=30000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30000)
    price = page.get_by_label("Price per unit")
    price.fill("0.25")
    with rerun(page):
        price.press("Enter")  # the comparison reruns with the edited model: wait for that run to finish
    page.get_by_role("heading", name="Break-even").first.wait_for(timeout=30000)
    assert page.get_by_text("Current: Plan docs").first.is_visible()
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
    page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
    shot(page, "lab-compare")
    with rerun(page):
        page.get_by_role("button", name="Apply to customer").click()
    page.get_by_text("applies to Customer a1").first.wait_for(timeout=30000)
    shot(page, "lab-applied")
    with Session(engine) as s:
        hist = plans.assignment_history(s, world.a.staff, world.a.partner_id, world.a.account_id)
    assert hist[0].plan_name.startswith("Model 1") and hist[0].effective_from.day == 1
