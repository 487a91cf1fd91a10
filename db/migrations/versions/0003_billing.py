"""billing plans, versions, assignments, overrides, alerts

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=60), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('subject', sa.String(length=10), server_default='account', nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('archived', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("subject in ('account','partner')", name=op.f('ck_plans_subject')),
    sa.CheckConstraint('length(btrim(name)) > 0', name=op.f('ck_plans_name_not_empty')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_plans_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_plans')),
    sa.UniqueConstraint('partner_id', 'code', name='uq_plans_partner_code')
    )
    op.create_table('billing_alerts',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('metric', sa.String(length=60), nullable=False),
    sa.Column('charge_id', sa.String(length=100), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('threshold', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('quantity', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('acknowledged_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_billing_alerts_account'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_billing_alerts_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_billing_alerts')),
    sa.UniqueConstraint('partner_id', 'account_id', 'charge_id', 'period_start', name='uq_billing_alerts_once')
    )
    op.create_table('plan_assignments',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('subject', sa.String(length=10), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('plan_partner_id', sa.BigInteger(), nullable=False),
    sa.Column('plan_id', sa.BigInteger(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('overrides', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(subject = 'account') = (account_id is not null)", name=op.f('ck_plan_assignments_account_matches_subject')),
    sa.CheckConstraint("subject in ('account','partner')", name=op.f('ck_plan_assignments_subject')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_plan_assignments_account'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_plan_assignments_partner_id_partners')),
    sa.ForeignKeyConstraint(['plan_partner_id', 'plan_id'], ['plans.partner_id', 'plans.id'], name='fk_plan_assignments_plan'),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_plan_assignments'))
    )
    op.create_index('ix_plan_assignments_lookup', 'plan_assignments', ['partner_id', 'subject', 'account_id', 'effective_from'], unique=False)
    op.create_table('plan_versions',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('plan_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('spec', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_plan_versions_version_positive')),
    sa.ForeignKeyConstraint(['partner_id', 'plan_id'], ['plans.partner_id', 'plans.id'], name='fk_plan_versions_plan'),
    sa.PrimaryKeyConstraint('partner_id', 'plan_id', 'version', name=op.f('pk_plan_versions'))
    )


def downgrade() -> None:
    op.drop_table('plan_versions')
    op.drop_index('ix_plan_assignments_lookup', table_name='plan_assignments')
    op.drop_table('plan_assignments')
    op.drop_table('billing_alerts')
    op.drop_table('plans')
