"""ORM models of the outside world (issue 17): API keys and stored Idempotency-Key answers, webhook
endpoints and their deliveries, statement PDFs attached to outbox e-mails, and the worker's state (the
billing cycle per partner and month, its settings, and the schedule of periodic jobs).

Secrets: an API key is stored as the SHA-256 of its random part only (it is shown once). A webhook
endpoint's signing secret is stored as is: the worker needs it to sign every delivery.
"""

from __future__ import annotations

from datetime import date, datetime

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

from db.base import Base

DELIVERY_STATUSES = ("pending", "delivered", "failed")
CYCLE_STATUSES = ("pending", "review", "closed")


class ApiKey(Base):
    """A partner's API key. The client sends ``rck_<partner_id>_<id>_<secret>``; only sha256(secret) is kept."""

    __tablename__ = "api_keys"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    hint: Mapped[str] = mapped_column(String(40))  # the public head of the key, to recognise it in lists
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list] = mapped_column(JSONB)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[int | None] = mapped_column(BigInteger)
    rotated_from: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (CheckConstraint("length(btrim(name)) > 0", name="name_not_empty"),)


class ApiIdempotency(Base):
    """The answer to a request sent with an Idempotency-Key header (per partner), kept for a day."""

    __tablename__ = "api_idempotency"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (Index("ix_api_idempotency_created", "created_at"),)


class WebhookEndpoint(Base):
    """Where a partner wants to hear about events, and which ones."""

    __tablename__ = "webhook_endpoints"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    event_types: Mapped[list] = mapped_column(JSONB)
    description: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction that caused it (the intent), then attempted
    by the worker with exponential back-off until it is delivered or a day has passed."""

    __tablename__ = "webhook_deliveries"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(12), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column()
    replay_of: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "endpoint_id"], ["webhook_endpoints.partner_id", "webhook_endpoints.id"],
                             name="fk_webhook_deliveries_endpoint"),
        CheckConstraint("status in ('pending','delivered','failed')", name="status"),
        Index("ix_webhook_deliveries_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
        Index("ix_webhook_deliveries_endpoint", "partner_id", "endpoint_id", "id"),
    )


class OutboxAttachment(Base):
    """A statement's PDF attached to an outbox e-mail (rendered when it is sent). One e-mail per statement."""

    __tablename__ = "outbox_attachments"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    statement_id: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        ForeignKeyConstraint(["partner_id", "outbox_id"], ["outbox.partner_id", "outbox.id"],
                             name="fk_outbox_attachments_outbox"),
        Index("uq_outbox_attachments_statement", "partner_id", "statement_id", unique=True),
    )


class BillingCycleSettings(Base):
    """A partner's automatic billing cycle: drafts on the 1st, finalised after `review_days`."""

    __tablename__ = "billing_cycle_settings"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    review_days: Mapped[int] = mapped_column(Integer, default=3, server_default="3")
    updated_by: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    __table_args__ = (CheckConstraint("review_days between 0 and 28", name="review_days"),)


class BillingCycle(Base):
    """One partner's month in the automatic cycle: pending (to generate), review (drafts generated, waiting for
    the review window), closed (every draft finalised)."""

    __tablename__ = "billing_cycles"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12))
    drafts_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    drafts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    finalised: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("status in ('pending','review','closed')", name="status"),)


class WorkerSchedule(Base):
    """Periodic worker jobs (platform-wide): a worker claims a due row with FOR UPDATE SKIP LOCKED."""

    __tablename__ = "worker_schedule"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_run_at: Mapped[datetime | None] = mapped_column()
    last_result: Mapped[str | None] = mapped_column(Text)
