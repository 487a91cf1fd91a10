"""Payment gateway interface, the DEMO gateway, and recording charges.

The rest of the code only talks to :class:`PaymentGateway`; a real provider (Stripe, Adyen, ...) is added
by implementing `tokenize_*`, `charge`, `status` (look a charge up by its idempotency key, for
reconciliation) and `refund`, and selecting it with the environment variable
``RC_PAYMENT_GATEWAY``. Only the provider's token and the last four digits are ever stored: full card
numbers and IBANs never reach the database.

Charge attempts are recorded in `payment_charges`. A *declined* attempt is written in its own short
transaction (:func:`record_declined`) because it is a fact about the outside world that must survive even
when the caller's transaction rolls back (the usage that caused it is blocked, the purchase is refused).
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import Conflict, NotFound, ValidationError
from db.engine import partner_scope, scoped_begin
from db.models.wallet import PaymentCharge, PaymentMethod


@dataclass(frozen=True)
class ChargeResult:
    approved: bool
    gateway_ref: str | None
    decline_reason: str | None = None


@dataclass(frozen=True)
class RefundResult:
    ok: bool
    refund_ref: str | None
    error: str | None = None


class IdempotencyKeyReused(Conflict):
    """An idempotency key was sent again with other parameters (amount, currency, payment method, customer).
    Refused, as Stripe refuses it: a key names one request, never two."""


@dataclass(frozen=True)
class Tokenized:
    token: str
    last4: str
    kind: str  # card | bank
    label: str


class PaymentGateway(Protocol):
    """What the app needs from a payment provider."""

    name: str

    def tokenize_card(self, number: str, exp_month: int, exp_year: int) -> Tokenized:
        """Exchange a card number for a reusable token (raises ValidationError for a bad card)."""
        ...

    def tokenize_bank(self, iban: str, holder: str) -> Tokenized:
        """Exchange a bank account (IBAN) for a reusable direct-debit token."""
        ...

    def charge(self, token: str, amount: Decimal, currency: str, idempotency_key: str) -> ChargeResult:
        """Charge `amount` now. The same idempotency key must return the same result, never charge twice;
        the same key with other parameters raises IdempotencyKeyReused."""
        ...

    def status(self, idempotency_key: str) -> ChargeResult | None:
        """The result of the charge made with this key, or None when the gateway never saw the key."""
        ...

    def refund(self, gateway_ref: str, amount: Decimal, currency: str, idempotency_key: str) -> RefundResult:
        """Return `amount` of the charge `gateway_ref` to the payer; idempotent per key like `charge`."""
        ...


# ---------------------------------------------------------------- the DEMO gateway


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", iban):
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


class DemoGateway:
    """DEMO payment gateway — moves no real money. For demonstrations and tests only.

    Rules: a card number or IBAN ending in 0002 is tokenized as "always declines"; any charge above
    `limit` (env RC_DEMO_GATEWAY_LIMIT, default 10,000 in the charge currency) is declined; everything
    else is approved. The decline rule is encoded in the token, so nothing but token + last4 is stored.
    Charges are idempotent per key within the process (a real provider does this on its side).
    """

    name = "demo"
    DECLINE_SUFFIX = "0002"

    def __init__(self, limit: Decimal | None = None) -> None:
        env_limit = os.environ.get("RC_DEMO_GATEWAY_LIMIT")
        self.limit = limit if limit is not None else Decimal(env_limit or "10000")
        self._seen: dict[str, ChargeResult] = {}
        self._params: dict[str, tuple] = {}
        self._refunds: dict[str, tuple[tuple, RefundResult]] = {}
        self._refunded: dict[str, Decimal] = {}
        self._charged: dict[str, Decimal] = {}
        self._lock = threading.Lock()

    def _token(self, decline: bool) -> str:
        return f"demo_{'decline' if decline else 'ok'}_{secrets.token_hex(8)}"

    def tokenize_card(self, number: str, exp_month: int, exp_year: int) -> Tokenized:
        digits = re.sub(r"[\s-]", "", number or "")
        errors: dict[str, str] = {}
        if not re.fullmatch(r"[0-9]{12,19}", digits) or not _luhn_ok(digits):
            errors["number"] = "This is not a valid card number."
        today = clock.today()
        if not (1 <= int(exp_month) <= 12):
            errors["exp_month"] = "Expiry month must be 1 to 12."
        elif (int(exp_year), int(exp_month)) < (today.year, today.month):
            errors["exp_year"] = "This card has expired."
        if errors:
            raise ValidationError(errors)
        last4 = digits[-4:]
        return Tokenized(self._token(last4 == self.DECLINE_SUFFIX), last4, "card",
                         f"Card •••• {last4} (exp {int(exp_month):02d}/{int(exp_year)})")

    def tokenize_bank(self, iban: str, holder: str) -> Tokenized:
        norm = re.sub(r"\s", "", iban or "").upper()
        errors: dict[str, str] = {}
        if not _iban_ok(norm):
            errors["iban"] = "This is not a valid IBAN."
        if not (holder or "").strip():
            errors["holder"] = "Account holder is required."
        if errors:
            raise ValidationError(errors)
        last4 = norm[-4:]
        return Tokenized(self._token(last4 == self.DECLINE_SUFFIX), last4, "bank",
                         f"Bank account •••• {last4} ({holder.strip()[:60]})")

    def charge(self, token: str, amount: Decimal, currency: str, idempotency_key: str) -> ChargeResult:
        params = (token, Decimal(amount), currency)
        with self._lock:
            if idempotency_key in self._seen:
                if self._params[idempotency_key] != params:
                    raise IdempotencyKeyReused(
                        f"The idempotency key {idempotency_key!r} was already used for a charge of "
                        f"{self._params[idempotency_key][1]} {self._params[idempotency_key][2]}; this request "
                        f"asks for {amount} {currency}. A key names one request: use a new key.")
                return self._seen[idempotency_key]
            if not token.startswith("demo_"):
                result = ChargeResult(False, None, "Unknown payment method token.")
            elif token.startswith("demo_decline_"):
                result = ChargeResult(False, None, "The card issuer declined the payment (demo rule: ends in 0002).")
            elif amount > self.limit:
                result = ChargeResult(False, None, f"Amount above the demo gateway limit of {self.limit} {currency}.")
            else:
                result = ChargeResult(True, f"demo_ch_{secrets.token_hex(10)}")
                self._charged[result.gateway_ref or ""] = Decimal(amount)
            self._seen[idempotency_key] = result
            self._params[idempotency_key] = params
            return result

    def status(self, idempotency_key: str) -> ChargeResult | None:
        with self._lock:
            return self._seen.get(idempotency_key)

    def refund(self, gateway_ref: str, amount: Decimal, currency: str, idempotency_key: str) -> RefundResult:
        params = (gateway_ref, Decimal(amount), currency)
        with self._lock:
            if idempotency_key in self._refunds:
                seen_params, seen = self._refunds[idempotency_key]
                if seen_params != params:
                    raise IdempotencyKeyReused(f"The refund key {idempotency_key!r} was already used for another "
                                               "refund. A key names one request: use a new key.")
                return seen
            charged = self._charged.get(gateway_ref)  # None: charged by another process (demo memory)
            done = self._refunded.get(gateway_ref, Decimal(0))
            if not gateway_ref.startswith("demo_ch_"):
                result = RefundResult(False, None, "Unknown charge.")
            elif charged is not None and done + amount > charged:
                result = RefundResult(False, None, "The refund is larger than what is left of the charge.")
            else:
                self._refunded[gateway_ref] = done + Decimal(amount)
                result = RefundResult(True, f"demo_re_{secrets.token_hex(10)}")
            self._refunds[idempotency_key] = (params, result)
            return result


_gateway: PaymentGateway | None = None


def get_gateway() -> PaymentGateway:
    """The configured gateway (env RC_PAYMENT_GATEWAY, default and only built-in choice: "demo")."""
    global _gateway
    if _gateway is None:
        choice = os.environ.get("RC_PAYMENT_GATEWAY", "demo").strip().lower()
        if choice != "demo":
            raise RuntimeError(f"Unknown payment gateway {choice!r}: only 'demo' is built in; add a provider "
                               "class implementing core.billing.payments.PaymentGateway.")
        _gateway = DemoGateway()
    return _gateway


def set_gateway(gateway: PaymentGateway | None) -> None:
    """Install a gateway instance (e.g. a DemoGateway with another limit); None re-reads the config."""
    global _gateway
    _gateway = gateway


# ---------------------------------------------------------------- recording charges


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind


def find_charge(session: Session, partner_id: int, idempotency_key: str) -> PaymentCharge | None:
    return session.scalar(select(PaymentCharge).where(PaymentCharge.partner_id == partner_id,
                                                      PaymentCharge.idempotency_key == idempotency_key))


def record_declined(session: Session, values: dict[str, Any]) -> None:
    """Write a declined charge in its own committed transaction (see module docstring)."""
    stmt = pg_insert(PaymentCharge).values(status="declined", **values).on_conflict_do_nothing()
    with scoped_begin(engine_of(session), partner_scope(values["partner_id"])) as conn:
        # Never wait long for rows the caller's own open transaction may hold (it is waiting for us).
        conn.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
        conn.execute(stmt)


def record_approved(session: Session, values: dict[str, Any]) -> PaymentCharge:
    charge = PaymentCharge(status="approved", **values)
    session.add(charge)
    session.flush()
    return charge


class PaymentDeclined(Conflict):
    """The gateway declined a charge; nothing was bought or recorded as paid."""


# ---------------------------------------------------------------- payment methods (services)


def _method_snapshot(m: PaymentMethod) -> dict[str, Any]:
    return {"kind": m.kind, "last4": m.last4, "label": m.label, "is_default": m.is_default, "gateway": m.gateway}


def _store_method(session: Session, actor: Actor, partner_id: int, tok: Tokenized, label: str | None,
                  make_default: bool) -> PaymentMethod:
    has_default = session.scalar(select(PaymentMethod.id).where(PaymentMethod.partner_id == partner_id,
                                                                PaymentMethod.is_default))
    default = make_default or has_default is None
    if default and has_default is not None:
        session.execute(update(PaymentMethod).where(PaymentMethod.partner_id == partner_id, PaymentMethod.is_default)
                        .values(is_default=False))
    m = PaymentMethod(partner_id=partner_id, kind=tok.kind, gateway=get_gateway().name, token=tok.token,
                      last4=tok.last4, label=(label or "").strip()[:100] or tok.label, is_default=default,
                      created_by=actor.user_id or None)
    session.add(m)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="create", entity="payment_method", entity_id=m.id,
                 after=_method_snapshot(m))
    return m


def add_card(session: Session, actor: Actor, partner_id: int, *, number: str, exp_month: int, exp_year: int,
             label: str | None = None, make_default: bool = True) -> PaymentMethod:
    """Store a card as a gateway token + last four digits (the number itself is never stored)."""
    authorize(actor, "wallet.manage", partner_id)
    try:
        month, year = int(exp_month), int(exp_year)
    except (TypeError, ValueError):
        raise ValidationError({"exp_month": "Enter the expiry month and year as numbers."}) from None
    tok = get_gateway().tokenize_card(number, month, year)
    return _store_method(session, actor, partner_id, tok, label, make_default)


def add_bank_account(session: Session, actor: Actor, partner_id: int, *, iban: str, holder: str,
                     label: str | None = None, make_default: bool = True) -> PaymentMethod:
    authorize(actor, "wallet.manage", partner_id)
    tok = get_gateway().tokenize_bank(iban, holder)
    return _store_method(session, actor, partner_id, tok, label, make_default)


def list_methods(session: Session, actor: Actor, partner_id: int) -> list[PaymentMethod]:
    authorize(actor, "wallet.view", partner_id)
    return list(session.scalars(select(PaymentMethod).where(PaymentMethod.partner_id == partner_id,
                                                            PaymentMethod.active)
                                .order_by(PaymentMethod.is_default.desc(), PaymentMethod.id)))


def default_method(session: Session, partner_id: int) -> PaymentMethod | None:
    return session.scalar(select(PaymentMethod).where(PaymentMethod.partner_id == partner_id,
                                                      PaymentMethod.is_default, PaymentMethod.active))


def remove_method(session: Session, actor: Actor, partner_id: int, method_id: int) -> None:
    """Deactivate a payment method (charges keep pointing at it). Another one becomes the default."""
    authorize(actor, "wallet.manage", partner_id)
    m = session.get(PaymentMethod, (partner_id, method_id))
    if m is None or not m.active:
        raise NotFound(f"Payment method {method_id} does not exist.")
    was_default = m.is_default
    m.active, m.is_default = False, False
    session.flush()
    if was_default:
        nxt = session.scalar(select(PaymentMethod).where(PaymentMethod.partner_id == partner_id, PaymentMethod.active)
                             .order_by(PaymentMethod.id.desc()).limit(1))
        if nxt is not None:
            nxt.is_default = True
            session.flush()
    audit.record(session, actor, partner_id=partner_id, action="delete", entity="payment_method",
                 entity_id=method_id, before=_method_snapshot(m))
