"""ORM models: credit wallets and their ledger, credit price list, payment methods and charges, billing
modes per customer, and the notification outbox (issue 5, "who pays").

Invariants the database itself enforces (migration 0004 adds the triggers):
- `wallet_ledger` is append-only: UPDATE and DELETE raise.
- `wallets.balance` only changes through a ledger insert: a BEFORE INSERT trigger on the ledger adds the
  entry's credits to the wallet row (and stores `balance_after` on the entry), and a trigger on `wallets`
  refuses any other change of `balance`. So balance == sum(ledger) by construction; `wallet_verify()`
  (SQL) and `core.billing.wallet.verify_ledger` prove it.
- The floor: CHECK balance >= 0 (policy 'refuse') or >= -overdraft_limit (policy 'overdraft').
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import MONEY, QUANTITY, UNIT_PRICE, Base, reference_data

LEDGER_KINDS = ("purchase", "usage_draw", "auto_purchase", "adjustment", "refund", "expiry", "grant")
LOT_KINDS = ("paid", "promotional")
INTENT_STATUSES = ("pending", "credited", "declined")
REFUND_STATUSES = ("pending", "refunded", "failed")
DEFAULT_LOT_PRIORITY = 50
OVERDRAFT_POLICIES = ("refuse", "overdraft")
BILLING_MODES = ("customer_pays", "partner_prepaid", "partner_on_demand", "agency")
ON_DECLINE = ("block", "flag")
PAYMENT_METHOD_KINDS = ("card", "bank")
CHARGE_REASONS = ("purchase", "auto_purchase", "usage_on_demand")
CHARGE_STATUSES = ("approved", "declined")


class CreditPriceStep(Base):
    """Platform-wide default credit price list (reference table, shipped by the migration).

    Volume steps: a purchase of N credits is priced entirely at the step with the largest
    `min_credits` <= N (all-units volume pricing: more credits, lower price per credit)."""

    __tablename__ = "credit_price_steps"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    min_credits: Mapped[Decimal] = mapped_column(QUANTITY, primary_key=True)
    price_per_credit: Mapped[Decimal] = mapped_column(UNIT_PRICE)

    __table_args__ = (
        CheckConstraint("min_credits >= 0", name="min_credits_non_negative"),
        CheckConstraint("price_per_credit > 0", name="price_positive"),
        reference_data(),  # the shipped default price list; partners override it in their own table
    )


class PartnerCreditPriceStep(Base):
    """Per-partner override of the credit price list: when a partner has rows for a currency, only those
    rows apply to that partner in that currency."""

    __tablename__ = "partner_credit_price_steps"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    min_credits: Mapped[Decimal] = mapped_column(QUANTITY, primary_key=True)
    price_per_credit: Mapped[Decimal] = mapped_column(UNIT_PRICE)

    __table_args__ = (
        CheckConstraint("min_credits >= 0", name="min_credits_non_negative"),
        CheckConstraint("price_per_credit > 0", name="price_positive"),
    )


class Wallet(Base):
    """A partner's credit wallet. `balance` is a cache of sum(ledger), maintained by a trigger."""

    __tablename__ = "wallets"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0), server_default="0")
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(QUANTITY)
    reminder_armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    auto_buy_credits: Mapped[Decimal | None] = mapped_column(QUANTITY)
    # True: the next depletion may fire one automatic purchase. Cleared when it fires and the balance
    # stays <= 0, or when retries are exhausted; set again by a top-up that brings the balance above 0.
    auto_buy_armed: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    # Number of successful automatic purchases: part of the gateway idempotency key.
    auto_buy_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    overdraft_policy: Mapped[str] = mapped_column(String(10), default="refuse", server_default="refuse")
    overdraft_limit: Mapped[Decimal] = mapped_column(QUANTITY, default=Decimal(0), server_default="0")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_wallets_partner", "partner_id", unique=True),  # one credit wallet per partner (for now)
        CheckConstraint("overdraft_policy in ('refuse','overdraft')", name="overdraft_policy"),
        CheckConstraint("overdraft_limit >= 0", name="overdraft_limit_non_negative"),
        CheckConstraint("low_balance_threshold is null or low_balance_threshold >= 0", name="threshold"),
        CheckConstraint("auto_buy_credits is null or auto_buy_credits > 0", name="auto_buy_positive"),
        CheckConstraint(
            "balance >= case when overdraft_policy = 'overdraft' then -overdraft_limit else 0 end",
            name="floor",
        ),
    )


class WalletAutoBuyState(Base):
    """Back-off state of declined automatic purchases, one row per wallet.

    Kept outside `wallets` on purpose: it is written in its own short transaction (a declined charge is a
    fact even when the draw that triggered it is rolled back), while the draw holds the wallet row lock."""

    __tablename__ = "wallet_auto_buy_state"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_retry_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    gave_up: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Automatic purchase attempts ever made on this wallet: never reset, part of each attempt's gateway key.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    # Deliberately no foreign key to `wallets`: the autonomous transaction that writes this row must never
    # wait for the wallet row the draw holds (or has just inserted).


class WalletLedgerEntry(Base):
    """One movement of credits. Append-only; `credits` is signed (+ in, - out)."""

    __tablename__ = "wallet_ledger"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    credits: Mapped[Decimal] = mapped_column(QUANTITY)
    balance_after: Mapped[Decimal | None] = mapped_column(QUANTITY)  # set by the trigger
    amount: Mapped[Decimal | None] = mapped_column(MONEY)  # money paid / refunded
    currency: Mapped[str | None] = mapped_column(String(3))
    account_id: Mapped[int | None] = mapped_column(BigInteger)  # usage draws: the customer
    charge_id: Mapped[int | None] = mapped_column(BigInteger)  # purchases: the payment charge
    refund_of: Mapped[int | None] = mapped_column(BigInteger)  # refunds: the purchase entry refunded
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    event_ref: Mapped[dict | None] = mapped_column(JSONB)  # e.g. {"first_event_id", "last_event_id", "count"}
    reason: Mapped[str | None] = mapped_column(Text)
    overdraft: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    intent_id: Mapped[int | None] = mapped_column(BigInteger)  # purchases: the purchase intent (and its trigger)
    lot_id: Mapped[int | None] = mapped_column(BigInteger)  # credits in: the lot created; refund/expiry: the lot

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "wallet_id"], ["wallets.partner_id", "wallets.id"],
                             name="fk_wallet_ledger_wallet"),
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_wallet_ledger_account"),
        CheckConstraint("kind in ('purchase','usage_draw','auto_purchase','adjustment','refund','expiry','grant')",
                        name="kind"),
        CheckConstraint(
            "(kind in ('purchase','auto_purchase','grant') and credits > 0)"
            " or (kind in ('usage_draw','refund','expiry') and credits < 0)"
            " or (kind = 'adjustment' and credits <> 0)",
            name="credits_sign",
        ),
        CheckConstraint("kind <> 'usage_draw' or account_id is not null", name="draw_has_account"),
        CheckConstraint("kind <> 'adjustment' or length(btrim(coalesce(reason, ''))) > 0",
                        name="adjustment_has_reason"),
        Index("uq_wallet_ledger_idempotency", "partner_id", "wallet_id", "idempotency_key", unique=True),
        Index("ix_wallet_ledger_wallet_created", "partner_id", "wallet_id", "created_at"),
        Index("ix_wallet_ledger_account_created", "partner_id", "account_id", "created_at",
              postgresql_where=text("kind = 'usage_draw'")),
    )


class PurchaseIntent(Base):
    """A credit purchase, recorded (committed) BEFORE the gateway is called, then settled exactly once:
    'credited' (approved: charge, ledger entry, lot and receipt written in one transaction) or 'declined'.
    A 'pending' intent is open: the gateway may or may not have answered; `reconcile` asks it by key.

    No foreign key to `wallets` or `payment_methods`: the intent is written in its own transaction while the
    caller may hold (or have just inserted) those rows."""

    __tablename__ = "wallet_purchase_intents"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # purchase | auto_purchase
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    base_key: Mapped[str] = mapped_column(String(200))  # the request (form key / auto-buy series)
    attempt: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(200))  # the gateway key of this attempt
    credits: Mapped[Decimal] = mapped_column(QUANTITY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    price_per_credit: Mapped[Decimal] = mapped_column(UNIT_PRICE)
    method_id: Mapped[int | None] = mapped_column(BigInteger)
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    decline_reason: Mapped[str | None] = mapped_column(Text)
    trigger_key: Mapped[str | None] = mapped_column(String(200))  # automatic: the draw that triggered it
    trigger_account_id: Mapped[int | None] = mapped_column(BigInteger)
    entry_id: Mapped[int | None] = mapped_column(BigInteger)
    charge_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column()
    settled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind in ('purchase','auto_purchase')", name="kind"),
        CheckConstraint("status in ('pending','credited','declined')", name="status"),
        CheckConstraint("credits > 0 and amount > 0", name="positive"),
        Index("uq_wallet_purchase_intents_key", "partner_id", "idempotency_key", unique=True),
        Index("uq_wallet_purchase_intents_attempt", "partner_id", "base_key", "attempt", unique=True),
        Index("ix_wallet_purchase_intents_open", "partner_id", "wallet_id", postgresql_where=text("status = 'pending'")),
        # At most one automatic purchase open per wallet, whatever races the code might have.
        Index("uq_wallet_purchase_intents_one_auto", "partner_id", "wallet_id", unique=True,
              postgresql_where=text("status = 'pending' and kind = 'auto_purchase'")),
    )


class WalletRefund(Base):
    """Money going back to the partner for refunded credits: recorded with the refund's ledger entry, then
    sent to the gateway (by key) after commit; `reconcile` sends what is still pending."""

    __tablename__ = "wallet_refunds"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigInteger)  # the 'refund' ledger entry
    charge_id: Mapped[int] = mapped_column(BigInteger)  # the approved charge refunded
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    settled_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("status in ('pending','refunded','failed')", name="status"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("uq_wallet_refunds_key", "partner_id", "idempotency_key", unique=True),
    )


class WalletLot(Base):
    """Credits from one purchase or grant: kind paid / promotional, optional expiry day, priority (lower first).
    `remaining` is what is left; sum(remaining) == max(balance, 0) on every wallet (verify_ledger checks)."""

    __tablename__ = "wallet_lots"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    wallet_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))
    credits: Mapped[Decimal] = mapped_column(QUANTITY)
    remaining: Mapped[Decimal] = mapped_column(QUANTITY)
    expires_on: Mapped[date | None] = mapped_column(Date)
    priority: Mapped[int] = mapped_column(Integer, default=DEFAULT_LOT_PRIORITY, server_default="50")
    price_per_credit: Mapped[Decimal | None] = mapped_column(UNIT_PRICE)  # paid lots: what was paid
    currency: Mapped[str | None] = mapped_column(String(3))
    entry_id: Mapped[int | None] = mapped_column(BigInteger)  # the ledger entry that brought the credits
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "wallet_id"], ["wallets.partner_id", "wallets.id"],
                             name="fk_wallet_lots_wallet"),
        CheckConstraint("kind in ('paid','promotional')", name="kind"),
        CheckConstraint("credits > 0 and remaining >= 0 and remaining <= credits", name="remaining"),
        # No index mentions `remaining`: every draw updates it, and such updates stay HOT (no index writes).
        Index("ix_wallet_lots_wallet", "partner_id", "wallet_id"),
        Index("ix_wallet_lots_expiry", "expires_on", postgresql_where=text("expires_on is not null")),
    )


class WalletLotUse(Base):
    """Which lots a debit (draw, negative adjustment, refund, expiry) took its credits from."""

    __tablename__ = "wallet_lot_uses"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    entry_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    credits: Mapped[Decimal] = mapped_column(QUANTITY)

    __table_args__ = (CheckConstraint("credits > 0", name="credits_positive"),)


class CreditReceipt(Base):
    """A numbered receipt from the platform to the partner for one credit purchase (prices include tax)."""

    __tablename__ = "credit_receipts"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    intent_id: Mapped[int] = mapped_column(BigInteger)
    entry_id: Mapped[int] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    credits: Mapped[Decimal] = mapped_column(QUANTITY)
    price_per_credit: Mapped[Decimal] = mapped_column(UNIT_PRICE)
    net_amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_rate: Mapped[Decimal | None] = mapped_column(QUANTITY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    issuer_name: Mapped[str] = mapped_column(String(200))
    issuer_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_credit_receipts_number", "number", unique=True),
        Index("uq_credit_receipts_intent", "partner_id", "intent_id", unique=True),
    )


class CreditReceiptSequence(Base):
    """The platform's receipt numbers, one unbroken series per year (row locked until commit)."""

    __tablename__ = "credit_receipt_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class ChargeReceipt(Base):
    """A numbered receipt from the platform to the partner for one approved on-demand usage charge (issue 10):
    the rate card's amount for a client's usage, charged to the partner's payment method."""

    __tablename__ = "charge_receipts"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    charge_id: Mapped[int] = mapped_column(BigInteger)
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    issued_on: Mapped[date] = mapped_column(Date)
    credits: Mapped[Decimal | None] = mapped_column(QUANTITY)
    net_amount: Mapped[Decimal] = mapped_column(MONEY)
    tax_rate: Mapped[Decimal | None] = mapped_column(QUANTITY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY)
    total: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    issuer_name: Mapped[str] = mapped_column(String(200))
    issuer_address: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "charge_id"], ["payment_charges.partner_id", "payment_charges.id"],
                             name="fk_charge_receipts_charge"),
        Index("uq_charge_receipts_number", "number", unique=True),
        Index("uq_charge_receipts_charge", "partner_id", "charge_id", unique=True),
    )


class ChargeReceiptSequence(Base):
    """The platform's numbers for on-demand charge receipts, one unbroken series per year (row locked until
    commit)."""

    __tablename__ = "charge_receipt_sequences"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer)


class PaymentMethod(Base):
    """A partner's card or bank account on file: only the gateway token and the last four digits."""

    __tablename__ = "payment_methods"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    gateway: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(200))
    last4: Mapped[str] = mapped_column(String(4))
    label: Mapped[str | None] = mapped_column(String(100))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind in ('card','bank')", name="kind"),
        CheckConstraint("last4 ~ '^[0-9A-Za-z]{4}$'", name="last4"),
        Index("uq_payment_methods_default", "partner_id", unique=True, postgresql_where=text("is_default")),
    )


class PaymentCharge(Base):
    """Every charge attempt at the payment gateway, approved or declined."""

    __tablename__ = "payment_charges"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    method_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(10))
    gateway_ref: Mapped[str | None] = mapped_column(String(100))
    decline_reason: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(20))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    credits: Mapped[Decimal | None] = mapped_column(QUANTITY)
    event_ref: Mapped[dict | None] = mapped_column(JSONB)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "method_id"], ["payment_methods.partner_id", "payment_methods.id"],
                             name="fk_payment_charges_method"),
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_payment_charges_account"),
        CheckConstraint("status in ('approved','declined')", name="status"),
        CheckConstraint("reason in ('purchase','auto_purchase','usage_on_demand')", name="reason"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("uq_payment_charges_idempotency", "partner_id", "idempotency_key", unique=True),
        Index("ix_payment_charges_account_created", "partner_id", "account_id", "created_at"),
    )


class BillingMode(Base):
    """Who pays for a customer's usage, from `effective_from` on (until the next row's date)."""

    __tablename__ = "billing_modes"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date, primary_key=True)
    mode: Mapped[str] = mapped_column(String(20))
    on_decline: Mapped[str | None] = mapped_column(String(8))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_billing_modes_account"),
        CheckConstraint("mode in ('customer_pays','partner_prepaid','partner_on_demand','agency')", name="mode"),
        CheckConstraint("(mode = 'partner_on_demand') = (on_decline is not null)", name="on_decline_only_on_demand"),
        CheckConstraint("on_decline is null or on_decline in ('block','flag')", name="on_decline"),
    )


class OutboxMessage(Base):
    """Every notification (low balance, declined charges): always stored here, e-mailed when SMTP is set."""

    __tablename__ = "outbox"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str | None] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_partner_created", "partner_id", "created_at"),
                      Index("ix_outbox_unsent", "partner_id", "id", postgresql_where=text("sent_at is null")))

