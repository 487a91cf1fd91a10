"""the outside world: API keys, idempotent answers, webhooks, statement e-mails, billing cycle, worker schedule

Revision ID: 0016
Revises: 0011
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = '0016'
down_revision = '0011'
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)
NOW = sa.text("now()")


def _partner_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f(f"fk_{table}_partner_id_partners"))


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("hint", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", JSONB(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.BigInteger(), nullable=True),
        sa.Column("rotated_from", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_api_keys_name_not_empty")),
        _partner_fk("api_keys"),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "api_idempotency",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("idem_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response", JSONB(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        _partner_fk("api_idempotency"),
        sa.PrimaryKeyConstraint("partner_id", "idem_key", name=op.f("pk_api_idempotency")),
    )
    op.create_index("ix_api_idempotency_created", "api_idempotency", ["created_at"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("event_types", JSONB(), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        _partner_fk("webhook_endpoints"),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("endpoint_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", JSONB(), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", TS, server_default=NOW, nullable=False),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, server_default=NOW, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("replay_of", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("status in ('pending','delivered','failed')", name=op.f("ck_webhook_deliveries_status")),
        _partner_fk("webhook_deliveries"),
        sa.ForeignKeyConstraint(["partner_id", "endpoint_id"], ["webhook_endpoints.partner_id", "webhook_endpoints.id"],
                                name="fk_webhook_deliveries_endpoint"),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_webhook_deliveries_endpoint", "webhook_deliveries", ["partner_id", "endpoint_id", "id"])
    op.create_table(
        "outbox_attachments",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("statement_id", sa.BigInteger(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        _partner_fk("outbox_attachments"),
        sa.ForeignKeyConstraint(["partner_id", "outbox_id"], ["outbox.partner_id", "outbox.id"],
                                name="fk_outbox_attachments_outbox"),
        sa.PrimaryKeyConstraint("partner_id", "outbox_id", name=op.f("pk_outbox_attachments")),
    )
    op.create_index("uq_outbox_attachments_statement", "outbox_attachments", ["partner_id", "statement_id"],
                    unique=True)
    op.create_table(
        "billing_cycle_settings",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("review_days", sa.Integer(), server_default="3", nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", TS, server_default=NOW, nullable=False),
        sa.CheckConstraint("review_days between 0 and 28", name=op.f("ck_billing_cycle_settings_review_days")),
        _partner_fk("billing_cycle_settings"),
        sa.PrimaryKeyConstraint("partner_id", name=op.f("pk_billing_cycle_settings")),
    )
    op.create_table(
        "billing_cycles",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("drafts_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("drafts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("finalised", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("status in ('pending','review','closed')", name=op.f("ck_billing_cycles_status")),
        _partner_fk("billing_cycles"),
        sa.PrimaryKeyConstraint("partner_id", "period_start", name=op.f("pk_billing_cycles")),
    )
    op.create_table(
        "worker_schedule",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("next_run_at", TS, server_default=NOW, nullable=False),
        sa.Column("last_run_at", TS, nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_worker_schedule")),
    )


def downgrade() -> None:
    for table in ("worker_schedule", "billing_cycles", "billing_cycle_settings", "outbox_attachments",
                  "webhook_deliveries", "webhook_endpoints", "api_idempotency", "api_keys"):
        op.drop_table(table)
