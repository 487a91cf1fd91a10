"""The database roles: the owner runs the migrations and owns every table; the app connects as a login role
that owns nothing.

The app role (RC_APP_ROLE, default `rc_app`) may read and write rows (SELECT, INSERT, UPDATE, DELETE) and use
sequences and temporary tables, nothing else: no TRUNCATE, no DDL, so it cannot switch off the triggers that
keep statements, the wallet ledger and the audit log immutable (only a table's owner can), and it is not a
superuser (no `session_replication_role`). The append-only tables are INSERT/SELECT only on top of their
triggers.

`ensure_app_role(owner_engine)` runs after every migration (`python -m db.manage migrate`, `make run`'s set-up,
the test suite). It creates the role when the owner may (the embedded server; a superuser URL); otherwise a DBA
creates it once by hand (README, "Database roles"):

    CREATE ROLE rc_app LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
"""

from __future__ import annotations

import os

from sqlalchemy import Engine, text

APPEND_ONLY = ("audit_log", "wallet_ledger", "statement_numbers")  # rows are never changed nor removed
READ_ONLY = ("alembic_version",)


def app_role() -> str:
    return os.environ.get("RC_APP_ROLE", "rc_app")


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"Unsafe role name {name!r}")
    return f'"{name}"'


def ensure_app_role(owner: Engine, role: str | None = None, password: str | None = None) -> str:
    """Create (if missing and allowed) and grant the app's login role; idempotent. Returns the role name."""
    role = role or app_role()
    password = password if password is not None else os.environ.get("RC_APP_PASSWORD")
    r = _ident(role)
    with owner.begin() as c:
        exists = c.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role})
        if not exists:
            can = c.scalar(text("SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user"))
            if not can:
                raise RuntimeError(
                    f"The database role {role} does not exist and {c.scalar(text('SELECT current_user'))} may not "
                    f"create it. Ask a DBA to run: CREATE ROLE {role} LOGIN PASSWORD '...' NOSUPERUSER NOCREATEDB "
                    "NOCREATEROLE NOREPLICATION NOBYPASSRLS; then set RC_APP_PASSWORD and migrate again.")
            c.execute(text(f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"))
        if password:
            c.execute(text(f"ALTER ROLE {r} PASSWORD :p").bindparams(p=password))
        db = c.scalar(text("SELECT current_database()"))
        c.execute(text(f'GRANT CONNECT, TEMPORARY ON DATABASE "{db}" TO {r}'))
        c.execute(text(f"GRANT USAGE ON SCHEMA public TO {r}"))
        c.execute(text(f"REVOKE CREATE ON SCHEMA public FROM {r}"))
        c.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}"))
        c.execute(text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}"))
        tables = set(c.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")))
        for t in APPEND_ONLY + READ_ONLY:
            if t in tables:
                c.execute(text(f'REVOKE UPDATE, DELETE ON "{t}" FROM {r}'))
        for t in READ_ONLY:
            if t in tables:
                c.execute(text(f'REVOKE INSERT ON "{t}" FROM {r}'))
        c.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}"))
        if c.scalar(text("SELECT to_regprocedure('usage_ensure_partitions(date,date)')")) is not None:
            # migration 0020: the monthly partitions of usage_events, made by a SECURITY DEFINER function
            c.execute(text(f"GRANT EXECUTE ON FUNCTION usage_ensure_partitions(date, date) TO {r}"))
    return role


# --- Row-level security (migration 0019) -------------------------------------------------------------------
# Every table with a partner_id column is bound to the transaction's tenant: a row is visible and writable when
# its partner_id equals `app.partner_id`, or when the transaction runs in the explicit platform scope
# (`app.scope = 'platform'`). Both settings are transaction-local and made in one place (db/engine.py,
# `bind_scope`); with neither, the app role sees and writes no tenant row (fail closed). The owner bypasses the
# policies (no FORCE): migrations, the reset between tests and the scenario loader run as the owner.

RLS_POLICY = "tenant_isolation"
RLS_CONDITION = ("(current_setting('app.scope', true) = 'platform' "
                 "OR partner_id = nullif(current_setting('app.partner_id', true), '')::bigint)")


# What the platform publishes to every partner, readable (never writable) across tenants by a second, SELECT-only
# policy: the standard rate cards (the prices of a partner without a card of its own), and the house partner's
# (the platform's) statement settings (branding and tax on the receipts and statements it issues) and plans.
SHARED_READ_POLICY = "platform_published"
_HOUSE = "partner_id IN (SELECT id FROM partners WHERE is_house)"
SHARED_READ: dict[str, str] = {
    "rate_cards": "kind = 'standard'",
    "rate_card_versions": ("EXISTS (SELECT 1 FROM rate_cards c WHERE c.partner_id = rate_card_versions.partner_id "
                           "AND c.id = rate_card_versions.card_id AND c.kind = 'standard')"),
    "statement_settings": _HOUSE,
    # the platform's own plans, which price the clients who pay the platform directly (customer_pays)
    "plans": _HOUSE,
    "plan_versions": _HOUSE,
}


def tenant_tables(conn) -> list[str]:
    """Every table (plain or partitioned, partitions included) in the public schema with a partner_id column."""
    return list(conn.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'partner_id' AND NOT a.attisdropped "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname")))


def enable_tenant_rls(conn) -> list[str]:
    """Enable row-level security with the tenant policy on every table that carries partner_id; idempotent.

    Call it from any migration that adds a table with partner_id (`enable_tenant_rls(op.get_bind())`): it covers
    what exists at that point and re-creates the policy identically on the rest. Returns the tables."""
    tables = tenant_tables(conn)
    for t in tables:
        q = _ident(t)
        conn.execute(text(f"ALTER TABLE {q} ENABLE ROW LEVEL SECURITY"))
        conn.execute(text(f"DROP POLICY IF EXISTS {RLS_POLICY} ON {q}"))
        conn.execute(text(f"CREATE POLICY {RLS_POLICY} ON {q} USING {RLS_CONDITION} WITH CHECK {RLS_CONDITION}"))
        conn.execute(text(f"DROP POLICY IF EXISTS {SHARED_READ_POLICY} ON {q}"))
        if t in SHARED_READ:
            conn.execute(text(f"CREATE POLICY {SHARED_READ_POLICY} ON {q} FOR SELECT USING ({SHARED_READ[t]})"))
    return tables


def disable_tenant_rls(conn) -> None:
    for t in tenant_tables(conn):
        q = _ident(t)
        conn.execute(text(f"DROP POLICY IF EXISTS {RLS_POLICY} ON {q}"))
        conn.execute(text(f"DROP POLICY IF EXISTS {SHARED_READ_POLICY} ON {q}"))
        conn.execute(text(f"ALTER TABLE {q} DISABLE ROW LEVEL SECURITY"))
