"""Statements in a real browser: a partner switches a customer to partner-pays prepaid, the customer's
usage draws the wallet down (core.billing.settlement, as the usage is recorded), and the partner generates,
finalises and downloads the month's PDF."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core import clock
from core.billing.rating import month_of
from core.usage import ingest as usage
from db.engine import unit_of_work
from tests.browser.conftest import login, rerun, settle, shot
from tests.factories import PASSWORD
from tests.statements_helpers import MAILING_SPEC, assign
from tests.wallet_helpers import balance_of, setup_wallet


def _pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).first.click()
    with rerun(page, maybe=True):  # the option may be the one already selected
        page.get_by_role("option", name=option).first.click()


def test_partner_switches_to_prepaid_usage_draws_and_downloads_pdf(world, app_url, page, engine, tmp_path):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    assign(engine, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    login(page, app_url, "staff-a@test.example", PASSWORD)

    # 1. the partner switches Customer a1 to "Partner pays (prepaid credits)" from today
    with rerun(page):
        page.get_by_role("link", name="Billing modes").first.click()
    page.get_by_role("heading", name="Billing modes").wait_for()
    _pick(page, "Customer", "Customer a1")
    _pick(page, "Mode", "Partner pays (prepaid credits)")
    with rerun(page):
        page.get_by_role("button", name="Change mode").click()
    page.get_by_text("Billing mode changed.").first.wait_for(timeout=20000)
    shot(page, "statements-1-mode-prepaid")

    # 2. the customer's usage is recorded (API/import path) and draws the partner's credits at once
    when = clock.now() - timedelta(minutes=5)  # the server's clock: mid-month, mid-day (tests/when.py)
    with unit_of_work(engine) as s:
        usage.record_events(s, a.staff, a.partner_id, [{"account_id": a.account_id, "metric": "documents",
                                                        "quantity": "5000", "event_id": "browser-mailing-1",
                                                        "occurred_at": when.isoformat()}])
    assert balance_of(engine, a.partner_id) == Decimal(44_750)
    with rerun(page):
        page.get_by_role("link", name="Credits wallet").first.click()
    page.get_by_text("44,750").first.wait_for(timeout=20000)
    shot(page, "statements-2-wallet-drawn")

    # 3. the partner generates the month's statements, finalises Customer a1's and downloads the PDF
    month = month_of(clock.today())[0].strftime("%Y-%m")
    with rerun(page):
        page.get_by_role("link", name="Statements").first.click()
    page.get_by_role("heading", name="Statements").first.wait_for()
    _pick(page, "Month", month)
    with rerun(page):
        page.get_by_role("button", name=f"Generate drafts for {month}").click()
    # the mode changed today: the days before are the platform's statement, from today on the partner's
    page.get_by_text(f"Drafts for {month}: 2 created.").first.wait_for(timeout=20000)
    _pick(page, "Open statement", "Customer a1 · Statement from Partner A · draft")
    page.get_by_text("5,250 credits drawn").first.wait_for(timeout=20000)
    shot(page, "statements-3-draft")
    with rerun(page):
        page.get_by_role("button", name="Finalise").click()
    page.get_by_text("Statement finalised.").first.wait_for(timeout=20000)
    settle(page)
    shot(page, "statements-4-final")
    with page.expect_download(timeout=30000) as dl:
        page.get_by_role("button", name="Download PDF").click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    data = path.read_bytes()
    assert dl.value.suggested_filename.startswith("partnera-") and data.startswith(b"%PDF-")
    from tests.statements_helpers import pdf_text

    text = pdf_text(data)
    assert "Partner A" in text and "Customer a1" in text and "5,250 credits drawn" in text
    assert "Platform direct" not in text
