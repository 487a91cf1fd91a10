"""ORM models: billing — price plans, their immutable versions, plan assignments and threshold alerts.

A plan is owned by a partner (tenant). Plans the platform offers to partners are owned by the house
partner. Plan *versions* are never edited: changing a plan writes a new version with an effective date,
so any past period can be re-rated exactly as it was priced. Assignments are append-only too: for a
given day the assignment in force is the one with the latest effective date (ties: the newest row).

Distribution (docs/scaling.md): plans and plan_versions are reference data (replicated to every node), so an
assignment of a platform plan (plan_partner_id = the house partner) stays with its tenant;
plan_assignments is distributed by partner_id. tests/test_schema_guard.py keeps it so.
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
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import QUANTITY, Base

SUBJECTS = ("account", "partner")


class Plan(Base):
    """A named price plan in one currency. `subject` says who it prices: customer accounts, or partners
    (partner-level fees such as client-count bands, billed to the partner by the platform)."""

    __tablename__ = "plans"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(60))
    currency: Mapped[str] = mapped_column(String(3))
    subject: Mapped[str] = mapped_column(String(10), default="account", server_default="account")
    description: Mapped[str | None] = mapped_column(Text)
    archived: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())

    __table_args__ = (
        UniqueConstraint("partner_id", "code", name="uq_plans_partner_code"),
        CheckConstraint("subject in ('account','partner')", name="subject"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_empty"),
    )


class PlanVersion(Base):
    """One immutable version of a plan: the spec (core.pricing.plan_to_dict) and the day it takes effect."""

    __tablename__ = "plan_versions"

    partner_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    effective_from: Mapped[date] = mapped_column(Date)
    spec: Mapped[dict] = mapped_column(JSONB)
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "plan_id"], ["plans.partner_id", "plans.id"],
                             name="fk_plan_versions_plan"),
        CheckConstraint("version >= 1", name="version_positive"),
    )


class PlanAssignment(Base):
    """A plan assigned to a customer account (subject 'account') or to a partner (subject 'partner')
    from a date, with customer-specific price overrides (dotted paths, core.pricing.apply_overrides).

    partner_id is the tenant the assignment belongs to (the account's partner, or the billed partner);
    plan_partner_id is the plan's owner (the same partner, or the house partner for platform plans).
    """

    __tablename__ = "plan_assignments"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subject: Mapped[str] = mapped_column(String(10))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    plan_partner_id: Mapped[int] = mapped_column(BigInteger)
    plan_id: Mapped[int] = mapped_column(BigInteger)
    effective_from: Mapped[date] = mapped_column(Date)
    overrides: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_plan_assignments_account"),
        ForeignKeyConstraint(["plan_partner_id", "plan_id"], ["plans.partner_id", "plans.id"],
                             name="fk_plan_assignments_plan"),
        CheckConstraint("subject in ('account','partner')", name="subject"),
        CheckConstraint("(subject = 'account') = (account_id is not null)", name="account_matches_subject"),
        Index("ix_plan_assignments_lookup", "partner_id", "subject", "account_id", "effective_from"),
    )


class BillingAlert(Base):
    """A threshold crossing, recorded once per account, charge and billing period."""

    __tablename__ = "billing_alerts"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int] = mapped_column(BigInteger)
    metric: Mapped[str] = mapped_column(String(60))
    charge_id: Mapped[str] = mapped_column(String(100))
    period_start: Mapped[date] = mapped_column(Date)
    threshold: Mapped[Decimal] = mapped_column(QUANTITY)
    quantity: Mapped[Decimal] = mapped_column(QUANTITY)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                             name="fk_billing_alerts_account"),
        UniqueConstraint("partner_id", "account_id", "charge_id", "period_start", name="uq_billing_alerts_once"),
    )
