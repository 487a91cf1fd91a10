"""The tiers editor keeps every keystroke (issue 13: "loses the first keystroke of each new tier row"): in a real
browser, tiers are typed row by row, cell by cell — more rows than the editor starts with, so the grid's own
add-row gesture is used too — and every digit arrives: in the calculator and in the saved plan."""

from __future__ import annotations

from decimal import Decimal as D

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan
from tests.browser.conftest import rerun, shot
from tests.browser.test_pricing_builder_flow import _open_pricing, _pick, _type

# (From, To, Price): five tiers, one more than the editor's blank rows
TIERS = [("1", "1000", "0.10"), ("1001", "5000", "0.08"), ("5001", "20000", "0.065"), ("20001", "100000", "0.05"),
         ("100001", "", "0.0425")]
ROW_H = 35  # the grid's row height, header included (Streamlit's default)


def _grid(page):
    grid = page.locator('[data-testid="stDataFrame"]').filter(has=page.locator("canvas")).last
    grid.scroll_into_view_if_needed()
    return grid


def _row_cells(page, row: int) -> list[str]:
    """The texts of a data row's cells, from the grid's accessible table (the canvas itself has no text)."""
    rows = _grid(page).locator('[role="row"]')
    if rows.count() <= row + 1:
        return []
    return [t.strip() for t in rows.nth(row + 1).locator('[role="gridcell"]').all_inner_texts()]


def _type_row(page, row: int, values: tuple[str, ...]) -> None:
    """Click the first cell of a row (row 0 = first data row; the row after the last is the grid's add-row line),
    then type each cell and Tab to the next, as a user does. The grid is drawn on a canvas: cells are clicked at
    their position (the row-marker column is about 35 px wide, rows 35 px high). A click the grid was not ready
    for (still laying out after the last run) selects nothing and the digits go nowhere: the row is read back
    from the grid's accessible table, and typed again if it did not arrive."""
    for _attempt in range(3):
        grid = _grid(page)
        page.wait_for_timeout(600)  # the grid maps clicks to cells with its position as of the last scroll event
        box = grid.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 60, box["y"] + ROW_H * (row + 1) + ROW_H / 2)
        page.mouse.click(box["x"] + 60, box["y"] + ROW_H * (row + 1) + ROW_H / 2)
        page.wait_for_timeout(400)  # a loaded machine needs the time for the grid to select the cell
        for text in values:
            if text:
                page.keyboard.type(text, delay=60)
            page.keyboard.press("Tab")
            page.wait_for_timeout(250)
        page.wait_for_timeout(300)
        if _row_cells(page, row)[:len(values)] == list(values):
            return
        page.keyboard.press("Escape")
    raise AssertionError(f"row {row} of the tiers grid reads {_row_cells(page, row)}, not {values}")


def test_tiers_typed_row_by_row_all_stay(world, app_url, page, engine):
    page.set_viewport_size({"width": 1400, "height": 1600})
    _open_pricing(page, app_url)
    _type(page, "Plan name", "Tiered documents")
    _type(page, "Code", "tiered-docs")
    _pick(page, "How it is priced", "Graduated tiers")
    with rerun(page):
        page.get_by_text("Show every metric").first.click()
    _pick(page, "What is measured", "Processed documents (documents)")
    _type(page, "Charge id (short, no dots)", "docs")
    for r, row in enumerate(TIERS):
        _type_row(page, r, row)
    shot(page, "pricing-tiers-typed")
    # sent at once with the form (no rerun per cell): the calculator prices the charge being added
    with rerun(page):
        page.get_by_role("button", name="Price it in the calculator").click()
    _type(page, "Processed documents (documents): quantity this month", "150000")
    # 1000 × 0.10 + 4000 × 0.08 + 15000 × 0.065 + 80000 × 0.05 + 50000 × 0.0425 = 7520.00
    page.get_by_text("Total per month: EUR 7,520.00").wait_for(timeout=20000)
    shot(page, "pricing-tiers-calculator")
    with rerun(page):
        page.get_by_role("button", name="Add charge").click()
    with rerun(page):
        page.get_by_role("button", name="Create plan").click()
    page.get_by_text("Plan “Tiered documents” created.").wait_for(timeout=20000)
    with Session(engine) as s:
        plan = s.scalar(select(Plan).where(Plan.code == "tiered-docs"))
        c = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id).spec().charge("docs")
    assert [(t.first, t.last, t.unit_price) for t in c.tiers] == [
        (D(a), D(b) if b else None, D(p)) for a, b, p in TIERS]
