"""security: append-only audit log, throttling per account and client address, e-mail confirmation and reset links

Revision ID: 0014
Revises: 0013
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0012'
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)


AUDIT_APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: entries are never changed or removed';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
"""


def upgrade() -> None:
    # The audit log is append-only, like the wallet ledger (the app role also lacks UPDATE/DELETE: db/roles.py).
    op.execute(AUDIT_APPEND_ONLY)
    # Failed-login counters are short-lived: the old per-e-mail rows are simply dropped.
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_failure_at", TS, nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    # Existing users (the demo's among them) count as confirmed; a sign-up confirms by a link.
    op.add_column("users", sa.Column("email_confirmed", sa.Boolean(), server_default="true", nullable=False))
    op.create_table(
        "user_tokens",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("used_at", TS, nullable=True),
        sa.CheckConstraint("purpose in ('confirm','reset')", name=op.f("ck_user_tokens_purpose")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_user_tokens_partner_id_partners")),
        sa.ForeignKeyConstraint(["partner_id", "user_id"], ["users.partner_id", "users.id"],
                                name="fk_user_tokens_user", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_user_tokens")),
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log; DROP FUNCTION IF EXISTS audit_log_append_only()")
    op.drop_table("user_tokens")
    op.drop_column("users", "email_confirmed")
    op.drop_table("login_throttle")
    op.create_table(
        "login_throttle",
        sa.Column("email_norm", sa.String(length=320), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_failure_at", TS, nullable=True),
        sa.Column("locked_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("email_norm", name=op.f("pk_login_throttle")),
    )
