"""The layers hold: import-linter's contracts (pyproject.toml) and the models equal the migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.base import Base

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_models_equal_migrations(engine):
    """Alembic's compare_metadata between the migrated schema and the SQLAlchemy models finds nothing."""
    import db.models  # noqa: F401  (every model registered on Base.metadata)

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "\n".join(map(str, diff))
