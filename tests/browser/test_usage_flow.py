"""Usage dashboard in a real browser: pick a date range and see the chart and the table change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from core.usage.ingest import record_events
from tests.browser.conftest import login, rerun, settle, shot
from tests.factories import PASSWORD


def _seed(world, engine) -> None:
    a = world.a
    t0 = datetime.now(UTC).replace(hour=0, minute=0, second=1, microsecond=0)
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
    page.get_by_text("Top customers").first.wait_for(timeout=30000)
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
