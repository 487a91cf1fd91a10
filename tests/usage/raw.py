"""The same answers computed straight from the raw events (the reference the aggregates must equal)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import text


def raw_values(session, start: date, end: date, partner_id=None, account_id=None) -> dict:
    """(partner_id, account_id, metric) -> value, from usage_events (corrections excluded)."""
    metrics = {r.key: r for r in session.execute(text("SELECT key, aggregation, property FROM metrics"))}
    q = ("SELECT partner_id, account_id, metric, quantity, occurred_at, event_id, properties FROM usage_events "
         "WHERE NOT correction AND day BETWEEN :s AND :e")
    params = {"s": start, "e": end}
    if partner_id is not None:
        q += " AND partner_id = :p"
        params["p"] = partner_id
    if account_id is not None:
        q += " AND account_id = :a"
        params["a"] = account_id
    groups = defaultdict(list)
    for r in session.execute(text(q), params):
        groups[(r.partner_id, r.account_id, r.metric)].append(r)
    out = {}
    for key, evs in groups.items():
        m = metrics[key[2]]
        if m.aggregation == "sum":
            v = sum((e.quantity for e in evs), Decimal(0))
        elif m.aggregation == "count":
            v = Decimal(len(evs))
        elif m.aggregation == "max":
            v = max(e.quantity for e in evs)
        elif m.aggregation == "latest":
            v = max(evs, key=lambda e: (e.occurred_at, e.event_id)).quantity
        else:
            v = Decimal(len({str((e.properties or {}).get(m.property)) for e in evs}))
        out[key] = v
    return out
