"""Pricing in a real browser: a bad plan is refused with its message; a Manager sees their preview."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan
from tests.billing_factories import make_plan
from tests.browser.conftest import login, rerun, shot
from tests.factories import PASSWORD


def test_staff_bad_plan_refused_then_manager_preview(world, app_url, page, engine):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    page.get_by_role("link", name="Pricing").first.click()
    page.get_by_role("heading", name="Pricing").wait_for()
    page.get_by_label("Plan name").fill("Broken")
    page.get_by_label("Code").fill("broken")
    page.get_by_label("Charge id (short, no dots)").fill("pages")
    with rerun(page):
        page.get_by_label("Charge id (short, no dots)").press("Enter")
    page.get_by_label("Price per unit", exact=True).fill("-0.10")
    with rerun(page):
        page.get_by_label("Price per unit", exact=True).press("Enter")
    with rerun(page):
        page.get_by_role("button", name="Add charge").click()
    # refused as soon as it is added, with its message
    page.get_by_text("charge.unit_price: unit price must not be negative, got -0.10").wait_for(timeout=20000)
    shot(page, "pricing-bad-plan-refused")
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(Plan)) == 0

    a = world.a
    pid, plan_id = make_plan(engine, a.staff, code="std")
    with Session(engine) as s, s.begin():
        plans.assign_plan(s, a.staff, pid, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)  # logged out (and remembered login revoked)
    login(page, app_url, "manager-a@test.example", PASSWORD)
    page.get_by_role("link", name="Pricing").first.click()
    page.get_by_text("At this month's usage so far, you would pay EUR 90.00.").wait_for(timeout=20000)
    shot(page, "pricing-manager-preview")
