"""Usage per value of an event property (dimensions: SMS by destination country), kept exact at ingestion.

Which properties: the ones DECLARED per metric in the catalogue (`metric_dimensions`, migration 0022:
messages.country, documents.type, api_requests.integration; platform admins add more with
`declare_dimension`, which backfills the stored events). Not every property of every event: properties are
free-form labels and aggregating all of them would multiply the rows written per event. A charge priced by an
undeclared property still prices exactly, from the raw events (core.billing.usage_detail), only slower.

Ingestion (core.usage.ingest) calls, in its transaction:

1. ``prepare`` before writing: a shared advisory lock (``declare_dimension`` takes it exclusively, so a
   declaration and its backfill never miss a batch in flight), the staging tables, the declared dimensions;
2. ingestion stages the new events of declared metrics, raw, into ``usage_dim_stage`` (from its staging table
   on the common all-new path; only the rows really inserted on the fallback INSERT ... ON CONFLICT);
3. ``upsert``: the database groups them and adds them to usage_dimension_daily. Events awaiting a correction
   are never staged.

The value is the property as the database reads it (``properties ->> property``), exactly like the raw-event
path: a JSON string is its text (in Python too); any other JSON value (number, boolean, object) is read by the
database once per distinct value of the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.accounts import house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.usage.metrics import PROPERTY_RE
from core.validation import Checker
from db.models.usage import Metric, MetricDimension

__all__ = ["declare_dimension", "declared", "dimension_metrics", "list_dimensions", "period_by_value", "period_events",
           "prepare", "upsert"]

ADVISORY_NS = 42_022  # advisory-lock namespace: declarations against ingestion
DIMENSION_AGGREGATIONS = ("sum", "count")

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_dim_stage (
  account_id bigint, metric text, day date, quantity numeric, properties jsonb) ON COMMIT DELETE ROWS;
TRUNCATE usage_dim_stage;
"""

_UPSERT_SQL = """
INSERT INTO usage_dimension_daily AS t (partner_id, account_id, metric, property, day, value, qty_sum, events)
SELECT :p, s.account_id, s.metric, d.property, s.day, s.properties ->> d.property, sum(s.quantity), count(*)
FROM usage_dim_stage s JOIN metric_dimensions d ON d.metric = s.metric
WHERE s.properties ->> d.property IS NOT NULL
GROUP BY 2, 3, 4, 5, 6 ORDER BY 2, 3, 4, 5, 6
ON CONFLICT (partner_id, account_id, metric, property, day, value)
DO UPDATE SET qty_sum = t.qty_sum + EXCLUDED.qty_sum, events = t.events + EXCLUDED.events
"""

_BACKFILL_SQL = """
INSERT INTO usage_dimension_daily (partner_id, account_id, metric, property, day, value, qty_sum, events)
SELECT s.partner_id, s.account_id, s.metric, :prop, s.day, s.properties ->> :prop, sum(s.quantity), count(*)
FROM usage_events s WHERE s.metric = :m AND NOT s.correction AND s.properties ->> :prop IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""


# ---------------------------------------------------------------- ingestion


def prepare(session: Session) -> dict[str, list[str]]:
    """Inside the ingesting transaction, before it writes: metric -> its declared dimensions (properties)."""
    session.execute(text("SELECT pg_advisory_xact_lock_shared(:ns, 0)"), {"ns": ADVISORY_NS})
    session.execute(text(_STAGE_DDL))
    out: dict[str, list[str]] = {}
    for metric, prop in session.execute(text("SELECT metric, property FROM metric_dimensions ORDER BY 1, 2")):
        out.setdefault(metric, []).append(prop)
    return out


def upsert(session: Session, partner_id: int, dims: dict[str, list[str]]) -> None:
    """Add the staged events to usage_dimension_daily (in key order: concurrent batches never deadlock)."""
    if dims:
        session.execute(text(_UPSERT_SQL), {"p": partner_id})


# ---------------------------------------------------------------- reading (rating, the lab)


def declared(session: Session) -> dict[str, dict[str, str]]:
    """metric -> property -> label of every declared dimension (reference data)."""
    out: dict[str, dict[str, str]] = {}
    for r in session.execute(text("SELECT metric, property, label FROM metric_dimensions ORDER BY 1, 2")):
        out.setdefault(r.metric, {})[r.property] = r.label
    return out


def period_by_value(session: Session, partner_id: int, account_id: int, metric: str, properties: Iterable[str],
                    start: date, end: date) -> dict[str, dict[str, tuple[Decimal, int]]]:
    """property -> value -> (sum of quantities, number of events) of one account's metric over [start, end].
    Internal (no actor): called by rating, which authorised the account."""
    out: dict[str, dict[str, tuple[Decimal, int]]] = {p: {} for p in properties}
    rows = session.execute(text("""
        SELECT property, value, sum(qty_sum) AS q, sum(events) AS n FROM usage_dimension_daily
        WHERE partner_id = :p AND account_id = :a AND metric = :m AND property = ANY(:props)
          AND day BETWEEN :s AND :e
        GROUP BY property, value ORDER BY property, value"""),
        {"p": partner_id, "a": account_id, "m": metric, "props": list(out), "s": start, "e": end})
    for r in rows:
        out[r.property][r.value] = (Decimal(r.q), int(r.n))
    return out


def period_events(session: Session, partner_id: int, account_id: int, metric: str, start: date, end: date) -> int:
    """The number of (non-correction) events of one account's metric over [start, end], from usage_daily.
    Internal (no actor): called by rating."""
    return int(session.scalar(text(
        "SELECT coalesce(sum(events), 0) FROM usage_daily WHERE partner_id = :p AND account_id = :a "
        "AND metric = :m AND day BETWEEN :s AND :e"),
        {"p": partner_id, "a": account_id, "m": metric, "s": start, "e": end}) or 0)


# ---------------------------------------------------------------- declaring


def list_dimensions(session: Session, actor: Actor) -> list[MetricDimension]:
    """Every declared dimension, by metric and property (platform admins, ``metric.manage``)."""
    authorize(actor, "metric.manage")
    return list(session.scalars(select(MetricDimension).order_by(MetricDimension.metric, MetricDimension.property)))


def dimension_metrics(session: Session, actor: Actor) -> dict[str, str]:
    """key -> name of the metrics a dimension may be declared for (sum and count metrics; ``metric.manage``)."""
    authorize(actor, "metric.manage")
    q = select(Metric.key, Metric.name).where(Metric.aggregation.in_(DIMENSION_AGGREGATIONS)).order_by(Metric.name)
    return dict(session.execute(q).tuples().all())


def declare_dimension(session: Session, actor: Actor, *, metric: str, property: str, label: str) -> MetricDimension:
    """Declare an event property of a sum or count metric as a dimension (platform admins, ``metric.manage``),
    and backfill its aggregates from every stored event. Waits for batches being ingested and holds new ones
    until the caller commits, so no event is missed or counted twice."""
    authorize(actor, "metric.manage")
    c = Checker()
    m = session.get(Metric, (metric or "").strip())
    prop = (property or "").strip()
    if m is None:
        c.fail("metric", f"There is no metric {metric!r}.")
    elif m.aggregation not in DIMENSION_AGGREGATIONS:
        c.fail("metric", f"{m.name} counts by {m.aggregation}: a price per property value needs a sum or count "
                         "metric.")
    if not PROPERTY_RE.match(prop):
        c.fail("property", "Property names contain letters, digits, _, . and - only (at most 60).")
    elif m is not None and session.get(MetricDimension, (m.key, prop)) is not None:
        c.fail("property", f"{m.key} is already priced by {prop}.")
    label_v = c.text("label", label, "Label", max_len=100)
    c.done()
    assert m is not None
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, 0)"), {"ns": ADVISORY_NS})
    dim = MetricDimension(metric=m.key, property=prop, label=label_v, builtin=False)
    session.add(dim)
    session.flush()
    session.execute(text(_BACKFILL_SQL), {"m": m.key, "prop": prop})
    audit_partner = actor.partner_id or house_partner(session).id
    audit.record(session, actor, partner_id=audit_partner, action="create", entity="metric_dimension",
                 entity_id=f"{m.key}.{prop}", after={"metric": m.key, "property": prop, "label": label_v})
    return dim
