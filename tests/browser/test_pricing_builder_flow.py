"""The plan builder in a real browser (issue 13): a percentage plan and a per-country SMS plan are made without
typing a dotted path, and the price calculator answers beside the form."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan
from tests.browser.conftest import login, rerun, shot
from tests.factories import PASSWORD


def _pick(page, label: str, option: str) -> None:
    """Open a select box, type to filter its options, take the one shown."""
    box = page.get_by_label(label, exact=True).first
    box.scroll_into_view_if_needed()
    box.click()
    page.keyboard.type(option)
    with rerun(page, maybe=True):
        page.get_by_role("option", name=option).first.click()


def _type(page, label: str, value: str) -> None:
    box = page.get_by_label(label, exact=True).first
    box.fill(value)
    with rerun(page, maybe=True):
        box.press("Enter")


def _open_pricing(page, app_url: str) -> None:
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Pricing").first.click()
    page.get_by_role("heading", name="Pricing").wait_for()


def test_percentage_and_per_country_sms_plans_without_a_dotted_path(world, app_url, page, engine):
    _open_pricing(page, app_url)
    # --- a percentage plan (Lago's example: 1.2 % + 0.10, the first 3 transactions or 500 free)
    _type(page, "Plan name", "Payments")
    _type(page, "Code", "payments")
    _pick(page, "How it is priced", "Percentage of an amount")
    page.get_by_label("Percentage rate", exact=True).wait_for()
    assert page.get_by_label("Price per unit", exact=True).count() == 0  # only the chosen model's fields
    with rerun(page):
        page.get_by_text("Show every metric").first.click()
    _pick(page, "What is measured", "Processed documents (documents)")
    _type(page, "Charge id (short, no dots)", "pay")
    _type(page, "Percentage rate", "1.2")
    _type(page, "Fixed fee per transaction (optional)", "0.10")
    _type(page, "Free transactions (optional)", "3")
    _type(page, "Free amount (optional)", "500")
    _type(page, "or each amount (200, 100, …)", "200, 100, 100, 50")
    page.get_by_text("Total per month: EUR 0.70").wait_for(timeout=20000)
    shot(page, "pricing-builder-percentage-calculator")
    with rerun(page):
        page.get_by_role("button", name="Add charge").click()
    # the plan so far, in words (a data grid: its cells are in the DOM for assistive technology, drawn on a canvas)
    page.locator('[role="gridcell"]', has_text="1.2% of the amount + 0.10 per transaction; first 3 transactions "
                                              "free; first 500.00 free").first.wait_for(state="attached", timeout=20000)
    with rerun(page):
        page.get_by_role("button", name="Create plan").click()
    page.get_by_text("Plan “Payments” created.").wait_for(timeout=20000)
    shot(page, "pricing-builder-percentage-created")
    with Session(engine) as s:
        plan = s.scalar(select(Plan).where(Plan.code == "payments"))
        c = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec().charge("pay")
    assert (c.model, c.param("rate"), c.param("fixed_fee"), c.param("free_amount")) == (
        "percentage", D("1.2"), D("0.10"), D(500))

    # --- an SMS plan priced per destination country
    _pick(page, "Create or edit", "+ New plan")
    _type(page, "Plan name", "SMS by country")
    _type(page, "Code", "sms-country")
    _pick(page, "How it is priced", "Per unit")
    _pick(page, "What is measured", "Messages sent (messages)")
    _type(page, "Charge id (short, no dots)", "sms")
    _type(page, "Price per unit", "0.08")
    page.get_by_text("More options: statement wording").click()  # an expander: opens without a run
    _type(page, "Line label on statements", "SMS")
    _pick(page, "The price depends on", "Destination country (country)")  # declared: no property name to type
    for value, label, price in (("NO", "Norway", "0.05"), ("SE", "Sweden", "0.06")):
        _type(page, "Value", value)
        _type(page, "Shown as", label)
        page.get_by_label("Price per unit", exact=True).last.fill(price)
        with rerun(page):
            page.get_by_label("Price per unit", exact=True).last.press("Enter")
        with rerun(page):
            page.get_by_role("button", name="Add value").click()
    _type(page, "Messages sent (messages): quantity this month", "2000")
    _type(page, "of which Norway", "1200")
    _type(page, "of which Sweden", "500")
    page.get_by_text("Total per month: EUR 114.00").wait_for(timeout=20000)
    shot(page, "pricing-builder-sms-calculator")
    with rerun(page):
        page.get_by_role("button", name="Add charge").click()
    with rerun(page):
        page.get_by_role("button", name="Create plan").click()
    page.get_by_text("Plan “SMS by country” created.").wait_for(timeout=20000)
    with Session(engine) as s:
        plan = s.scalar(select(Plan).where(Plan.code == "sms-country"))
        c = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec().charge("sms")
    assert c.dimension == "country"
    assert [(d.value, d.label, dict(d.prices)) for d in c.dimension_prices] == [
        ("NO", "Norway", {"unit_price": D("0.05")}), ("SE", "Sweden", {"unit_price": D("0.06")})]
