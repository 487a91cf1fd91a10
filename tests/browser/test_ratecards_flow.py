"""Two price layers in a real browser: a platform admin sets Partner A's rate card; the partner prices a client
below it and sees the warning (and can still assign the plan); the Money page shows that client's negative
margin."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.orm import Session

from core.billing import margin, modes, ratecards
from core.usage.ingest import record_events
from db.engine import unit_of_work
from tests.billing_factories import make_plan
from tests.browser.conftest import login, rerun, settle, shot
from tests.factories import PASSWORD
from tests.test_margin import PAGES_LOW
from tests.test_ratecards import standard
from tests.when import TODAY

LAST_MONTH = (TODAY.replace(day=1) - timedelta(days=1)).replace(day=1)


def _pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).first.click()
    with rerun(page, maybe=True):  # the option may be the one already selected
        page.get_by_role("option", name=option).first.click()


def _date(where, page, label: str, day: date) -> None:
    """Type a date into Streamlit's date field (segments year / month / day, which advance as typed)."""
    group = where.locator(f'[role="group"][aria-label="{label}"] >> visible=true').first
    group.locator('[role="spinbutton"]').first.click()
    page.keyboard.type(day.strftime("%Y%m%d"))
    with rerun(page, maybe=True):  # inside a form nothing runs until it is submitted
        page.keyboard.press("Tab")


def test_admin_card_partner_below_cost_money_page(world, app_url, page, engine):
    a = world.a
    standard(engine, world.admin)  # list price: pages 1–1000 at 0.05, then 0.04
    make_plan(engine, a.staff, code="low", spec_=PAGES_LOW, name="Low pages")  # the client would pay 0.03
    with unit_of_work(engine) as s:
        modes.set_mode(s, a.staff, a.partner_id, a.account_id, "agency", date(2024, 1, 1), today=date(2024, 1, 1))
        record_events(s, a.staff, a.partner_id, [{
            "account_id": a.account_id, "metric": "pages", "quantity": "1200", "event_id": "b-1",
            "occurred_at": datetime.combine(LAST_MONTH + timedelta(days=9), datetime.min.time(), UTC).isoformat()}])

    # 1. the platform admin negotiates Partner A's card: the first 1,000 pages at 0.06
    login(page, app_url, "root@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Rate cards").first.click()
    page.get_by_role("heading", name="Rate cards").wait_for()
    _pick(page, "Partner", "Partner A")
    _date(page, page, "Effective from", date(2024, 1, 1))
    page.get_by_label("Overrides (one per line: path = value) or the card as JSON").fill(
        "usage.charges.pages.tiers.0.unit_price = 0.06")
    with rerun(page):
        page.get_by_role("button", name="Save prices").click()
    page.get_by_text("Rate card saved.").first.wait_for(timeout=20000)
    page.get_by_text("negotiated prices").first.wait_for(timeout=20000)
    shot(page, "ratecards-1-admin-sets-card")
    with Session(engine) as s:
        card = ratecards.card_in_force(s, a.partner_id, LAST_MONTH).card
    assert str(card.usage.charge("pages").tiers[0].unit_price) == "0.06"

    # 2. the partner prices Customer a1 below it: a warning, not a refusal
    with rerun(page):
        page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Pricing").first.click()
    page.get_by_role("heading", name="Pricing").wait_for()
    with rerun(page, maybe=True):
        page.get_by_role("tab", name="Customers").click()
    _pick(page, "Customer", f"Customer a1 (#{a.account_id}, EUR)")
    page.get_by_text("Margin preview").first.wait_for(timeout=20000)
    # the partner's only plan, "Low pages", is the one previewed (no plan is assigned yet)
    # 1,200 pages × 0.03 = 36.00 for the client; the card: 1,000 × 0.06 + 200 × 0.04 = 68.00
    page.get_by_text("Below cost").first.wait_for(timeout=20000)
    page.get_by_text("EUR -32.00").first.wait_for(timeout=20000)
    page.get_by_text("Below cost").first.scroll_into_view_if_needed()
    shot(page, "ratecards-2-partner-below-cost-warning")
    # assigned anyway (the "Assign a plan" section is open: the customer has no plan; its only plan is chosen)
    _date(page, page, "Effective from", date(2024, 1, 1))
    with rerun(page):
        page.get_by_role("button", name="Assign plan").click()
    page.get_by_text("Plan assigned.").first.wait_for(timeout=20000)

    # 3. the Money page shows Customer a1 sold below cost
    with rerun(page):
        page.get_by_role("link", name="Money").first.click()
    page.get_by_role("heading", name="Money").wait_for()
    page.get_by_text("sold below cost").first.wait_for(timeout=20000)
    # that client, by name, with its negative margin: 36.00 − 68.00 (the table is a canvas: read the warning)
    page.get_by_text(f"Customer a1, {LAST_MONTH:%b %Y}: margin EUR -32.00").first.wait_for(timeout=20000)
    settle(page)
    shot(page, "ratecards-3-money-negative-margin")
    page.get_by_text("Top customers by margin").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    shot(page, "ratecards-4-money-trend")
    with Session(engine) as s:
        row = next(r for r in margin.margins(s, a.staff, a.partner_id, LAST_MONTH, LAST_MONTH + timedelta(days=27)).rows
                   if r.account_id == a.account_id)
    assert (row.revenue, row.cost, row.margin) == (36, 68, -32)
