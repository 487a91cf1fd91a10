"""The schema stays ready to be distributed by tenant (Citus, docs/scaling.md).

Every table that carries partner_id is a tenant table: partner_id comes first in its primary key, and every
foreign key to another tenant table carries partner_id to the same partner_id, so a tenant's rows and the
rows they point at always sit on the same node. Foreign keys to `partners` itself are fine: partners is a
reference table (replicated to every node). The few exceptions are listed here, each with its reason.

Price plans are reference tables: a customer may be on a *platform* plan, owned by the house partner, so an
assignment (a tenant row) points at a plan of another tenant. With `plans` and `plan_versions` replicated to
every node, every assignment sits with its tenant and finds its plan, platform's or partner's, on the same
node (docs/scaling.md, "Schema"). A reference table may only point at other reference tables.
"""

from __future__ import annotations

from pathlib import Path

import db.models  # noqa: F401  (every model registered)
from db.base import Base

# Tables with a partner_id column that are deliberately not distributed by it.
GLOBAL_TABLES = {
    # The log-in directory maps a normalised e-mail to its tenant before anyone is logged in, so it must be
    # unique across tenants: a reference table.
    "login_directory",
}

# Tenant→tenant foreign keys that do not follow the rule, with the reason. Keep this empty.
KNOWN_CROSS_TENANT_FKS: dict[tuple[str, str], str] = {}

# Tables with a partner_id column that are replicated to every node (Citus reference tables), with the reason.
REFERENCE_TABLES = {
    "partners": "the tenants themselves",
    # a few rows per partner, read by every rating and statement, written rarely (a new plan or version);
    # platform plans (the house partner's) are assigned to other tenants' customers and partners
    "plans": "price plans, platform-wide and partners' own",
    "plan_versions": "their immutable versions",
}


def _tenant_tables():
    return [t for t in Base.metadata.sorted_tables
            if "partner_id" in t.columns and t.name not in GLOBAL_TABLES and t.name not in REFERENCE_TABLES]


def test_every_tenant_table_has_partner_id_first_in_its_primary_key():
    """Reference tables with partner_id too: they stay tenant-keyed (row-level security, lookups by tenant)."""
    tables = [t for t in Base.metadata.sorted_tables if "partner_id" in t.columns and t.name not in GLOBAL_TABLES]
    bad = [t.name for t in tables if [c.name for c in t.primary_key.columns][:1] != ["partner_id"]]
    assert bad == [], f"tenant tables without partner_id first in the primary key: {bad}"


def test_every_foreign_key_between_tenant_tables_carries_partner_id():
    tenant = {t.name for t in _tenant_tables()}
    bad = []
    for t in _tenant_tables():
        for fk in t.foreign_key_constraints:
            target = fk.referred_table.name
            if target in REFERENCE_TABLES or target not in tenant:
                continue
            pairs = {(el.parent.name, el.column.name) for el in fk.elements}
            if ("partner_id", "partner_id") not in pairs and (t.name, fk.name) not in KNOWN_CROSS_TENANT_FKS:
                bad.append(f"{t.name}.{fk.name} -> {target}")
    assert bad == [], f"foreign keys that would cross tenants: {bad}"


def test_reference_tables_point_only_at_reference_tables():
    """Citus refuses a foreign key from a reference table to a distributed one (it would cross every node)."""
    tenant = {t.name for t in _tenant_tables()}
    bad = [f"{name}.{fk.name} -> {fk.referred_table.name}" for name in REFERENCE_TABLES
           for fk in Base.metadata.tables[name].foreign_key_constraints if fk.referred_table.name in tenant]
    assert bad == []


def test_the_plan_assignment_key_points_at_a_reference_table():
    """The one former exception: an assignment's plan (its own partner's or the platform's) is reference data."""
    fk = next(fk for fk in Base.metadata.tables["plan_assignments"].foreign_key_constraints
              if fk.name == "fk_plan_assignments_plan")
    assert fk.referred_table.name in REFERENCE_TABLES and not KNOWN_CROSS_TENANT_FKS


def test_scaling_doc_lists_the_reference_tables():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "scaling.md").read_text()
    row = next(line for line in doc.splitlines() if line.startswith("| **Reference**"))
    assert all(f"`{name}`" in row for name in REFERENCE_TABLES), row


def test_the_guard_sees_tables():
    """The guard would fail open if the models were not loaded: make sure it checks the real schema."""
    names = {t.name for t in _tenant_tables()}
    assert {"usage_events", "statements", "wallet_ledger", "plan_assignments"} <= names
