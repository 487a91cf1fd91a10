"""Credit lots: every purchase or grant is a lot (paid or promotional, optional expiry day, priority).

Debits take credits from lots in one fixed order — priority (lower first), promotional before paid, earliest
expiry (none last), oldest — through the SQL function `wallet_take_lots` (migration 0013), which records each
lot used in `wallet_lot_uses`. Credits that arrive while the balance is negative first repay the overdraft,
so on every wallet sum(lot remaining) == max(balance, 0) (checked by :func:`verify_lots`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.wallet_base import (
    LedgerMismatch,
    after_credit_in,
    after_debit,
    credits_value,
    insert_entry,
    lock_wallet,
    reason_text,
    wallet_row,
)
from core.errors import ValidationError
from core.pricing.money import format_quantity
from db.models.wallet import DEFAULT_LOT_PRIORITY, LOT_KINDS, WalletLot, WalletLotUse

LOT = WalletLot.__table__
USE = WalletLotUse.__table__
LOT_ORDER = (LOT.c.priority, LOT.c.kind == "paid", LOT.c.expires_on.asc().nulls_last(), LOT.c.id)
_TAKE = text("SELECT wallet_take_lots(:p, :w, :e, :c)")


def add_lot(session: Session, w: Any, entry_id: int, balance_after: Decimal, credits: Decimal, kind: str, *,
            price_per_credit: Decimal | None = None, currency: str | None = None, expires_on: date | None = None,
            priority: int = DEFAULT_LOT_PRIORITY) -> int:
    """The lot for credits just added by ledger entry `entry_id` (the wallet is locked). What repaid an
    overdraft is not in the lot: remaining = min(credits, max(balance_after, 0))."""
    remaining = min(credits, max(balance_after, Decimal(0)))
    lot_id = session.execute(insert(LOT).values(
        partner_id=w.partner_id, wallet_id=w.id, kind=kind, credits=credits, remaining=remaining,
        expires_on=expires_on, priority=priority, price_per_credit=price_per_credit, currency=currency,
        entry_id=entry_id).returning(LOT.c.id)).scalar_one()
    if remaining < credits:  # the overdraft repaid from this lot
        session.execute(insert(USE).values(partner_id=w.partner_id, entry_id=entry_id, lot_id=lot_id,
                                           credits=credits - remaining))
    return lot_id


def take_lots(session: Session, w: Any, entry_id: int, credits: Decimal) -> Decimal:
    """Take `credits` for debit entry `entry_id` in the documented order; returns what the lots covered."""
    return session.execute(_TAKE, {"p": w.partner_id, "w": w.id, "e": entry_id, "c": credits}).scalar_one()


def take_from_lot(session: Session, w: Any, lot_id: int, entry_id: int, credits: Decimal) -> None:
    """Take `credits` from one given lot (refunds, expiry)."""
    session.execute(update(LOT).where(LOT.c.partner_id == w.partner_id, LOT.c.id == lot_id)
                    .values(remaining=LOT.c.remaining - credits))
    session.execute(insert(USE).values(partner_id=w.partner_id, entry_id=entry_id, lot_id=lot_id, credits=credits))


def grant_credits(session: Session, actor: Actor, partner_id: int, credits: Any, reason: str, *,
                  expires_on: date | None = None, priority: int = DEFAULT_LOT_PRIORITY,
                  today: date | None = None) -> int:
    """Give promotional (free) credits, optionally expiring at the start of `expires_on`. Platform only
    (wallet.adjust). Returns the ledger entry id."""
    authorize(actor, "wallet.adjust", partner_id)
    c = credits_value(credits)
    r = reason_text(reason)
    today = today or clock.today()
    if expires_on is not None and expires_on <= today:
        raise ValidationError({"expires_on": "The expiry date must be after today."})
    if not isinstance(priority, int) or not 0 <= priority <= 100:
        raise ValidationError({"priority": "The priority is a whole number from 0 (drawn first) to 100."})
    w = lock_wallet(session, partner_id)
    entry_id, balance = insert_entry(session, w, kind="grant", credits=c, reason=r, created_by=actor.user_id or None)
    lot_id = add_lot(session, w, entry_id, balance, c, "promotional", expires_on=expires_on, priority=priority)
    after_credit_in(session, w, balance)
    audit.record(session, actor, partner_id=partner_id, action="grant_credits", entity="wallet", entity_id=w.id,
                 after={"credits": c, "reason": r, "expires_on": expires_on, "priority": priority,
                        "entry_id": entry_id, "lot_id": lot_id})
    return entry_id


def expire_lots(session: Session, today: date) -> list[tuple[int, int]]:
    """Expire every lot whose expiry day has come (expires_on <= today) with credits left: one 'expiry'
    ledger entry per lot, reminder checked. Internal (no actor), for the periodic job; one wallet lock at a
    time, in partner order. Returns [(partner_id, lot_id)] expired."""
    due = session.execute(select(LOT.c.partner_id, LOT.c.id).where(
        LOT.c.remaining > 0, LOT.c.expires_on.is_not(None), LOT.c.expires_on <= today)
        .order_by(LOT.c.partner_id, LOT.c.id)).all()
    done: list[tuple[int, int]] = []
    for partner_id, lot_id in due:
        w = lock_wallet(session, partner_id)
        lot = session.execute(select(LOT).where(LOT.c.partner_id == partner_id, LOT.c.id == lot_id)).one()
        if lot.remaining <= 0:
            continue
        entry_id, balance = insert_entry(
            session, w, kind="expiry", credits=-lot.remaining, lot_id=lot_id, idempotency_key=f"expiry:lot:{lot_id}",
            reason=f"{format_quantity(lot.remaining)} {lot.kind} credits expired on {lot.expires_on.isoformat()}")
        take_from_lot(session, w, lot_id, entry_id, lot.remaining)
        after_debit(session, lock_wallet(session, partner_id), balance)
        done.append((partner_id, lot_id))
    return done


@dataclass(frozen=True)
class LotRow:
    id: int
    kind: str
    credits: Decimal
    remaining: Decimal
    expires_on: date | None
    priority: int
    price_per_credit: Decimal | None
    entry_id: int | None


@dataclass(frozen=True)
class LotSummary:
    paid: Decimal
    promotional: Decimal
    expiring: list[LotRow]  # lots with credits left that expire within the window, soonest first
    expiring_credits: Decimal


def open_lots(session: Session, partner_id: int) -> list[LotRow]:
    """Lots with credits left, in draw order."""
    rows = session.execute(select(LOT).where(LOT.c.partner_id == partner_id, LOT.c.remaining > 0)
                           .order_by(*LOT_ORDER)).all()
    return [LotRow(r.id, r.kind, r.credits, r.remaining, r.expires_on, r.priority, r.price_per_credit, r.entry_id)
            for r in rows]


def lot_summary(session: Session, actor: Actor, partner_id: int, today: date, days: int = 30) -> LotSummary:
    """Paid and free (promotional) credits left, and what expires in the next `days` days."""
    authorize(actor, "wallet.view", partner_id)
    lots = open_lots(session, partner_id)
    horizon = today + timedelta(days=days)
    expiring = sorted((lot for lot in lots if lot.expires_on is not None and lot.expires_on <= horizon),
                      key=lambda lot: (lot.expires_on, lot.id))
    return LotSummary(sum((lot.remaining for lot in lots if lot.kind == "paid"), Decimal(0)),
                      sum((lot.remaining for lot in lots if lot.kind == "promotional"), Decimal(0)),
                      expiring, sum((lot.remaining for lot in expiring), Decimal(0)))


def lots_used(session: Session, partner_id: int, entry_id: int) -> list[tuple[int, Decimal]]:
    """[(lot_id, credits)] a debit entry took, in lot order of use."""
    return [(lot_id, c) for lot_id, c in session.execute(
        select(USE.c.lot_id, USE.c.credits).where(USE.c.partner_id == partner_id, USE.c.entry_id == entry_id)
        .order_by(USE.c.lot_id))]


def verify_lots(session: Session, partner_id: int) -> None:
    """sum(lot remaining) == max(balance, 0); raises LedgerMismatch otherwise."""
    w = wallet_row(session, partner_id)
    left = session.execute(select(func.coalesce(func.sum(LOT.c.remaining), 0)).where(
        LOT.c.partner_id == partner_id, LOT.c.wallet_id == w.id)).scalar_one()
    if left != max(w.balance, Decimal(0)):
        raise LedgerMismatch(f"Wallet {w.id} of partner {partner_id}: lots hold {left} credits, balance {w.balance}.")


__all__ = ["LOT_KINDS", "add_lot", "expire_lots", "grant_credits", "lot_summary", "lots_used", "open_lots",
           "take_from_lot", "take_lots", "verify_lots"]
