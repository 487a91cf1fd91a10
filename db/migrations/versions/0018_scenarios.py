"""append-only ledgers: a scenario load may re-date what it wrote in the same transaction

Revision ID: 0018
Revises: 0011

A demo scenario tells a business history (issue 16): the wallet ledger entries and statement numbers it
writes must carry the time they happened, not the time of loading. The append-only triggers of
wallet_ledger and statement_numbers keep refusing every UPDATE and DELETE, except one narrow case: inside a
transaction that has set `rc.backdate = 'on'` (SET LOCAL, seeds/scenario_history.py), a row written by that
same transaction (stamped at or after its start) may have its timestamp moved to the past, and nothing else
about it changed. History written by any earlier transaction can never be touched.
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0011'
branch_labels = None
depends_on = None


def _guard(table: str, col: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('rc.backdate', true) = 'on'
       AND OLD.{col} >= transaction_timestamp() AND NEW.{col} <= OLD.{col}
       AND (to_jsonb(NEW) - '{col}') = (to_jsonb(OLD) - '{col}') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
END $$;
"""


def _strict(table: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{table} is append-only: % refused', TG_OP;
END $$;
"""


def upgrade() -> None:
    op.execute(_guard("wallet_ledger", "created_at"))
    op.execute(_guard("statement_numbers", "issued_at"))


def downgrade() -> None:
    op.execute(_strict("wallet_ledger"))
    op.execute(_strict("statement_numbers"))
