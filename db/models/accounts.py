"""Partners (tenants), customer accounts, users, the login directory, login throttling and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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

from db.base import Base, reference_data

ACCOUNT_STATUSES = ("active", "suspended", "deleted")


class Partner(Base):
    """A reseller partner: the tenant. The built-in house partner owns the platform's direct customers."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    is_house: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    contact_email: Mapped[str | None] = mapped_column(String(320))
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    country: Mapped[str | None] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (
        Index("uq_partners_single_house", "is_house", unique=True, postgresql_where="is_house"),
        reference_data("NOT is_house"),  # the built-in house partner
    )


class CustomerAccount(Base):
    """A customer account (organisation) that belongs to exactly one partner."""

    __tablename__ = "customer_accounts"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(200))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    address: Mapped[str | None] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(2))
    vat_id: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(12), default="active", server_default="active")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    deleted_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("status in ('active','suspended','deleted')", name="status"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_empty"),
        Index("ix_customer_accounts_partner_name", "partner_id", text("lower(name)")),
    )


class User(Base):
    """A person who logs in. Exactly one membership: a role in one customer account, partner staff of
    one partner, or a platform admin (member of the house partner)."""

    __tablename__ = "users"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    email: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(24))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Bumped on deactivation and password reset: every open session of the user ends at its next click.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    created_by: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(
            ["partner_id", "account_id"],
            ["customer_accounts.partner_id", "customer_accounts.id"],
            name="fk_users_account",
        ),
        CheckConstraint(
            "role in ('platform_admin','partner_staff','manager','user','annotation_manager','annotator')",
            name="role",
        ),
        CheckConstraint(
            "(role in ('platform_admin','partner_staff')) = (account_id is null)",
            name="account_matches_role",
        ),
        Index("ix_users_partner_account", "partner_id", "account_id"),
    )


class LoginDirectory(Base):
    """Global e-mail → user lookup. Enforces case-insensitive uniqueness of e-mail across all tenants.

    On Citus this is a reference table; `users` stays distributed by partner_id."""

    __tablename__ = "login_directory"

    email_norm: Mapped[str] = mapped_column(String(320), primary_key=True)
    partner_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "user_id"], ["users.partner_id", "users.id"],
                             name="fk_login_directory_user", ondelete="CASCADE"),
        CheckConstraint("email_norm = lower(email_norm)", name="lowercase"),
    )


class LoginThrottle(Base):
    """Failed-login counter per e-mail address (known or not), for throttling password guessing."""

    __tablename__ = "login_throttle"

    email_norm: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_failure_at: Mapped[datetime | None] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column()


class AuditEntry(Base):
    """Append-only record of every change: who, what, which record, before and after, when."""

    __tablename__ = "audit_log"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)
    actor_email: Mapped[str | None] = mapped_column(String(320))
    impersonator_user_id: Mapped[int | None] = mapped_column(BigInteger)
    impersonator_email: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    account_id: Mapped[int | None] = mapped_column(BigInteger)
    before: Mapped[dict | None] = mapped_column(JSONB)
    after: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (Index("ix_audit_log_partner_at", "partner_id", "at"),)
