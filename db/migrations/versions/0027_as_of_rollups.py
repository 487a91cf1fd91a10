"""latest quantities and distinct values "as of" now: rollups by the day each one last occurred

Revision ID: 0027
Revises: 0026

A dashboard range usually ends today, after every stored event. For such a range a latest metric's value per
account is the account's latest event if that fell on or after the range's first day, and a unique_count
metric's count is the number of (account, value) pairs whose last occurrence did. These tables keep exactly
that, per account and per partner, by the day of the last occurrence, so the dashboards answer such ranges
from a few rows per partner, whatever the history's size (core.usage.aggregates keeps them at ingestion;
core.usage.reports uses them only when no event of the scope lies after the range):
- usage_latest: each account's latest event of each latest metric;
- usage_partner_latest_days: their quantities summed per partner, metric and day of that latest event;
- usage_distinct_span: the first and the last day each (account, metric, value) occurred;
- usage_distinct_last_days, usage_partner_distinct_last_days: the pairs counted per day of their last
  occurrence, per account and per partner;
- usage_distinct_first_days, usage_partner_distinct_first_days: the same by the day of their first occurrence,
  for ranges that start before every event of their scope (the previous period of "the last 12 months").
Backfilled here from usage_daily and usage_distinct. Row-level security and the app role's grants as for every
tenant table.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from db.roles import enable_tenant_rls

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

_TABLES = ("usage_latest", "usage_partner_latest_days", "usage_distinct_span", "usage_distinct_last_days",
           "usage_partner_distinct_last_days", "usage_distinct_first_days", "usage_partner_distinct_first_days")


def upgrade() -> None:
    op.create_table('usage_latest',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_event_id', sa.Text(), nullable=False),
    sa.Column('last_qty', sa.Numeric(24, 6), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', name=op.f('pk_usage_latest'))
    )
    op.create_table('usage_partner_latest_days',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('qty_sum', sa.Numeric(30, 6), nullable=False),
    sa.Column('accounts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'metric', 'last_day', name=op.f('pk_usage_partner_latest_days'))
    )
    op.create_table('usage_distinct_span',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', 'value', name=op.f('pk_usage_distinct_span'))
    )
    for edge in ("last", "first"):
        op.create_table(f'usage_distinct_{edge}_days',
        sa.Column('partner_id', sa.BigInteger(), nullable=False),
        sa.Column('account_id', sa.BigInteger(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('pairs', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', 'day', name=op.f(f'pk_usage_distinct_{edge}_days'))
        )
        op.create_table(f'usage_partner_distinct_{edge}_days',
        sa.Column('partner_id', sa.BigInteger(), nullable=False),
        sa.Column('metric', sa.String(length=40), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('pairs', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('partner_id', 'metric', 'day', name=op.f(f'pk_usage_partner_distinct_{edge}_days'))
        )
        op.create_index(f'ix_usage_distinct_{edge}_days_metric_day', f'usage_distinct_{edge}_days', ['metric', 'day'])
    # the platform-wide reads (no partner filter) go by metric and day
    op.create_index('ix_usage_latest_metric_day', 'usage_latest', ['metric', 'last_day'])
    for sql in BACKFILL_SQL:
        op.execute(sql)
    enable_tenant_rls(op.get_bind())
    tables = ", ".join(_TABLES)
    op.execute(f"""DO $$ BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rc_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO rc_app;
      END IF;
    END $$""")


# Kept here as they were at this revision (core.usage.aggregates.REBUILD_SQL holds the same for bulk loads).
BACKFILL_SQL = (
    """INSERT INTO usage_latest (partner_id, account_id, metric, last_day, last_at, last_event_id, last_qty)
       SELECT DISTINCT ON (d.partner_id, d.account_id, d.metric) d.partner_id, d.account_id, d.metric, d.day,
              d.last_at, d.last_event_id, d.last_qty
       FROM usage_daily d JOIN metrics m ON m.key = d.metric AND m.aggregation = 'latest'
       ORDER BY d.partner_id, d.account_id, d.metric, d.last_at DESC, d.last_event_id DESC""",
    """INSERT INTO usage_partner_latest_days (partner_id, metric, last_day, qty_sum, accounts)
       SELECT partner_id, metric, last_day, sum(last_qty), count(*) FROM usage_latest GROUP BY 1, 2, 3""",
    """INSERT INTO usage_distinct_span (partner_id, account_id, metric, value, first_day, last_day)
       SELECT partner_id, account_id, metric, value, min(day), max(day) FROM usage_distinct GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_distinct_last_days (partner_id, account_id, metric, day, pairs)
       SELECT partner_id, account_id, metric, last_day, count(*) FROM usage_distinct_span GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_partner_distinct_last_days (partner_id, metric, day, pairs)
       SELECT partner_id, metric, day, sum(pairs) FROM usage_distinct_last_days GROUP BY 1, 2, 3""",
    """INSERT INTO usage_distinct_first_days (partner_id, account_id, metric, day, pairs)
       SELECT partner_id, account_id, metric, first_day, count(*) FROM usage_distinct_span GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_partner_distinct_first_days (partner_id, metric, day, pairs)
       SELECT partner_id, metric, day, sum(pairs) FROM usage_distinct_first_days GROUP BY 1, 2, 3""",
)


def downgrade() -> None:
    for t in reversed(_TABLES):
        op.drop_table(t)
