"""Billing modes ("who pays") per customer account, effective from a date, and settling new usage.

Modes:
- ``customer_pays``: the platform bills the customer account on its statement (default when no mode set).
- ``partner_prepaid``: the usage's credits are drawn from the partner's wallet at once.
- ``partner_on_demand``: the usage's price is charged to the partner's payment method at once;
  a declined charge blocks the usage (``on_decline='block'``) or records it flagged (``'flag'``).
- ``agency``: the usage goes on the partner's collective monthly statement, one section per customer.

A mode row applies from its `effective_from` day until the next row's day. Statements read
:func:`mode_at` / :func:`modes_in_period` to know which days of a period each customer was in which mode.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing import receipts, wallet
from core.billing.payments import (
    default_method,
    engine_of,
    find_charge,
    get_gateway,
    record_approved,
    record_declined,
)
from core.errors import Conflict, NotFound, ValidationError
from core.notify import outbox as notify
from core.pricing.money import format_money, format_quantity, is_known_currency, round_money
from db.models import CustomerAccount
from db.models.wallet import BILLING_MODES, ON_DECLINE, BillingMode, PaymentCharge

DEFAULT_MODE = "customer_pays"
PARTNER_PAID = ("partner_prepaid", "partner_on_demand")  # the modes in which the partner pays for the usage

MODE_LABELS = {
    "customer_pays": "Customer pays",
    "partner_prepaid": "Partner pays (prepaid credits)",
    "partner_on_demand": "Partner pays (charged on demand)",
    "agency": "Agency customer (collective monthly invoice)",
}


class UsageBlocked(Conflict):
    """The usage cannot be accepted: credits ran out (prepaid, refuse) or the charge was declined
    (on demand, block). The message is safe to show to partner staff."""

    def __init__(self, message: str, result: SettlementResult):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class ModeRow:
    account_id: int
    account_name: str
    account_status: str
    mode: str
    on_decline: str | None
    effective_from: date | None  # None: never set (default mode)
    next_mode: str | None = None
    next_effective_from: date | None = None


@dataclass(frozen=True)
class SettlementResult:
    """What happened to one batch of new usage.

    action: 'drawn' (prepaid), 'duplicate' (already settled), 'charged' (on demand, approved),
    'flagged' (on demand, declined, recorded for follow-up), 'blocked' (refused/declined, not accepted),
    'statement' (customer pays / agency: billed on a statement later), 'nothing' (zero usage)."""

    mode: str
    action: str
    credits: Decimal
    amount: Decimal
    currency: str | None
    draw: wallet.DrawResult | None = None
    charge_id: int | None = None
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.action != "blocked"


# ---------------------------------------------------------------- reading modes


def mode_row(session: Session, partner_id: int, account_id: int, day: date) -> BillingMode | None:
    return session.scalar(select(BillingMode).where(
        BillingMode.partner_id == partner_id, BillingMode.account_id == account_id,
        BillingMode.effective_from <= day).order_by(BillingMode.effective_from.desc()).limit(1))


def mode_at(session: Session, partner_id: int, account_id: int, day: date) -> tuple[str, str | None]:
    """(mode, on_decline) in force on `day`; ('customer_pays', None) when none was ever set."""
    row = mode_row(session, partner_id, account_id, day)
    return (row.mode, row.on_decline) if row else (DEFAULT_MODE, None)


def modes_in_period(session: Session, partner_id: int, account_id: int, start: date,
                    end: date) -> list[tuple[date, date, str]]:
    """[(from_day, to_day inclusive, mode)] covering start..end: for statements that split a period."""
    rows = session.scalars(select(BillingMode).where(
        BillingMode.partner_id == partner_id, BillingMode.account_id == account_id,
        BillingMode.effective_from > start, BillingMode.effective_from <= end)
        .order_by(BillingMode.effective_from)).all()
    out: list[tuple[date, date, str]] = []
    cur_from, cur_mode = start, mode_at(session, partner_id, account_id, start)[0]
    for r in rows:
        out.append((cur_from, date.fromordinal(r.effective_from.toordinal() - 1), cur_mode))
        cur_from, cur_mode = r.effective_from, r.mode
    out.append((cur_from, end, cur_mode))
    return out


def list_modes(session: Session, actor: Actor, partner_id: int, today: date | None = None) -> list[ModeRow]:
    """Every (not deleted) customer of the partner with the mode in force today and the next scheduled."""
    authorize(actor, "billing.manage", partner_id)
    today = today or clock.today()
    accounts = session.execute(select(CustomerAccount.id, CustomerAccount.name, CustomerAccount.status).where(
        CustomerAccount.partner_id == partner_id, CustomerAccount.status != "deleted")
        .order_by(CustomerAccount.name)).all()
    history: dict[int, list[BillingMode]] = {}
    for r in session.scalars(select(BillingMode).where(BillingMode.partner_id == partner_id)
                             .order_by(BillingMode.effective_from)):
        history.setdefault(r.account_id, []).append(r)
    out = []
    for acc_id, name, status in accounts:
        rows = history.get(acc_id, [])
        current = [r for r in rows if r.effective_from <= today]
        future = [r for r in rows if r.effective_from > today]
        cur = current[-1] if current else None
        nxt = future[0] if future else None
        out.append(ModeRow(acc_id, name, status, cur.mode if cur else DEFAULT_MODE, cur.on_decline if cur else None,
                           cur.effective_from if cur else None, nxt.mode if nxt else None,
                           nxt.effective_from if nxt else None))
    return out


# ---------------------------------------------------------------- changing the mode


def set_mode(session: Session, actor: Actor, partner_id: int, account_id: int, mode: str, effective_from: date,
             on_decline: str | None = None, *, today: date | None = None) -> BillingMode:
    """Change who pays for a customer from `effective_from` (today or later: usage already settled is
    never re-settled). Prepaid needs the partner's wallet, on demand a payment method on file."""
    authorize(actor, "billing.manage", partner_id, account_id)
    today = today or clock.today()
    errors: dict[str, str] = {}
    if mode not in BILLING_MODES:
        errors["mode"] = "Choose one of: " + ", ".join(MODE_LABELS[m] for m in BILLING_MODES) + "."
    if not isinstance(effective_from, date):
        errors["effective_from"] = "Choose the date the mode applies from."
    elif effective_from < today:
        errors["effective_from"] = "The date cannot be in the past: usage already settled is not re-settled."
    if mode == "partner_on_demand":
        on_decline = on_decline or "block"
        if on_decline not in ON_DECLINE:
            errors["on_decline"] = "Choose 'block' or 'flag' for declined charges."
        if default_method(session, partner_id) is None:
            errors["mode"] = "Add a payment method (Credits wallet page) before choosing on-demand charging."
    else:
        on_decline = None
    if mode == "partner_prepaid" and wallet.find_wallet(session, partner_id) is None:
        errors["mode"] = "Set up the credit wallet (Credits wallet page) before choosing prepaid credits."
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or acc.status == "deleted":
        raise NotFound(f"Customer account {account_id} does not exist.")
    if errors:
        raise ValidationError(errors)
    before_mode = mode_at(session, partner_id, account_id, effective_from)
    row = session.get(BillingMode, (partner_id, account_id, effective_from))
    if row is None:
        row = BillingMode(partner_id=partner_id, account_id=account_id, effective_from=effective_from, mode=mode,
                          on_decline=on_decline, created_by=actor.user_id or None)
        session.add(row)
    else:
        row.mode, row.on_decline, row.created_by = mode, on_decline, actor.user_id or None
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="change_mode", entity="billing_mode",
                 entity_id=f"{account_id}:{effective_from.isoformat()}", account_id=account_id,
                 before={"mode": before_mode[0], "on_decline": before_mode[1]},
                 after={"mode": mode, "on_decline": on_decline, "effective_from": effective_from})
    return row


# ---------------------------------------------------------------- settling new usage


def _key(partner_id: int, account_id: int, idempotency_key: str | None, event_ref: Any) -> str | None:
    if idempotency_key:
        return idempotency_key
    if event_ref is None:
        return None
    digest = hashlib.sha256(json.dumps(event_ref, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"usage:{partner_id}:{account_id}:{digest}"


def settle_new_usage(session: Session, partner_id: int, account_id: int, day: date, credits: Decimal,
                     amount: Decimal, currency: str | None, event_ref: dict | None,
                     idempotency_key: str | None = None, *, raise_on_block: bool = True) -> SettlementResult:
    """Settle one batch of newly recorded usage of a customer, by the mode in force on `day`.

    Called by the usage path (hook core.usage.ingest.on_events_recorded) inside its own transaction, with the
    batch's credits (prepaid) and rated price (on demand). Internal: no actor, the usage was authorised
    where it was recorded. `event_ref` identifies the events (e.g. {"first_event_id", "last_event_id",
    "count"}); the idempotency key defaults to a hash of it, so a retried batch is never settled twice.

    Blocked usage raises UsageBlocked (unless raise_on_block=False, then a 'blocked' result is returned):
    the caller rolls back / rejects the events. Declines and back-off state are recorded in their own
    transaction, so a rollback does not make the next batch retry a charge it should not.
    """
    mode, on_decline = mode_at(session, partner_id, account_id, day)
    credits = Decimal(credits or 0)
    amount = Decimal(amount or 0)
    key = _key(partner_id, account_id, idempotency_key, event_ref)
    if mode in ("customer_pays", "agency"):
        return SettlementResult(mode, "statement", credits, amount, currency)
    if mode == "partner_prepaid":
        if credits <= 0:
            return SettlementResult(mode, "nothing", credits, amount, currency)
        if key is None:
            raise ValidationError({"event_ref": "Prepaid usage needs an idempotency key or an event reference."})
        d = wallet.draw(session, partner_id, account_id, credits, key, event_ref)
        if d.status == "refused":
            res = SettlementResult(mode, "blocked", credits, amount, currency, draw=d,
                                   message=_blocked_message(d))
            if raise_on_block:
                raise UsageBlocked(res.message, res)
            return res
        return SettlementResult(mode, "drawn" if d.status == "applied" else "duplicate", credits, amount, currency,
                                draw=d)
    return _charge_on_demand(session, partner_id, account_id, amount, currency, credits, event_ref, key,
                             on_decline or "block", raise_on_block)


def _blocked_message(d: wallet.DrawResult) -> str:
    """People's numbers: "3,900", never "3.9E+3"; and say when an automatic purchase is under way."""
    msg = f"Not enough credits: {format_quantity(d.shortfall)} more are needed."
    if d.auto_purchase == "pending":
        msg += " An automatic credit purchase is under way; retry in a moment."
    return msg


def _charge_on_demand(session: Session, partner_id: int, account_id: int, amount: Decimal, currency: str | None,
                      credits: Decimal, event_ref: dict | None, key: str | None, on_decline: str,
                      raise_on_block: bool) -> SettlementResult:
    mode = "partner_on_demand"
    if amount <= 0:
        return SettlementResult(mode, "nothing", credits, amount, currency)
    if not is_known_currency(currency):
        raise ValidationError({"currency": f"Unknown currency {currency!r}."})
    if key is None:
        raise ValidationError({"event_ref": "On-demand usage needs an idempotency key or an event reference."})
    assert currency is not None
    amount = round_money(amount, currency)
    # One approved charge per batch; each declined attempt has its own gateway key (base:n), so a retry
    # after the partner fixed the payment method is a new attempt, not a replay of the decline.
    base = f"on-demand:{key}"
    attempts = session.execute(select(PaymentCharge.id, PaymentCharge.status).where(
        PaymentCharge.partner_id == partner_id, PaymentCharge.idempotency_key.startswith(base + ":", autoescape=True),
    )).all()
    approved_id = next((i for i, status in attempts if status == "approved"), None)
    if approved_id is not None:
        return SettlementResult(mode, "duplicate", credits, amount, currency, charge_id=approved_id)
    charge_key = f"{base}:{len(attempts)}"
    method = default_method(session, partner_id)
    values = dict(partner_id=partner_id, method_id=method.id if method else None, amount=amount, currency=currency,
                  reason="usage_on_demand", account_id=account_id, credits=credits or None, event_ref=event_ref,
                  idempotency_key=charge_key)
    ref: str | None
    why: str | None
    if method is None:
        approved, ref, why = False, None, "No payment method on file."
    else:
        res = get_gateway().charge(method.token, amount, currency, charge_key)
        approved, ref, why = res.approved, res.gateway_ref, res.decline_reason
    if approved:
        charge = record_approved(session, {**values, "gateway_ref": ref})
        receipts.issue_charge_receipt(session, charge, clock.today())  # platform -> partner, numbered
        return SettlementResult(mode, "charged", credits, amount, currency, charge_id=charge.id)
    name = session.scalar(select(CustomerAccount.name).where(CustomerAccount.partner_id == partner_id,
                                                             CustomerAccount.id == account_id))
    money = format_money(amount, currency)
    if on_decline == "flag":
        record_declined(session, {**values, "decline_reason": why})
        notify.notify(session, partner_id, "charge_declined", f"Charge declined for {name}",
                      f"The on-demand charge of {money} for {name}'s usage was declined ({why}). The usage was "
                      "recorded and flagged: please settle it or update your payment method.")
        flagged = find_charge(session, partner_id, charge_key)
        return SettlementResult(mode, "flagged", credits, amount, currency, charge_id=flagged.id if flagged else None,
                                message=f"Charge declined ({why}); usage recorded and flagged.")
    record_declined(session, {**values, "decline_reason": why})
    notify.notify_now(engine_of(session), partner_id, "charge_declined", f"Usage blocked for {name}",
                      f"The on-demand charge of {money} for {name}'s usage was declined ({why}); the usage "
                      "was not accepted. Update your payment method.")
    blocked = SettlementResult(mode, "blocked", credits, amount, currency,
                               message=f"The charge of {money} was declined: {why}")
    if raise_on_block:
        raise UsageBlocked(blocked.message, blocked)
    return blocked
