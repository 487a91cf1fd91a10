"""accounts, users, login directory, audit log

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('email_norm', sa.String(length=320), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_failure_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('locked_until', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('email_norm', name=op.f('pk_login_throttle'))
    )
    op.create_table('partners',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('slug', sa.String(length=80), nullable=False),
    sa.Column('is_house', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('currency', sa.String(length=3), server_default='EUR', nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partners')),
    sa.UniqueConstraint('slug', name=op.f('uq_partners_slug'))
    )
    op.create_index('uq_partners_single_house', 'partners', ['is_house'], unique=True, postgresql_where='is_house')
    # The built-in house partner owns the platform's direct customers (sign-ups) and platform admins.
    op.execute("INSERT INTO partners (name, slug, is_house, currency) VALUES ('Platform direct', 'platform', true, 'EUR')")
    op.create_table('audit_log',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_user_id', sa.BigInteger(), nullable=True),
    sa.Column('actor_email', sa.String(length=320), nullable=True),
    sa.Column('impersonator_user_id', sa.BigInteger(), nullable=True),
    sa.Column('impersonator_email', sa.String(length=320), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('entity', sa.String(length=60), nullable=False),
    sa.Column('entity_id', sa.String(length=80), nullable=True),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('before', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('after', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_audit_log_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_partner_at', 'audit_log', ['partner_id', 'at'], unique=False)
    op.create_table('customer_accounts',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact_name', sa.String(length=200), nullable=True),
    sa.Column('contact_email', sa.String(length=320), nullable=True),
    sa.Column('billing_email', sa.String(length=320), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('vat_id', sa.String(length=40), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=12), server_default='active', nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('deleted_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('active','suspended','deleted')", name=op.f('ck_customer_accounts_status')),
    sa.CheckConstraint('length(btrim(name)) > 0', name=op.f('ck_customer_accounts_name_not_empty')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_customer_accounts_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_customer_accounts'))
    )
    op.create_index('ix_customer_accounts_partner_name', 'customer_accounts', ['partner_id', sa.text("lower(name)")], unique=False)
    op.create_table('users',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=False),
    sa.Column('role', sa.String(length=24), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('must_change_password', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('session_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('last_login_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.CheckConstraint("(role in ('platform_admin','partner_staff')) = (account_id is null)", name=op.f('ck_users_account_matches_role')),
    sa.CheckConstraint("role in ('platform_admin','partner_staff','manager','user','annotation_manager','annotator')", name=op.f('ck_users_role')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_users_account'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_users_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_users'))
    )
    op.create_index('ix_users_partner_account', 'users', ['partner_id', 'account_id'], unique=False)
    op.create_table('login_directory',
    sa.Column('email_norm', sa.String(length=320), nullable=False),
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('email_norm = lower(email_norm)', name=op.f('ck_login_directory_lowercase')),
    sa.ForeignKeyConstraint(['partner_id', 'user_id'], ['users.partner_id', 'users.id'], name='fk_login_directory_user', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('email_norm', name=op.f('pk_login_directory'))
    )


def downgrade() -> None:
    op.drop_table('login_directory')
    op.drop_index('ix_users_partner_account', table_name='users')
    op.drop_table('users')
    op.drop_index('ix_customer_accounts_partner_name', table_name='customer_accounts')
    op.drop_table('customer_accounts')
    op.drop_index('ix_audit_log_partner_at', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index('uq_partners_single_house', table_name='partners', postgresql_where='is_house')
    op.drop_table('partners')
    op.drop_table('login_throttle')
