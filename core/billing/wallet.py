"""The partner's credit wallet: an append-only ledger with a cached balance, credit lots, purchases
(see docs/wallet.md).

Every movement is a `wallet_ledger` row. A database trigger adds each row's credits to `wallets.balance` in
the same statement, so balance == sum(ledger) by construction; :func:`verify_ledger` proves it (and that the
lots hold exactly the positive balance). Every function that changes credits first locks the wallet row
(SELECT ... FOR NO KEY UPDATE), so the floor (0, or -overdraft_limit) is never crossed and "send the
reminder" / "start the automatic purchase" are decided once. The gateway is never called under that lock:
purchases are intents settled in their own transactions (core.billing.purchases).

Modules: wallet_base (helpers, prices), wallet_lots (lots, grants, expiry), purchases (intents, gateway,
reconciliation), receipts. This module: settings, draws, adjustments, refunds, reading, and the command
`python -m core.billing.wallet reconcile | expire | retry`.

Staff-facing services take (session, actor, ...) and authorize first. :func:`draw` is internal: it is called
by the usage path (core.billing.modes.settle_new_usage) on behalf of the system, after the usage itself was
authorised, so it has no actor; it is protected by an idempotency key instead.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.payments import IdempotencyKeyReused
from core.billing.purchases import (
    buy_credits,
    open_auto_purchase,
    retry_due_auto_purchases,
    set_runner,
    start_auto_buy,
    wait_for_purchases,
)
from core.billing.receipts import list_receipts, receipt_pdf
from core.billing.reconcile import reconcile, send_refunds
from core.billing.wallet_base import (
    AUTO_BUY_BACKOFF,
    AUTO_BUY_MAX_ATTEMPTS,
    CREDIT_PLACES,
    MAX_CREDITS,
    L,
    LedgerMismatch,
    Quote,
    W,
    after_credit_in,
    after_debit,
    check_floor,
    credits_value,
    default_method,
    floor_of,
    insert_entry,
    lock_wallet,
    price_for,
    price_steps,
    quote_from_steps,
    reason_text,
    reset_backoff,
    set_wallet,
    utcnow,
    wallet_row,
)
from core.billing.wallet_lots import (
    add_lot,
    expire_lots,
    grant_credits,
    lot_summary,
    take_from_lot,
    take_lots,
)
from core.billing.wallet_reading import (
    CustomerDraws,
    LedgerRow,
    WalletView,
    balance,
    draws_by_customer,
    list_ledger,
    verify_ledger,
    wallet_view,
)
from core.errors import NotFound, ValidationError
from core.pricing.money import format_quantity, round_money
from db.models import Partner
from db.models.wallet import OVERDRAFT_POLICIES, Wallet, WalletLot, WalletRefund

__all__ = ["CustomerDraws", "LedgerRow", "WalletView", "balance", "draws_by_customer", "list_ledger",
           "verify_ledger", "wallet_view", "AUTO_BUY_BACKOFF", "AUTO_BUY_MAX_ATTEMPTS", "CREDIT_PLACES", "MAX_CREDITS", "LedgerMismatch", "Quote",
           "buy_credits", "expire_lots", "grant_credits", "list_receipts", "receipt_pdf", "lot_summary", "price_for", "quote_from_steps",
           "reconcile", "retry_due_auto_purchases", "send_refunds", "set_runner", "wait_for_purchases"]

LOT = WalletLot.__table__


def quote(session: Session, actor: Actor, partner_id: int, credits: Any) -> Quote:
    authorize(actor, "wallet.view", partner_id)
    return price_for(session, partner_id, credits)


def list_price_steps(session: Session, actor: Actor, partner_id: int) -> list[tuple[Decimal, Decimal]]:
    authorize(actor, "wallet.view", partner_id)
    return price_steps(session, partner_id, wallet_row(session, partner_id).currency)


# ---------------------------------------------------------------- wallet lifecycle and settings


def find_wallet(session: Session, partner_id: int) -> Wallet | None:
    return session.scalar(select(Wallet).where(Wallet.partner_id == partner_id))


def get_or_create_wallet(session: Session, actor: Actor, partner_id: int) -> Wallet:
    """The partner's credit wallet, created (in the partner's currency, empty) on first use."""
    existing = find_wallet(session, partner_id)
    if existing is not None:
        authorize(actor, "wallet.view", partner_id)
        return existing
    authorize(actor, "wallet.manage", partner_id)
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    session.execute(pg_insert(W).values(partner_id=partner_id, currency=partner.currency)
                    .on_conflict_do_nothing(index_elements=["partner_id"]))
    wallet = find_wallet(session, partner_id)
    assert wallet is not None
    audit.record(session, actor, partner_id=partner_id, action="create", entity="wallet", entity_id=wallet.id,
                 after={"currency": wallet.currency})
    return wallet


SETTING_FIELDS = ("low_balance_threshold", "auto_buy_credits", "overdraft_policy", "overdraft_limit")


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


def _setting_number(errors: dict[str, str], name: str, raw: Any, *, positive: bool, optional: bool) -> Decimal | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if optional:
            return None
        raw = 0
    try:
        d = Decimal(str(raw).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        errors[name] = "Enter a number of credits."
        return None
    if not d.is_finite() or d != d.quantize(CREDIT_PLACES) or d < 0 or (positive and d == 0) or d > MAX_CREDITS:
        errors[name] = "Enter a number of credits above 0." if positive else "Enter 0 or more credits."
        return None
    return d


def _validate_settings(session: Session, w: Any, given: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    if "low_balance_threshold" in given:
        values["low_balance_threshold"] = _setting_number(errors, "low_balance_threshold",
                                                          given["low_balance_threshold"], positive=False, optional=True)
    if "auto_buy_credits" in given:
        values["auto_buy_credits"] = _setting_number(errors, "auto_buy_credits", given["auto_buy_credits"],
                                                     positive=True, optional=True)
    policy = given.get("overdraft_policy", w.overdraft_policy)
    if policy not in OVERDRAFT_POLICIES:
        errors["overdraft_policy"] = "Choose 'refuse' or 'overdraft'."
    if "overdraft_policy" in given:
        values["overdraft_policy"] = policy
    if "overdraft_limit" in given:
        values["overdraft_limit"] = _setting_number(errors, "overdraft_limit", given["overdraft_limit"],
                                                    positive=False, optional=False)
    if policy == "refuse" and ("overdraft_policy" in given or "overdraft_limit" in given):
        values["overdraft_limit"] = Decimal(0)
    if values.get("auto_buy_credits") is not None and "auto_buy_credits" not in errors:
        if default_method(session, w.partner_id) is None:
            errors["auto_buy_credits"] = "Add a payment method first: automatic purchases are charged to it."
        else:
            try:
                price_for(session, w.partner_id, values["auto_buy_credits"], w.currency)
            except ValidationError as exc:
                errors["auto_buy_credits"] = exc.errors.get("credits", str(exc))
    limit = values.get("overdraft_limit", w.overdraft_limit)
    if not errors and limit is not None:
        new_floor = -limit if policy == "overdraft" else Decimal(0)
        if w.balance < new_floor:
            errors["overdraft_limit"] = (f"The balance is {format_quantity(w.balance)} credits: buy credits before "
                                         "lowering the overdraft below it.")
    if errors:
        raise ValidationError(errors)
    return values


def configure(session: Session, actor: Actor, partner_id: int, *, low_balance_threshold: Any = UNSET,
              auto_buy_credits: Any = UNSET, overdraft_policy: Any = UNSET, overdraft_limit: Any = UNSET) -> Wallet:
    """Change the settings GIVEN (the others stay as they are): the reminder threshold, the automatic
    purchase amount (None = off) and what happens when credits run out ('refuse' the usage, or allow an
    'overdraft' down to -overdraft_limit; choosing 'refuse' sets the limit to 0)."""
    authorize(actor, "wallet.manage", partner_id)
    given = {k: v for k, v in (("low_balance_threshold", low_balance_threshold),
                               ("auto_buy_credits", auto_buy_credits), ("overdraft_policy", overdraft_policy),
                               ("overdraft_limit", overdraft_limit)) if v is not UNSET}
    get_or_create_wallet(session, actor, partner_id)
    w = lock_wallet(session, partner_id)
    values = _validate_settings(session, w, given)
    before = {f: getattr(w, f) for f in SETTING_FIELDS}
    changes: dict[str, Any] = dict(values)
    if "low_balance_threshold" in values and values["low_balance_threshold"] != w.low_balance_threshold:
        changes["reminder_armed"] = True
    if "auto_buy_credits" in values and values["auto_buy_credits"] != w.auto_buy_credits:
        changes["auto_buy_armed"] = True
        reset_backoff(session, w)
    set_wallet(session, w, **changes)
    b, a = audit.changes({k: before[k] for k in values}, values)
    if a:
        audit.record(session, actor, partner_id=partner_id, action="configure", entity="wallet", entity_id=w.id,
                     before=b, after=a)
    session.expire_all()
    wallet = find_wallet(session, partner_id)
    assert wallet is not None
    return wallet


# ---------------------------------------------------------------- adjusting, refunding, expiring


def adjust(session: Session, actor: Actor, partner_id: int, credits: Any, reason: str) -> int:
    """Manual correction (+ or -) with a required reason. Platform only (wallet.adjust). Credits added are a
    promotional lot (free, not refundable); credits removed are taken from the lots in draw order."""
    authorize(actor, "wallet.adjust", partner_id)
    c = credits_value(credits, allow_negative=True)
    r = reason_text(reason)
    w = lock_wallet(session, partner_id)
    check_floor(w, c)
    entry_id, balance = insert_entry(session, w, kind="adjustment", credits=c, reason=r,
                                     created_by=actor.user_id or None)
    if c > 0:
        add_lot(session, w, entry_id, balance, c, "promotional")
        after_credit_in(session, w, balance)
    else:
        take_lots(session, w, entry_id, -c)
        after_debit(session, w, balance)
    audit.record(session, actor, partner_id=partner_id, action="adjust", entity="wallet", entity_id=w.id,
                 after={"credits": c, "reason": r, "entry_id": entry_id})
    return entry_id


def refund(session: Session, actor: Actor, partner_id: int, purchase_entry_id: int, credits: Any,
           reason: str) -> int:
    """Refund unused credits of a purchase: only paid credits, only what is left of that purchase's lot, at
    the price that was paid for them. The money is recorded (`wallet_refunds`, pending) with the entry and
    sent to the gateway after commit (:func:`send_refunds`, or `reconcile`). Platform only."""
    authorize(actor, "wallet.adjust", partner_id)
    c = credits_value(credits)
    r = reason_text(reason)
    w = lock_wallet(session, partner_id)
    purchase = session.execute(select(L).where(L.c.partner_id == partner_id, L.c.id == purchase_entry_id,
                                               L.c.kind.in_(("purchase", "auto_purchase")))).first()
    if purchase is None:
        raise NotFound(f"Purchase {purchase_entry_id} does not exist.")
    lot = session.execute(select(LOT).where(LOT.c.partner_id == partner_id, LOT.c.entry_id == purchase_entry_id,
                                            LOT.c.kind == "paid")).first()
    if lot is None:
        raise ValidationError({"credits": "This purchase predates credit lots: correct it with an adjustment."})
    if c > lot.remaining:
        raise ValidationError({"credits": f"At most {format_quantity(lot.remaining)} credits of this purchase are "
                                          "unused and can be refunded."})
    check_floor(w, -c)
    amount = round_money(purchase.amount * c / purchase.credits, purchase.currency) if purchase.amount else None
    entry_id, balance = insert_entry(session, w, kind="refund", credits=-c, amount=amount, currency=purchase.currency,
                                     refund_of=purchase_entry_id, lot_id=lot.id, reason=r,
                                     created_by=actor.user_id or None)
    take_from_lot(session, w, lot.id, entry_id, c)
    if amount and purchase.charge_id is not None:
        session.execute(WalletRefund.__table__.insert().values(
            partner_id=partner_id, wallet_id=w.id, entry_id=entry_id, charge_id=purchase.charge_id, amount=amount,
            currency=purchase.currency, idempotency_key=f"refund:{partner_id}:{entry_id}"))
    after_debit(session, w, balance)
    audit.record(session, actor, partner_id=partner_id, action="refund", entity="wallet", entity_id=w.id,
                 after={"credits": c, "amount": amount, "refund_of": purchase_entry_id, "reason": r})
    return entry_id


def expire(session: Session, actor: Actor, partner_id: int, credits: Any, reason: str = "Credits expired") -> int:
    """Remove credits by hand (at most the positive balance), taken from the lots in draw order. Platform
    only. Lots with an expiry date expire by themselves (:func:`expire_lots`)."""
    authorize(actor, "wallet.adjust", partner_id)
    c = credits_value(credits)
    r = reason_text(reason)
    w = lock_wallet(session, partner_id)
    if c > max(w.balance, Decimal(0)):
        raise ValidationError({"credits": f"Only {format_quantity(max(w.balance, Decimal(0)))} credits can expire."})
    entry_id, balance = insert_entry(session, w, kind="expiry", credits=-c, reason=r, created_by=actor.user_id or None)
    take_lots(session, w, entry_id, c)
    after_debit(session, w, balance)
    audit.record(session, actor, partner_id=partner_id, action="expire", entity="wallet", entity_id=w.id,
                 after={"credits": c, "reason": r})
    return entry_id


# ---------------------------------------------------------------- drawing for usage


@dataclass(frozen=True)
class DrawResult:
    """Outcome of one draw. status: 'applied' (credits taken), 'duplicate' (this idempotency key was
    already applied; nothing changed) or 'refused' (not enough credits; nothing drawn)."""

    status: str
    credits: Decimal
    balance: Decimal
    entry_id: int | None = None
    overdraft: bool = False
    auto_purchase: str | None = None  # pending | waiting | gave_up | declined | purchased (loader) | None
    auto_purchase_intent_id: int | None = None
    reminder_sent: bool = False
    shortfall: Decimal = Decimal(0)

    @property
    def applied(self) -> bool:
        return self.status in ("applied", "duplicate")


_FAST_DRAW = text("SELECT status, entry_id, balance, overdraft, dup_credits, dup_account "
                  "FROM wallet_draw_lots(:p, :a, :c, :k, :e)").bindparams(bindparam("e", type_=JSONB))


def _same_request(fast: Any, c: Decimal, account_id: int, key: str) -> None:
    if fast.dup_credits != c or fast.dup_account != account_id:
        raise IdempotencyKeyReused(
            f"The idempotency key {key!r} was already used for a draw of {format_quantity(fast.dup_credits)} credits "
            f"for customer {fast.dup_account}; this request asks for {format_quantity(c)} credits for customer "
            f"{account_id}. A key names one request: use a new key.")


def draw(session: Session, partner_id: int, account_id: int, credits: Any, idempotency_key: str,
         event_ref: dict | None = None, *, now: datetime | None = None) -> DrawResult:
    """Take `credits` from the partner's wallet for customer `account_id`'s usage (lots in draw order).

    Internal (no actor): called by the usage path via core.billing.modes.settle_new_usage. Under the wallet
    row lock: when the draw would leave the balance at or below 0 and an automatic purchase is configured,
    it is STARTED (intent committed on its own, gateway called in the background), never waited for; then
    the floor (refuse, or overdraft down to the limit), the draw, the low-balance reminder (once per dip).
    A repeated idempotency key returns 'duplicate'; the key with other figures raises IdempotencyKeyReused.
    Never raises for missing credits: a 'refused' result leaves consistent state worth committing.
    """
    c = credits_value(credits)
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationError({"idempotency_key": "A draw needs an idempotency key of at most 200 characters."})
    now = now or utcnow()
    fast = session.execute(_FAST_DRAW, {"p": partner_id, "a": account_id, "c": c, "k": idempotency_key,
                                        "e": event_ref}).one()
    if fast.status == "no_wallet":
        raise NotFound("This partner has no credit wallet yet.")
    if fast.status == "duplicate":
        _same_request(fast, c, account_id, idempotency_key)
        return DrawResult("duplicate", c, fast.balance, fast.entry_id, fast.overdraft)
    if fast.status == "applied":
        return DrawResult("applied", c, fast.balance, fast.entry_id, fast.overdraft)
    if fast.status == "refused":
        w = wallet_row(session, partner_id)
        open_id = open_auto_purchase(session, w)  # say so when credits are on their way
        return DrawResult("refused", c, fast.balance, auto_purchase="pending" if open_id else None,
                          auto_purchase_intent_id=open_id, shortfall=floor_of(w) - (fast.balance - c))
    return _slow_draw(session, partner_id, account_id, c, idempotency_key, event_ref, now)


def _slow_draw(session: Session, partner_id: int, account_id: int, c: Decimal, key: str, event_ref: dict | None,
               now: datetime) -> DrawResult:
    """An automatic purchase or the reminder is involved; the row lock is already held."""
    w = lock_wallet(session, partner_id)
    auto, intent = None, None
    if w.auto_buy_credits is not None and w.auto_buy_armed and w.balance - c <= 0:
        auto, intent = start_auto_buy(session, w, now, trigger_key=key, account_id=account_id)
        if auto == "purchased":  # only inside a loader's own transaction (see start_auto_buy)
            w = lock_wallet(session, partner_id)
    intent_id = intent[1] if intent else None
    floor = floor_of(w)
    if w.balance - c < floor:
        return DrawResult("refused", c, w.balance, auto_purchase=auto, auto_purchase_intent_id=intent_id,
                          shortfall=floor - (w.balance - c))
    entry_id, new_balance = insert_entry(session, w, kind="usage_draw", credits=-c, account_id=account_id,
                                         idempotency_key=key, event_ref=event_ref, overdraft=w.balance - c < 0)
    take_lots(session, w, entry_id, c)
    reminded = after_debit(session, w, new_balance)
    return DrawResult("applied", c, new_balance, entry_id, new_balance < 0, auto, intent_id, reminded)


# ---------------------------------------------------------------- the command (and the periodic job's entry)


def main(argv: list[str] | None = None) -> int:
    """python -m core.billing.wallet reconcile [--older-than SECONDS] | expire | retry"""
    import argparse

    from db.engine import make_engine, platform_scope, unit_of_work

    parser = argparse.ArgumentParser(prog="python -m core.billing.wallet")
    parser.add_argument("command", choices=["reconcile", "expire", "retry"])
    parser.add_argument("--older-than", type=float, default=60.0,
                        help="reconcile: only intents requested at least this many seconds ago (default 60)")
    args = parser.parse_args(argv)
    engine = make_engine()
    now = clock.now()
    with unit_of_work(engine, platform_scope(f"wallet command {args.command}: every partner")) as s:
        if args.command == "reconcile":
            rep = reconcile(s, now, older_than_seconds=args.older_than)
            print(f"credited {rep.credited}, declined {rep.declined}, still pending {rep.still_pending}, "
                  f"refunds sent {rep.refunds_sent}, refunds failed {rep.refunds_failed}")
        elif args.command == "expire":
            print(f"expired {len(expire_lots(s, now.date()))} lot(s)")
        else:
            print(f"automatic purchases credited for partners {retry_due_auto_purchases(s, now)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
