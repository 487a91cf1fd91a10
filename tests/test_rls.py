"""Row-level security (migration 0019): every table with partner_id is bound to the transaction's tenant.

These tests use `app_engine`: the app role with no default scope, exactly as the app connects. A session sees and
writes only what the scope bound on it allows (db/engine.py); without one it sees and writes no tenant row."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import db.models  # noqa: F401  (every model registered)
from core.accounts import audit
from core.accounts.actor import SYSTEM, bind_actor, db_scope
from core.usage.ingest import record_events
from core.usage.validation import BatchValidationError
from db.base import Base
from db.engine import (
    partner_scope,
    platform_scope,
    scope_of,
    scoped_begin,
    scoped_session,
    tenant_session,
    unit_of_work,
)
from db.roles import RLS_POLICY, SHARED_READ, SHARED_READ_POLICY, tenant_tables

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _model_tenant_tables() -> set[str]:
    return {name for name, t in Base.metadata.tables.items() if "partner_id" in t.c}


def _count(conn, table: str, where: str = "") -> int:
    return conn.execute(text(f'SELECT count(*) FROM "{table}" {where}')).scalar_one()


def _fill(world, engine) -> None:
    """A row in as many tenant tables as the services make cheaply: usage, audit, outbox, sessions."""
    for t in (world.a, world.b):
        with tenant_session(engine, t.partner_id) as s, s.begin():
            record_events(s, t.staff, t.partner_id, [
                {"account_id": t.account_id, "event_id": f"e{t.partner_id}", "metric": "documents",
                 "quantity": "2", "occurred_at": "2026-01-05T10:00:00Z"}], now=NOW)


def test_every_table_with_partner_id_has_rls_and_the_tenant_policy(owner_engine):
    """New tables cannot forget: every table with partner_id (in the models and in the database, partitions
    included) has row-level security enabled and the tenant policy for every command."""
    with owner_engine.connect() as c:
        tables = set(tenant_tables(c))
        assert _model_tenant_tables() <= tables
        rows = c.execute(text(
            "SELECT c.relname, c.relrowsecurity, p.polname, p.polcmd, pg_get_expr(p.polqual, p.polrelid), "
            "pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_policy p ON p.polrelid = c.oid WHERE n.nspname = 'public' AND c.relname = ANY(:t)"),
            {"t": sorted(tables)}).all()
    by_table: dict[str, dict] = {}
    for name, enabled, pol, cmd, qual, check in rows:
        by_table.setdefault(name, {"enabled": enabled})[pol] = (cmd, qual, check)
    assert set(by_table) == tables
    for name, pols in by_table.items():
        assert pols["enabled"], f"{name}: row-level security is not enabled"
        assert RLS_POLICY in pols and pols[RLS_POLICY][0] == "*", f"{name}: no tenant policy for all commands"
        for expr in pols[RLS_POLICY][1:]:
            assert "app.partner_id" in expr and "app.scope" in expr and "partner_id" in expr, (name, expr)
        # the only other policy: reading what the platform publishes, on the listed tables, never writing
        extra = set(pols) - {"enabled", RLS_POLICY}
        assert extra == ({SHARED_READ_POLICY} if name in SHARED_READ else set()), (name, extra)
        if extra:
            assert pols[SHARED_READ_POLICY][0] == "r", f"{name}: the published-data policy must be SELECT only"
    assert len(tables) >= 40  # the whole schema, not an empty catalogue query


def test_a_session_without_a_scope_sees_and_writes_no_tenant_row(world, app_engine, owner_engine):
    _fill(world, app_engine)
    with owner_engine.connect() as c:
        tables = tenant_tables(c)
        present = {t for t in tables if _count(c, t)}
    assert {"users", "customer_accounts", "usage_events", "usage_daily", "audit_log"} <= present
    with app_engine.connect() as c:
        for t in tables:
            assert _count(c, t) == 0, f"{t}: rows visible without a tenant scope"
    with Session(app_engine) as s:
        with pytest.raises(DBAPIError, match="row-level security"):
            audit.record(s, SYSTEM, partner_id=world.a.partner_id, action="forged", entity="x")
            s.flush()
        s.rollback()
        assert s.execute(text("UPDATE customer_accounts SET name = 'x'")).rowcount == 0
        assert s.execute(text("DELETE FROM login_sessions")).rowcount == 0


def test_a_partner_scope_cannot_read_or_write_another_partners_rows_even_with_raw_sql(world, app_engine,
                                                                                          owner_engine):
    _fill(world, app_engine)
    a, b = world.a, world.b
    with scoped_session(app_engine, db_scope(a.staff)) as s, s.begin():
        assert scope_of(s) == partner_scope(a.partner_id)
        assert {r for (r,) in s.execute(text("SELECT DISTINCT partner_id FROM users"))} == {a.partner_id}
        assert s.execute(text("SELECT count(*) FROM customer_accounts WHERE partner_id = :b"),
                         {"b": b.partner_id}).scalar_one() == 0
        assert s.execute(text("SELECT count(*) FROM usage_events")).scalar_one() == 1
        assert s.execute(text("UPDATE customer_accounts SET name = 'pwned' WHERE partner_id = :b"),
                         {"b": b.partner_id}).rowcount == 0
        assert s.execute(text("DELETE FROM usage_daily WHERE partner_id = :b"), {"b": b.partner_id}).rowcount == 0
        # moving an own row into the other tenant is refused too (WITH CHECK)
        with pytest.raises(DBAPIError, match="row-level security"), s.begin_nested():
            s.execute(text("UPDATE customer_accounts SET partner_id = :b WHERE partner_id = :a"),
                      {"a": a.partner_id, "b": b.partner_id})
        with pytest.raises(DBAPIError, match="row-level security"), s.begin_nested():
            s.execute(text("INSERT INTO audit_log (partner_id, actor_email, action, entity) "
                           "VALUES (:b, 'x', 'forged', 'x')"), {"b": b.partner_id})
    with owner_engine.connect() as c:
        assert _count(c, "customer_accounts", "WHERE name = 'pwned'") == 0
        assert _count(c, "usage_daily", f"WHERE partner_id = {int(b.partner_id)}") == 1


def test_ingestion_into_another_tenant_is_refused_by_the_database_itself(world, app_engine):
    """Even past the permission check (the SYSTEM actor), a session bound to partner A cannot write B's events:
    B's accounts are invisible to its validation, and a hand-written insert meets the policy's WITH CHECK."""
    b = world.b
    with tenant_session(app_engine, world.a.partner_id) as s, s.begin():
        with pytest.raises(BatchValidationError, match="unknown customer account"), s.begin_nested():
            record_events(s, SYSTEM, b.partner_id, [
                {"account_id": b.account_id, "event_id": "x1", "metric": "documents", "quantity": "1",
                 "occurred_at": "2026-01-05T10:00:00Z"}], now=NOW)
        with pytest.raises(DBAPIError, match="row-level security"), s.begin_nested():
            s.execute(text("INSERT INTO usage_events (partner_id, account_id, event_id, metric, quantity, "
                           "occurred_at, day) VALUES (:p, :a, 'x2', 'documents', 1, now(), current_date)"),
                      {"p": b.partner_id, "a": b.account_id})


def test_ingestion_under_rls_new_and_duplicate_events(world, app_engine):
    """COPY FROM is refused under row-level security: ingestion copies into a staging table and inserts from it;
    both the all-new path and the ON CONFLICT path (a retried batch) work for the app role."""
    a = world.a
    evs = [{"account_id": a.account_id, "event_id": f"k{i}", "metric": "documents", "quantity": "1.5",
            "occurred_at": "2026-01-05T10:00:00Z"} for i in range(50)]
    with unit_of_work(app_engine, db_scope(a.staff)) as s:
        r1 = record_events(s, a.staff, a.partner_id, evs, now=NOW)
    with unit_of_work(app_engine, db_scope(a.staff)) as s:
        r2 = record_events(s, a.staff, a.partner_id, evs + [{**evs[0], "event_id": "new"}], now=NOW)
    assert (r1.inserted, r1.duplicates) == (50, 0)
    assert (r2.inserted, r2.duplicates) == (1, 50)
    with unit_of_work(app_engine, db_scope(a.staff)) as s:
        assert s.execute(text("SELECT sum(qty_sum), sum(events) FROM usage_daily")).one() == (76.5, 51)


def test_the_platform_scope_is_explicit_named_and_logged(world, app_engine, caplog):
    _fill(world, app_engine)
    with pytest.raises(ValueError):
        platform_scope("")
    with caplog.at_level(logging.INFO, logger="rc.tenancy"):
        scope = platform_scope("test: every partner")
    assert "platform scope entered: test: every partner" in caplog.text
    with scoped_session(app_engine, scope) as s, s.begin():
        assert s.execute(text("SELECT count(DISTINCT partner_id) FROM usage_events")).scalar_one() == 2
    # a platform admin's services run in the platform scope; partner staff and customers in their partner's
    assert db_scope(world.admin).platform
    assert db_scope(world.a.users["manager"]) == partner_scope(world.a.partner_id)
    with caplog.at_level(logging.INFO, logger="rc.tenancy"):
        db_scope(SYSTEM)  # the jobs' actor (statements CLI, worker): logged at INFO
    assert "platform admin system" in caplog.text


def test_the_scope_is_per_transaction_and_never_leaks_through_the_pool(world, app_engine):
    """A pooled connection that served partner A's (or the platform's) transaction serves the next session,
    which has no scope, with nothing: the settings are transaction-local."""
    _fill(world, app_engine)
    for scope in (partner_scope(world.a.partner_id), platform_scope("test", quiet=True)):
        with scoped_session(app_engine, scope) as s, s.begin():
            assert s.execute(text("SELECT count(*) FROM usage_events")).scalar_one() >= 1
        for _ in range(3):  # whichever pooled connection comes back
            with Session(app_engine) as s:
                assert s.execute(text("SELECT count(*) FROM usage_events")).scalar_one() == 0
                assert s.execute(text("SELECT current_setting('app.scope', true)")).scalar() in (None, "")
    # the scope recorded on a session applies to each of its transactions, not only the first
    with scoped_session(app_engine, partner_scope(world.a.partner_id)) as s:
        for _ in range(2):
            assert s.execute(text("SELECT count(*) FROM usage_events")).scalar_one() == 1
            s.commit()
    with scoped_begin(app_engine, partner_scope(world.b.partner_id)) as c:
        assert {p for (p,) in c.execute(text("SELECT partner_id FROM usage_events"))} == {world.b.partner_id}


def test_binding_an_actor_in_an_open_transaction_applies_at_once(world, app_engine):
    _fill(world, app_engine)
    with Session(app_engine) as s:
        assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 0
        bind_actor(s, world.b.staff)
        assert {p for (p,) in s.execute(text("SELECT DISTINCT partner_id FROM users"))} == {world.b.partner_id}


def test_a_partners_login_link_shows_its_brand_under_rls(world, db, app_engine):
    """Before login there is no actor: the public brand is read bound to the partner named by the link."""
    from core.overview import brand_for
    from db.models import Partner
    from db.models.statements import StatementSettings

    with Session(db) as s, s.begin():
        s.add(StatementSettings(partner_id=world.a.partner_id, display_name="Acme Reseller", logo_text="ACME"))
        slug = s.get(Partner, world.a.partner_id).slug
    with Session(app_engine) as s:
        brand = brand_for(s, None, slug)
    assert (brand.name, brand.logo_text) == ("Acme Reseller", "ACME")
