"""The wallet's building blocks shared by draws, purchases and lots: validation of credit figures, the wallet
row lock, ledger inserts, the reminder, prices (see docs/wallet.md). Internal: no actor checks here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from core import clock
from core.billing.ratecards import credit_steps
from core.errors import NotFound, ValidationError
from core.notify import outbox as notify
from core.pricing.money import format_quantity, round_money
from db.models.wallet import (
    CreditPriceStep,
    PartnerCreditPriceStep,
    PaymentMethod,
    Wallet,
    WalletAutoBuyState,
    WalletLedgerEntry,
)

W = Wallet.__table__
L = WalletLedgerEntry.__table__
S = WalletAutoBuyState.__table__

CREDIT_PLACES = Decimal("0.000001")
MAX_CREDITS = Decimal("1000000000")
# Declined automatic purchases: wait 1 min, 5 min, 30 min between attempts; give up after 4 attempts.
AUTO_BUY_BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
AUTO_BUY_MAX_ATTEMPTS = 4


class LedgerMismatch(RuntimeError):
    """The wallet balance differs from the sum of its ledger (or its lots): an integrity failure."""


def credits_value(value: Any, field_name: str = "credits", *, allow_negative: bool = False) -> Decimal:
    """A credit figure from user or caller input; ValidationError with a clear message otherwise."""
    try:
        d = Decimal(str(value).strip().replace(",", "")) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise ValidationError({field_name: "Enter a number of credits."}) from None
    if not d.is_finite():
        raise ValidationError({field_name: "Enter a number of credits."})
    if d != d.quantize(CREDIT_PLACES):
        raise ValidationError({field_name: "Credits have at most 6 decimals."})
    if abs(d) > MAX_CREDITS:
        raise ValidationError({field_name: f"At most {format_quantity(MAX_CREDITS)} credits at once."})
    if d == 0 or (d < 0 and not allow_negative):
        raise ValidationError({field_name: "Credits must be more than 0." if not allow_negative
                               else "Credits must not be 0."})
    return d


def utcnow() -> datetime:
    return clock.now()


def floor_of(w: Any) -> Decimal:
    return -w.overdraft_limit if w.overdraft_policy == "overdraft" else Decimal(0)


def lock_wallet(session: Session, partner_id: int) -> Any:
    """Lock the partner's wallet row for this transaction (NO KEY UPDATE: foreign-key checks from other
    transactions, which take KEY SHARE, are not blocked)."""
    row = session.execute(select(W).where(W.c.partner_id == partner_id).with_for_update(key_share=True)).first()
    if row is None:
        raise NotFound("This partner has no credit wallet yet.")
    return row


def wallet_row(session: Session, partner_id: int) -> Any:
    row = session.execute(select(W).where(W.c.partner_id == partner_id)).first()
    if row is None:
        raise NotFound("This partner has no credit wallet yet.")
    return row


def insert_entry(session: Session, w: Any, **values: Any) -> Any:
    """Append a ledger row; the trigger applies it to the balance. Returns (id, balance_after)."""
    return session.execute(insert(L).values(partner_id=w.partner_id, wallet_id=w.id, **values)
                           .returning(L.c.id, L.c.balance_after)).one()


def set_wallet(session: Session, w: Any, **values: Any) -> None:
    if values:
        session.execute(update(W).where(W.c.partner_id == w.partner_id, W.c.id == w.id)
                        .values(updated_at=func.now(), **values))


def reset_backoff(session: Session, w: Any) -> None:
    """Forget declined automatic purchases (a top-up starts a new depletion). The attempt counter stays:
    the next attempt gets a new gateway key, never the key of an old decline."""
    session.execute(update(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)
                    .values(failures=0, next_retry_at=None, gave_up=False, updated_at=func.now()))


def after_credit_in(session: Session, w: Any, balance: Decimal, *, reset: bool = True) -> None:
    """Credits came in (purchase, grant, positive adjustment): re-arm the reminder and the automatic
    purchase; a manual top-up also forgets earlier declined automatic purchases."""
    values: dict[str, Any] = {}
    if w.low_balance_threshold is not None and balance >= w.low_balance_threshold and not w.reminder_armed:
        values["reminder_armed"] = True
    if balance > 0 and not w.auto_buy_armed:
        values["auto_buy_armed"] = True
    set_wallet(session, w, **values)
    if reset:
        reset_backoff(session, w)


def _maybe_remind(session: Session, w: Any, balance: Decimal, armed: bool) -> bool:
    """One low-balance reminder per dip below the threshold. Returns True when it is sent now."""
    if w.low_balance_threshold is None or not armed or balance >= w.low_balance_threshold:
        return False
    notify.notify(session, w.partner_id, "low_balance",
                  "Your credit balance is low",
                  f"Your credit balance is {format_quantity(balance)} credits, below your reminder threshold of "
                  f"{format_quantity(w.low_balance_threshold)} credits. Buy credits to keep your customers' "
                  "service running.")
    return True


def after_debit(session: Session, w: Any, balance: Decimal) -> bool:
    """Every balance decrease checks the reminder (draws, refunds, expiry, negative adjustments)."""
    if _maybe_remind(session, w, balance, w.reminder_armed):
        set_wallet(session, w, reminder_armed=False)
        return True
    return False


def check_floor(w: Any, delta: Decimal, field_name: str = "credits") -> None:
    if w.balance + delta < floor_of(w):
        raise ValidationError({field_name: f"This would take the balance to {format_quantity(w.balance + delta)} "
                                           f"credits, below the allowed minimum of {format_quantity(floor_of(w))}."})


def reason_text(reason: str | None) -> str:
    r = (reason or "").strip()
    if not r:
        raise ValidationError({"reason": "A reason is required."})
    if len(r) > 500:
        raise ValidationError({"reason": "The reason is too long (at most 500 characters)."})
    return r


def default_method(session: Session, partner_id: int) -> PaymentMethod | None:
    return session.scalar(select(PaymentMethod).where(PaymentMethod.partner_id == partner_id,
                                                      PaymentMethod.is_default, PaymentMethod.active))


# ---------------------------------------------------------------- prices


@dataclass(frozen=True)
class Quote:
    credits: Decimal
    currency: str
    price_per_credit: Decimal
    step_min_credits: Decimal
    amount: Decimal


def price_steps(session: Session, partner_id: int, currency: str) -> list[tuple[Decimal, Decimal]]:
    """The volume steps (min_credits, price_per_credit) that apply: the rate card's (the platform's price list
    for the partner) when one prices the partner, else the partner's own if it has any for the currency, else
    the platform default."""
    card = credit_steps(session, partner_id, currency)
    if card:
        return card
    own = session.execute(select(PartnerCreditPriceStep.min_credits, PartnerCreditPriceStep.price_per_credit)
                          .where(PartnerCreditPriceStep.partner_id == partner_id,
                                 PartnerCreditPriceStep.currency == currency)
                          .order_by(PartnerCreditPriceStep.min_credits)).all()
    if own:
        return [(m, p) for m, p in own]
    rows = session.execute(select(CreditPriceStep.min_credits, CreditPriceStep.price_per_credit)
                           .where(CreditPriceStep.currency == currency).order_by(CreditPriceStep.min_credits)).all()
    return [(m, p) for m, p in rows]


def quote_from_steps(steps: list[tuple[Decimal, Decimal]], credits: Decimal, currency: str) -> Quote:
    """Pure: the whole purchase is priced at the highest step reached (all-units volume pricing)."""
    applicable = [(m, p) for m, p in steps if m <= credits]
    if not applicable:
        raise ValidationError({"credits": f"No credit price is set for {format_quantity(credits)} credits "
                                          f"in {currency}."})
    step, price = max(applicable)
    return Quote(credits, currency, price, step, round_money(credits * price, currency))


def price_for(session: Session, partner_id: int, credits: Any, currency: str | None = None) -> Quote:
    """What `credits` cost this partner (in the wallet currency unless given)."""
    c = credits_value(credits)
    if currency is None:
        currency = wallet_row(session, partner_id).currency
    return quote_from_steps(price_steps(session, partner_id, currency), c, currency)
