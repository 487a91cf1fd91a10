"""usage_events: the history index by (account, day) instead of (account, occurred_at)

Revision ID: 0011
Revises: 0010

Every usage event costs one entry in the idempotency key and one in the history index. Keyed by the exact
time, a batch's history entries land on random leaf pages of each account's range (a batch is rarely in
time order), so each insertion is a random page write plus its WAL. Keyed by the UTC day, a batch's entries
for one account and day are equal keys that btree deduplication packs into posting lists appended at the
right of that (account, day): ~4x smaller and far cheaper to maintain. History still reads newest first:
an index scan by day and an incremental sort by time within each day.
"""
from __future__ import annotations

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_usage_events_account_day", "usage_events", ["partner_id", "account_id", "day"])
    op.drop_index("ix_usage_events_account_time", table_name="usage_events")


def downgrade() -> None:
    op.create_index("ix_usage_events_account_time", "usage_events", ["partner_id", "account_id", "occurred_at"])
    op.drop_index("ix_usage_events_account_day", table_name="usage_events")
