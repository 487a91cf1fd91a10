"""wallet: purchase intents, refunds, credit lots and their uses, credit receipts

Revision ID: 0013
Revises: 0016 (chained after main's 0016_api when main was merged)

Intent before money (issue 11): a purchase is recorded in `wallet_purchase_intents` and committed before the
gateway is called, then settled exactly once. Credits live in lots (paid / promotional, optional expiry,
priority); `wallet_take_lots` consumes them in the documented order and records each lot used, and
`wallet_draw_lots` is the one-round-trip draw with lots (the old `wallet_draw` stays for downgrades).
Wallets with a positive balance get one opening paid lot, so sum(lot remaining) == max(balance, 0) holds.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0013'
down_revision = '0016'
branch_labels = None
depends_on = None

OLD_KIND = "kind in ('purchase','usage_draw','auto_purchase','adjustment','refund','expiry')"
OLD_SIGN = ("(kind in ('purchase','auto_purchase') and credits > 0) or (kind in ('usage_draw','refund','expiry') "
            "and credits < 0) or (kind = 'adjustment' and credits <> 0)")
NEW_KIND = "kind in ('purchase','usage_draw','auto_purchase','adjustment','refund','expiry','grant')"
NEW_SIGN = ("(kind in ('purchase','auto_purchase','grant') and credits > 0) or (kind in ('usage_draw','refund',"
            "'expiry') and credits < 0) or (kind = 'adjustment' and credits <> 0)")

FUNCTIONS_UP = """
-- Take p_credits from the wallet's lots for ledger entry p_entry, in the documented order: priority (lower
-- first), promotional before paid, earliest expiry (none last), oldest. Records each lot used. Returns what
-- the lots covered; the rest (if any) is overdraft. The caller holds the wallet row lock.
CREATE FUNCTION wallet_take_lots(p_partner_id bigint, p_wallet_id bigint, p_entry_id bigint, p_credits numeric)
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    v_left numeric := p_credits;
    v_take numeric;
    r record;
BEGIN
    FOR r IN SELECT l.id, l.remaining FROM wallet_lots l
              WHERE l.partner_id = p_partner_id AND l.wallet_id = p_wallet_id AND l.remaining > 0
              ORDER BY l.priority, (l.kind = 'paid'), l.expires_on NULLS LAST, l.id
    LOOP
        EXIT WHEN v_left <= 0;
        v_take := least(v_left, r.remaining);
        UPDATE wallet_lots SET remaining = remaining - v_take WHERE partner_id = p_partner_id AND id = r.id;
        INSERT INTO wallet_lot_uses (partner_id, entry_id, lot_id, credits) VALUES (p_partner_id, p_entry_id, r.id, v_take);
        v_left := v_left - v_take;
    END LOOP;
    RETURN p_credits - v_left;
END $$;

-- The one-round-trip draw (see core.billing.wallet.draw): lock, duplicate (with the stored credits and
-- customer, so a key reused with other figures is refused), 'slow' when an automatic purchase or the
-- reminder is involved, the floor, the insert and the lots.
CREATE FUNCTION wallet_draw_lots(p_partner_id bigint, p_account_id bigint, p_credits numeric, p_key text,
                                 p_event_ref jsonb)
RETURNS TABLE (status text, entry_id bigint, balance numeric, overdraft boolean, dup_credits numeric,
               dup_account bigint)
LANGUAGE plpgsql AS $$
DECLARE
    w wallets%ROWTYPE;
    v_floor numeric;
    v_new numeric;
    v_id bigint;
    v_after numeric;
BEGIN
    SELECT * INTO w FROM wallets WHERE wallets.partner_id = p_partner_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'no_wallet'::text, NULL::bigint, NULL::numeric, false, NULL::numeric, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'duplicate'::text, l.id, w.balance, l.overdraft, -l.credits, l.account_id
      FROM wallet_ledger l
     WHERE l.partner_id = p_partner_id AND l.wallet_id = w.id AND l.idempotency_key = p_key;
    IF FOUND THEN
        RETURN;
    END IF;
    v_new := w.balance - p_credits;
    v_floor := CASE WHEN w.overdraft_policy = 'overdraft' THEN -w.overdraft_limit ELSE 0 END;
    -- An automatic purchase already open (pending at the gateway) needs nothing more from this draw.
    IF (w.auto_buy_credits IS NOT NULL AND w.auto_buy_armed AND v_new <= 0
        AND NOT EXISTS (SELECT 1 FROM wallet_purchase_intents i
                         WHERE i.partner_id = p_partner_id AND i.wallet_id = w.id
                           AND i.status = 'pending' AND i.kind = 'auto_purchase'))
       OR (w.low_balance_threshold IS NOT NULL AND w.reminder_armed AND v_new < w.low_balance_threshold) THEN
        RETURN QUERY SELECT 'slow'::text, NULL::bigint, w.balance, false, NULL::numeric, NULL::bigint;
        RETURN;
    END IF;
    IF v_new < v_floor THEN
        RETURN QUERY SELECT 'refused'::text, NULL::bigint, w.balance, false, NULL::numeric, NULL::bigint;
        RETURN;
    END IF;
    INSERT INTO wallet_ledger AS l (partner_id, wallet_id, kind, credits, account_id, idempotency_key, event_ref,
                                    overdraft)
        VALUES (p_partner_id, w.id, 'usage_draw', -p_credits, p_account_id, p_key, p_event_ref, v_new < 0)
        RETURNING l.id, l.balance_after INTO v_id, v_after;
    PERFORM wallet_take_lots(p_partner_id, w.id, v_id, p_credits);
    RETURN QUERY SELECT 'applied'::text, v_id, v_after, v_new < 0, NULL::numeric, NULL::bigint;
END $$;
"""

FUNCTIONS_DOWN = """
DROP FUNCTION IF EXISTS wallet_draw_lots(bigint, bigint, numeric, text, jsonb);
DROP FUNCTION IF EXISTS wallet_take_lots(bigint, bigint, bigint, numeric);
"""


def upgrade() -> None:
    op.add_column('wallet_auto_buy_state', sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('wallet_ledger', sa.Column('intent_id', sa.BigInteger(), nullable=True))
    op.add_column('wallet_ledger', sa.Column('lot_id', sa.BigInteger(), nullable=True))
    op.drop_constraint(op.f('ck_wallet_ledger_kind'), 'wallet_ledger', type_='check')
    op.drop_constraint(op.f('ck_wallet_ledger_credits_sign'), 'wallet_ledger', type_='check')
    op.create_check_constraint(op.f('ck_wallet_ledger_kind'), 'wallet_ledger', NEW_KIND)
    op.create_check_constraint(op.f('ck_wallet_ledger_credits_sign'), 'wallet_ledger', NEW_SIGN)
    op.create_table('wallet_purchase_intents',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wallet_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('base_key', sa.String(length=200), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('price_per_credit', sa.Numeric(precision=24, scale=10), nullable=False),
    sa.Column('method_id', sa.BigInteger(), nullable=True),
    sa.Column('gateway_ref', sa.String(length=100), nullable=True),
    sa.Column('decline_reason', sa.Text(), nullable=True),
    sa.Column('trigger_key', sa.String(length=200), nullable=True),
    sa.Column('trigger_account_id', sa.BigInteger(), nullable=True),
    sa.Column('entry_id', sa.BigInteger(), nullable=True),
    sa.Column('charge_id', sa.BigInteger(), nullable=True),
    sa.Column('created_by', sa.BigInteger(), nullable=True),
    sa.Column('requested_at', postgresql.TIMESTAMP(timezone=True), nullable=False),
    sa.Column('settled_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('purchase','auto_purchase')", name=op.f('ck_wallet_purchase_intents_kind')),
    sa.CheckConstraint("status in ('pending','credited','declined')", name=op.f('ck_wallet_purchase_intents_status')),
    sa.CheckConstraint('credits > 0 and amount > 0', name=op.f('ck_wallet_purchase_intents_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_purchase_intents_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_wallet_purchase_intents'))
    )
    op.create_index('uq_wallet_purchase_intents_key', 'wallet_purchase_intents', ['partner_id', 'idempotency_key'], unique=True)
    op.create_index('uq_wallet_purchase_intents_attempt', 'wallet_purchase_intents', ['partner_id', 'base_key', 'attempt'], unique=True)
    op.create_index('ix_wallet_purchase_intents_open', 'wallet_purchase_intents', ['partner_id', 'wallet_id'], unique=False, postgresql_where=sa.text("status = 'pending'"))
    op.create_index('uq_wallet_purchase_intents_one_auto', 'wallet_purchase_intents', ['partner_id', 'wallet_id'], unique=True, postgresql_where=sa.text("status = 'pending' and kind = 'auto_purchase'"))
    op.create_table('wallet_refunds',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wallet_id', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('charge_id', sa.BigInteger(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('gateway_ref', sa.String(length=100), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('settled_at', postgresql.TIMESTAMP(timezone=True), nullable=True),
    sa.CheckConstraint("status in ('pending','refunded','failed')", name=op.f('ck_wallet_refunds_status')),
    sa.CheckConstraint('amount > 0', name=op.f('ck_wallet_refunds_amount_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_refunds_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_wallet_refunds'))
    )
    op.create_index('uq_wallet_refunds_key', 'wallet_refunds', ['partner_id', 'idempotency_key'], unique=True)
    op.create_table('wallet_lots',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('wallet_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('remaining', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('expires_on', sa.Date(), nullable=True),
    sa.Column('priority', sa.Integer(), server_default='50', nullable=False),
    sa.Column('price_per_credit', sa.Numeric(precision=24, scale=10), nullable=True),
    sa.Column('currency', sa.String(length=3), nullable=True),
    sa.Column('entry_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind in ('paid','promotional')", name=op.f('ck_wallet_lots_kind')),
    sa.CheckConstraint('credits > 0 and remaining >= 0 and remaining <= credits', name=op.f('ck_wallet_lots_remaining')),
    sa.ForeignKeyConstraint(['partner_id', 'wallet_id'], ['wallets.partner_id', 'wallets.id'], name='fk_wallet_lots_wallet'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_lots_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_wallet_lots'))
    )
    op.create_index('ix_wallet_lots_wallet', 'wallet_lots', ['partner_id', 'wallet_id'], unique=False)
    op.create_index('ix_wallet_lots_expiry', 'wallet_lots', ['expires_on'], unique=False, postgresql_where=sa.text('expires_on is not null'))
    op.execute("ALTER TABLE wallet_lots SET (fillfactor = 50)")  # room for HOT updates of `remaining`
    op.create_table('wallet_lot_uses',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.CheckConstraint('credits > 0', name=op.f('ck_wallet_lot_uses_credits_positive')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_wallet_lot_uses_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'entry_id', 'lot_id', name=op.f('pk_wallet_lot_uses'))
    )
    op.create_table('credit_receipts',
    sa.Column('partner_id', sa.BigInteger(), nullable=False),
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('intent_id', sa.BigInteger(), nullable=False),
    sa.Column('entry_id', sa.BigInteger(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('credits', sa.Numeric(precision=24, scale=6), nullable=False),
    sa.Column('price_per_credit', sa.Numeric(precision=24, scale=10), nullable=False),
    sa.Column('net_amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('tax_rate', sa.Numeric(precision=24, scale=6), nullable=True),
    sa.Column('tax_amount', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('total', sa.Numeric(precision=20, scale=4), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('issuer_name', sa.String(length=200), nullable=False),
    sa.Column('issuer_address', sa.Text(), nullable=True),
    sa.Column('created_at', postgresql.TIMESTAMP(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_credit_receipts_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', 'id', name=op.f('pk_credit_receipts'))
    )
    op.create_index('uq_credit_receipts_number', 'credit_receipts', ['number'], unique=True)
    op.create_index('uq_credit_receipts_intent', 'credit_receipts', ['partner_id', 'intent_id'], unique=True)
    op.create_table('credit_receipt_sequences',
    sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('year', name=op.f('pk_credit_receipt_sequences'))
    )
    op.execute(FUNCTIONS_UP)
    # Credits already in wallets become one opening paid lot each (price unknown: not refundable by lot).
    op.execute("INSERT INTO wallet_lots (partner_id, wallet_id, kind, credits, remaining) "
               "SELECT partner_id, id, 'paid', balance, balance FROM wallets WHERE balance > 0")


def downgrade() -> None:
    op.execute(FUNCTIONS_DOWN)
    op.drop_table('credit_receipt_sequences')
    op.drop_index('uq_credit_receipts_intent', table_name='credit_receipts')
    op.drop_index('uq_credit_receipts_number', table_name='credit_receipts')
    op.drop_table('credit_receipts')
    op.drop_table('wallet_lot_uses')
    op.drop_index('ix_wallet_lots_expiry', table_name='wallet_lots', postgresql_where=sa.text('expires_on is not null'))
    op.drop_index('ix_wallet_lots_wallet', table_name='wallet_lots')
    op.drop_table('wallet_lots')
    op.drop_index('uq_wallet_refunds_key', table_name='wallet_refunds')
    op.drop_table('wallet_refunds')
    op.drop_index('uq_wallet_purchase_intents_one_auto', table_name='wallet_purchase_intents', postgresql_where=sa.text("status = 'pending' and kind = 'auto_purchase'"))
    op.drop_index('ix_wallet_purchase_intents_open', table_name='wallet_purchase_intents', postgresql_where=sa.text("status = 'pending'"))
    op.drop_index('uq_wallet_purchase_intents_attempt', table_name='wallet_purchase_intents')
    op.drop_index('uq_wallet_purchase_intents_key', table_name='wallet_purchase_intents')
    op.drop_table('wallet_purchase_intents')
    op.drop_constraint(op.f('ck_wallet_ledger_credits_sign'), 'wallet_ledger', type_='check')
    op.drop_constraint(op.f('ck_wallet_ledger_kind'), 'wallet_ledger', type_='check')
    op.create_check_constraint(op.f('ck_wallet_ledger_kind'), 'wallet_ledger', OLD_KIND)
    op.create_check_constraint(op.f('ck_wallet_ledger_credits_sign'), 'wallet_ledger', OLD_SIGN)
    op.drop_column('wallet_ledger', 'lot_id')
    op.drop_column('wallet_ledger', 'intent_id')
    op.drop_column('wallet_auto_buy_state', 'attempts')
