"""append-only ledgers: a scenario load may re-date what it wrote in the same transaction

Revision ID: 0018
Revises: 0012

A demo scenario tells a business history (issue 16): the wallet ledger entries and statement numbers it
writes must carry the time they happened, not the time of loading. The append-only triggers of
wallet_ledger, statement_numbers and audit_log keep refusing every UPDATE and DELETE, except one narrow case: inside a
transaction that has set `rc.backdate = 'on'` (SET LOCAL, seeds/scenario_history.py), a row written by that
same transaction (stamped at or after its start) may have its timestamp moved to the past, and nothing else
about it changed. The statements guard gets the same narrow exception for a statement the transaction
finalised or voided: its timestamps and its issue and due dates may move, nothing else. History written by
any earlier transaction can never be touched.
"""
from __future__ import annotations

from alembic import op

revision = '0018'
down_revision = '0014'
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


_STATEMENT_CHECKS = """
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
"""
_DATES = "ARRAY['created_at','updated_at','finalised_at','voided_at','issued_on','due_on','snapshot']"
_BACKDATE = f"""
    -- a scenario load re-dating a statement it wrote in this same transaction (migration 0018): only its
    -- timestamps, issue and due dates (in the snapshot too) move; nothing else may differ
    IF TG_OP = 'UPDATE' AND current_setting('rc.backdate', true) = 'on'
       AND OLD.updated_at >= transaction_timestamp()
       AND (to_jsonb(NEW) - {_DATES}) = (to_jsonb(OLD) - {_DATES})
       AND (NEW.snapshot - ARRAY['issued_on','due_on']) IS NOT DISTINCT FROM (OLD.snapshot - ARRAY['issued_on','due_on'])
    THEN
        RETURN NEW;
    END IF;
"""


def _statements_guard(backdate: bool) -> str:
    return ("CREATE OR REPLACE FUNCTION statements_guard() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN"
            + (_BACKDATE if backdate else "") + _STATEMENT_CHECKS)


def upgrade() -> None:
    op.execute(_guard("wallet_ledger", "created_at"))
    op.execute(_guard("statement_numbers", "issued_at"))
    op.execute(_guard("audit_log", "at"))  # made append-only by 0014; the same narrow exception
    op.execute(_statements_guard(True))


def downgrade() -> None:
    op.execute(_strict("wallet_ledger"))
    op.execute(_strict("statement_numbers"))
    op.execute(_strict("audit_log"))
    op.execute(_statements_guard(False))
