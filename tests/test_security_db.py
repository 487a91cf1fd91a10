"""The app connects as a least-privilege role: no superuser, owns nothing, no TRUNCATE, no DDL, cannot switch
off the immutability triggers; the audit log is append-only."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from core.accounts import audit
from core.accounts.actor import SYSTEM
from db.engine import app_url, database_url, unit_of_work
from db.roles import app_role


def _refused(engine, sql: str) -> str:
    with pytest.raises(DBAPIError) as exc, engine.begin() as c:
        c.execute(text(sql))
    return str(exc.value.orig)


def test_the_app_role_is_not_privileged(db):
    with db.connect() as c:
        assert c.scalar(text("SELECT current_user")) == app_role()
        assert c.scalar(text("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles "
                             "WHERE rolname = current_user")) is False
        assert c.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                             "AND tableowner = current_user")) == 0


@pytest.mark.parametrize("sql", [
    "TRUNCATE statements CASCADE",
    "TRUNCATE wallet_ledger CASCADE",
    "ALTER TABLE statements DISABLE TRIGGER USER",
    "ALTER TABLE wallet_ledger DISABLE TRIGGER wallet_ledger_append_only",
    "SET session_replication_role = replica",
    "CREATE TABLE sneaky (id int)",
    "DROP TABLE audit_log",
    "CREATE INDEX ix_sneaky ON users (email)",
    "UPDATE alembic_version SET version_num = 'x'",
])
def test_the_app_role_cannot_change_schema_or_switch_off_guards(db, sql):
    assert _refused(db, sql)


def test_the_audit_log_is_append_only(world, db, owner_engine):
    with unit_of_work(db) as s:
        audit.record(s, SYSTEM, partner_id=world.a.partner_id, action="test", entity="x")
    assert "permission denied" in _refused(db, "UPDATE audit_log SET action = 'forged'")
    assert "permission denied" in _refused(db, "DELETE FROM audit_log")
    # even the owner cannot change an entry without first switching off the trigger (which only it may)
    assert "append-only" in _refused(owner_engine, "UPDATE audit_log SET action = 'forged'")
    with pytest.raises(ProgrammingError):
        with db.begin() as c:
            c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))


def test_the_app_the_clis_and_the_pages_connect_as_the_app_role(db):
    from sqlalchemy.engine import make_url

    from pages.common import engine as page_engine

    assert make_url(database_url()).username == app_role()  # the CLIs' and benchmarks' make_engine() default
    assert make_url(app_url()).username == app_role()
    with page_engine().connect() as c:
        assert c.scalar(text("SELECT current_user")) == app_role()
