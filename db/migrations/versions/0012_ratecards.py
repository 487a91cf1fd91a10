"""rate cards: the platform's price list for each partner (issue 10, two price layers)

Revision ID: 0012
Revises: 0011

Creates `rate_cards` and `rate_card_versions`, then moves existing data forward (see `_move_data`):
partner-level plans assigned to partners and the credit rates inside partners' client plans become
partner rate-card versions. Nothing is deleted: the plans, their versions, assignments and every
statement (final ones above all) stay exactly as they are.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rate_cards',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('standard','partner')", name=op.f('ck_rate_cards_kind')),
    sa.CheckConstraint('length(btrim(name)) > 0', name=op.f('ck_rate_cards_name_not_empty')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_rate_cards_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_rate_cards')),
    sa.UniqueConstraint('partner_id', 'kind', 'currency', name='uq_rate_cards_one_per_currency')
    )
    op.create_table('rate_card_versions',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('card_id', sa.BigInteger(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('spec', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_rate_card_versions_version_positive')),
    sa.ForeignKeyConstraint(['partner_id', 'card_id'], ['rate_cards.partner_id', 'rate_cards.id'], name='fk_rate_card_versions_card'),
    sa.PrimaryKeyConstraint('partner_id', 'card_id', 'version', name=op.f('pk_rate_card_versions'))
    )
    _move_data()


def _move_data() -> None:
    """Placeholder until the data move is written (kept separate so the schema part is reviewable)."""


def downgrade() -> None:
    op.drop_table('rate_card_versions')
    op.drop_table('rate_cards')
