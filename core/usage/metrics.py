"""The metrics catalogue: what can be metered and billed, and how a period's quantity is aggregated.

Aggregations (the quantity of a metric over a period, per customer account):
- ``sum``: the sum of the events' quantities (documents, pages, credits ...);
- ``count``: the number of events (the quantity is recorded but not used);
- ``max``: the largest quantity of any event in the period (peak storage);
- ``unique_count``: the number of distinct values of the event property ``property`` (unique_recipients);
- ``latest``: the quantity of the last event in the period, by (occurred_at, event_id) (gauges).

Built-in metrics ship with migration 0002; platform admins add more with :func:`add_metric`.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.accounts import house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.validation import Checker
from db.models.usage import AGGREGATIONS, Metric

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PROPERTY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,59}$")

__all__ = ["AGGREGATIONS", "Metric", "add_metric", "catalogue", "get_metrics", "list_metrics", "metric_keys"]


def list_metrics(session: Session) -> list[Metric]:
    """Every metric in the catalogue, built-in first. Reference data: no actor needed to read it."""
    return list(session.scalars(select(Metric).order_by(Metric.builtin.desc(), Metric.key)))


def catalogue(session: Session, actor: Actor) -> list[Metric]:
    """The metric catalogue as the pages show it (any role that sees usage)."""
    authorize(actor, "usage.view")
    return list_metrics(session)


def metric_keys(session: Session) -> set[str]:
    return set(session.scalars(select(Metric.key)))


def get_metrics(session: Session) -> dict[str, Metric]:
    """key -> Metric, for callers that need the aggregation of many metrics."""
    return {m.key: m for m in list_metrics(session)}


def add_metric(session: Session, actor: Actor, *, key: str, name: str, unit: str, aggregation: str,
               property: str | None = None, counts_as_active: bool = False) -> Metric:
    """Add a metric to the global catalogue (platform admins: action ``metric.manage``)."""
    authorize(actor, "metric.manage")
    c = Checker()
    key_v = (key or "").strip()
    if not KEY_RE.match(key_v):
        c.fail("key", "Key must start with a lower-case letter and contain only a-z, 0-9 and _ (at most 40).")
    elif session.get(Metric, key_v) is not None:
        c.fail("key", f"A metric with key {key_v!r} already exists.")
    name_v = c.text("name", name, "Name", max_len=100)
    unit_v = c.text("unit", unit, "Unit", max_len=40)
    agg = c.choice("aggregation", aggregation, AGGREGATIONS, "Aggregation")
    prop = (property or "").strip() or None
    if agg == "unique_count":
        if not prop:
            c.fail("property", "A unique-count metric needs the property whose distinct values are counted.")
        elif not PROPERTY_RE.match(prop):
            c.fail("property", "Property names contain letters, digits, _, . and - only (at most 60).")
    elif prop:
        c.fail("property", "Only unique-count metrics name a property.")
    c.done()
    metric = Metric(key=key_v, name=name_v, unit=unit_v, aggregation=agg, property=prop, builtin=False,
                    counts_as_active=bool(counts_as_active))
    session.add(metric)
    session.flush()
    audit_partner = actor.partner_id or house_partner(session).id  # the SYSTEM actor has no partner
    audit.record(session, actor, partner_id=audit_partner, action="create", entity="metric", entity_id=key_v,
                 after={"key": key_v, "name": name_v, "unit": unit_v, "aggregation": agg, "property": prop,
                        "counts_as_active": bool(counts_as_active)})
    return metric
