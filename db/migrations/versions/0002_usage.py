"""usage metering (metrics catalogue, events, aggregates)

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

TS = postgresql.TIMESTAMP(timezone=True)

BUILTIN = [
    # key, name, unit, aggregation, property, counts_as_active
    ("documents", "Processed documents", "documents", "sum", None, True),
    ("pages", "Pages", "pages", "sum", None, True),
    ("credits", "Credits", "credits", "sum", None, False),
    ("messages", "Messages sent", "messages", "sum", None, True),
    ("api_requests", "API requests", "requests", "count", None, False),
    ("data_mb", "Stored data (peak)", "MB", "max", None, False),
    ("recipients", "Unique recipients", "recipients", "unique_count", "recipient", False),
    ("keywords", "Tracked keywords", "keywords", "latest", None, False),
    ("active_clients", "Active clients", "clients", "latest", None, False),
]


def _stats_columns() -> list[sa.Column]:
    return [
        sa.Column('qty_sum', sa.Numeric(30, 6), nullable=False),
        sa.Column('events', sa.BigInteger(), nullable=False),
        sa.Column('qty_max', sa.Numeric(24, 6), nullable=False),
        sa.Column('last_at', TS, nullable=False),
        sa.Column('last_event_id', sa.String(length=100), nullable=False),
        sa.Column('last_qty', sa.Numeric(24, 6), nullable=False),
    ]


def upgrade() -> None:
    metrics = op.create_table('metrics',
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('unit', sa.String(length=40), nullable=False),
    sa.Column('aggregation', sa.String(length=16), nullable=False),
    sa.Column('property', sa.String(length=60), nullable=True),
    sa.Column('builtin', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('counts_as_active', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_at', TS, server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("aggregation in ('sum','count','max','unique_count','latest')", name=op.f('ck_metrics_aggregation')),
    sa.CheckConstraint("(aggregation = 'unique_count') = (property is not null)", name=op.f('ck_metrics_property_for_unique')),
    sa.CheckConstraint("key ~ '^[a-z][a-z0-9_]{0,39}$'", name=op.f('ck_metrics_key_format')),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_metrics'))
    )
    op.bulk_insert(metrics, [
        {"key": k, "name": n, "unit": u, "aggregation": a, "property": p, "builtin": True, "counts_as_active": c}
        for k, n, u, a, p, c in BUILTIN
    ])

    # Raw events. No foreign keys on purpose (see db/models/usage.py): validated by core.usage.
    op.create_table('usage_events',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('event_id', sa.String(length=100), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('quantity', sa.Numeric(24, 6), nullable=False),
    sa.Column('occurred_at', TS, nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('properties', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('correction', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('recorded_at', TS, server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'event_id', name=op.f('pk_usage_events'))
    )
    op.create_index('ix_usage_events_account_time', 'usage_events', ['partner_id', 'account_id', 'occurred_at'])

    op.create_table('usage_daily',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    *_stats_columns(),
    sa.Column('distinct_values', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['metric'], ['metrics.key'], name=op.f('fk_usage_daily_metric_metrics')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'],
                            name='fk_usage_daily_account'),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', 'day', name=op.f('pk_usage_daily'))
    )
    # partner ranges (the overview's partial months) and platform-wide ranges
    op.create_index('ix_usage_daily_partner_day', 'usage_daily', ['partner_id', 'day'])
    op.create_index('ix_usage_daily_day', 'usage_daily', ['day'])

    op.create_table('usage_monthly',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    *_stats_columns(),
    sa.ForeignKeyConstraint(['metric'], ['metrics.key'], name=op.f('fk_usage_monthly_metric_metrics')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'],
                            name='fk_usage_monthly_account'),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', 'month', name=op.f('pk_usage_monthly'))
    )
    op.create_index('ix_usage_monthly_month', 'usage_monthly', ['month', 'partner_id'])

    op.create_table('usage_distinct',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=40), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'metric', 'day', 'value', name=op.f('pk_usage_distinct'))
    )

    op.create_table('usage_period_locks',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('finalised_at', TS, server_default=sa.text('now()'), nullable=False),
    sa.Column('statement_ref', sa.Text(), nullable=True),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_usage_period_locks_period_order')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'],
                            name='fk_usage_period_locks_account'),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'period_start', name=op.f('pk_usage_period_locks'))
    )


def downgrade() -> None:
    op.drop_table('usage_period_locks')
    op.drop_table('usage_distinct')
    op.drop_index('ix_usage_monthly_month', table_name='usage_monthly')
    op.drop_table('usage_monthly')
    op.drop_index('ix_usage_daily_day', table_name='usage_daily')
    op.drop_index('ix_usage_daily_partner_day', table_name='usage_daily')
    op.drop_table('usage_daily')
    op.drop_index('ix_usage_events_account_time', table_name='usage_events')
    op.drop_table('usage_events')
    op.drop_table('metrics')
