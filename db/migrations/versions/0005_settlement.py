"""settling partner-paid usage as it happens

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Metric semantics for billing: an API-usage or data event reports how many requests / MB it covers,
    # and a mailing event how many recipients it went to, so these metrics sum their quantities. The
    # distinct-recipient count stays available as its own metric.
    op.execute("UPDATE metrics SET aggregation = 'sum', property = NULL, name = 'API requests' "
               "WHERE key = 'api_requests'")
    op.execute("UPDATE metrics SET aggregation = 'sum', property = NULL, name = 'Data transferred' "
               "WHERE key = 'data_mb'")
    op.execute("UPDATE metrics SET aggregation = 'sum', property = NULL, name = 'Mailing recipients' "
               "WHERE key = 'recipients'")
    op.execute("INSERT INTO metrics (key, name, unit, aggregation, property, builtin, counts_as_active) "
               "VALUES ('unique_recipients', 'Unique recipients', 'recipients', 'unique_count', 'recipient', "
               "true, false) ON CONFLICT (key) DO NOTHING")
    op.create_table(
        "usage_settlements",
        sa.Column("partner_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("mode_from", sa.Date(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("baseline_credits", sa.Numeric(24, 6), server_default="0", nullable=False),
        sa.Column("baseline_amount", sa.Numeric(20, 4), server_default="0", nullable=False),
        sa.Column("credits_settled", sa.Numeric(24, 6), server_default="0", nullable=False),
        sa.Column("amount_settled", sa.Numeric(20, 4), server_default="0", nullable=False),
        sa.Column("settlements", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_usage_settlements_partner_id_partners")),
        sa.ForeignKeyConstraint(["partner_id", "account_id"], ["customer_accounts.partner_id", "customer_accounts.id"],
                                name="fk_usage_settlements_account"),
        sa.PrimaryKeyConstraint("partner_id", "account_id", "period_start", "mode_from",
                                name=op.f("pk_usage_settlements")),
    )


def downgrade() -> None:
    op.drop_table("usage_settlements")
    op.execute("DELETE FROM metrics WHERE key = 'unique_recipients'")
    op.execute("UPDATE metrics SET aggregation = 'count', name = 'API requests' WHERE key = 'api_requests'")
    op.execute("UPDATE metrics SET aggregation = 'max', name = 'Stored data (peak)' WHERE key = 'data_mb'")
    op.execute("UPDATE metrics SET aggregation = 'unique_count', property = 'recipient', name = 'Unique recipients' "
               "WHERE key = 'recipients'")
