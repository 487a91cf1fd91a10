"""closed months' distinct counts: usage_distinct_monthly and the distinct-gap rollups

Revision ID: 0021
Revises: 0020

unique_count metrics count distinct property values per account, which cannot be added up from days. Three
tables make whole months exact and independent of the history's size (core.usage.aggregates explains the
arithmetic; core.usage.ingest keeps them in the ingestion transaction):
- usage_distinct_monthly: the months in which each (account, metric, value) occurred;
- usage_distinct_gaps: per account, metric and month, the month's distinct values counted by the month they
  last occurred before (prev_month, 0001-01-01 for never);
- usage_partner_distinct_gaps: the same summed per partner (partner and platform totals).
Backfilled here from usage_distinct. The app role gets its grants (also re-applied by db.roles after every
migration).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

_NEVER = "DATE '0001-01-01'"
_TABLES = ("usage_distinct_monthly", "usage_distinct_gaps", "usage_partner_distinct_gaps")


def upgrade() -> None:
    op.create_table('usage_distinct_monthly',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'metric', 'account_id', 'value', 'month',
                            name=op.f('pk_usage_distinct_monthly'))
    )
    op.create_table('usage_distinct_gaps',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('prev_month', sa.Date(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('value_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'metric', 'month', 'prev_month', 'account_id',
                            name=op.f('pk_usage_distinct_gaps'))
    )
    op.create_table('usage_partner_distinct_gaps',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('prev_month', sa.Date(), nullable=False),
    sa.Column('value_count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'metric', 'month', 'prev_month',
                            name=op.f('pk_usage_partner_distinct_gaps'))
    )
    op.execute("""INSERT INTO usage_distinct_monthly (partner_id, metric, account_id, value, month)
       SELECT DISTINCT partner_id, metric, account_id, value, CAST(date_trunc('month', day) AS date)
       FROM usage_distinct""")
    op.execute(f"""INSERT INTO usage_distinct_gaps (partner_id, metric, month, prev_month, account_id, value_count)
       SELECT partner_id, metric, month, prev, account_id, count(*) FROM (
         SELECT partner_id, metric, account_id, month, coalesce(lag(month) OVER (
                  PARTITION BY partner_id, metric, account_id, value ORDER BY month), {_NEVER}) AS prev
         FROM usage_distinct_monthly) x
       GROUP BY 1, 2, 3, 4, 5""")
    op.execute("""INSERT INTO usage_partner_distinct_gaps (partner_id, metric, month, prev_month, value_count)
       SELECT partner_id, metric, month, prev_month, sum(value_count) FROM usage_distinct_gaps
       GROUP BY 1, 2, 3, 4""")
    # the app's login role (db/roles.py) reads and writes these rows; granted here when the role exists
    tables = ", ".join(_TABLES)
    op.execute(f"""DO $$ BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rc_app') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO rc_app;
      END IF;
    END $$""")


def downgrade() -> None:
    for t in reversed(_TABLES):
        op.drop_table(t)
