"""Usage dashboard in a real browser: pick a date range and see the chart and the table change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from core import clock
from core.usage.ingest import record_events
from tests.browser.conftest import login, rerun, settle, shot, wait_app
from tests.factories import PASSWORD


def _seed(world, engine) -> None:
    a = world.a
    t0 = clock.now().replace(hour=0, minute=0, second=1, microsecond=0)
    events = [{"account_id": a.account_id if i % 4 else a.other_account_id, "event_id": f"b{i}",
               "metric": "documents", "quantity": 1 + i % 3, "occurred_at": t0 + timedelta(minutes=i)}
              for i in range(40)]
    with Session(engine) as s:
        record_events(s, a.staff, a.partner_id, events)
        s.commit()


def test_pick_range_changes_chart_and_table(world, engine, app_url, page):
    _seed(world, engine)
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Usage overview").first.click()
    page.get_by_role("heading", name="Usage").first.wait_for(timeout=30000)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30000)
    page.get_by_text("Every customer").first.wait_for(timeout=30000)
    assert "preset=this_month" in page.url
    shot(page, "usage-this-month")
    # pick "Last month": no usage there -> the page says so, no chart and no table
    page.get_by_label("Date range").first.click()
    with rerun(page):
        page.get_by_role("option", name="Last month").click()
    page.get_by_text("No usage recorded between").first.wait_for(timeout=30000)
    settle(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 0
    assert "preset=last_month" in page.url
    shot(page, "usage-last-month-empty")
    # back to "Last 30 days": chart and table again
    page.get_by_label("Date range").first.click()
    with rerun(page):
        page.get_by_role("option", name="Last 30 days").click()
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(timeout=30000)
    assert "preset=last_30_days" in page.url
    shot(page, "usage-last-30-days")


def test_enter_applies_a_typed_custom_range(world, engine, app_url, page):
    """Issue 15: typing a custom range and pressing Enter applies it (before, only leaving the field did)."""
    _seed(world, engine)
    login(page, app_url, "staff-a@test.example", PASSWORD)
    page.goto(app_url + "/usage_dashboard?preset=custom&from=2026-09-01&to=2026-09-30")  # remembered login
    wait_app(page)
    page.get_by_role("spinbutton", name="month, From – to start date").wait_for(timeout=30000)
    settle(page)
    page.get_by_role("spinbutton", name="month, From – to start date").click()
    page.keyboard.type("08")
    page.get_by_role("spinbutton", name="day, From – to end date").click()
    page.keyboard.type("31")
    page.get_by_role("spinbutton", name="month, From – to end date").click()
    page.keyboard.type("08")
    assert "from=2026-09-01" in page.evaluate("location.href")  # nothing applied while typing
    with rerun(page):
        page.keyboard.press("Enter")
    href = page.evaluate("location.href")
    assert "from=2026-08-01" in href and "to=2026-08-31" in href, href
    page.get_by_text("No usage recorded between 1 Aug 2026 and 31 Aug 2026").first.wait_for(timeout=30000)
    # the calendar that typing opened is closed too (it stayed open over the answer until a click elsewhere)
    page.wait_for_timeout(300)
    assert page.locator('[data-testid="stDateInputCalendar"]').count() == 0
    shot(page, "usage-custom-range-enter")


def test_admin_declares_a_priced_dimension(world, engine, app_url, page):
    """A platform admin declares an event property as a priced dimension on the Import usage page; a bad one is
    refused under its own field first."""
    login(page, app_url, "root@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Import usage").first.click()
    page.get_by_role("heading", name="Priced dimensions").wait_for(timeout=30000)
    form = page.locator('[data-testid="stForm"]').filter(has_text="Declare dimension")
    form.get_by_label("Event property").fill("bad key!")
    form.get_by_label("Label").fill("Campaign")
    with rerun(page):
        form.get_by_role("button", name="Declare dimension").click()
    page.get_by_text("Property names contain letters").first.wait_for(timeout=30000)
    form.get_by_label("Event property").fill("campaign")
    with rerun(page):
        form.get_by_role("button", name="Declare dimension").click()
    page.get_by_text("can now be priced by campaign").first.wait_for(timeout=30000)
    assert page.get_by_text("Property names contain letters").count() == 0
    assert form.get_by_label("Event property").input_value() == ""  # ready for the next one
    shot(page, "usage-dimension-declared")
