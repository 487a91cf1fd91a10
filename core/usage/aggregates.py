"""Exact period quantities: what billing charges for an account and metric over a range of days, from the
daily aggregates (period_usage), and the one rule turning combined statistics into a quantity (value_for)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.usage.metrics import get_metrics
from core.usage.periods import hash_key


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


# ---------------------------------------------------------------- closed months' distinct counts (0021)
#
# For unique_count metrics, usage_distinct_monthly keeps the months in which each (account, value) occurred,
# and usage_distinct_gaps counts, per account, metric and month, the month's values by the month they occurred
# last before (prev_month; NEVER for the first time). A value occurring in whole months [m1, m2] is counted
# once there: at its first month in the range, the one whose previous occurrence is before m1. So
#     distinct(account, [m1, m2]) = sum(value_count) over month in [m1, m2] and prev_month < m1,
# exactly, from at most months x months rows per account whatever the number of events.
# Ingestion keeps them in the same transaction, from the batch's new distinct values (usage_new_distinct).

DISTINCT_NS = 42_021  # advisory-lock namespace: one writer of an account's distinct rollups at a time
_NEVER = "DATE '0001-01-01'"

_MONTHS_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_new_months (account_id bigint, metric text, value text, month date)
  ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS usage_gap_delta (account_id bigint, metric text, month date, prev_month date,
  n bigint) ON COMMIT DELETE ROWS;
TRUNCATE usage_new_months, usage_gap_delta;
"""

_NEW_MONTHS_SQL = """
WITH ins AS (
  INSERT INTO usage_distinct_monthly (partner_id, metric, account_id, value, month)
  SELECT DISTINCT :p, metric, account_id, value, CAST(date_trunc('month', day) AS date) FROM usage_new_distinct
  ORDER BY 2, 3, 4, 5
  ON CONFLICT DO NOTHING
  RETURNING account_id, metric, value, month
)
INSERT INTO usage_new_months SELECT account_id, metric, value, month FROM ins
"""

# The gap rows of the touched (account, value) sequences after (+1) and before (-1) this batch's new months.
_SEQ = f"""
  SELECT x.account_id, x.metric, x.month,
         coalesce(lag(x.month) OVER (PARTITION BY x.account_id, x.metric, x.value ORDER BY x.month), {_NEVER}) AS prev,
         {{sign}} AS d
  FROM (SELECT DISTINCT account_id, metric, value FROM usage_new_months) k
  JOIN usage_distinct_monthly x
    ON x.partner_id = :p AND x.metric = k.metric AND x.account_id = k.account_id AND x.value = k.value
  {{only_old}}"""
_OLD = ("WHERE NOT EXISTS (SELECT 1 FROM usage_new_months n WHERE n.account_id = x.account_id "
        "AND n.metric = x.metric AND n.value = x.value AND n.month = x.month)")
_DELTA_SQL = f"""
INSERT INTO usage_gap_delta
SELECT account_id, metric, month, prev, sum(d) FROM (
  {_SEQ.format(sign=1, only_old="")}
  UNION ALL
  {_SEQ.format(sign=-1, only_old=_OLD)}
) z GROUP BY 1, 2, 3, 4 HAVING sum(d) <> 0
"""

_GAPS_SQL = """
INSERT INTO usage_distinct_gaps AS t (partner_id, metric, month, prev_month, account_id, value_count)
SELECT :p, metric, month, prev_month, account_id, n FROM usage_gap_delta ORDER BY 2, 3, 4, 5
ON CONFLICT (partner_id, metric, month, prev_month, account_id)
DO UPDATE SET value_count = t.value_count + EXCLUDED.value_count
"""

_PARTNER_GAPS_SQL = """
INSERT INTO usage_partner_distinct_gaps AS t (partner_id, metric, month, prev_month, value_count)
SELECT :p, metric, month, prev_month, sum(n) FROM usage_gap_delta GROUP BY 2, 3, 4 HAVING sum(n) <> 0
ORDER BY 2, 3, 4
ON CONFLICT (partner_id, metric, month, prev_month) DO UPDATE SET value_count = t.value_count + EXCLUDED.value_count
"""


# ---------------------------------------------------------------- "as of" rollups (0027)
#
# A range that ends after every event of its scope (a dashboard range ending today) needs no month arithmetic:
# an account's latest quantity over it is its latest event's, if that fell on or after the range's first day,
# and its distinct count is the number of its values whose last occurrence did. Symmetrically, a range that
# starts before every event of its scope counts the values whose first occurrence fell on or before its end.
# usage_latest and usage_distinct_span keep each account's latest event and each value's first and last day;
# the *_days tables count them (and sum the quantities) by that day, per account and per partner. Ingestion
# moves a count from its old day to its new one (-1 there, +1 here) when a batch brings a later (or, for the
# first day, an earlier) event, under the same per-account lock.

_LAST_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_edge_delta (edge text, account_id bigint, metric text, day date, n bigint)
  ON COMMIT DELETE ROWS;
TRUNCATE usage_edge_delta;
"""

_DISTINCT_SPAN_SQL = """
WITH b AS (
  SELECT account_id, metric, value, min(day) AS f, max(day) AS l FROM usage_new_distinct GROUP BY 1, 2, 3
), ch AS (  -- the values whose first day this batch moves earlier or whose last day it moves later (or sets)
  SELECT b.account_id, b.metric, b.value, least(b.f, o.first_day) AS f, greatest(b.l, o.last_day) AS l,
         o.first_day AS old_f, o.last_day AS old_l FROM b
  LEFT JOIN usage_distinct_span o ON o.partner_id = :p AND o.account_id = b.account_id AND o.metric = b.metric
   AND o.value = b.value
  WHERE o.last_day IS NULL OR b.l > o.last_day OR b.f < o.first_day
), up AS (
  INSERT INTO usage_distinct_span AS t (partner_id, account_id, metric, value, first_day, last_day)
  SELECT :p, account_id, metric, value, f, l FROM ch ORDER BY 2, 3, 4
  ON CONFLICT (partner_id, account_id, metric, value)
  DO UPDATE SET first_day = EXCLUDED.first_day, last_day = EXCLUDED.last_day
)
INSERT INTO usage_edge_delta
SELECT 'last', account_id, metric, l, 1 FROM ch WHERE old_l IS DISTINCT FROM l
UNION ALL SELECT 'last', account_id, metric, old_l, -1 FROM ch WHERE old_l IS NOT NULL AND old_l <> l
UNION ALL SELECT 'first', account_id, metric, f, 1 FROM ch WHERE old_f IS DISTINCT FROM f
UNION ALL SELECT 'first', account_id, metric, old_f, -1 FROM ch WHERE old_f IS NOT NULL AND old_f <> f
"""

_EDGE_DAYS_SQL = """
INSERT INTO usage_distinct_{edge}_days AS t (partner_id, account_id, metric, day, pairs)
SELECT :p, account_id, metric, day, sum(n) FROM usage_edge_delta WHERE edge = '{edge}'
GROUP BY 2, 3, 4 HAVING sum(n) <> 0 ORDER BY 2, 3, 4
ON CONFLICT (partner_id, account_id, metric, day) DO UPDATE SET pairs = t.pairs + EXCLUDED.pairs
"""

_PARTNER_EDGE_DAYS_SQL = """
INSERT INTO usage_partner_distinct_{edge}_days AS t (partner_id, metric, day, pairs)
SELECT :p, metric, day, sum(n) FROM usage_edge_delta WHERE edge = '{edge}'
GROUP BY 2, 3 HAVING sum(n) <> 0 ORDER BY 2, 3
ON CONFLICT (partner_id, metric, day) DO UPDATE SET pairs = t.pairs + EXCLUDED.pairs
"""

# usage_groups: the batch's groups per (account, metric, day), written by core.usage.ingest.
_LATEST_SQL = """
WITH b AS (
  SELECT DISTINCT ON (account_id, metric) account_id, metric, day, last_at, last_event_id, last_qty
  FROM usage_groups WHERE NOT correction AND metric = ANY(CAST(:lt AS text[]))
  ORDER BY account_id, metric, last_at DESC, last_event_id DESC
), ch AS (  -- the accounts whose latest event this batch replaces (or brings)
  SELECT b.*, l.last_day AS old_day, l.last_qty AS old_qty, l.last_at AS old_at FROM b
  LEFT JOIN usage_latest l ON l.partner_id = :p AND l.account_id = b.account_id AND l.metric = b.metric
  WHERE l.last_at IS NULL OR (b.last_at, b.last_event_id) > (l.last_at, l.last_event_id)
), up AS (
  INSERT INTO usage_latest AS t (partner_id, account_id, metric, last_day, last_at, last_event_id, last_qty)
  SELECT :p, account_id, metric, day, last_at, last_event_id, last_qty FROM ch ORDER BY 2, 3
  ON CONFLICT (partner_id, account_id, metric) DO UPDATE SET last_day = EXCLUDED.last_day,
    last_at = EXCLUDED.last_at, last_event_id = EXCLUDED.last_event_id, last_qty = EXCLUDED.last_qty
)
INSERT INTO usage_partner_latest_days AS t (partner_id, metric, last_day, qty_sum, accounts)
SELECT :p, metric, day, sum(q), sum(n) FROM (
  SELECT metric, day, last_qty AS q, 1 AS n FROM ch
  UNION ALL SELECT metric, old_day, -old_qty, -1 FROM ch WHERE old_at IS NOT NULL) x
GROUP BY 2, 3 HAVING sum(n) <> 0 OR sum(q) <> 0 ORDER BY 2, 3
ON CONFLICT (partner_id, metric, last_day) DO UPDATE SET qty_sum = t.qty_sum + EXCLUDED.qty_sum,
                                                        accounts = t.accounts + EXCLUDED.accounts
"""


def update_rollups(session: Session, partner_id: int, latest_metrics: list[str]) -> None:
    """Fold the batch into the rollups that need an account's history, not only the batch: the closed months'
    distinct counts (from the batch's new distinct values, temp table usage_new_distinct) and the "as of"
    rollups (those values' last days, and the latest events of latest metrics from the batch's groups, temp
    table usage_groups). Called by core.usage.ingest inside the ingestion transaction, after every other
    aggregate: it takes an exclusive advisory lock per touched account (sorted, after all other row locks,
    so no lock cycle), then reads the accounts' rows with a fresh snapshot, so two concurrent batches of one
    account never miscount a value's previous month or miss each other's latest event."""
    distinct = set(session.scalars(text("SELECT DISTINCT account_id FROM usage_new_distinct")).all())
    latest = set(session.scalars(text(
        "SELECT DISTINCT account_id FROM usage_groups WHERE NOT correction AND metric = ANY(CAST(:lt AS text[]))"),
        {"lt": latest_metrics}).all()) if latest_metrics else set()
    if not distinct and not latest:
        return
    keys = sorted({hash_key(partner_id, a) for a in distinct | latest})
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, k) FROM unnest(CAST(:keys AS int[])) AS k ORDER BY k"),
                    {"ns": DISTINCT_NS, "keys": keys})
    params: dict[str, Any] = {"p": partner_id}
    if distinct:
        session.execute(text(_MONTHS_DDL))
        session.execute(text(_NEW_MONTHS_SQL), params)
        session.execute(text(_DELTA_SQL), params)
        session.execute(text(_GAPS_SQL), params)
        session.execute(text(_PARTNER_GAPS_SQL), params)
        session.execute(text(_LAST_DDL))
        session.execute(text(_DISTINCT_SPAN_SQL), params)
        for edge in ("first", "last"):
            session.execute(text(_EDGE_DAYS_SQL.format(edge=edge)), params)
            session.execute(text(_PARTNER_EDGE_DAYS_SQL.format(edge=edge)), params)
    if latest:
        session.execute(text(_LATEST_SQL), {**params, "lt": latest_metrics})


# The same rollups rebuilt from usage_distinct and usage_daily (the backfills of migrations 0021 and 0027;
# seeds/bulk.py after a bulk load).
REBUILD_SQL = (
    "DELETE FROM usage_distinct_monthly",
    "DELETE FROM usage_distinct_gaps",
    "DELETE FROM usage_partner_distinct_gaps",
    "DELETE FROM usage_latest",
    "DELETE FROM usage_partner_latest_days",
    "DELETE FROM usage_distinct_span",
    "DELETE FROM usage_distinct_last_days",
    "DELETE FROM usage_partner_distinct_last_days",
    "DELETE FROM usage_distinct_first_days",
    "DELETE FROM usage_partner_distinct_first_days",
    """INSERT INTO usage_distinct_monthly (partner_id, metric, account_id, value, month)
       SELECT DISTINCT partner_id, metric, account_id, value, CAST(date_trunc('month', day) AS date)
       FROM usage_distinct""",
    f"""INSERT INTO usage_distinct_gaps (partner_id, metric, month, prev_month, account_id, value_count)
       SELECT partner_id, metric, month, prev, account_id, count(*) FROM (
         SELECT partner_id, metric, account_id, month, coalesce(lag(month) OVER (
                  PARTITION BY partner_id, metric, account_id, value ORDER BY month), {_NEVER}) AS prev
         FROM usage_distinct_monthly) x
       GROUP BY 1, 2, 3, 4, 5""",
    """INSERT INTO usage_partner_distinct_gaps (partner_id, metric, month, prev_month, value_count)
       SELECT partner_id, metric, month, prev_month, sum(value_count) FROM usage_distinct_gaps GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_latest (partner_id, account_id, metric, last_day, last_at, last_event_id, last_qty)
       SELECT DISTINCT ON (d.partner_id, d.account_id, d.metric) d.partner_id, d.account_id, d.metric, d.day,
              d.last_at, d.last_event_id, d.last_qty
       FROM usage_daily d JOIN metrics m ON m.key = d.metric AND m.aggregation = 'latest'
       ORDER BY d.partner_id, d.account_id, d.metric, d.last_at DESC, d.last_event_id DESC""",
    """INSERT INTO usage_partner_latest_days (partner_id, metric, last_day, qty_sum, accounts)
       SELECT partner_id, metric, last_day, sum(last_qty), count(*) FROM usage_latest GROUP BY 1, 2, 3""",
    """INSERT INTO usage_distinct_span (partner_id, account_id, metric, value, first_day, last_day)
       SELECT partner_id, account_id, metric, value, min(day), max(day) FROM usage_distinct GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_distinct_last_days (partner_id, account_id, metric, day, pairs)
       SELECT partner_id, account_id, metric, last_day, count(*) FROM usage_distinct_span GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_partner_distinct_last_days (partner_id, metric, day, pairs)
       SELECT partner_id, metric, day, sum(pairs) FROM usage_distinct_last_days GROUP BY 1, 2, 3""",
    """INSERT INTO usage_distinct_first_days (partner_id, account_id, metric, day, pairs)
       SELECT partner_id, account_id, metric, first_day, count(*) FROM usage_distinct_span GROUP BY 1, 2, 3, 4""",
    """INSERT INTO usage_partner_distinct_first_days (partner_id, metric, day, pairs)
       SELECT partner_id, metric, day, sum(pairs) FROM usage_distinct_first_days GROUP BY 1, 2, 3""",
)
