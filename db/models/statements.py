"""ORM models: monthly statements, collective invoices and credit notes, their lines, number sequences and
the partners' statement branding (issue 5, "statements and invoices"; see docs/statements.md).

Invariants the database itself enforces (migration 0006 adds the triggers):
- A statement that is `final` never changes again, except the single transition final -> void (which only
  sets the void columns); a `void` statement never changes; neither can be deleted.
- `statement_lines` of a final or void statement cannot be inserted, changed or deleted.
- Numbers: `statement_numbers` holds one row per (issuer, series, sequence): a number is never issued twice
  by the same issuer, whichever tenant the statement belongs to.
- At most one live (not void) statement per (tenant, issuer, kind, period, addressee).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import MONEY, QUANTITY, Base

STATEMENT_KINDS = ("statement", "collective", "credit_note")
STATEMENT_STATUSES = ("draft", "final", "void")
SERIES = ("invoice", "credit_note")  # statements and collective invoices share the invoice series
TAX_RATE = Numeric(7, 4)  # percent, e.g. 25.0000


class StatementSettings(Base):
    """A partner's statement branding and defaults; the platform's own are the house partner's row.
    Missing row = defaults (partner name, English, no tax, 14 days)."""

    __tablename__ = "statement_settings"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(Text)
    logo_text: Mapped[str | None] = mapped_column(String(80))
    footer: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    language: Mapped[str] = mapped_column(String(2), default="en", server_default="en")
    tax_rate: Mapped[Decimal | None] = mapped_column(TAX_RATE)
    payment_terms_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    number_prefix: Mapped[str | None] = mapped_column(String(12))
    vat_id: Mapped[str | None] = mapped_column(String(40))
    # white label: the partner's colours in the app for its clients (lower-case #rrggbb; None = the platform's)
    primary_colour: Mapped[str | None] = mapped_column(String(7))
    sidebar_colour: Mapped[str | None] = mapped_column(String(7))
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        CheckConstraint("language in ('en','de','nb')", name="language"),
        CheckConstraint("tax_rate is null or (tax_rate >= 0 and tax_rate <= 100)", name="tax_rate"),
        CheckConstraint("payment_terms_days between 0 and 365", name="terms"),
        CheckConstraint("number_prefix is null or number_prefix ~ '^[A-Z0-9]{1,12}$'", name="prefix"),
        CheckConstraint("primary_colour is null or primary_colour ~ '^#[0-9a-f]{6}$'", name="primary_colour"),
        CheckConstraint("sidebar_colour is null or sidebar_colour ~ '^#[0-9a-f]{6}$'", name="sidebar_colour"),
    )


class Statement(Base):
    """One statement, collective invoice or credit note of a tenant's month.

    partner_id is the tenant the addressee belongs to; issuer_partner_id who issues it (the house partner
    for platform-issued documents). account_id is the addressed customer (None: addressed to the partner,
    i.e. the collective invoice)."""

    __tablename__ = "statements"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(8), default="draft", server_default="draft")
    issuer_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    language: Mapped[str] = mapped_column(String(2))
    modes: Mapped[list | None] = mapped_column(JSONB)  # [[from, to, mode], ...] the days this statement covers
    snapshot: Mapped[dict | None] = mapped_column(JSONB)  # issuer / addressee / lines / totals when finalised
    subtotal: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default="0")
    tax_rate: Mapped[Decimal | None] = mapped_column(TAX_RATE)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default="0")
    total: Mapped[Decimal] = mapped_column(MONEY, default=Decimal(0), server_default="0")
    credits_drawn: Mapped[Decimal | None] = mapped_column(QUANTITY)
    charged_on_demand: Mapped[Decimal | None] = mapped_column(MONEY)
    fingerprint: Mapped[str | None] = mapped_column(String(64))  # hash of the computed content (drafts)
    series: Mapped[str | None] = mapped_column(String(12))
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[str | None] = mapped_column(String(40))
    credit_note_for: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    issued_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finalised_by: Mapped[int | None] = mapped_column(BigInteger)
    finalised_at: Mapped[datetime | None] = mapped_column()
    voided_by: Mapped[int | None] = mapped_column(BigInteger)
    voided_at: Mapped[datetime | None] = mapped_column()
    void_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_statements_account"),
        ForeignKeyConstraint(["partner_id", "credit_note_for"], ["statements.partner_id", "statements.id"],
                             name="fk_statements_credit_note_for"),
        CheckConstraint("kind in ('statement','collective','credit_note','commission')", name="kind"),
        CheckConstraint("status in ('draft','final','void')", name="status"),
        CheckConstraint("language in ('en','de','nb')", name="language"),
        CheckConstraint("period_end >= period_start", name="period"),
        CheckConstraint("(kind = 'statement') = (account_id is not null) or kind = 'credit_note'",
                        name="addressee"),
        CheckConstraint("(kind = 'credit_note') = (credit_note_for is not null)", name="credit_note_for"),
        CheckConstraint("status <> 'final' or (number is not null and sequence is not null and series is not null "
                        "and snapshot is not null)", name="numbered_when_final"),
        CheckConstraint("series is null or series in ('invoice','credit_note')", name="series"),
        UniqueConstraint("partner_id", "issuer_partner_id", "series", "sequence", name="uq_statements_sequence"),
        Index("uq_statements_live", "partner_id", "issuer_partner_id", "kind", "period_start",
              text("coalesce(account_id, 0)"), unique=True,
              postgresql_where=text("status <> 'void' and kind <> 'credit_note'")),
        Index("ix_statements_period", "partner_id", "period_start", "account_id"),
        Index("ix_statements_credit_note_for", "partner_id", "credit_note_for",
              postgresql_where=text("credit_note_for is not null")),
    )


class StatementLine(Base):
    """One line of a statement. `section` groups the collective invoice by agency customer."""

    __tablename__ = "statement_lines"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    statement_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    section: Mapped[str | None] = mapped_column(String(200))
    section_account_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(12))  # usage | fee | minimum | partner_fee | credit
    label: Mapped[str] = mapped_column(String(300))
    metric: Mapped[str | None] = mapped_column(String(60))
    quantity: Mapped[Decimal | None] = mapped_column(QUANTITY)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    explanation: Mapped[str | None] = mapped_column(Text)
    credits: Mapped[Decimal | None] = mapped_column(QUANTITY)
    mode: Mapped[str | None] = mapped_column(String(20))

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "statement_id"], ["statements.partner_id", "statements.id"],
                             name="fk_statement_lines_statement", ondelete="CASCADE"),
    )


class StatementSequence(Base):
    """The next number of an issuer's series. Owned by the issuer (partner_id = issuer): locked FOR UPDATE
    by the finalising transaction, so a rolled-back finalisation gives its number back (no gaps)."""

    __tablename__ = "statement_sequences"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    series: Mapped[str] = mapped_column(String(12), primary_key=True)
    next_number: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")

    __table_args__ = (CheckConstraint("next_number >= 1", name="positive"),)


class StatementNumber(Base):
    """Every number an issuer has issued (partner_id = issuer): the database-level proof that an issuer never
    issues the same number twice, across all tenants it bills."""

    __tablename__ = "statement_numbers"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    series: Mapped[str] = mapped_column(String(12), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(40))
    statement_partner_id: Mapped[int] = mapped_column(BigInteger)
    statement_id: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (UniqueConstraint("partner_id", "number", name="uq_statement_numbers_number"),)
