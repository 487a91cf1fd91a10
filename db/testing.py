"""Helpers for test suites and benchmarks: a throw-away database and a fast data reset."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sqlalchemy import Engine, text

from db.base import Base
from db.engine import DATA_DIR, embedded_url, normalise_url


def preserved() -> dict[str, str | None]:
    """Tables whose rows are reference data shipped by migrations (db.base.reference_data on the model): kept
    on reset, apart from the rows matched by the WHERE clause (rows added later, e.g. by tests)."""
    import db.models  # noqa: F401  (every model registered on Base.metadata)

    out: dict[str, str | None] = {"alembic_version": None}
    for name, table in Base.metadata.tables.items():
        if table.info.get("reference_data"):
            out[name] = table.info.get("added_rows")
    return out


def throwaway_url() -> str:
    """A fresh embedded PostgreSQL server in a temporary directory, deleted when the process exits."""
    DATA_DIR.mkdir(exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="test-pg-", dir=DATA_DIR))
    shutil.rmtree(path)  # pgserver initialises an empty/missing dir
    return embedded_url(path, cleanup_mode="delete")


def recreate_schema(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))


def reset_data(engine: Engine) -> None:
    """Remove every row that is not reference data, fast (one TRUNCATE)."""
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))]
        keep = preserved()
        to_truncate = [t for t in tables if t not in keep]
        if to_truncate:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in to_truncate) + " CASCADE"))
        for table, where in keep.items():
            if where and table in tables:
                conn.execute(text(f'DELETE FROM "{table}" WHERE {where}'))


def test_database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_url(url)
    return throwaway_url()
