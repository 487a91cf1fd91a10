"""A partner-paid mode that starts mid-month, for a client whose plan changes later in that month to one with a
percentage charge with a fixed fee per transaction: the baseline (usage before the mode started) rates the later
plan's days with no usage yet. Those days have zero transactions; before the fix the engine was given no count
at all and refused ("needs the number of transactions"), so every usage batch of that client was refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models.settlement import UsageSettlement
from tests.statements_helpers import MAILING_SPEC, assign, record, set_mode
from tests.wallet_helpers import setup_wallet

PCT_FEE = {
    "currency": "EUR",
    "charges": [{"id": "pay", "metric": "documents", "model": "percentage", "rate": "1.2", "fixed_fee": "0.30"}],
    "fees": [],
}


def test_mid_month_prepaid_with_a_later_percentage_fee_plan_settles(world, db):
    b = world.b
    setup_wallet(db, b.staff, b.partner_id, buy=100_000)
    assign(db, b.staff, b.partner_id, b.account_id, MAILING_SPEC, "mail")
    assign(db, b.staff, b.partner_id, b.account_id, PCT_FEE, "pct", effective_from=date(2026, 10, 16))
    set_mode(db, b.staff, b.partner_id, b.account_id, "partner_prepaid", date(2026, 10, 9))
    record(db, b.staff, b.partner_id, b.account_id, "documents", 100, "d1", when=datetime(2026, 10, 12, tzinfo=UTC))
    with Session(db) as s:
        row = s.scalar(select(UsageSettlement).where(UsageSettlement.partner_id == b.partner_id))
        assert row is not None and row.settlements == 1 and row.baseline_credits == 0
