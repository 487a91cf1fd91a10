"""The partner's credit wallet: an append-only ledger with a cached balance (see docs/wallet.md).

Every movement is a `wallet_ledger` row. A database trigger adds each row's credits to
`wallets.balance` in the same statement, so balance == sum(ledger) by construction;
:func:`verify_ledger` proves it. Every function that changes credits first locks the wallet row
(SELECT ... FOR NO KEY UPDATE), so concurrent draws are serialised per wallet: the floor (0, or
-overdraft_limit) can never be crossed, and the decisions "send the low-balance reminder" and "make the
automatic purchase" are taken exactly once. A CHECK constraint on the floor backs this up.

Staff-facing services take (session, actor, ...) and authorize first. :func:`draw` is internal: it is
called by the usage path (through core.billing.modes.settle_new_usage) on behalf of the system, after
the usage itself was authorised, so it has no actor; it is protected by an idempotency key instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.payments import (
    PaymentDeclined,
    engine_of,
    get_gateway,
    record_approved,
    record_declined,
)
from core.errors import NotFound, ValidationError
from core.notify import outbox as notify
from core.pricing.money import format_money, format_quantity, round_money
from db.models import CustomerAccount, Partner
from db.models.wallet import (
    LEDGER_KINDS,
    OVERDRAFT_POLICIES,
    CreditPriceStep,
    PartnerCreditPriceStep,
    PaymentCharge,
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
    """The wallet balance differs from the sum of its ledger: an integrity failure, never expected."""


# ---------------------------------------------------------------- small helpers


def _credits(value: Any, field_name: str = "credits", *, allow_negative: bool = False) -> Decimal:
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


def _now() -> datetime:
    return datetime.now(UTC)


def _floor(w: Any) -> Decimal:
    return -w.overdraft_limit if w.overdraft_policy == "overdraft" else Decimal(0)


def _lock(session: Session, partner_id: int) -> Any:
    """Lock the partner's wallet row for this transaction (NO KEY UPDATE: foreign-key checks from other
    transactions, which take KEY SHARE, are not blocked)."""
    row = session.execute(select(W).where(W.c.partner_id == partner_id).with_for_update(key_share=True)).first()
    if row is None:
        raise NotFound("This partner has no credit wallet yet.")
    return row


def _wallet_row(session: Session, partner_id: int) -> Any:
    row = session.execute(select(W).where(W.c.partner_id == partner_id)).first()
    if row is None:
        raise NotFound("This partner has no credit wallet yet.")
    return row


def _insert_entry(session: Session, w: Any, **values: Any) -> Any:
    """Append a ledger row; the trigger applies it to the balance. Returns (id, balance_after)."""
    return session.execute(insert(L).values(partner_id=w.partner_id, wallet_id=w.id, **values)
                           .returning(L.c.id, L.c.balance_after)).one()


def _set_wallet(session: Session, w: Any, **values: Any) -> None:
    if values:
        session.execute(update(W).where(W.c.partner_id == w.partner_id, W.c.id == w.id)
                        .values(updated_at=func.now(), **values))


def _after_credit_in(session: Session, w: Any, balance: Decimal) -> None:
    """A top-up (purchase, positive adjustment): re-arm the reminder and the automatic purchase, and
    forget earlier declined automatic purchases (a new depletion starts from here)."""
    values: dict[str, Any] = {}
    if w.low_balance_threshold is not None and balance >= w.low_balance_threshold and not w.reminder_armed:
        values["reminder_armed"] = True
    if balance > 0 and not w.auto_buy_armed:
        values["auto_buy_armed"] = True
    _set_wallet(session, w, **values)
    session.execute(update(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)
                    .values(failures=0, next_retry_at=None, gave_up=False, updated_at=func.now()))


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


# ---------------------------------------------------------------- prices


@dataclass(frozen=True)
class Quote:
    credits: Decimal
    currency: str
    price_per_credit: Decimal
    step_min_credits: Decimal
    amount: Decimal


def price_steps(session: Session, partner_id: int, currency: str) -> list[tuple[Decimal, Decimal]]:
    """The volume steps (min_credits, price_per_credit) that apply: the partner's own if it has any for the
    currency, else the platform default."""
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
    c = _credits(credits)
    if currency is None:
        currency = _wallet_row(session, partner_id).currency
    return quote_from_steps(price_steps(session, partner_id, currency), c, currency)


def quote(session: Session, actor: Actor, partner_id: int, credits: Any) -> Quote:
    authorize(actor, "wallet.view", partner_id)
    return price_for(session, partner_id, credits)


def list_price_steps(session: Session, actor: Actor, partner_id: int) -> list[tuple[Decimal, Decimal]]:
    authorize(actor, "wallet.view", partner_id)
    return price_steps(session, partner_id, _wallet_row(session, partner_id).currency)


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


def configure(session: Session, actor: Actor, partner_id: int, *, low_balance_threshold: Any = None,
              auto_buy_credits: Any = None, overdraft_policy: str = "refuse", overdraft_limit: Any = 0) -> Wallet:
    """Set the reminder threshold, the automatic purchase amount (None = off) and what happens when
    credits run out ('refuse' the usage, or allow an 'overdraft' down to -overdraft_limit)."""
    authorize(actor, "wallet.manage", partner_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}

    def number(name: str, raw: Any, *, positive: bool, optional: bool) -> Decimal | None:
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

    values["low_balance_threshold"] = number("low_balance_threshold", low_balance_threshold, positive=False,
                                             optional=True)
    values["auto_buy_credits"] = number("auto_buy_credits", auto_buy_credits, positive=True, optional=True)
    values["overdraft_limit"] = number("overdraft_limit", overdraft_limit, positive=False, optional=False)
    if overdraft_policy not in OVERDRAFT_POLICIES:
        errors["overdraft_policy"] = "Choose 'refuse' or 'overdraft'."
    values["overdraft_policy"] = overdraft_policy
    if overdraft_policy == "refuse":
        values["overdraft_limit"] = Decimal(0)
    get_or_create_wallet(session, actor, partner_id)
    w = _lock(session, partner_id)
    if values["auto_buy_credits"] is not None and "auto_buy_credits" not in errors:
        if _default_method(session, partner_id) is None:
            errors["auto_buy_credits"] = "Add a payment method first: automatic purchases are charged to it."
        else:
            try:
                price_for(session, partner_id, values["auto_buy_credits"], w.currency)
            except ValidationError as exc:
                errors["auto_buy_credits"] = exc.errors.get("credits", str(exc))
    if not errors and values["overdraft_limit"] is not None:
        new_floor = -values["overdraft_limit"] if overdraft_policy == "overdraft" else Decimal(0)
        if w.balance < new_floor:
            errors["overdraft_limit"] = (f"The balance is {format_quantity(w.balance)} credits: buy credits before "
                                         "lowering the overdraft below it.")
    if errors:
        raise ValidationError(errors)
    before = {f: getattr(w, f) for f in SETTING_FIELDS}
    changes: dict[str, Any] = dict(values)
    if values["low_balance_threshold"] != w.low_balance_threshold:
        changes["reminder_armed"] = True
    if values["auto_buy_credits"] != w.auto_buy_credits:
        changes["auto_buy_armed"] = True
        session.execute(update(S).where(S.c.partner_id == partner_id, S.c.wallet_id == w.id)
                        .values(failures=0, next_retry_at=None, gave_up=False, updated_at=func.now()))
    _set_wallet(session, w, **changes)
    b, a = audit.changes(before, values)
    if a:
        audit.record(session, actor, partner_id=partner_id, action="configure", entity="wallet", entity_id=w.id,
                     before=b, after=a)
    session.expire_all()
    wallet = find_wallet(session, partner_id)
    assert wallet is not None
    return wallet


# ---------------------------------------------------------------- buying, adjusting, refunding, expiring


def _default_method(session: Session, partner_id: int) -> PaymentMethod | None:
    return session.scalar(select(PaymentMethod).where(PaymentMethod.partner_id == partner_id,
                                                      PaymentMethod.is_default, PaymentMethod.active))


def buy_credits(session: Session, actor: Actor, partner_id: int, credits: Any,
                idempotency_key: str | None = None) -> int:
    """Buy credits at the volume-step price, charged to the default payment method. Returns the ledger
    entry id. A declined payment raises PaymentDeclined and credits nothing (the declined attempt itself
    is recorded). The same idempotency key never charges twice (pages pass one per form)."""
    authorize(actor, "wallet.manage", partner_id)
    c = _credits(credits)
    if c != c.to_integral_value():
        raise ValidationError({"credits": "Credits are bought in whole numbers."})
    get_or_create_wallet(session, actor, partner_id)
    w = _lock(session, partner_id)
    q = quote_from_steps(price_steps(session, partner_id, w.currency), c, w.currency)
    method = _default_method(session, partner_id)
    if method is None:
        raise ValidationError({"credits": "Add a payment method before buying credits."})
    key = f"purchase:{idempotency_key or uuid.uuid4().hex}"
    done = session.execute(select(L.c.id).where(L.c.partner_id == partner_id, L.c.wallet_id == w.id,
                                                L.c.idempotency_key == key)).scalar()
    if done is not None:
        return done
    # Each declined attempt gets its own gateway key, so retrying the same form after fixing the card is a
    # new attempt rather than a replay of the decline; an approval is recorded once under `key`.
    declined = session.execute(select(func.count()).select_from(PaymentCharge).where(
        PaymentCharge.partner_id == partner_id, PaymentCharge.idempotency_key.startswith(key + ":", autoescape=True),
    )).scalar() or 0
    charge_key = f"{key}:{declined}"
    result = get_gateway().charge(method.token, q.amount, q.currency, charge_key)
    charge_values = dict(partner_id=partner_id, method_id=method.id, amount=q.amount, currency=q.currency,
                         reason="purchase", credits=c, idempotency_key=charge_key)
    if not result.approved:
        record_declined(session, {**charge_values, "decline_reason": result.decline_reason})
        raise PaymentDeclined(f"The payment of {format_money(q.amount, q.currency)} was declined: "
                              f"{result.decline_reason} No credits were added.")
    charge = record_approved(session, {**charge_values, "gateway_ref": result.gateway_ref})
    entry_id, balance = _insert_entry(session, w, kind="purchase", credits=c, amount=q.amount, currency=q.currency,
                                      charge_id=charge.id, idempotency_key=key, created_by=actor.user_id or None,
                                      reason=f"{format_quantity(c)} credits at {q.price_per_credit.normalize()} "
                                             f"{q.currency} each")
    _after_credit_in(session, w, balance)
    audit.record(session, actor, partner_id=partner_id, action="buy_credits", entity="wallet", entity_id=w.id,
                 after={"credits": c, "amount": q.amount, "currency": q.currency, "entry_id": entry_id})
    return entry_id


def _reason(reason: str | None) -> str:
    r = (reason or "").strip()
    if not r:
        raise ValidationError({"reason": "A reason is required."})
    if len(r) > 500:
        raise ValidationError({"reason": "The reason is too long (at most 500 characters)."})
    return r


def _check_floor(w: Any, delta: Decimal, field_name: str = "credits") -> None:
    if w.balance + delta < _floor(w):
        raise ValidationError({field_name: f"This would take the balance to {format_quantity(w.balance + delta)} "
                                           f"credits, below the allowed minimum of {format_quantity(_floor(w))}."})


def adjust(session: Session, actor: Actor, partner_id: int, credits: Any, reason: str) -> int:
    """Manual correction (+ or -) with a required reason. Platform only (wallet.adjust)."""
    authorize(actor, "wallet.adjust", partner_id)
    c = _credits(credits, allow_negative=True)
    r = _reason(reason)
    w = _lock(session, partner_id)
    _check_floor(w, c)
    entry_id, balance = _insert_entry(session, w, kind="adjustment", credits=c, reason=r,
                                      created_by=actor.user_id or None)
    if c > 0:
        _after_credit_in(session, w, balance)
    elif _maybe_remind(session, w, balance, w.reminder_armed):
        _set_wallet(session, w, reminder_armed=False)
    audit.record(session, actor, partner_id=partner_id, action="adjust", entity="wallet", entity_id=w.id,
                 after={"credits": c, "reason": r, "entry_id": entry_id})
    return entry_id


def refund(session: Session, actor: Actor, partner_id: int, purchase_entry_id: int, credits: Any,
           reason: str) -> int:
    """Refund (part of) a purchase: the credits leave the wallet, the matching share of the price is
    recorded as money returned. Never more than was bought and not yet refunded. Platform only."""
    authorize(actor, "wallet.adjust", partner_id)
    c = _credits(credits)
    r = _reason(reason)
    w = _lock(session, partner_id)
    purchase = session.execute(select(L).where(L.c.partner_id == partner_id, L.c.id == purchase_entry_id,
                                               L.c.kind.in_(("purchase", "auto_purchase")))).first()
    if purchase is None:
        raise NotFound(f"Purchase {purchase_entry_id} does not exist.")
    refunded = -(session.execute(select(func.coalesce(func.sum(L.c.credits), 0)).where(
        L.c.partner_id == partner_id, L.c.refund_of == purchase_entry_id)).scalar() or 0)
    if c > purchase.credits - refunded:
        raise ValidationError({"credits": f"At most {format_quantity(purchase.credits - refunded)} credits of this "
                                          "purchase can still be refunded."})
    _check_floor(w, -c)
    amount = round_money(purchase.amount * c / purchase.credits, purchase.currency) if purchase.amount else None
    entry_id, balance = _insert_entry(session, w, kind="refund", credits=-c, amount=amount,
                                      currency=purchase.currency, refund_of=purchase_entry_id, reason=r,
                                      created_by=actor.user_id or None)
    audit.record(session, actor, partner_id=partner_id, action="refund", entity="wallet", entity_id=w.id,
                 after={"credits": c, "amount": amount, "refund_of": purchase_entry_id, "reason": r})
    return entry_id


def expire(session: Session, actor: Actor, partner_id: int, credits: Any, reason: str = "Credits expired") -> int:
    """Remove expired credits (at most the positive balance). Platform only."""
    authorize(actor, "wallet.adjust", partner_id)
    c = _credits(credits)
    r = _reason(reason)
    w = _lock(session, partner_id)
    if c > max(w.balance, Decimal(0)):
        raise ValidationError({"credits": f"Only {format_quantity(max(w.balance, Decimal(0)))} credits can expire."})
    entry_id, _balance = _insert_entry(session, w, kind="expiry", credits=-c, reason=r,
                                       created_by=actor.user_id or None)
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
    auto_purchase: str | None = None  # purchased | declined | gave_up | waiting | None (not needed)
    auto_purchase_entry_id: int | None = None
    reminder_sent: bool = False
    shortfall: Decimal = Decimal(0)

    @property
    def applied(self) -> bool:
        return self.status in ("applied", "duplicate")


@dataclass
class _AutoBuy:
    outcome: str
    entry_id: int | None = None
    balance: Decimal | None = None
    extra: dict = field(default_factory=dict)


def _auto_buy(session: Session, w: Any, now: datetime) -> _AutoBuy:
    """Try the automatic purchase, under the wallet lock. A decline is recorded (charge, back-off state,
    outbox report) in its own committed transaction, so it counts even if the caller rolls back."""
    state = session.execute(select(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)).first()
    failures = state.failures if state else 0
    if state is not None and state.gave_up:
        return _AutoBuy("gave_up")
    if state is not None and state.next_retry_at is not None and state.next_retry_at > now:
        return _AutoBuy("waiting")
    method = _default_method(session, w.partner_id)
    q = quote_from_steps(price_steps(session, w.partner_id, w.currency), w.auto_buy_credits, w.currency)
    key = f"auto-buy:{w.id}:{w.auto_buy_count + 1}:{failures}"
    ref: str | None
    why: str | None
    if method is None:
        approved, ref, why = False, None, "No payment method on file."
    else:
        res = get_gateway().charge(method.token, q.amount, q.currency, key)
        approved, ref, why = res.approved, res.gateway_ref, res.decline_reason
    charge_values = dict(partner_id=w.partner_id, method_id=method.id if method else None, amount=q.amount,
                         currency=q.currency, reason="auto_purchase", credits=q.credits, idempotency_key=key)
    if approved:
        charge = record_approved(session, {**charge_values, "gateway_ref": ref})
        entry_id, balance = _insert_entry(session, w, kind="auto_purchase", credits=q.credits, amount=q.amount,
                                          currency=q.currency, charge_id=charge.id, idempotency_key=key,
                                          reason="Automatic purchase")
        if state is not None and failures:
            session.execute(update(S).where(S.c.partner_id == w.partner_id, S.c.wallet_id == w.id)
                            .values(failures=0, next_retry_at=None, gave_up=False, last_error=None,
                                    updated_at=func.now()))
        return _AutoBuy("purchased", entry_id, balance)
    failures += 1
    gave_up = failures >= AUTO_BUY_MAX_ATTEMPTS
    next_retry = None if gave_up else now + AUTO_BUY_BACKOFF[min(failures, len(AUTO_BUY_BACKOFF)) - 1]
    _record_auto_buy_failure(session, w, charge_values if method else None, why or "declined", failures, gave_up,
                             next_retry, q.amount)
    return _AutoBuy("gave_up" if gave_up else "declined")


def _record_auto_buy_failure(session: Session, w: Any, charge_values: dict | None, why: str, failures: int,
                             gave_up: bool, next_retry: datetime | None, amount: Decimal) -> None:
    state_values = dict(failures=failures, next_retry_at=next_retry, last_error=why, gave_up=gave_up,
                        updated_at=func.now())
    money = format_money(amount, w.currency)
    if gave_up:
        subject = "Automatic credit purchase stopped"
        body = (f"The automatic purchase of {format_quantity(w.auto_buy_credits)} credits ({money}) was declined "
                f"{failures} times ({why}). It will not be tried again until you buy credits or update your "
                "payment method and settings.")
    else:
        subject = "Automatic credit purchase declined"
        body = (f"The automatic purchase of {format_quantity(w.auto_buy_credits)} credits ({money}) was declined: "
                f"{why} Attempt {failures} of {AUTO_BUY_MAX_ATTEMPTS}; the next attempt is not before "
                f"{next_retry:%Y-%m-%d %H:%M} UTC.")
    with engine_of(session).begin() as conn:
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        if charge_values is not None:
            conn.execute(pg_insert(Wallet.metadata.tables["payment_charges"]).values(
                status="declined", decline_reason=why, **charge_values).on_conflict_do_nothing())
        conn.execute(pg_insert(S).values(partner_id=w.partner_id, wallet_id=w.id, **state_values)
                     .on_conflict_do_update(index_elements=["partner_id", "wallet_id"], set_=state_values))
        notify.notify(conn, w.partner_id, "auto_buy_failed", subject, body)


_FAST_DRAW = text("SELECT status, entry_id, balance, overdraft FROM wallet_draw(:p, :a, :c, :k, :e)").bindparams(
    bindparam("e", type_=JSONB))


def _floor_gap(session: Session, partner_id: int, new_balance: Decimal) -> Decimal:
    return _floor(_wallet_row(session, partner_id)) - new_balance


def draw(session: Session, partner_id: int, account_id: int, credits: Any, idempotency_key: str,
         event_ref: dict | None = None, *, now: datetime | None = None) -> DrawResult:
    """Take `credits` from the partner's wallet for customer `account_id`'s usage.

    Internal (no actor): called by the usage path via core.billing.modes.settle_new_usage. Under the
    wallet row lock it decides, in this order: the automatic purchase (once per depletion: when the draw
    would leave the balance at or below 0), the floor (refuse, or overdraft down to the limit), the draw
    itself, the low-balance reminder (once per dip). A repeated idempotency key returns 'duplicate'.
    Never raises for missing credits: a 'refused' result leaves consistent state worth committing.

    The common case runs in one round trip (SQL function wallet_draw, migration 0004), because the
    wallet lock is held until commit and round trips under the lock bound the draws per second.
    """
    c = _credits(credits)
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValidationError({"idempotency_key": "A draw needs an idempotency key of at most 200 characters."})
    now = now or _now()
    fast = session.execute(_FAST_DRAW, {"p": partner_id, "a": account_id, "c": c, "k": idempotency_key,
                                        "e": event_ref}).one()
    if fast.status == "no_wallet":
        raise NotFound("This partner has no credit wallet yet.")
    if fast.status == "applied":
        return DrawResult("applied", c, fast.balance, fast.entry_id, fast.overdraft)
    if fast.status == "duplicate":
        return DrawResult("duplicate", c, fast.balance, fast.entry_id, fast.overdraft)
    if fast.status == "refused":
        return DrawResult("refused", c, fast.balance, shortfall=_floor_gap(session, partner_id, fast.balance - c))
    # 'slow': an automatic purchase or the reminder is involved; the row lock is already held.
    w = _lock(session, partner_id)
    done = session.execute(select(L.c.id, L.c.balance_after, L.c.overdraft).where(
        L.c.partner_id == partner_id, L.c.wallet_id == w.id, L.c.idempotency_key == idempotency_key)).first()
    if done is not None:
        return DrawResult("duplicate", c, w.balance, done.id, done.overdraft)
    balance = w.balance
    changes: dict[str, Any] = {}
    auto: _AutoBuy | None = None
    if w.auto_buy_credits is not None and w.auto_buy_armed and balance - c <= 0:
        auto = _auto_buy(session, w, now)
        if auto.outcome == "purchased":
            assert auto.balance is not None  # set when purchased
            balance = auto.balance
            changes["auto_buy_count"] = w.auto_buy_count + 1
        elif auto.outcome == "gave_up":
            changes["auto_buy_armed"] = False
    reminder_armed = w.reminder_armed
    if auto is not None and auto.outcome == "purchased" and w.low_balance_threshold is not None \
            and balance >= w.low_balance_threshold:
        reminder_armed = True
    floor = _floor(w)
    if balance - c < floor:
        if auto is not None and auto.outcome == "purchased":
            changes["auto_buy_armed"] = balance > 0
        if reminder_armed != w.reminder_armed:
            changes["reminder_armed"] = reminder_armed
        _set_wallet(session, w, **changes)
        return DrawResult("refused", c, balance, auto_purchase=auto.outcome if auto else None,
                          auto_purchase_entry_id=auto.entry_id if auto else None,
                          shortfall=floor - (balance - c))
    entry_id, new_balance = session.execute(insert(L).values(
        partner_id=partner_id, wallet_id=w.id, kind="usage_draw", credits=-c, account_id=account_id,
        idempotency_key=idempotency_key, event_ref=event_ref, overdraft=balance - c < 0,
    ).returning(L.c.id, L.c.balance_after)).one()
    if auto is not None and auto.outcome == "purchased":
        changes["auto_buy_armed"] = new_balance > 0  # else: one purchase per depletion, wait for a top-up
    reminded = _maybe_remind(session, w, new_balance, reminder_armed)
    if reminded:
        reminder_armed = False
    if reminder_armed != w.reminder_armed:
        changes["reminder_armed"] = reminder_armed
    _set_wallet(session, w, **changes)
    return DrawResult("applied", c, new_balance, entry_id, new_balance < 0,
                      auto.outcome if auto else None, auto.entry_id if auto else None, reminded)


def retry_due_auto_purchases(session: Session, now: datetime | None = None) -> list[int]:
    """For a scheduler (cron): retry declined automatic purchases whose back-off has passed on wallets
    that are still used up, without waiting for the next draw. Returns the partner ids that bought.
    Internal, like draw (no actor); one wallet lock at a time, in partner id order."""
    now = now or _now()
    due = session.execute(select(S.c.partner_id).where(S.c.gave_up.is_(False), S.c.failures > 0,
                                                       S.c.next_retry_at <= now)
                          .order_by(S.c.partner_id)).scalars().all()
    bought = []
    for partner_id in due:
        w = _lock(session, partner_id)
        if w.auto_buy_credits is None or not w.auto_buy_armed or w.balance > 0:
            continue
        auto = _auto_buy(session, w, now)
        if auto.outcome == "purchased" and auto.balance is not None:
            changes: dict[str, Any] = {"auto_buy_count": w.auto_buy_count + 1, "auto_buy_armed": auto.balance > 0}
            if w.low_balance_threshold is not None and auto.balance >= w.low_balance_threshold:
                changes["reminder_armed"] = True
            _set_wallet(session, w, **changes)
            bought.append(partner_id)
    return bought


# ---------------------------------------------------------------- reading


def balance(session: Session, actor: Actor, partner_id: int) -> Decimal:
    authorize(actor, "wallet.view", partner_id)
    return _wallet_row(session, partner_id).balance


def verify_ledger(session: Session, partner_id: int) -> Decimal:
    """Prove balance == sum(ledger) and that every entry's balance_after is the running sum. Returns the
    balance; raises LedgerMismatch otherwise."""
    w = _wallet_row(session, partner_id)
    total = session.execute(select(func.coalesce(func.sum(L.c.credits), 0)).where(
        L.c.partner_id == partner_id, L.c.wallet_id == w.id)).scalar()
    if total != w.balance:
        raise LedgerMismatch(f"Wallet {w.id} of partner {partner_id}: balance {w.balance} but ledger sums to {total}.")
    running = func.sum(L.c.credits).over(order_by=L.c.id)
    sub = select(L.c.id, L.c.balance_after, running.label("running")).where(
        L.c.partner_id == partner_id, L.c.wallet_id == w.id).subquery()
    bad = session.execute(select(sub.c.id).where(sub.c.balance_after != sub.c.running).limit(1)).scalar()
    if bad is not None:
        raise LedgerMismatch(f"Wallet {w.id} of partner {partner_id}: entry {bad} has a wrong balance_after.")
    mismatches = session.execute(select(func.count()).select_from(func.wallet_verify(partner_id))).scalar()
    if mismatches:
        raise LedgerMismatch(f"wallet_verify({partner_id}) reports {mismatches} mismatch(es).")
    return w.balance


@dataclass(frozen=True)
class WalletView:
    id: int
    partner_id: int
    currency: str
    balance: Decimal
    low_balance_threshold: Decimal | None
    reminder_armed: bool
    auto_buy_credits: Decimal | None
    auto_buy_armed: bool
    overdraft_policy: str
    overdraft_limit: Decimal
    floor: Decimal
    auto_buy_failures: int
    auto_buy_next_retry_at: datetime | None
    auto_buy_last_error: str | None
    auto_buy_gave_up: bool


def wallet_view(session: Session, actor: Actor, partner_id: int) -> WalletView | None:
    """The wallet and its settings for display; None when the partner has no wallet yet."""
    authorize(actor, "wallet.view", partner_id)
    w = session.execute(select(W).where(W.c.partner_id == partner_id)).first()
    if w is None:
        return None
    st = session.execute(select(S).where(S.c.partner_id == partner_id, S.c.wallet_id == w.id)).first()
    return WalletView(w.id, partner_id, w.currency, w.balance, w.low_balance_threshold, w.reminder_armed,
                      w.auto_buy_credits, w.auto_buy_armed, w.overdraft_policy, w.overdraft_limit, _floor(w),
                      st.failures if st else 0, st.next_retry_at if st else None, st.last_error if st else None,
                      bool(st and st.gave_up))


@dataclass(frozen=True)
class LedgerRow:
    id: int
    created_at: datetime
    kind: str
    credits: Decimal
    balance_after: Decimal
    amount: Decimal | None
    currency: str | None
    account_id: int | None
    account_name: str | None
    reason: str | None
    overdraft: bool
    event_ref: dict | None


def list_ledger(session: Session, actor: Actor, partner_id: int, *, kind: str | None = None,
                account_id: int | None = None, limit: int = 50, offset: int = 0) -> tuple[list[LedgerRow], int]:
    """One page of ledger entries, newest first, and the total count (for paging)."""
    authorize(actor, "wallet.view", partner_id)
    if kind is not None and kind not in LEDGER_KINDS:
        raise ValidationError({"kind": f"Unknown entry kind {kind!r}."})
    conds = [L.c.partner_id == partner_id]
    if kind:
        conds.append(L.c.kind == kind)
    if account_id is not None:
        conds.append(L.c.account_id == account_id)
    total = session.execute(select(func.count()).select_from(L).where(*conds)).scalar() or 0
    A = CustomerAccount.__table__
    q = (select(L, A.c.name.label("account_name"))
         .outerjoin(A, (A.c.partner_id == L.c.partner_id) & (A.c.id == L.c.account_id))
         .where(*conds).order_by(L.c.id.desc()).limit(max(1, min(limit, 500))).offset(max(0, offset)))
    rows = [LedgerRow(r.id, r.created_at, r.kind, r.credits, r.balance_after, r.amount, r.currency, r.account_id,
                      r.account_name, r.reason, r.overdraft, r.event_ref) for r in session.execute(q)]
    return rows, total


@dataclass(frozen=True)
class CustomerDraws:
    account_id: int
    account_name: str
    credits: Decimal
    draws: int


def draws_by_customer(session: Session, actor: Actor, partner_id: int, start: date, end: date) -> list[CustomerDraws]:
    """Credits drawn per customer between `start` and `end` (inclusive days, UTC), net of nothing else:
    what the partner's wallet paid for each customer."""
    authorize(actor, "wallet.view", partner_id)
    if end < start:
        raise ValidationError({"end": "The end date is before the start date."})
    return _draw_totals(session, partner_id, start, end)


def _draw_totals(session: Session, partner_id: int, start: date, end: date) -> list[CustomerDraws]:
    A = CustomerAccount.__table__
    lo = datetime(start.year, start.month, start.day, tzinfo=UTC)
    hi = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    q = (select(L.c.account_id, A.c.name, -func.sum(L.c.credits), func.count())
         .join(A, (A.c.partner_id == L.c.partner_id) & (A.c.id == L.c.account_id))
         .where(L.c.partner_id == partner_id, L.c.kind == "usage_draw", L.c.created_at >= lo, L.c.created_at < hi)
         .group_by(L.c.account_id, A.c.name).order_by(A.c.name))
    return [CustomerDraws(a, n, c, k) for a, n, c, k in session.execute(q)]
