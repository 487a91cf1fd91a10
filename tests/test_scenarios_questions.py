"""The questions docs/pricing.md, docs/wallet.md and docs/statements.md left open (issue 16), each answered
there under "Questions answered" with a worked example, and checked here on the history world
(seeds/scenarios/history.toml, today 2026-05-20) or the demo worlds. Questions 1, 3, 4, 6 and 11 are also
exercised line by line in tests/test_scenarios_history.py."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM
from core.billing import wallet
from core.errors import ValidationError
from core.statements import lifecycle
from core.statements.i18n import LANGUAGES
from db.engine import unit_of_work
from db.models import CustomerAccount, Partner
from db.models.statements import Statement
from seeds.scenario import SCENARIOS_DIR, export_statements, load_file
from seeds.scenario_format import ScenarioError

TODAY = date(2026, 5, 20)
P = "Fjord Dokument AS"


@pytest.fixture
def history(db):
    load_file(db, SCENARIOS_DIR / "history.toml", today=TODAY)
    return db


def _month(db, month: str) -> dict:
    data, _ = export_statements(db, date.fromisoformat(month + "-01"), P)
    return {(st["kind"], st["customer"]): st for st in data["statements"]}


def _pid(s: Session) -> int:
    return s.scalar(select(Partner.id).where(Partner.name == P))


def test_q1_deletion_mid_month_bills_that_month_in_full_and_nothing_after(history):
    mar, apr = _month(history, "2026-03"), _month(history, "2026-04")
    delta = mar[("statement", "Delta Data")]
    assert [ln["amount"] for ln in delta["sections"][0]["lines"]] == ["100.00", "150.00"]  # fee not prorated
    assert ("statement", "Delta Data") not in apr


def test_q2_billing_starts_with_the_plan_not_the_account_and_modes_run_from_the_period_start(history):
    dec = _month(history, "2025-12")
    assert ("statement", "Alfa Regnskap") not in dec  # created 20 Dec, plan from 1 Jan: nothing in December
    gamma = _month(history, "2026-02")[("statement", "Gamma Post")]
    assert gamma["modes"] == [["2026-02-01", "2026-02-28", "customer_pays"]]


def test_q3_the_issuers_tax_rate_and_none_by_default_on_the_platform(history):
    feb, mar = _month(history, "2026-02"), _month(history, "2026-03")
    platform = feb[("statement", "Alfa Regnskap")]
    assert (platform["issuer"]["name"], platform["tax_rate"], platform["tax"]) == ("Platform direct", None, "0.00")
    partner = mar[("statement", "Gamma Post")]
    assert (partner["issuer"]["name"], partner["tax_rate"], partner["tax"]) == ("Fjord Dokument", "25.0000", "50.00")


def test_q4_credit_note_tax_from_the_negative_subtotal_at_the_original_rate(history):
    note = _month(history, "2026-03")[("credit_note", "Gamma Post")]
    assert (note["subtotal"], note["tax"], note["due_on"]) == ("-200.00", "-50.00", "2026-05-15")


def test_q5_voiding_a_final_prepaid_statement_does_not_return_credits(history):
    with unit_of_work(history) as s:
        pid = _pid(s)
        acc = s.scalar(select(CustomerAccount.id).where(CustomerAccount.name == "Gamma Post"))
        before = s.execute(text("SELECT balance, (SELECT count(*) FROM wallet_ledger WHERE partner_id = :p) "
                                "FROM wallets WHERE partner_id = :p"), {"p": pid}).one()
        st = s.scalar(select(Statement).where(Statement.partner_id == pid, Statement.account_id == acc,
                                              Statement.kind == "statement", Statement.status == "final",
                                              Statement.period_start == date(2026, 4, 1)))
        assert st is None  # April is a draft: finalise it, then void it
        lifecycle.generate_month(s, SYSTEM, pid, date(2026, 4, 1), finalise=True)
        st = s.scalar(select(Statement).where(Statement.partner_id == pid, Statement.account_id == acc,
                                              Statement.kind == "statement", Statement.period_start == date(2026, 4, 1)))
        lifecycle.void(s, SYSTEM, pid, st.id, "Issued to the wrong customer")
        after = s.execute(text("SELECT balance, (SELECT count(*) FROM wallet_ledger WHERE partner_id = :p) "
                               "FROM wallets WHERE partner_id = :p"), {"p": pid}).one()
    assert tuple(after) == tuple(before)


def test_q6_a_voided_final_month_can_be_generated_again(history):
    jan = _month(history, "2026-01")
    beta = jan[("statement", "Beta Bygg")]
    assert beta["status"] == "final" and beta["issued_on"] == "2026-02-13"


def test_q7_refund_amount_share_of_the_price_rounded_signed_and_what_is_left(history):
    with unit_of_work(history) as s:
        pid = _pid(s)
        top_up = s.execute(text("SELECT id, credits, amount FROM wallet_ledger WHERE partner_id = :p AND "
                                "kind = 'purchase' ORDER BY id OFFSET 1 LIMIT 1"), {"p": pid}).one()
        refund = s.execute(text("SELECT credits, amount FROM wallet_ledger WHERE refund_of = :i"),
                           {"i": top_up.id}).one()
        # 1,000 of 5,000 credits: a fifth of the price, rounded to the currency, positive money back, the
        # credits negative
        assert top_up.amount == D("550.00")  # 5,000 × 0.1100 NOK
        assert refund.credits == -1000 and refund.amount == D("110.00")
        # what is left of the purchase: 5,000 bought − 1,000 refunded = 4,000
        with pytest.raises(ValidationError, match="4,000"):
            wallet.refund(s, SYSTEM, pid, top_up.id, 4001, "Too much")


def test_q8_expiry_and_refunds_send_the_low_balance_reminder_once_per_dip(history):
    with unit_of_work(history) as s:
        pid = _pid(s)
        reminders = "SELECT count(*) FROM outbox WHERE partner_id = :p AND kind = 'low_balance'"
        assert s.scalar(text(reminders), {"p": pid}) == 0
        wallet.expire(s, SYSTEM, pid, 12500, "Year-end expiry")  # 13,200 → 700, below the threshold 1,000
        assert s.scalar(text(reminders), {"p": pid}) == 1
        wallet.adjust(s, SYSTEM, pid, -100, "Correction")  # still the same dip: no second message
        assert s.scalar(text(reminders), {"p": pid}) == 1
        w = s.execute(text("SELECT auto_buy_armed, auto_buy_credits FROM wallets WHERE partner_id = :p"),
                      {"p": pid}).one()
        assert w.auto_buy_credits is None and w.auto_buy_armed  # armed, but off until an amount is set


def test_q9_a_wallet_is_drawn_once_per_customer_per_recorded_batch(db):
    load_file(db, SCENARIOS_DIR / "newsletter.toml", today=date(2026, 11, 20))
    with Session(db) as s:
        rows = s.execute(text(
            "SELECT a.name, count(*) FROM wallet_ledger l JOIN customer_accounts a ON a.partner_id = l.partner_id "
            "AND a.id = l.account_id WHERE l.kind = 'usage_draw' AND l.created_at >= '2026-10-01' "
            "AND l.created_at < '2026-11-01' GROUP BY a.name")).all()
    # October: Münchner Mandanten sends two mailings (3rd and 17th), Wiener Werkstatt one: the scenario
    # records a month of one metric per batch, so one draw each per month
    assert dict(rows) == {"Münchner Mandanten KG": 1, "Wiener Werkstatt": 1}


def test_q10_default_credit_prices_per_currency(history):
    with Session(history) as s:
        pid = _pid(s)
        prices = {cur: wallet.price_for(s, pid, 1000, cur).price_per_credit for cur in ("EUR", "NOK", "SEK", "DKK")}
        assert prices == {"EUR": D("0.0100"), "NOK": D("0.1100"), "SEK": D("0.1100"), "DKK": D("0.0750")}
        assert wallet.price_for(s, pid, 10000, "DKK").amount == D("700.00")  # the 10,000 step: 0.0700


def test_q11_numbers_start_at_1_per_issuer_series_and_year(history):
    jan, mar = _month(history, "2026-01"), _month(history, "2026-03")
    assert jan[("statement", "Alfa Regnskap")]["number"].endswith("-000001")
    assert jan[("credit_note", "Alfa Regnskap")]["number"].endswith("CN-2026-000001")
    assert mar[("statement", "Gamma Post")]["number"].startswith("FD-") and \
        mar[("statement", "Gamma Post")]["number"].endswith("-000001")


def test_q13_statement_languages_and_a_scenario_asking_for_swedish(db, tmp_path):
    assert set(LANGUAGES) == {"en", "de", "nb"}
    f = tmp_path / "sv.toml"
    f.write_text('password = "demo-pass-2026"\n[[partners]]\nname = "Svensk AB"\ncurrency = "SEK"\n'
                 '[partners.statements]\nlanguage = "sv"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_file(db, f, today=TODAY)
    (p,) = exc.value.problems
    assert (p.path, p.line) == ("partners[0].statements.language", 6) and "en, de, nb" in p.message


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
