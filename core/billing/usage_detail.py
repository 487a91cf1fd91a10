"""Usage in the detail some charges price with: the number of events, each event's value and the quantities per
value of an event property (core.pricing.Usage).

Where it comes from, always the rows the aggregates count (no events awaiting a correction), summed in NUMERIC:
- a charge with a dimension (SMS by country) declared in the catalogue: the per-value aggregates that ingestion
  keeps (usage_dimension_daily, core.usage.dimensions), the event count from usage_daily;
- a percentage charge with per-transaction rules needs each event's amount, and a dimension that is not
  declared has no aggregate: those read the raw events of the period (one indexed range scan).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import Conflict
from core.pricing import PlanSpec, Usage, dimension_variant, get_model
from core.usage import dimensions as usage_dimensions
from core.usage.metrics import get_metrics

__all__ = ["needs", "with_detail"]

_DIMENSION_AGGREGATIONS = ("sum", "count")


@dataclass
class _Need:
    count: bool = False
    events: bool = False
    dimensions: set[str] = field(default_factory=set)


def needs(spec: PlanSpec) -> dict[str, _Need]:
    """metric -> what its charges need beyond the aggregate quantity (empty when nothing)."""
    out: dict[str, _Need] = {}
    for c in spec.charges:
        if c.settle == "wallet":
            continue
        model = get_model(c.model)
        variants = [c, *(dimension_variant(c, d) for d in c.dimension_prices)]
        count = any(model.needs_count(v) for v in variants)
        events = any(model.needs_events(v) for v in variants)
        if not (count or events or c.dimension):
            continue
        n = out.setdefault(c.metric, _Need())
        n.count |= count or events
        n.events |= events
        if c.dimension:
            n.dimensions.add(c.dimension)
    return out


def _events(session: Session, p: int, a: int, metric: str, start: date, end: date,
            dims: list[str]) -> list[tuple[Decimal, list[str | None]]]:
    cols = "".join(f", properties ->> :d{i}" for i in range(len(dims)))
    rows = session.execute(text(f"""
        SELECT quantity{cols} FROM usage_events
        WHERE partner_id = :p AND account_id = :a AND metric = :m AND day BETWEEN :s AND :e AND NOT correction
        ORDER BY occurred_at, event_id"""),
        {"p": p, "a": a, "m": metric, "s": start, "e": end, **{f"d{i}": d for i, d in enumerate(dims)}})
    return [(r[0], list(r[1:])) for r in rows]


def _detail(rows: list[tuple[Decimal, list[str | None]]], dims: list[str], aggregation: str,
            quantity: Decimal, keep_events: bool) -> Usage:
    def measure(qs: list[Decimal]) -> Decimal:
        return sum(qs, Decimal(0)) if aggregation == "sum" else Decimal(len(qs))

    values = [q for q, _ in rows]
    by_value: dict[str, dict[str, Decimal | Usage]] = {}
    props: dict[str, tuple[str | None, ...]] = {}
    for i, dim in enumerate(dims):
        groups: dict[str, list[Decimal]] = {}
        for q, vals in rows:
            if vals[i] is not None:
                groups.setdefault(vals[i], []).append(q)  # type: ignore[arg-type]
        by_value[dim] = {v: Usage(measure(qs), count=len(qs), events=tuple(qs) if keep_events else None)
                         for v, qs in groups.items()}
        props[dim] = tuple(vals[i] for _, vals in rows)
    return Usage(quantity, count=len(rows), events=tuple(values) if keep_events else None, by_value=by_value,
                 event_props=props if keep_events else {})


def _from_aggregates(session: Session, p: int, a: int, metric: str, start: date, end: date, dims: list[str],
                     aggregation: str, quantity: Decimal) -> Usage:
    per_prop = usage_dimensions.period_by_value(session, p, a, metric, dims, start, end)
    by_value: dict[str, dict[str, Decimal | Usage]] = {
        dim: {v: Usage(q if aggregation == "sum" else Decimal(n), count=n) for v, (q, n) in values.items()}
        for dim, values in per_prop.items()}
    return Usage(quantity, count=usage_dimensions.period_events(session, p, a, metric, start, end),
                 by_value=by_value)


def with_detail(session: Session, spec: PlanSpec, usage: Mapping[str, Decimal], partner_id: int, account_id: int,
                start: date, end: date) -> dict[str, Decimal | Usage]:
    """The segment's usage with detail for the metrics whose charges need it (others unchanged)."""
    out: dict[str, Decimal | Usage] = dict(usage)
    wanted = needs(spec)
    if not wanted:
        return out
    metrics = get_metrics(session)
    declared = usage_dimensions.declared(session)
    for metric, n in wanted.items():
        m = metrics.get(metric)
        aggregation = m.aggregation if m is not None else "sum"
        if n.dimensions and aggregation not in _DIMENSION_AGGREGATIONS:
            raise Conflict(f"Metric {metric} counts by {aggregation}: a price per property value needs a sum or "
                           f"count metric.")
        if n.events and aggregation != "sum":
            raise Conflict(f"Metric {metric} counts by {aggregation}: a percentage needs a sum of amounts.")
        dims = sorted(n.dimensions)
        quantity = Decimal(usage.get(metric) or 0)
        if not n.events and n.dimensions <= set(declared.get(metric, ())):
            out[metric] = _from_aggregates(session, partner_id, account_id, metric, start, end, dims, aggregation,
                                           quantity)
            continue
        rows = _events(session, partner_id, account_id, metric, start, end, dims)
        out[metric] = _detail(rows, dims, aggregation, quantity, n.events)
    return out
