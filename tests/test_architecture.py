"""The layers hold: import-linter's contracts (pyproject.toml), mypy finds no error in core/ and db/ (config in
pyproject.toml), no deprecated Streamlit argument is used, and the models equal the migrations."""

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


def test_types_check():
    """mypy with zero errors on core/ and db/ ([tool.mypy] in pyproject.toml), core/pricing included."""
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]


def test_no_deprecated_streamlit_arguments():
    """use_container_width prints a deprecation warning on every render: width="stretch" replaces it."""
    found = [f"{p.relative_to(ROOT)}:{n}" for p in [ROOT / "Home.py", *sorted((ROOT / "pages").rglob("*.py"))]
             for n, line in enumerate(p.read_text().splitlines(), start=1) if "use_container_width" in line]
    assert not found, found


def test_architecture_doc_draws_the_contracts():
    """docs/architecture.md lists core's layers in the order of the import-linter contract."""
    import re
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [core_layers] = [c["layers"] for c in contracts if c.get("containers") == ["core"]]
    doc = (ROOT / "docs" / "architecture.md").read_text()
    drawn = re.findall(r"^ {3}(\w+)(?: │ (\w+))? ", doc, re.M)
    assert [" | ".join(x for x in d if x) for d in drawn] == core_layers


def test_models_equal_migrations(engine):
    """Alembic's compare_metadata between the migrated schema and the SQLAlchemy models finds nothing."""
    import db.models  # noqa: F401  (every model registered on Base.metadata)

    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == [], "\n".join(map(str, diff))


def test_the_app_reads_the_time_only_through_core_clock():
    """Every "now" and "today" of the app, its API and its seeds comes from core.clock (UTC, movable for tests and
    demos); `date.today()` is the machine's local day, and a clock read elsewhere cannot be moved by a test."""
    import re

    reads = re.compile(r"\b(datetime\.now\(|datetime\.utcnow\(|date\.today\(|time\.localtime\()")
    offenders = []
    for path in [ROOT / "Home.py", *(p for d in ("core", "pages", "api", "seeds", "db")
                                     for p in (ROOT / d).rglob("*.py"))]:
        if path == ROOT / "core" / "clock.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if reads.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)
