"""usage_distinct: an index in distinct-count order

Revision ID: 0009
Revises: 0008

Distinct counts (unique_count metrics) group usage_distinct by (partner, metric, account, value). With this
index the count is a sorted index-only scan plus a Unique step, instead of a hash of ~100k groups: a
platform-wide year goes from ~60 ms to ~27 ms at the benchmark size.
"""
from __future__ import annotations

from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_usage_distinct_count_order", "usage_distinct",
                    ["partner_id", "metric", "account_id", "value", "day"])


def downgrade() -> None:
    op.drop_index("ix_usage_distinct_count_order", table_name="usage_distinct")
