"""Credit lots: draw order, lots used per draw, expiry by date, refunds of paid credits at the price paid,
overdraft repaid by the next lot, the paid / free / expiring summary."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.billing import wallet
from core.billing.wallet_lots import lots_used, open_lots
from core.errors import NotFound, ValidationError
from db.engine import unit_of_work
from db.models.wallet import PartnerCreditPriceStep, WalletLedgerEntry, WalletLot, WalletRefund
from tests.wallet_helpers import balance_of, draw, outbox, setup_wallet

D = Decimal
TODAY = date(2026, 3, 2)


def _grant(db, world, t, credits, **kw):
    with unit_of_work(db) as s:
        return wallet.grant_credits(s, world.admin, t.partner_id, credits, "Promotion", today=TODAY, **kw)


def _lot_of(db, partner_id, entry_id):
    with Session(db) as s:
        return s.scalar(select(WalletLot.id).where(WalletLot.partner_id == partner_id, WalletLot.entry_id == entry_id))


def _used(db, t, entry_id):
    with Session(db) as s:
        return lots_used(s, t.partner_id, entry_id)


def test_draws_take_lots_by_priority_then_promotional_then_expiry_then_age(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    with Session(db) as s:
        paid = s.scalar(select(WalletLot.id).where(WalletLot.partner_id == t.partner_id))
    no_expiry = _lot_of(db, t.partner_id, _grant(db, world, t, 50))
    late = _lot_of(db, t.partner_id, _grant(db, world, t, 30, expires_on=TODAY + timedelta(days=10)))
    soon = _lot_of(db, t.partner_id, _grant(db, world, t, 20, expires_on=TODAY + timedelta(days=5)))
    first = _lot_of(db, t.partner_id, _grant(db, world, t, 40, priority=10))
    r = draw(db, t, 45, "d1")
    assert _used(db, t, r.entry_id) == sorted([(first, D(40)), (soon, D(5))])
    r = draw(db, t, 100, "d2")
    assert _used(db, t, r.entry_id) == sorted([(soon, D(15)), (late, D(30)), (no_expiry, D(50)), (paid, D(5))])
    with Session(db) as s:
        assert [(lot.id, lot.remaining) for lot in open_lots(s, t.partner_id)] == [(paid, D(95))]
    assert balance_of(db, t.partner_id) == D(95)


def test_lots_expire_on_their_date_each_with_a_ledger_entry(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, low_balance_threshold=120)
    lot = _lot_of(db, t.partner_id, _grant(db, world, t, 80, expires_on=TODAY + timedelta(days=3)))
    draw(db, t, 30, "d1")  # promotional first: 50 of the grant left
    with unit_of_work(db) as s:
        assert wallet.expire_lots(s, TODAY + timedelta(days=2)) == []
    with unit_of_work(db) as s:
        assert wallet.expire_lots(s, TODAY + timedelta(days=3)) == [(t.partner_id, lot)]
    with unit_of_work(db) as s:
        assert wallet.expire_lots(s, TODAY + timedelta(days=4)) == []  # once
    with Session(db) as s:
        e = s.scalars(select(WalletLedgerEntry).where(WalletLedgerEntry.kind == "expiry")).one()
    assert (e.credits, e.lot_id) == (D(-50), lot) and "expired on" in e.reason
    assert balance_of(db, t.partner_id) == D(100)
    assert len(outbox(db, t.partner_id, "low_balance")) == 1  # 150 -> 100: below 120, by expiry


def test_refund_returns_only_unused_paid_credits_at_the_price_paid(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)  # EUR 10.00 at 0.01
    with unit_of_work(db) as s:
        s.execute(update(PartnerCreditPriceStep).values(price_per_credit=D("0.02")))  # the price goes up later
    grant = _grant(db, world, t, 200)
    draw(db, t, 300, "d1")  # 200 free first, then 100 paid: 900 paid left
    with Session(db) as s:
        purchase = s.scalar(select(WalletLedgerEntry.id).where(WalletLedgerEntry.kind == "purchase"))
    with pytest.raises(ValidationError, match="900"), unit_of_work(db) as s:
        wallet.refund(s, world.admin, t.partner_id, purchase, 901, "Too much")
    with pytest.raises(NotFound), unit_of_work(db) as s:  # free credits are never refunded
        wallet.refund(s, world.admin, t.partner_id, grant, 10, "Free credits")
    with unit_of_work(db) as s:
        wallet.refund(s, world.admin, t.partner_id, purchase, 500, "Customer left")
    with Session(db) as s:
        e = s.scalars(select(WalletLedgerEntry).where(WalletLedgerEntry.kind == "refund")).one()
        money = s.scalars(select(WalletRefund)).one()
    assert (e.credits, e.amount) == (D(-500), D("5.00"))  # the price paid, not today's 0.02
    assert (money.amount, money.status) == (D("5.00"), "pending")
    with unit_of_work(db) as s:
        rep = wallet.reconcile(s, wallet.utcnow())
    assert rep.refunds_sent == 1
    with Session(db) as s:
        money = s.scalars(select(WalletRefund)).one()
    assert money.status == "refunded" and money.gateway_ref.startswith("demo_re_")
    assert balance_of(db, t.partner_id) == D(400)


def test_overdraft_is_repaid_from_the_next_lot(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, overdraft_policy="overdraft", overdraft_limit=100)
    r = draw(db, t, 150, "d1")
    assert r.balance == D(-50) and _used(db, t, r.entry_id)[0][1] == D(100)
    entry = _grant(db, world, t, 80)
    with Session(db) as s:
        lot = s.scalars(select(WalletLot).where(WalletLot.entry_id == entry)).one()
    assert (lot.credits, lot.remaining) == (D(80), D(30))
    assert balance_of(db, t.partner_id) == D(30)


def test_summary_shows_paid_free_and_what_expires_in_30_days(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=500)
    _grant(db, world, t, 100, expires_on=TODAY + timedelta(days=10))
    _grant(db, world, t, 60, expires_on=TODAY + timedelta(days=45))
    _grant(db, world, t, 40)
    with Session(db) as s:
        summary = wallet.lot_summary(s, t.staff, t.partner_id, TODAY)
    assert (summary.paid, summary.promotional, summary.expiring_credits) == (D(500), D(200), D(100))
    assert [lot.expires_on for lot in summary.expiring] == [TODAY + timedelta(days=10)]


def test_grant_validation_and_permission(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    for kw in ({"expires_on": TODAY}, {"priority": 101}):
        with pytest.raises(ValidationError), unit_of_work(db) as s:
            wallet.grant_credits(s, world.admin, t.partner_id, 10, "Promo", today=TODAY, **kw)
    from core.errors import PermissionDenied

    with pytest.raises(PermissionDenied), unit_of_work(db) as s:
        wallet.grant_credits(s, t.staff, t.partner_id, 10, "Gift to myself", today=TODAY)
