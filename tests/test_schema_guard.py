"""The schema stays ready to be distributed by tenant (Citus, docs/scaling.md).

Every table that carries partner_id is a tenant table: partner_id comes first in its primary key, and every
foreign key to another tenant table carries partner_id to the same partner_id, so a tenant's rows and the
rows they point at always sit on the same node. Foreign keys to `partners` itself are fine: partners is a
reference table (replicated to every node). The few exceptions are listed here, each with its reason.
"""

from __future__ import annotations

import db.models  # noqa: F401  (every model registered)
from db.base import Base

# Tables with a partner_id column that are deliberately not distributed by it.
GLOBAL_TABLES = {
    # The log-in directory maps a normalised e-mail to its tenant before anyone is logged in, so it must be
    # unique across tenants: a reference table.
    "login_directory",
}

# Tenant→tenant foreign keys that do not (yet) follow the rule, with the reason. Keep this empty if you can.
KNOWN_CROSS_TENANT_FKS: dict[tuple[str, str], str] = {
    # A customer may be assigned a platform plan, owned by the house partner, not by the customer's partner.
    # Distributing needs platform plans in a reference table (docs/scaling.md, "Schema").
    ("plan_assignments", "fk_plan_assignments_plan"): "platform plans live in the house tenant",
}

REFERENCE_TABLES = {"partners"}


def _tenant_tables():
    return [t for t in Base.metadata.sorted_tables if "partner_id" in t.columns and t.name not in GLOBAL_TABLES]


def test_every_tenant_table_has_partner_id_first_in_its_primary_key():
    bad = [t.name for t in _tenant_tables() if [c.name for c in t.primary_key.columns][:1] != ["partner_id"]]
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


def test_the_guard_sees_tables():
    """The guard would fail open if the models were not loaded: make sure it checks the real schema."""
    names = {t.name for t in _tenant_tables()}
    assert {"usage_events", "statements", "wallet_ledger", "plan_assignments"} <= names
