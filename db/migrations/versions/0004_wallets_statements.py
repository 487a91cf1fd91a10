"""wallets, payments, billing modes, statements

Revision ID: 0004
Revises: 0003

Only the wallet / payment / billing-mode tables live here (issue 5, "who pays"); statements are added
by revision 0005. The triggers make the ledger append-only and keep wallets.balance == sum(ledger)
by construction (see docs/wallet.md).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Platform default credit price list: (currency, min_credits, price_per_credit). All-units volume steps.
DEFAULT_PRICE_STEPS = [
    (cur, step, price)
    for cur, prices in {
        "EUR": ("0.0100", "0.0095", "0.0090", "0.0085", "0.0075"),
        "USD": ("0.0110", "0.0105", "0.0100", "0.0095", "0.0085"),
        "GBP": ("0.0090", "0.0085", "0.0080", "0.0075", "0.0065"),
        "NOK": ("0.1100", "0.1050", "0.1000", "0.0950", "0.0850"),
        "SEK": ("0.1100", "0.1050", "0.1000", "0.0950", "0.0850"),
        "DKK": ("0.0750", "0.0700", "0.0670", "0.0630", "0.0560"),
    }.items()
    for step, price in zip(("0", "10000", "50000", "100000", "500000"), prices, strict=True)
]

TRIGGERS_UP = """
CREATE FUNCTION wallet_ledger_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The only way a balance changes: add the entry's credits to its wallet, in the same statement.
    UPDATE wallets SET balance = balance + NEW.credits, updated_at = now()
     WHERE partner_id = NEW.partner_id AND id = NEW.wallet_id
    RETURNING balance INTO NEW.balance_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'wallet % of partner % does not exist', NEW.wallet_id, NEW.partner_id;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER wallet_ledger_apply BEFORE INSERT ON wallet_ledger
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_apply();

CREATE FUNCTION wallet_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallet_ledger is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER wallet_ledger_append_only BEFORE UPDATE OR DELETE ON wallet_ledger
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_append_only();

CREATE FUNCTION wallets_guard_balance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.balance <> 0 THEN
        RAISE EXCEPTION 'a new wallet starts at balance 0; credits come through wallet_ledger';
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.balance IS DISTINCT FROM OLD.balance AND pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'wallets.balance changes only through wallet_ledger inserts';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER wallets_guard_balance BEFORE INSERT OR UPDATE ON wallets
    FOR EACH ROW EXECUTE FUNCTION wallets_guard_balance();

-- Wallets whose balance differs from the sum of their ledger (must always return no rows).
CREATE FUNCTION wallet_verify(p_partner_id bigint)
RETURNS TABLE (partner_id bigint, wallet_id bigint, balance numeric, ledger_sum numeric)
LANGUAGE sql STABLE AS $$
    SELECT w.partner_id, w.id, w.balance, coalesce(sum(l.credits), 0)
      FROM wallets w
      LEFT JOIN wallet_ledger l ON l.partner_id = w.partner_id AND l.wallet_id = w.id
     WHERE p_partner_id IS NULL OR w.partner_id = p_partner_id
     GROUP BY w.partner_id, w.id, w.balance
    HAVING w.balance <> coalesce(sum(l.credits), 0)
$$;

-- Fast path of core.wallet.draw, in one round trip (the wallet row lock is held from here to commit, so
-- fewer round trips mean more draws per second on one wallet). It locks the wallet, answers duplicates,
-- refuses draws below the floor when no automatic purchase could help, and applies plain draws. Whenever
-- the draw needs an automatic purchase or crosses the reminder threshold it returns 'slow' WITHOUT writing:
-- core.wallet.draw then runs the full logic in Python under the lock this call already took.
CREATE FUNCTION wallet_draw(p_partner_id bigint, p_account_id bigint, p_credits numeric, p_key text,
                            p_event_ref jsonb)
RETURNS TABLE (status text, entry_id bigint, balance numeric, overdraft boolean)
LANGUAGE plpgsql AS $$
DECLARE
    w wallets%ROWTYPE;
    v_floor numeric;
    v_new numeric;
BEGIN
    SELECT * INTO w FROM wallets WHERE wallets.partner_id = p_partner_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_wallet'::text, NULL::bigint, NULL::numeric, false;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'duplicate'::text, l.id, w.balance, l.overdraft FROM wallet_ledger l
     WHERE l.partner_id = p_partner_id AND l.wallet_id = w.id AND l.idempotency_key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    v_new := w.balance - p_credits;
    v_floor := CASE WHEN w.overdraft_policy = 'overdraft' THEN -w.overdraft_limit ELSE 0 END;
    IF (w.auto_buy_credits IS NOT NULL AND w.auto_buy_armed AND v_new <= 0)
       OR (w.low_balance_threshold IS NOT NULL AND w.reminder_armed AND v_new < w.low_balance_threshold) THEN
        RETURN QUERY SELECT 'slow'::text, NULL::bigint, w.balance, false;
        RETURN;
    END IF;
    IF v_new < v_floor THEN
        RETURN QUERY SELECT 'refused'::text, NULL::bigint, w.balance, false;
        RETURN;
    END IF;
    RETURN QUERY INSERT INTO wallet_ledger AS l (partner_id, wallet_id, kind, credits, account_id,
                                                 idempotency_key, event_ref, overdraft)
        VALUES (p_partner_id, w.id, 'usage_draw', -p_credits, p_account_id, p_key, p_event_ref, v_new < 0)
        RETURNING 'applied'::text, l.id, l.balance_after, l.overdraft;
END $$;
"""

TRIGGERS_DOWN = """
DROP FUNCTION IF EXISTS wallet_draw(bigint, bigint, numeric, text, jsonb);
DROP FUNCTION IF EXISTS wallet_verify(bigint);
DROP TRIGGER IF EXISTS wallets_guard_balance ON wallets;
DROP FUNCTION IF EXISTS wallets_guard_balance();
DROP TRIGGER IF EXISTS wallet_ledger_append_only ON wallet_ledger;
DROP FUNCTION IF EXISTS wallet_ledger_append_only();
DROP TRIGGER IF EXISTS wallet_ledger_apply ON wallet_ledger;
DROP FUNCTION IF EXISTS wallet_ledger_apply();
"""


def upgrade() -> None:
    op.create_table('credit_price_steps',
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('min_credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('price_per_credit', sa.Numeric(precision=24, scale=10), nullable=False),
    sa.CheckConstraint('min_credits >= 0', name=op.f('ck_credit_price_steps_min_credits_non_negative')),
    sa.CheckConstraint('price_per_credit > 0', name=op.f('ck_credit_price_steps_price_positive')),
    sa.PrimaryKeyConstraint('currency', 'min_credits', name=op.f('pk_credit_price_steps'))
    )
    op.create_table('outbox',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_outbox_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_outbox'))
    )
    op.create_index('ix_outbox_partner_created', 'outbox', ['partner_id', 'created_at'], unique=False)
    op.create_index('ix_outbox_unsent', 'outbox', ['partner_id', 'id'], unique=False, postgresql_where=sa.text('sent_at is null'))
    op.create_table('partner_credit_price_steps',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('min_credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('price_per_credit', sa.Numeric(precision=24, scale=10), nullable=False),
    sa.CheckConstraint('min_credits >= 0', name=op.f('ck_partner_credit_price_steps_min_credits_non_negative')),
    sa.CheckConstraint('price_per_credit > 0', name=op.f('ck_partner_credit_price_steps_price_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_credit_price_steps_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'currency', 'min_credits', name=op.f('pk_partner_credit_price_steps'))
    )
    op.create_table('payment_methods',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('gateway', sa.String(length=20), nullable=False),
    sa.Column('token', sa.String(length=200), nullable=False),
    sa.Column('last4', sa.String(length=4), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('is_default', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('active', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('card','bank')", name=op.f('ck_payment_methods_kind')),
    sa.CheckConstraint("last4 ~ '^[0-9A-Za-z]{4}$'", name=op.f('ck_payment_methods_last4')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_payment_methods_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_payment_methods'))
    )
    op.create_index('uq_payment_methods_default', 'payment_methods', ['partner_id'], unique=True, postgresql_where=sa.text('is_default'))
    op.create_table('wallets',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('balance', sa.Numeric(precision=24, scale=6), server_default='0', nullable=False),
    sa.Column('low_balance_threshold', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('reminder_armed', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('auto_buy_credits', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('auto_buy_armed', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('auto_buy_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('overdraft_policy', sa.String(length=10), server_default='refuse', nullable=False),
    sa.Column('overdraft_limit', sa.Numeric(precision=24, scale=6), server_default='0', nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("balance >= case when overdraft_policy = 'overdraft' then -overdraft_limit else 0 end", name=op.f('ck_wallets_floor')),
    sa.CheckConstraint("overdraft_policy in ('refuse','overdraft')", name=op.f('ck_wallets_overdraft_policy')),
    sa.CheckConstraint('auto_buy_credits is null or auto_buy_credits > 0', name=op.f('ck_wallets_auto_buy_positive')),
    sa.CheckConstraint('low_balance_threshold is null or low_balance_threshold >= 0', name=op.f('ck_wallets_threshold')),
    sa.CheckConstraint('overdraft_limit >= 0', name=op.f('ck_wallets_overdraft_limit_non_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallets_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_wallets'))
    )
    op.create_index('uq_wallets_partner', 'wallets', ['partner_id'], unique=True)
    op.create_table('billing_modes',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('on_decline', sa.String(length=8), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(mode = 'partner_on_demand') = (on_decline is not null)", name=op.f('ck_billing_modes_on_decline_only_on_demand')),
    sa.CheckConstraint("mode in ('customer_pays','partner_prepaid','partner_on_demand','agency')", name=op.f('ck_billing_modes_mode')),
    sa.CheckConstraint("on_decline is null or on_decline in ('block','flag')", name=op.f('ck_billing_modes_on_decline')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_billing_modes_account'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_billing_modes_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'account_id', 'effective_from', name=op.f('pk_billing_modes'))
    )
    op.create_table('payment_charges',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('method_id', sa.BigInteger(), nullable=True),
    sa.Column('amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('gateway_ref', sa.String(length=100), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('event_ref', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("reason in ('purchase','auto_purchase','usage_on_demand')", name=op.f('ck_payment_charges_reason')),
    sa.CheckConstraint("status in ('approved','declined')", name=op.f('ck_payment_charges_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_payment_charges_amount_positive')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_payment_charges_account'),
    sa.ForeignKeyConstraint(['partner_id', 'method_id'], ['payment_methods.partner_id', 'payment_methods.id'], name='fk_payment_charges_method'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_payment_charges_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_payment_charges'))
    )
    op.create_index('ix_payment_charges_account_created', 'payment_charges', ['partner_id', 'account_id', 'created_at'], unique=False)
    op.create_index('uq_payment_charges_idempotency', 'payment_charges', ['partner_id', 'idempotency_key'], unique=True)
    op.create_table('wallet_auto_buy_state',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('wallet_id', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_retry_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('gave_up', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('updated_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_auto_buy_state_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'wallet_id', name=op.f('pk_wallet_auto_buy_state'))
    )
    op.create_table('wallet_ledger',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wallet_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('balance_after', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('amount', sa.Numeric(precision=20, scale=4), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('account_id', sa.BigInteger(), nullable=True),
    sa.Column('charge_id', sa.BigInteger(), nullable=True),
    sa.Column('refund_of', sa.BigInteger(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('event_ref', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('overdraft', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(kind in ('purchase','auto_purchase') and credits > 0) or (kind in ('usage_draw','refund','expiry') and credits < 0) or (kind = 'adjustment' and credits <> 0)", name=op.f('ck_wallet_ledger_credits_sign')),
    sa.CheckConstraint("kind <> 'adjustment' or length(btrim(coalesce(reason, ''))) > 0", name=op.f('ck_wallet_ledger_adjustment_has_reason')),
    sa.CheckConstraint("kind <> 'usage_draw' or account_id is not null", name=op.f('ck_wallet_ledger_draw_has_account')),
    sa.CheckConstraint("kind in ('purchase','usage_draw','auto_purchase','adjustment','refund','expiry')", name=op.f('ck_wallet_ledger_kind')),
    sa.ForeignKeyConstraint(['partner_id', 'account_id'], ['customer_accounts.partner_id', 'customer_accounts.id'], name='fk_wallet_ledger_account'),
    sa.ForeignKeyConstraint(['partner_id', 'wallet_id'], ['wallets.partner_id', 'wallets.id'], name='fk_wallet_ledger_wallet'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_ledger_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_wallet_ledger'))
    )
    op.create_index('ix_wallet_ledger_account_created', 'wallet_ledger', ['partner_id', 'account_id', 'created_at'], unique=False, postgresql_where=sa.text("kind = 'usage_draw'"))
    op.create_index('ix_wallet_ledger_wallet_created', 'wallet_ledger', ['partner_id', 'wallet_id', 'created_at'], unique=False)
    op.create_index('uq_wallet_ledger_idempotency', 'wallet_ledger', ['partner_id', 'wallet_id', 'idempotency_key'], unique=True)


    op.execute(TRIGGERS_UP)
    steps = sa.table("credit_price_steps", sa.column("currency", sa.String), sa.column("min_credits", sa.Numeric),
                     sa.column("price_per_credit", sa.Numeric))
    op.bulk_insert(steps, [{"currency": c, "min_credits": m, "price_per_credit": p} for c, m, p in DEFAULT_PRICE_STEPS])


def downgrade() -> None:
    op.execute(TRIGGERS_DOWN)
    op.drop_index('uq_wallet_ledger_idempotency', table_name='wallet_ledger')
    op.drop_index('ix_wallet_ledger_wallet_created', table_name='wallet_ledger')
    op.drop_index('ix_wallet_ledger_account_created', table_name='wallet_ledger', postgresql_where=sa.text("kind = 'usage_draw'"))
    op.drop_table('wallet_ledger')
    op.drop_table('wallet_auto_buy_state')
    op.drop_index('uq_payment_charges_idempotency', table_name='payment_charges')
    op.drop_index('ix_payment_charges_account_created', table_name='payment_charges')
    op.drop_table('payment_charges')
    op.drop_table('billing_modes')
    op.drop_index('uq_wallets_partner', table_name='wallets')
    op.drop_table('wallets')
    op.drop_index('uq_payment_methods_default', table_name='payment_methods', postgresql_where=sa.text('is_default'))
    op.drop_table('payment_methods')
    op.drop_table('partner_credit_price_steps')
    op.drop_index('ix_outbox_unsent', table_name='outbox', postgresql_where=sa.text('sent_at is null'))
    op.drop_index('ix_outbox_partner_created', table_name='outbox')
    op.drop_table('outbox')
    op.drop_table('credit_price_steps')
