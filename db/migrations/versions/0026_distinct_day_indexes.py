"""usage_distinct: indexes by day, for the partial months of a dashboard range

Revision ID: 0026
Revises: 0019

A range with a partial month at either end counts the distinct values of those days from usage_distinct.
Its only indexes led with (partner_id, account_id) and (partner_id, metric, account_id, value), so those days
were found by reading the whole table (a platform-wide overview) or the partner's every value: a cost that
grew with the history. With (metric, day) and (partner_id, metric, day), as usage_daily has, the query reads
the days it asks for. No new table: the row-level security of 0019 covers usage_distinct already.
"""
from __future__ import annotations

from alembic import op

revision = '0026'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_usage_distinct_metric_day", "usage_distinct", ["metric", "day"])
    op.create_index("ix_usage_distinct_partner_metric_day", "usage_distinct", ["partner_id", "metric", "day"])


def downgrade() -> None:
    op.drop_index("ix_usage_distinct_partner_metric_day", table_name="usage_distinct")
    op.drop_index("ix_usage_distinct_metric_day", table_name="usage_distinct")
