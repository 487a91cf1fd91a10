"""Issue 18: a usage batch touching several prepaid customers of one partner draws once per customer, and takes
the partner's wallet row lock only for the draws and the commit: every customer is rated before the first draw.
Before, the first customer's draw locked the wallet while the next customers were rated (thousands of rows
read and priced), so concurrent batches of that partner waited for all of it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.billing import settlement
from core.usage import ingest as usage
from db.engine import unit_of_work
from db.models.wallet import WalletLedgerEntry
from tests.statements_helpers import MAILING_SPEC, assign, set_mode
from tests.wallet_helpers import setup_wallet

WHEN = datetime(2026, 10, 15, 12, tzinfo=UTC)


def test_a_batch_rates_every_customer_before_it_locks_the_wallet(world, db, monkeypatch):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id, buy=100_000)
    ids = [a.account_id, a.other_account_id]
    for i, aid in enumerate(ids):
        assign(db, a.staff, a.partner_id, aid, MAILING_SPEC, f"mail{i}")
        set_mode(db, a.staff, a.partner_id, aid, "partner_prepaid")
    rated, locked = [], []
    real = settlement.month_to_date_cost

    def watching(session, partner_id, account_id, day, until=None):
        if until is None:
            rated.append(account_id)
            with db.connect() as other:  # is the wallet row free for another batch right now?
                try:
                    other.execute(text("SET lock_timeout = '50ms'"))
                    other.execute(text("SELECT 1 FROM wallets WHERE partner_id = :p FOR NO KEY UPDATE"),
                                  {"p": partner_id})
                except OperationalError:
                    locked.append(account_id)
                other.rollback()
        return real(session, partner_id, account_id, day, until)

    monkeypatch.setattr(settlement, "month_to_date_cost", watching)
    with unit_of_work(db) as s:
        usage.record_events(s, a.staff, a.partner_id, [
            {"account_id": aid, "metric": "documents", "quantity": str(100 * (i + 1)), "event_id": f"e{i}",
             "occurred_at": WHEN.isoformat()} for i, aid in enumerate(ids)], now=WHEN)
    assert sorted(rated) == sorted(ids)
    assert locked == []  # no customer was rated while the wallet was locked
    with Session(db) as s:
        draws = s.execute(select(WalletLedgerEntry.account_id, WalletLedgerEntry.credits).where(
            WalletLedgerEntry.partner_id == a.partner_id, WalletLedgerEntry.kind == "usage_draw")
            .order_by(WalletLedgerEntry.id)).all()
    assert [(acc, -c) for acc, c in draws] == [(ids[0], Decimal("105")), (ids[1], Decimal("210"))]
