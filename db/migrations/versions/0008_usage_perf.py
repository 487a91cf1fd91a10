"""usage performance: partner-level rollups of additive usage, metric-led aggregate indexes

Revision ID: 0008
Revises: 0007

- usage_partner_daily / usage_partner_monthly: per partner, metric and UTC day (month) the sum of the
  quantities and the number of events — the additive statistics only (sum and count metrics are answered
  from them; max, latest and unique_count still need the per-account tables). Maintained by
  core.usage.record_events in the same transaction as the events; backfilled here from usage_daily /
  usage_monthly, so they equal the raw events from the start.
- The aggregate indexes lead with (partner_id, metric) and (metric): every dashboard query names the metrics
  it wants, so it reads only those rows (the old (partner_id, day), (day) and (month, partner_id) indexes
  read every metric's rows of the range).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def _rollup(name: str, bucket: str) -> None:
    op.create_table(name,
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column(bucket, sa.Date(), nullable=False),
    sa.Column('qty_sum', sa.Numeric(30, 6), nullable=False),
    sa.Column('events', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f(f'fk_{name}_partner_id_partners')),
    sa.ForeignKeyConstraint(['metric'], ['metrics.key'], name=op.f(f'fk_{name}_metric_metrics')),
    sa.PrimaryKeyConstraint('partner_id', 'metric', bucket, name=op.f(f'pk_{name}'))
    )
    op.create_index(f'ix_{name}_{bucket}', name, [bucket])


def upgrade() -> None:
    _rollup('usage_partner_daily', 'day')
    _rollup('usage_partner_monthly', 'month')
    op.execute("INSERT INTO usage_partner_daily (partner_id, metric, day, qty_sum, events) "
               "SELECT partner_id, metric, day, sum(qty_sum), sum(events) FROM usage_daily GROUP BY 1, 2, 3")
    op.execute("INSERT INTO usage_partner_monthly (partner_id, metric, month, qty_sum, events) "
               "SELECT partner_id, metric, month, sum(qty_sum), sum(events) FROM usage_monthly GROUP BY 1, 2, 3")

    op.drop_index('ix_usage_daily_partner_day', table_name='usage_daily')
    op.drop_index('ix_usage_daily_day', table_name='usage_daily')
    op.create_index('ix_usage_daily_partner_metric_day', 'usage_daily', ['partner_id', 'metric', 'day'])
    op.create_index('ix_usage_daily_metric_day', 'usage_daily', ['metric', 'day'])
    op.drop_index('ix_usage_monthly_month', table_name='usage_monthly')
    op.create_index('ix_usage_monthly_partner_metric_month', 'usage_monthly', ['partner_id', 'metric', 'month'])
    op.create_index('ix_usage_monthly_metric_month', 'usage_monthly', ['metric', 'month'])


def downgrade() -> None:
    op.drop_index('ix_usage_monthly_metric_month', table_name='usage_monthly')
    op.drop_index('ix_usage_monthly_partner_metric_month', table_name='usage_monthly')
    op.create_index('ix_usage_monthly_month', 'usage_monthly', ['month', 'partner_id'])
    op.drop_index('ix_usage_daily_metric_day', table_name='usage_daily')
    op.drop_index('ix_usage_daily_partner_metric_day', table_name='usage_daily')
    op.create_index('ix_usage_daily_day', 'usage_daily', ['day'])
    op.create_index('ix_usage_daily_partner_day', 'usage_daily', ['partner_id', 'day'])
    op.drop_table('usage_partner_monthly')
    op.drop_table('usage_partner_daily')
