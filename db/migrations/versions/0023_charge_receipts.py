"""receipts for on-demand usage charges: platform -> partner (issue 10)

Revision ID: 0023
Revises: 0021

Every approved on-demand charge of a partner-paid client's usage (the rate card's amount, charged to the
partner's payment method) gets a numbered receipt from the platform, like a credit purchase
(credit_receipts): one unbroken series per year (`OD-{year}-{n:06d}`), written in the charging transaction.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0023'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('charge_receipts',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('charge_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('net_amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('total', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issuer_name', sa.String(length=200), nullable=False),
    sa.Column('issuer_address', sa.Text(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id', 'charge_id'], ['payment_charges.partner_id', 'payment_charges.id'],
                            name='fk_charge_receipts_charge'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_charge_receipts_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_charge_receipts'))
    )
    op.create_index('uq_charge_receipts_number', 'charge_receipts', ['number'], unique=True)
    op.create_index('uq_charge_receipts_charge', 'charge_receipts', ['partner_id', 'charge_id'], unique=True)
    op.create_table('charge_receipt_sequences',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_charge_receipt_sequences'))
    )


def downgrade() -> None:
    op.drop_table('charge_receipt_sequences')
    op.drop_index('uq_charge_receipts_charge', table_name='charge_receipts')
    op.drop_index('uq_charge_receipts_number', table_name='charge_receipts')
    op.drop_table('charge_receipts')
