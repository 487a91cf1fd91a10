"""A scenario that tells a business history (issue 16): seeds/scenarios/history.toml (+ history_usage.toml),
loaded with today = 2026-05-20. Every total below is computed by hand from the file:

- price change: per-page 0.50 → 0.60 from March, 10 % loyalty discount on usage, base fee 100;
- plan change: Beta Bygg per page (Jan–Feb) → per document from March with its base fee overridden to 120;
- mode change: Gamma Post customer_pays → partner_prepaid from March: the partner issues it then, with its
  own statement settings (Norwegian, 25 % tax, 30 days, prefix FD);
- wallet: 10,000 bought at the start, +5,000 top-up, −500 adjustment, 1,000 refunded, 300 expired;
- statements: January finalised on 3 Feb, Alfa credited on 10 Feb, Beta voided on 12 Feb and generated again;
- deleted customer: Delta Data deleted on 16 March: March billed in full, nothing from April;
- usage from another file: 200 pages for Alfa on 10 April (history_usage.toml).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from db.models import Partner
from seeds.scenario import SCENARIOS_DIR, export_statements, load_file

TODAY = date(2026, 5, 20)
P = "Fjord Dokument AS"


@pytest.fixture
def history(db):
    load_file(db, SCENARIOS_DIR / "history.toml", today=TODAY)
    return db


def _month(db, month: str) -> dict[tuple[str, str | None], dict]:
    data, _ = export_statements(db, date.fromisoformat(month + "-01"), P)
    return {(st["kind"], st["customer"]): st for st in data["statements"]}


def _amounts(st: dict) -> dict[str, D]:
    return {ln["label"]: D(ln["amount"]) for sec in st["sections"] for ln in sec["lines"]}


def test_price_change_discount_and_usage_from_another_file(history):
    jan, mar, apr = _month(history, "2026-01"), _month(history, "2026-03"), _month(history, "2026-04")
    # January (final): 1,000 × 0.50 = 500.00 − 10 % = −50.00 + base 100.00 = 550.00
    assert _amounts(jan[("statement", "Alfa Regnskap")]) == {"Pages": D("500.00"), "Base fee": D("100.00"),
                                                              "Loyalty discount": D("-50.00")}
    # March: the new price 0.60: 600.00 − 60.00 + 100.00 = 640.00
    assert mar[("statement", "Alfa Regnskap")]["total"] == "640.00"
    # April: 1,000 generated + 200 from history_usage.toml = 1,200 × 0.60 = 720.00 − 72.00 + 100.00 = 748.00
    alfa = apr[("statement", "Alfa Regnskap")]
    assert _amounts(alfa)["Pages"] == D("720.00") and alfa["total"] == "748.00"


def test_plan_change_with_an_override(history):
    feb, mar = _month(history, "2026-02"), _month(history, "2026-03")
    # February, per page: 800 × 0.50 = 400.00 − 40.00 + 100.00 = 460.00
    assert feb[("statement", "Beta Bygg")]["total"] == "460.00"
    # March, per document with the base fee overridden: 100 × 2.00 = 200.00 + 120.00 = 320.00
    assert _amounts(mar[("statement", "Beta Bygg")]) == {"Documents": D("200.00"), "Base fee": D("120.00")}


def test_mode_change_moves_the_issuer_and_its_tax_language_and_terms(history):
    feb, mar = _month(history, "2026-02"), _month(history, "2026-03")
    before = feb[("statement", "Gamma Post")]
    assert (before["issuer"]["name"], before["tax"], before["total"], before["language"]) == \
        ("Platform direct", "0.00", "200.00", "en")  # the platform issues: its default tax is none
    after = mar[("statement", "Gamma Post")]
    # the partner issues now: 2,000 × 0.10 = 200.00 + 25 % tax 50.00 = 250.00, in Norwegian
    assert (after["issuer"]["name"], after["subtotal"], after["tax_rate"], after["tax"], after["total"],
            after["language"]) == ("Fjord Dokument", "200.00", "25.0000", "50.00", "250.00", "nb")
    assert after["modes"] == [["2026-03-01", "2026-03-31", "partner_prepaid"]]


def test_statement_history_finalised_credited_voided_and_generated_again(history):
    jan = _month(history, "2026-01")
    alfa, beta = jan[("statement", "Alfa Regnskap")], jan[("statement", "Beta Bygg")]
    assert (alfa["status"], alfa["issued_on"], alfa["due_on"]) == ("final", "2026-02-03", "2026-02-17")
    note = jan[("credit_note", "Alfa Regnskap")]
    # the credit note copies the lines negated (the discount too) and the original's tax rate; due 14 days on
    assert (note["subtotal"], note["total"], note["issued_on"], note["due_on"]) == \
        ("-550.00", "-550.00", "2026-02-10", "2026-02-24")
    assert _amounts(note)["Loyalty discount"] == D("50.00")
    # Beta's first final was voided (with a credit note) and January generated again: a new final, new number
    assert (beta["status"], beta["issued_on"], beta["total"]) == ("final", "2026-02-13", "460.00")
    assert jan[("credit_note", "Beta Bygg")]["total"] == "-460.00"
    numbers = sorted(st["number"] for st in jan.values())
    assert numbers[0].endswith("-000001") and len(set(numbers)) == len(numbers)


def test_deleted_customer_billed_for_its_last_month_only(history):
    mar, apr = _month(history, "2026-03"), _month(history, "2026-04")
    # deleted on 16 March: March billed in full (50 × 2.00 + base 150.00, not prorated), April not at all
    assert mar[("statement", "Delta Data")]["total"] == "250.00"
    assert ("statement", "Delta Data") not in apr


def test_wallet_history_and_every_stamp_at_the_time_it_happened(history):
    with Session(history) as s:
        pid = s.scalar(select(Partner.id).where(Partner.name == P))
        rows = s.execute(text("SELECT kind, credits, created_at, amount FROM wallet_ledger WHERE partner_id = :p "
                              "ORDER BY created_at, id"), {"p": pid}).all()
        assert [(r.kind, r.credits, r.created_at.date()) for r in rows] == [
            ("purchase", D(10000), date(2025, 12, 15)), ("purchase", D(5000), date(2026, 2, 10)),
            ("adjustment", D(-500), date(2026, 2, 15)), ("refund", D(-1000), date(2026, 2, 20)),
            ("expiry", D(-300), date(2026, 4, 30))]
        # the refund returns the purchase's price share: 1,000 of 5,000 credits = a fifth of what was paid
        assert rows[3].amount == (rows[1].amount / 5).quantize(D("0.01"))
        assert s.scalar(text("SELECT balance FROM wallets WHERE partner_id = :p"), {"p": pid}) == D(13200)
        created = dict(s.execute(text("SELECT name, created_at FROM customer_accounts WHERE partner_id = :p"),
                                 {"p": pid}).all())
        assert created["Alfa Regnskap"].date() == date(2025, 12, 20)
        assert created["Beta Bygg"].date() == date(2026, 1, 1)
        deleted = s.scalar(text("SELECT deleted_at FROM customer_accounts WHERE name = 'Delta Data'"))
        assert deleted.date() == date(2026, 3, 16)
        # audit: the plan change on its day, the January finalisation on 3 Feb; nothing at load time
        audit = s.execute(text("SELECT action, at FROM audit_log WHERE partner_id = :p"), {"p": pid}).all()
        assert max(a.at for a in audit) < datetime(2026, 5, 21, tzinfo=UTC)
        # finalised: January on 3 Feb, the credit notes on 10 and 12 Feb, Beta again on 13 Feb; March on 2 April
        # and Gamma's credit note on 15 April
        assert {a.at.date() for a in audit if a.action == "finalise"} == {
            date(2026, 2, 3), date(2026, 2, 10), date(2026, 2, 12), date(2026, 2, 13), date(2026, 4, 2),
            date(2026, 4, 15)}
        assert date(2026, 3, 1) in {a.at.date() for a in audit if a.action == "assign_plan"}
        versions = s.execute(text("SELECT version, effective_from, created_at FROM plan_versions "
                                  "WHERE partner_id = :p AND version = 2"), {"p": pid}).one()
        assert versions.effective_from == versions.created_at.date() == date(2026, 3, 1)


def test_credit_note_of_a_partner_issued_statement_negates_its_tax(history):
    mar = _month(history, "2026-03")
    st, note = mar[("statement", "Gamma Post")], mar[("credit_note", "Gamma Post")]
    assert (st["status"], st["number"][:3], st["total"]) == ("final", "FD-", "250.00")
    # the credit note: the subtotal negated, the tax computed at the ORIGINAL's rate on the negative subtotal
    # (−200.00 × 25 % = −50.00), due after the issuer's 30 days of payment terms
    assert (note["subtotal"], note["tax_rate"], note["tax"], note["total"]) == ("-200.00", "25.0000", "-50.00",
                                                                                "-250.00")
    assert (note["issued_on"], note["due_on"], note["number"][:6]) == ("2026-04-15", "2026-05-15", "FD-CN-")


PLATFORM_TAX = """\
password = "demo-pass-2026"

[platform.statements]       # the platform issues the statements of customers who pay themselves
tax_rate = "25"
language = "de"
payment_terms_days = 10

[[partners]]
name = "Svea Dokument AB"
currency = "SEK"
country = "SE"

  [[partners.plans]]
  code = "docs"
  name = "Per document"
    [[partners.plans.charges]]
    id = "docs"
    metric = "documents"
    model = "per_unit"
    unit_price = "3"

  [[partners.customers]]
  name = "Malmö Mäklare"
  country = "SE"
  plan = "docs"
  plan_from = "2026-04-01"
  events = [{ metric = "documents", quantity = 100, at = "2026-04-10" }]
"""


def test_platform_statement_settings_give_customers_who_pay_themselves_a_tax(db, tmp_path):
    from seeds.scenario_export import export_world

    f = tmp_path / "platform.toml"
    f.write_text(PLATFORM_TAX, encoding="utf-8")
    load_file(db, f, today=TODAY)
    data, _ = export_statements(db, date(2026, 4, 1), "Svea Dokument AB")
    (st,) = data["statements"]
    # 100 × 3.00 = 300.00 + 25 % = 75.00 → 375.00, from the platform, in German, due in 10 days
    assert (st["issuer"]["name"], st["subtotal"], st["tax"], st["total"], st["language"]) == \
        ("Platform direct", "300.00", "75.00", "375.00", "de")
    with Session(db) as s:
        assert '[platform.statements]\ntax_rate = "25"' in export_world(s)


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine


def test_a_step_dated_later_today_is_never_stamped_in_the_future(db):
    """A scenario step of today is dated 20:00 UTC; loaded before 20:00 that lies in the future, which the
    append-only audit log refuses (it may only move a stamp back): the stamp is capped at the transaction's time."""
    from datetime import timedelta

    from core.accounts import audit
    from core.accounts.actor import SYSTEM
    from seeds.scenario_history import restamp

    with Session(db) as s, s.begin():
        pid = s.execute(text("SELECT min(id) FROM partners")).scalar_one()
        audit.record(s, SYSTEM, partner_id=pid, action="scenario:test", entity="partner")
        restamp(s, datetime.now(UTC) + timedelta(hours=6), date.today())
        at = s.execute(text("SELECT max(at) FROM audit_log WHERE action = 'scenario:test'")).scalar_one()
        assert at <= s.execute(text("SELECT transaction_timestamp()")).scalar_one()
