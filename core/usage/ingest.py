"""Usage metering: recording usage events (the one ingestion path). Validation lives in core.usage.validation,
period locks in core.usage.periods, the exact period quantities billing charges in core.usage.aggregates and
the dashboard queries in core.usage.reports.

Ingestion (record_events) in one transaction, owned by the caller:

1. validate every row in Python (one validation for the API, the CSV page and the CLI); any bad row raises
   BatchValidationError with per-row messages and nothing is written;
2. take the period guard of the batch's accounts and flag the events of finalised periods (corrections);
3. COPY the rows into a temporary staging table (usage_events and usage_event_ids have row-level security,
   under which PostgreSQL refuses COPY FROM for the app role; the staging table has none). The common case,
   every event new: in a savepoint, one plain INSERT ... SELECT of the keys into usage_event_ids and one of the
   rows into usage_events (partitioned by month), then the database computes the batch's groups (sum, count,
   max, latest, per account, metric and day) from the stage. The primary key (partner_id, account_id, event_id)
   of usage_event_ids is the idempotency key: if an event id is stored already (or by a concurrent batch,
   which the INSERT waits for) the INSERT fails, is rolled back, and the batch goes through
   INSERT ... ON CONFLICT DO NOTHING RETURNING in key order instead, so that only the rows really inserted
   are aggregated and a concurrent identical batch inserts (and aggregates) nothing;
4. upsert the daily and monthly aggregates (and the distinct values of unique_count metrics, and the
   per-value sums of declared dimensions: core.usage.dimensions) from those inserted rows, in the same
   transaction, so aggregates always equal the raw events;
5. call the ``on_events_recorded`` hooks (threshold alerts, prepaid-credit draws) in the same transaction.

Billing day: an event belongs to the UTC date of its ``occurred_at`` (naive timestamps are read as UTC).

Late events: an event whose day falls in a locked period (a final statement, see lock_period) is stored
with ``correction = true``, is left out of every aggregate and is reported as "needs a correction".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

import psycopg.errors
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.usage import dimensions as usage_dimensions
from core.usage.aggregates import update_rollups
from core.usage.metrics import get_metrics
from core.usage.periods import in_locked, locked_ranges, period_guard
from core.usage.validation import check_events, validate_batch


@dataclass(frozen=True)
class UsageGroup:
    """What one batch added for one (account, metric, UTC day): the input of on_events_recorded hooks."""

    account_id: int
    metric: str
    day: date
    quantity: Decimal  # sum of the inserted events' quantities
    events: int  # number of inserted events
    first_event_id: str  # smallest and largest inserted event id (string order)
    last_event_id: str


@dataclass
class IngestResult:
    received: int = 0
    inserted: int = 0  # new events counted in the aggregates
    duplicates: int = 0  # event ids seen before (or twice in the batch): skipped
    corrections: int = 0  # new events in a locked (finalised) period: stored, need a correction
    groups: list[UsageGroup] = field(default_factory=list)
    correction_groups: list[UsageGroup] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "inserted": self.inserted, "duplicates": self.duplicates,
                "corrections": self.corrections}


# Hooks called inside the ingestion transaction after a batch is written:
# fn(session, partner_id, groups: list[UsageGroup]) -> None. Corrections are not passed (not billed).
on_events_recorded: list[Callable[[Session, int, list[UsageGroup]], None]] = []


# ---------------------------------------------------------------- writing


_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS usage_stage (
  account_id bigint, event_id text, metric text, quantity numeric, occurred_at timestamptz, day date,
  source text, properties text, correction boolean NOT NULL DEFAULT false) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS usage_groups (
  account_id bigint, metric text, day date, correction boolean, qty_sum numeric, events bigint,
  qty_max numeric, last_at timestamptz, last_event_id text, last_qty numeric, min_event_id text,
  max_event_id text) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS usage_new_distinct (
  account_id bigint, metric text, day date, value text) ON COMMIT DELETE ROWS;
TRUNCATE usage_stage, usage_groups, usage_new_distinct;
SET LOCAL work_mem = '64MB';
"""
# work_mem: the key-order sort and the group sort of a 50k-event batch stay in memory (the default 4 MB
# spills them to disk). LOCAL: only for the ingesting transaction.

# Distinct values of unique_count metrics, as the database reads them (properties ->> key).
_STAGE_DISTINCT_SQL = """
INSERT INTO usage_new_distinct
SELECT DISTINCT account_id, metric, day, v FROM (
  SELECT account_id, metric, day, CAST(properties AS jsonb) ->> (CAST(:props AS jsonb) ->> metric) AS v
  FROM usage_stage WHERE NOT correction AND metric = ANY(CAST(:uq AS text[]))) x
WHERE v IS NOT NULL
"""

# The fallback (some event ids already stored): idempotent insert in key order (two overlapping batches
# wait for each other, never deadlock); only the rows really inserted are aggregated.
_INSERT_SQL = """
WITH k AS (
  INSERT INTO usage_event_ids (partner_id, account_id, event_id, day)
  SELECT :p, account_id, event_id, day FROM usage_stage ORDER BY account_id, event_id
  ON CONFLICT (partner_id, account_id, event_id) DO NOTHING
  RETURNING account_id, event_id
), ins AS (
  INSERT INTO usage_events AS e
    (partner_id, account_id, event_id, metric, quantity, occurred_at, day, source, properties, correction)
  SELECT :p, s.account_id, s.event_id, metric, quantity, occurred_at, day, source, CAST(properties AS jsonb),
         correction
  FROM usage_stage s JOIN k ON k.account_id = s.account_id AND k.event_id = s.event_id
  RETURNING account_id, event_id, metric, quantity, occurred_at, day, correction,
            properties ->> (CAST(:props AS jsonb) ->> metric) AS distinct_value, properties
), dim AS (  -- events of metrics with a declared dimension (core.usage.dimensions)
  INSERT INTO usage_dim_stage SELECT account_id, metric, day, quantity, properties FROM ins
  WHERE NOT correction AND properties IS NOT NULL AND metric = ANY(CAST(:dims AS text[]))
), grp AS (
  INSERT INTO usage_groups
  SELECT account_id, metric, day, correction, sum(quantity), count(*), max(quantity), max(occurred_at),
         (array_agg(event_id ORDER BY occurred_at DESC, event_id DESC))[1],
         (array_agg(quantity ORDER BY occurred_at DESC, event_id DESC))[1],
         min(event_id), max(event_id)
  FROM ins GROUP BY account_id, metric, day, correction
)
INSERT INTO usage_new_distinct
SELECT DISTINCT account_id, metric, day, distinct_value FROM ins
WHERE distinct_value IS NOT NULL AND NOT correction
"""

# Later wins for "latest": the greater (last_at, last_event_id).
_UPSERT_SET = """
  qty_sum = t.qty_sum + EXCLUDED.qty_sum,
  events = t.events + EXCLUDED.events,
  qty_max = GREATEST(t.qty_max, EXCLUDED.qty_max),
  last_qty = CASE WHEN (EXCLUDED.last_at, EXCLUDED.last_event_id) > (t.last_at, t.last_event_id)
                  THEN EXCLUDED.last_qty ELSE t.last_qty END,
  last_event_id = CASE WHEN (EXCLUDED.last_at, EXCLUDED.last_event_id) > (t.last_at, t.last_event_id)
                  THEN EXCLUDED.last_event_id ELSE t.last_event_id END,
  last_at = GREATEST(t.last_at, EXCLUDED.last_at)
"""

_DAILY_SQL = f"""
INSERT INTO usage_daily AS t
  (partner_id, account_id, metric, day, qty_sum, events, qty_max, last_at, last_event_id, last_qty)
SELECT :p, account_id, metric, day, qty_sum, events, qty_max, last_at, last_event_id, last_qty
FROM usage_groups WHERE NOT correction ORDER BY account_id, metric, day
ON CONFLICT (partner_id, account_id, metric, day) DO UPDATE SET {_UPSERT_SET}
"""

_MONTHLY_SQL = f"""
INSERT INTO usage_monthly AS t
  (partner_id, account_id, metric, month, qty_sum, events, qty_max, last_at, last_event_id, last_qty)
SELECT :p, account_id, metric, CAST(date_trunc('month', day) AS date), sum(qty_sum), sum(events), max(qty_max),
       max(last_at), (array_agg(last_event_id ORDER BY last_at DESC, last_event_id DESC))[1],
       (array_agg(last_qty ORDER BY last_at DESC, last_event_id DESC))[1]
FROM usage_groups WHERE NOT correction
GROUP BY account_id, metric, CAST(date_trunc('month', day) AS date)
ORDER BY account_id, metric, 4
ON CONFLICT (partner_id, account_id, metric, month) DO UPDATE SET {_UPSERT_SET}
"""

# Partner-level additive rollups (migration 0008): one row per (metric, day) / (metric, month) of the batch.
_PARTNER_DAILY_SQL = """
INSERT INTO usage_partner_daily AS t (partner_id, metric, day, qty_sum, events)
SELECT :p, metric, day, sum(qty_sum), sum(events) FROM usage_groups WHERE NOT correction
GROUP BY metric, day ORDER BY metric, day
ON CONFLICT (partner_id, metric, day) DO UPDATE SET qty_sum = t.qty_sum + EXCLUDED.qty_sum,
                                                    events = t.events + EXCLUDED.events
"""

_PARTNER_MONTHLY_SQL = """
INSERT INTO usage_partner_monthly AS t (partner_id, metric, month, qty_sum, events)
SELECT :p, metric, CAST(date_trunc('month', day) AS date), sum(qty_sum), sum(events) FROM usage_groups
WHERE NOT correction GROUP BY 2, 3 ORDER BY 2, 3
ON CONFLICT (partner_id, metric, month) DO UPDATE SET qty_sum = t.qty_sum + EXCLUDED.qty_sum,
                                                      events = t.events + EXCLUDED.events
"""

_DISTINCT_SQL = """
WITH d AS (
  INSERT INTO usage_distinct (partner_id, account_id, metric, day, value)
  SELECT :p, account_id, metric, day, value FROM usage_new_distinct ORDER BY account_id, metric, day, value
  ON CONFLICT DO NOTHING
  RETURNING account_id, metric, day
)
UPDATE usage_daily u SET distinct_values = u.distinct_values + c.n
FROM (SELECT account_id, metric, day, count(*) AS n FROM d GROUP BY account_id, metric, day) c
WHERE u.partner_id = :p AND u.account_id = c.account_id AND u.metric = c.metric AND u.day = c.day
"""


# The idempotency key (usage_event_ids, migration 0020) is written first: usage_events is partitioned by month
# and could only refuse a repeated event id within one month. Both come from the stage (no COPY under RLS).
_KEYS_FROM_STAGE_SQL = ("INSERT INTO usage_event_ids (partner_id, account_id, event_id, day) "
                        "SELECT :p, account_id, event_id, day FROM usage_stage")
_EVENTS_FROM_STAGE_SQL = ("INSERT INTO usage_events (partner_id, account_id, event_id, metric, quantity, occurred_at, "
                          "day, source, properties, correction) SELECT :p, account_id, event_id, metric, quantity, "
                          "occurred_at, day, source, CAST(properties AS jsonb), correction FROM usage_stage")
_STAGE_COLUMNS = "account_id, event_id, metric, quantity, occurred_at, day, source, properties"
# Binary COPY (about half the cost of text on both sides); properties travel as their JSON text.
_STAGE_COPY_SQL = f"COPY usage_stage ({_STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)"  # correction: false
_STAGE_COPY_FLAGGED_SQL = f"COPY usage_stage ({_STAGE_COLUMNS}, correction) FROM STDIN (FORMAT BINARY)"
_STAGE_TYPES = ["int8", "text", "text", "numeric", "timestamptz", "date", "text", "text"]

# The common path's groups and dimension rows, computed by the database from the stage: the work runs in the
# database server's process, beside the Python of the next batch (two ingesting threads of one process share
# one interpreter lock, so Python time is what limits them). The same statistics as the fallback's `grp`, without
# its ordered aggregates (a sort of the whole batch): a hash aggregate, then each group's events at its last time.
_GROUPS_FROM_STAGE_SQL = """
WITH dim AS (  -- events of metrics with a declared dimension (core.usage.dimensions)
  INSERT INTO usage_dim_stage SELECT account_id, metric, day, quantity, CAST(properties AS jsonb) FROM usage_stage
  WHERE NOT correction AND properties IS NOT NULL AND metric = ANY(CAST(:dims AS text[]))
), g AS (
  SELECT account_id, metric, day, correction, sum(quantity) AS q, count(*) AS n, max(quantity) AS mx,
         max(occurred_at) AS last_at, min(event_id) AS mi, max(event_id) AS ma
  FROM usage_stage GROUP BY account_id, metric, day, correction
)  -- the latest event of each group: its events at the group's last time, the greatest event id first
INSERT INTO usage_groups
SELECT DISTINCT ON (g.account_id, g.metric, g.day, g.correction)
       g.account_id, g.metric, g.day, g.correction, q, n, mx, g.last_at, s.event_id, s.quantity, mi, ma
FROM g JOIN usage_stage s ON s.account_id = g.account_id AND s.metric = g.metric AND s.day = g.day
  AND s.correction = g.correction AND s.occurred_at = g.last_at
ORDER BY g.account_id, g.metric, g.day, g.correction, s.event_id DESC
"""


def _copy(session: Session, sql: str, rows: Iterable[tuple], types: list[str]) -> None:
    raw = session.connection().connection.driver_connection
    assert raw is not None  # a live psycopg connection
    with raw.cursor() as cur, cur.copy(sql) as cp:
        cp.set_types(types)
        write = cp.write_row
        for row in rows:
            write(row)


_PROBE_SQL = ("SELECT 1 FROM usage_event_ids WHERE partner_id = :p AND account_id = :a1 AND event_id = :e1 "
              "UNION ALL SELECT 1 FROM usage_event_ids WHERE partner_id = :p AND account_id = :a2 AND event_id = :e2 LIMIT 1")


def _copy_all_new(session: Session, partner_id: int, rows: list[tuple]) -> bool:
    """The common case, every event new: the staged batch into usage_events with one plain INSERT ... SELECT,
    in a savepoint; the primary key still refuses any stored event id. False (and
    nothing written) when an event id is stored already or is being stored by a concurrent batch (this
    waits for it), or when two concurrent batches with shared event ids met in a deadlock: the caller then
    takes the staged ON CONFLICT path. A retried batch is recognised up front by its first or last event
    already being stored (two index probes), so it does not pay for a COPY that is bound to fail."""
    first, last = rows[0], rows[-1]
    if session.execute(text(_PROBE_SQL), {"p": partner_id, "a1": first[0], "e1": first[1], "a2": last[0],
                                          "e2": last[1]}).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.execute(text(_KEYS_FROM_STAGE_SQL), {"p": partner_id})
            session.execute(text(_EVENTS_FROM_STAGE_SQL), {"p": partner_id})
        return True
    except DBAPIError as exc:
        orig = exc.orig
        if isinstance(orig, psycopg.errors.UniqueViolation) and orig.diag.constraint_name == "pk_usage_event_ids":
            return False
        if isinstance(orig, psycopg.errors.DeadlockDetected):
            return False
        raise


def _write(session: Session, partner_id: int, rows: list[tuple], flags: list[bool] | None,
           unique_props: dict[str, str], latest_metrics: list[str]) -> list:
    """Insert the new events of a validated batch, upsert every aggregate, return the inserted groups."""
    session.execute(text(_STAGE_DDL))
    dims = usage_dimensions.prepare(session)
    props = json.dumps(unique_props)
    # outside the savepoint: kept for the fallback
    if flags is None:
        _copy(session, _STAGE_COPY_SQL, rows, _STAGE_TYPES)
    else:
        _copy(session, _STAGE_COPY_FLAGGED_SQL, ((*r, f) for r, f in zip(rows, flags, strict=True)),
              [*_STAGE_TYPES, "bool"])
    if _copy_all_new(session, partner_id, rows):
        session.execute(text(_GROUPS_FROM_STAGE_SQL), {"dims": list(dims)})
        if unique_props:
            # distinct values exactly as the database reads them (properties ->> key)
            session.execute(text(_STAGE_DISTINCT_SQL), {"props": props, "uq": list(unique_props)})
    else:
        session.execute(text(_INSERT_SQL), {"p": partner_id, "props": props, "dims": list(dims)})
    session.execute(text(_DAILY_SQL), {"p": partner_id})
    session.execute(text(_MONTHLY_SQL), {"p": partner_id})
    session.execute(text(_PARTNER_DAILY_SQL), {"p": partner_id})
    session.execute(text(_PARTNER_MONTHLY_SQL), {"p": partner_id})
    if unique_props:
        session.execute(text(_DISTINCT_SQL), {"p": partner_id})
    # closed months' distinct counts (migration 0021), the "as of" rollups (0027)
    update_rollups(session, partner_id, latest_metrics)
    usage_dimensions.upsert(session, partner_id, dims)
    return list(session.execute(text(
        "SELECT account_id, metric, day, correction, qty_sum, events, min_event_id, max_event_id "
        "FROM usage_groups ORDER BY account_id, metric, day")))


def record_events(session: Session, actor: Actor, partner_id: int, events: Iterable[dict], *,
                  default_source: str = "api", first_row: int = 1, now: datetime | None = None) -> IngestResult:
    """Record a batch of usage events for one partner: all or nothing, idempotent per event id.

    Event keys: account_id, metric, quantity, occurred_at, event_id, source (optional, default
    `default_source`), properties (optional JSON object). Row numbers in errors start at `first_row`.
    """
    authorize(actor, "usage.import", partner_id)
    events = events if isinstance(events, list) else list(events)
    now = now or clock.now()
    metrics = get_metrics(session)
    # raises BatchValidationError with every problem; nothing is written before this
    rows, in_batch_dups, account_ids = validate_batch(session, partner_id, events, metrics, default_source=default_source,
                                                 first_row=first_row, now=now)
    result = IngestResult(received=len(events), duplicates=in_batch_dups)
    if not rows:
        return result
    period_guard(session, partner_id, account_ids)
    locks = locked_ranges(session, partner_id, account_ids)
    flags = [in_locked(locks.get(r[0]), r[5]) for r in rows] if locks else None
    unique_props = {k: m.property for k, m in metrics.items() if m.aggregation == "unique_count" and m.property}
    latest_metrics = [k for k, m in metrics.items() if m.aggregation == "latest"]
    for r in _write(session, partner_id, rows, flags, unique_props, latest_metrics):
        g = UsageGroup(r.account_id, r.metric, r.day, r.qty_sum, r.events, r.min_event_id, r.max_event_id)
        if r.correction:
            result.correction_groups.append(g)
            result.corrections += r.events
        else:
            result.groups.append(g)
            result.inserted += r.events
    result.duplicates += len(rows) - result.inserted - result.corrections
    for hook in list(on_events_recorded):
        hook(session, partner_id, result.groups)
    if result.inserted or result.corrections:
        audit.record(session, actor, partner_id=partner_id, action="usage.import", entity="usage_batch",
                     entity_id=default_source,
                     after={**result.as_dict(), "accounts": sorted(account_ids)[:50]})
    return result


# ---------------------------------------------------------------- preview (CSV page)


@dataclass
class Preview:
    rows: int
    new: int
    duplicates: int
    corrections: int  # new events in a finalised period


def preview_events(session: Session, actor: Actor, partner_id: int, events: Iterable[dict], *,
                   default_source: str = "csv", first_row: int = 1) -> Preview:
    """Validate a batch exactly as record_events would and say what it would do; writes nothing.
    Raises BatchValidationError with the per-row problems."""
    authorize(actor, "usage.import", partner_id)
    events = events if isinstance(events, list) else list(events)
    rows, dups = check_events(session, partner_id, events, default_source=default_source, first_row=first_row)
    if not rows:
        return Preview(len(events), 0, dups, 0)
    existing = set(session.execute(text(
        "SELECT e.account_id, e.event_id FROM usage_event_ids e "
        "JOIN unnest(CAST(:a AS bigint[]), CAST(:e AS text[])) AS k(account_id, event_id) "
        "ON e.partner_id = :p AND e.account_id = k.account_id AND e.event_id = k.event_id"),
        {"p": partner_id, "a": [r[0] for r in rows], "e": [r[1] for r in rows]}).tuples())
    locks = locked_ranges(session, partner_id, {r[0] for r in rows})
    fresh = [r for r in rows if (r[0], r[1]) not in existing]
    corrections = sum(1 for r in fresh if in_locked(locks.get(r[0]), r[5]))
    return Preview(len(events), len(fresh) - corrections, dups + len(rows) - len(fresh), corrections)
