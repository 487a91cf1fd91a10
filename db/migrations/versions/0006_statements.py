"""billing statements, numbering, credit notes, partner branding

Revision ID: 0006
Revises: 0005

Statements, collective invoices and credit notes with their lines; per-issuer number sequences (locked by
the finalising transaction, so a rolled-back finalisation leaves no gap) and the register of issued numbers;
the partners' statement branding. Triggers make final statements immutable (see docs/statements.md).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TRIGGERS_UP = """
CREATE FUNCTION statements_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.status <> 'draft' THEN
            RAISE EXCEPTION 'statement % is %: it cannot be deleted', OLD.id, OLD.status;
        END IF;
        RETURN OLD;
    END IF;
    IF OLD.status = 'void' THEN
        RAISE EXCEPTION 'statement % is void: it cannot change', OLD.id;
    END IF;
    IF OLD.status = 'final' THEN
        -- the one allowed change of a final statement: final -> void, setting only the void columns
        IF NEW.status <> 'void' OR
           (to_jsonb(NEW) - ARRAY['status','voided_by','voided_at','void_reason','updated_at'])
           IS DISTINCT FROM
           (to_jsonb(OLD) - ARRAY['status','voided_by','voided_at','void_reason','updated_at']) THEN
            RAISE EXCEPTION 'statement % is final: it cannot be changed (issue a credit note instead)', OLD.id;
        END IF;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER statements_guard BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION statements_guard();

CREATE FUNCTION statement_lines_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    r record;
BEGIN
    IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;
    SELECT status INTO v_status FROM statements WHERE partner_id = r.partner_id AND id = r.statement_id;
    -- not found: the statement itself is being deleted (a draft; the cascade removes its lines)
    IF FOUND AND v_status <> 'draft' THEN
        RAISE EXCEPTION 'statement % is %: its lines cannot change', r.statement_id, v_status;
    END IF;
    IF TG_OP = 'UPDATE' AND (OLD.partner_id, OLD.statement_id) IS DISTINCT FROM (NEW.partner_id, NEW.statement_id) THEN
        RAISE EXCEPTION 'a statement line cannot move to another statement';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER statement_lines_guard BEFORE INSERT OR UPDATE OR DELETE ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION statement_lines_guard();

CREATE FUNCTION statement_numbers_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'statement_numbers is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER statement_numbers_append_only BEFORE UPDATE OR DELETE ON statement_numbers
    FOR EACH ROW EXECUTE FUNCTION statement_numbers_append_only();
"""

TRIGGERS_DOWN = """
DROP TRIGGER IF EXISTS statement_numbers_append_only ON statement_numbers;
DROP FUNCTION IF EXISTS statement_numbers_append_only();
DROP TRIGGER IF EXISTS statement_lines_guard ON statement_lines;
DROP FUNCTION IF EXISTS statement_lines_guard();
DROP TRIGGER IF EXISTS statements_guard ON statements;
DROP FUNCTION IF EXISTS statements_guard();
"""


def upgrade() -> None:
    op.create_table('statement_numbers',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('series', sa.String(length=12), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('statement_partner_id', sa.BigInteger(), nullable=False),
    sa.Column('statement_id', sa.BigInteger(), nullable=False),
    sa.Column('issued_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_statement_numbers_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'series', 'sequence', name=op.f('pk_statement_numbers')),
    sa.UniqueConstraint('partner_id', 'number', name='uq_statement_numbers_number')
    )
    op.create_table('statement_sequences',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('series', sa.String(length=12), nullable=False),
    sa.Column('next_number', sa.BigInteger(), server_default='1', nullable=False),
    sa.CheckConstraint('next_number >= 1', name=op.f('ck_statement_sequences_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_statement_sequences_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'series', name=op.f('pk_statement_sequences'))
    )
    op.create_table('statement_settings',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('address', sa.Text(), nullable=True),
    sa.Column('logo_text', sa.String(length=80), nullable=True),
    sa.Column('footer', sa.Text(), nullable=True),
    sa.Column('labels', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('language', sa.String(length=2), server_default='en', nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('payment_terms_days', sa.Integer(), server_default='14', nullable=False),
    sa.Column('number_prefix', sa.String(length=12), nullable=True),
    sa.Column('updated_by', sa.BigInteger(), nullable=True),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("language in ('en','de','nb')", name=op.f('ck_statement_settings_language')),
    sa.CheckConstraint("number_prefix is null or number_prefix ~ '^[A-Z0-9]{1,12}$'", name=op.f('ck_statement_settings_prefix')),
    sa.CheckConstraint('payment_terms_days between 0 and 365', name=op.f('ck_statement_settings_terms')),
    sa.CheckConstraint('tax_rate is null or (tax_rate >= 0 and tax_rate <= 100)', name=op.f('ck_statement_settings_tax_rate')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_statement_settings_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_statement_settings'))
    )
    op.create_table('statements',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=8), server_default='draft', nullable=False),
    sa.Column('issuer_partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('modes', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('snapshot', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('subtotal', sa.Numeric(precision=20, scale=4), server_default='0', nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=7, scale=4), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=20, scale=4), server_default='0', nullable=False),
    sa.Column('total', sa.Numeric(precision=20, scale=4), server_default='0', nullable=False),
    sa.Column('credits_drawn', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('charged_on_demand', sa.Numeric(precision=20, scale=4), nullable=True),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('series', sa.String(length=12), nullable=True),
    sa.Column('sequence', sa.BigInteger(), nullable=True),
    sa.Column('number', sa.String(length=40), nullable=True),
    sa.Column('credit_note_for', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('issued_on', sa.Date(), nullable=True),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('finalised_by', sa.BigInteger(), nullable=True),
    sa.Column('finalised_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('voided_by', sa.BigInteger(), nullable=True),
    sa.Column('voided_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("(kind = 'credit_note') = (credit_note_for is not null)", name=op.f('ck_statements_credit_note_for')),
    sa.CheckConstraint("(kind = 'statement') = (account_id is not null) or kind = 'credit_note'", name=op.f('ck_statements_addressee')),
    sa.CheckConstraint("kind in ('statement','collective','credit_note')", name=op.f('ck_statements_kind')),
    sa.CheckConstraint("language in ('en','de','nb')", name=op.f('ck_statements_language')),
    sa.CheckConstraint("series is null or series in ('invoice','credit_note')", name=op.f('ck_statements_series')),
    sa.CheckConstraint("status <> 'final' or (number is not null and sequence is not null and series is not null and snapshot is not null)", name=op.f('ck_statements_numbered_when_final')),
    sa.CheckConstraint("status in ('draft','final','void')", name=op.f('ck_statements_status')),
    sa.CheckConstraint('period_end >= period_start', name=op.f('ck_statements_period')),
    sa.ForeignKeyConstraint(['issuer_partner_id'], ['partners.id'], name=op.f('fk_statements_issuer_partner_id_partners')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_statements_account'),
    sa.ForeignKeyConstraint(['partner_id', 'credit_note_for'], ['statements.partner_id', 'statements.id'], name='fk_statements_credit_note_for'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_statements_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_statements')),
    sa.UniqueConstraint('partner_id', 'issuer_partner_id', 'series', 'sequence', name='uq_statements_sequence')
    )
    op.create_index('ix_statements_credit_note_for', 'statements', ['partner_id', 'credit_note_for'], unique=False, postgresql_where=sa.text('credit_note_for is not null'))
    op.create_index('ix_statements_period', 'statements', ['partner_id', 'period_start', 'account_id'], unique=False)
    op.create_index('uq_statements_live', 'statements', ['partner_id', 'issuer_partner_id', 'kind', 'period_start', sa.literal_column('coalesce(account_id, 0)')], unique=True, postgresql_where=sa.text("status <> 'void' and kind <> 'credit_note'"))
    op.create_table('statement_lines',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('statement_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('section', sa.String(length=200), nullable=True),
    sa.Column('section_account_id', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('label', sa.String(length=300), nullable=False),
    sa.Column('metric', sa.String(length=60), nullable=True),
    sa.Column('quantity', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('explanation', sa.Text(), nullable=True),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['partner_id', 'statement_id'], ['statements.partner_id', 'statements.id'], name='fk_statement_lines_statement', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_statement_lines_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'statement_id', 'line_no', name=op.f('pk_statement_lines'))
    )

    op.execute(TRIGGERS_UP)


def downgrade() -> None:
    op.execute(TRIGGERS_DOWN)
    op.drop_table('statement_lines')
    op.drop_index('uq_statements_live', table_name='statements')
    op.drop_index('ix_statements_period', table_name='statements')
    op.drop_index('ix_statements_credit_note_for', table_name='statements')
    op.drop_table('statements')
    op.drop_table('statement_settings')
    op.drop_table('statement_sequences')
    op.drop_table('statement_numbers')
