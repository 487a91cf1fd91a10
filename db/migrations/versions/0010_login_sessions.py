"""remembered logins ("Keep me logged in")

Revision ID: 0010
Revises: 0009
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TS = sa.TIMESTAMP(timezone=True)


def upgrade() -> None:
    op.create_table(
        "login_sessions",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("session_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_login_sessions_partner_id_partners")),
        sa.ForeignKeyConstraint(["partner_id", "user_id"], ["users.partner_id", "users.id"],
                                name="fk_login_sessions_user", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("partner_id", "id", name=op.f("pk_login_sessions")),
    )


def downgrade() -> None:
    op.drop_table("login_sessions")
