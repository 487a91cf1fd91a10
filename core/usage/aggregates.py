"""Exact period quantities: what billing charges for an account and metric over a range of days, from the
daily aggregates (period_usage), and the one rule turning combined statistics into a quantity (value_for)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.usage.metrics import get_metrics


def value_for(aggregation: str, qty_sum: Decimal, events: int, qty_max: Decimal, last_qty: Decimal,
              distinct: int) -> Decimal:
    """The period quantity of one account and metric from its combined statistics."""
    if aggregation == "sum":
        return Decimal(qty_sum)
    if aggregation == "count":
        return Decimal(events)
    if aggregation == "max":
        return Decimal(qty_max)
    if aggregation == "latest":
        return Decimal(last_qty)
    return Decimal(distinct)


def period_usage(session: Session, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
    """The quantity per metric of one customer account for the inclusive UTC date range [start, end],
    honouring each metric's aggregation: EXACTLY what billing charges. Every catalogue metric is present
    (0 without usage). Events needing a correction are not included.

    Internal (no actor): used by rating and statements, which check their own permissions.
    """
    if end < start:
        raise ValidationError({"end": "The range ends before it starts."})
    metrics = get_metrics(session)
    out = {k: Decimal(0) for k in metrics}
    rows = session.execute(text("""
        SELECT metric, sum(qty_sum) AS s, sum(events) AS n, max(qty_max) AS mx,
               (array_agg(last_qty ORDER BY last_at DESC, last_event_id DESC))[1] AS lq
        FROM usage_daily WHERE partner_id = :p AND account_id = :a AND day BETWEEN :s AND :e
        GROUP BY metric"""), {"p": partner_id, "a": account_id, "s": start, "e": end})
    distinct: dict[str, int] = dict(session.execute(text("""
        SELECT metric, count(DISTINCT value) FROM usage_distinct
        WHERE partner_id = :p AND account_id = :a AND day BETWEEN :s AND :e GROUP BY metric"""),
        {"p": partner_id, "a": account_id, "s": start, "e": end}).all())
    for r in rows:
        m = metrics.get(r.metric)
        if m is not None:
            out[r.metric] = value_for(m.aggregation, r.s, r.n, r.mx, r.lq, distinct.get(r.metric, 0))
    return out
