"""The benchmark data set: 20 partners, 2,000 customer accounts and N usage events over 13 months (or over
`months` months: the long-history set that bench.run compares with the small one).

Deterministic (fixed random seed, single-process generation) and skewed like real usage: an account's
share of the events falls steeply with its rank (account rank r ~ 2000 * u^3 for uniform u: the top 1%
of the accounts produce about a fifth of the events, the bottom half about 5%). Metrics are mixed as in
the product (pages and documents dominate; a few gauges and unique-count events).

The events are generated in SQL and the aggregates are built from them with one GROUP BY each: the
generator is about the data set, the ingestion path is measured separately by bench.run.

    python -m seeds.bulk --events 1000000 [--months 13]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from core import clock
from core.usage.aggregates import REBUILD_SQL
from db.engine import DATA_DIR, embedded_url, make_engine, server_for
from db.migrate import upgrade
from db.roles import tenant_tables

PARTNERS = 20
ACCOUNTS = 2000
MONTHS = 13
CHUNK = 1_000_000
SEED = 0.42
BENCH_DIR = DATA_DIR / "bench-pg"

# (metric, cumulative probability upper bound)
METRIC_MIX = [("pages", 0.35), ("documents", 0.65), ("credits", 0.80), ("messages", 0.90),
              ("api_requests", 0.96), ("data_mb", 0.98), ("unique_recipients", 0.995), ("keywords", 1.0)]


def usage_tables(conn) -> list[str]:
    """Every usage table that carries partner_id (events, keys, rollups, locks, dimensions): what removing a
    benchmark partner's usage has to clear. Read from the schema, so a new rollup is never left behind.
    Settlements are billing records (what a wallet was drawn for), not usage: never removed."""
    return [t for t in tenant_tables(conn) if t.startswith("usage_") and t != "usage_settlements"]


def bench_engine(data_dir=None) -> Engine:
    data_dir = (data_dir or BENCH_DIR).resolve()
    url = embedded_url(data_dir, cleanup_mode="stop")
    engine = make_engine(url, pool_size=4)
    _size_shared_buffers(engine, data_dir)
    return engine


def shared_buffers_mb() -> int:
    """A quarter of the machine's memory, at most 4 GB (PostgreSQL's usual advice for a dedicated server)."""
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return max(128, min(4096, total_mb // 4))


def _size_shared_buffers(engine: Engine, data_dir) -> None:
    """Give the benchmark server a real buffer pool instead of initdb's 128 MB. With 128 MB the 10M-event
    indexes live in the OS page cache, which this kind of VM reclaims under its own policy, so the same
    query ran 2-3x slower from one hour to the next. Set once (ALTER SYSTEM) and restart the server."""
    want = shared_buffers_mb()
    with engine.connect() as c:
        have = c.execute(text("SELECT setting::bigint * 8192 / 1048576 FROM pg_settings "
                              "WHERE name = 'shared_buffers'")).scalar_one()
    if have >= want:
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text(f"ALTER SYSTEM SET shared_buffers = '{want}MB'"))
    engine.dispose()
    from pgserver._commands import pg_ctl

    user = getattr(server_for(data_dir), "system_user", None)
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data_dir, user=user, timeout=120)


def window(today: date | None = None, months: int = MONTHS) -> tuple[datetime, datetime]:
    """From the first day of the month `months` - 1 months before today's month up to today 00:00 UTC
    (exclusive): 12 whole months plus the current month so far, by default."""
    today = today or clock.today()
    y, m = today.year, today.month - (months - 1)
    while m <= 0:
        y, m = y - 1, m + 12
    return datetime(y, m, 1, tzinfo=UTC), datetime(today.year, today.month, today.day, tzinfo=UTC)


def existing_size(engine: Engine) -> tuple[int, datetime, datetime] | None:
    with engine.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_meta (events bigint, starts timestamptz, "
                       "ends timestamptz, built_at timestamptz DEFAULT now())"))
        row = c.execute(text("SELECT events, starts, ends FROM bench_meta")).first()
    return (row.events, row.starts, row.ends) if row else None


def _metric_case() -> str:
    parts = " ".join(f"WHEN r < {p} THEN '{k}'" for k, p in METRIC_MIX)
    return f"CASE {parts} END"


def build(engine: Engine, events: int, log=print, months: int = MONTHS) -> tuple[datetime, datetime]:
    """(Re)build the data set with `events` events over `months` months; returns the time window."""
    upgrade(engine)
    start, end = window(months=months)
    _reset(engine)
    _partitions(engine, start, end)
    t0 = time.perf_counter()
    _insert_events(engine, events, start, int((end - start).total_seconds()), t0, log)
    log("  building indexes and aggregates ...")
    _aggregates(engine, events, start, end)
    in_time_order(engine)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE"))
    log(f"  data set ready in {time.perf_counter() - t0:,.0f} s")
    return start, end


def _reset(engine: Engine) -> None:
    """The bench partners and accounts afresh, the usage tables empty, the event indexes dropped."""
    with engine.begin() as c:
        c.execute(text("TRUNCATE usage_events, usage_event_ids, usage_daily, usage_monthly, usage_distinct, usage_period_locks, "
                       "usage_partner_daily, usage_partner_monthly, bench_meta"))
        c.execute(text("DELETE FROM customer_accounts WHERE partner_id IN "
                       "(SELECT id FROM partners WHERE slug LIKE 'bench-%')"))
        c.execute(text("DELETE FROM partners WHERE slug LIKE 'bench-%'"))
        c.execute(text("INSERT INTO partners (name, slug, currency, country) "
                       "SELECT 'Bench partner ' || i, 'bench-' || i, 'EUR', 'NO' FROM generate_series(1, :n) i"),
                  {"n": PARTNERS})
        # account rank i (0 = biggest) belongs to partner i % 20: every partner has big and small customers
        c.execute(text("""
            INSERT INTO customer_accounts (partner_id, name, country, currency)
            SELECT p.id, 'Customer ' || lpad(i::text, 4, '0'), 'NO', 'EUR'
            FROM generate_series(0, :n - 1) i
            JOIN partners p ON p.slug = 'bench-' || (i % :np + 1)
            ORDER BY i"""), {"n": ACCOUNTS, "np": PARTNERS})
        c.execute(text("CREATE TABLE IF NOT EXISTS bench_accounts (rank int PRIMARY KEY, partner_id bigint, "
                       "account_id bigint)"))
        c.execute(text("TRUNCATE bench_accounts"))
        c.execute(text("""
            INSERT INTO bench_accounts
            SELECT (regexp_replace(name, '\\D', '', 'g'))::int, partner_id, id FROM customer_accounts
            WHERE partner_id IN (SELECT id FROM partners WHERE slug LIKE 'bench-%')"""))
        # bulk load without the event keys, then build them sorted (far faster than row by row)
        c.execute(text("ALTER TABLE usage_events DROP CONSTRAINT IF EXISTS pk_usage_events"))
        c.execute(text("ALTER TABLE usage_event_ids DROP CONSTRAINT IF EXISTS pk_usage_event_ids"))


def _partitions(engine: Engine, start: datetime, end: datetime) -> None:
    """usage_events' monthly partitions for the data set's months (migration 0020)."""
    with engine.begin() as c:  # a year at a time: the function refuses more than 120 months in one call
        first, last = start.date(), end.date()
        while first <= last:
            upto = min(last, date(first.year, 12, 31))
            c.execute(text("SELECT usage_ensure_partitions(:s, :e)"), {"s": first, "e": upto})
            first = date(first.year + 1, 1, 1)


def _insert_events(engine: Engine, events: int, start: datetime, seconds: int, t0: float, log) -> None:
    done = 0
    while done < events:
        n = min(CHUNK, events - done)
        with engine.begin() as c:
            c.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
            c.execute(text("SELECT setseed(:s)"), {"s": SEED - (done // CHUNK % 1000) / 1000})
            c.execute(text(f"""
                INSERT INTO usage_events (partner_id, account_id, event_id, metric, quantity, occurred_at, day,
                                          source, properties)
                SELECT a.partner_id, a.account_id, 'ev' || g.n, x.metric,
                       CASE WHEN x.metric IN ('pages') THEN 1 + floor(x.r2 * 20)
                            WHEN x.metric = 'data_mb' THEN round((x.r2 * 5000)::numeric, 3)
                            WHEN x.metric = 'keywords' THEN 10 + floor(x.r2 * 90)
                            WHEN x.metric = 'credits' THEN round((x.r2 * 10)::numeric, 2)
                            ELSE 1 END,
                       x.ts, CAST(x.ts AT TIME ZONE 'UTC' AS date), 'bench',
                       CASE WHEN x.metric = 'unique_recipients' THEN jsonb_build_object('recipient', 'r' || floor(x.r2 * 300))
                            WHEN x.metric = 'documents' THEN jsonb_build_object('doc_type',
                                 (ARRAY['invoice','receipt','contract','letter'])[1 + floor(x.r2 * 4)::int])
                            ELSE NULL END
                FROM (SELECT n FROM generate_series(CAST(:d0 AS bigint), CAST(:d1 AS bigint)) n) g
                CROSS JOIN LATERAL (
                  SELECT floor(:acc * power(random(), 3))::int AS rank, random() AS r, random() AS r2,
                         CAST(:start AS timestamptz) + make_interval(secs => floor(random() * :secs)) AS ts,
                         g.n AS n2
                ) y
                CROSS JOIN LATERAL (SELECT {_metric_case().replace('r <', 'y.r <')} AS metric, y.r2, y.ts) x
                JOIN bench_accounts a ON a.rank = y.rank
            """), {"d0": done, "d1": done + n - 1, "acc": ACCOUNTS, "start": start, "secs": seconds})
        done += n
        log(f"  events: {done:,} ({done / (time.perf_counter() - t0):,.0f}/s)")


# The day (or month) each rollup is laid out by: ingestion writes it as time goes by.
_TIME_COLUMN = {"usage_distinct_span": "last_day", "usage_latest": "last_day", "usage_partner_latest_days": "last_day"}


def in_time_order(engine: Engine) -> None:
    """Rewrite every rollup table in the order of its day or month. Ingestion writes rows as time goes by,
    so a recent range's rows share pages. One GROUP BY per table writes them in key order instead
    (partner, account, metric, day), which spreads a month over the whole table. A dashboard then reads
    more pages the longer the history, which a real database does not. The events keep their key order
    (partitioned by month)."""
    with engine.begin() as c:
        for t in usage_tables(c):
            if t in ("usage_events", "usage_event_ids", "usage_period_locks"):
                continue
            col = _TIME_COLUMN.get(t) or c.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND data_type = 'date' "
                "ORDER BY ordinal_position LIMIT 1"), {"t": t}).scalar_one()
            c.execute(text(f"CREATE TEMP TABLE bench_reorder AS SELECT * FROM {t} ORDER BY {col}"))
            c.execute(text(f"TRUNCATE {t}"))
            c.execute(text(f"INSERT INTO {t} SELECT * FROM bench_reorder ORDER BY {col}"))
            c.execute(text("DROP TABLE bench_reorder"))


def _aggregates(engine: Engine, events: int, start: datetime, end: datetime) -> None:
    """The event indexes (built sorted) and every aggregate table, from the events."""
    with engine.begin() as c:
        c.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        c.execute(text("SET LOCAL work_mem = '256MB'"))
        # the history key of the partitioned table and the idempotency key (migration 0020)
        c.execute(text("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events "
                       "PRIMARY KEY (partner_id, account_id, day, occurred_at, event_id)"))
        c.execute(text("INSERT INTO usage_event_ids (partner_id, account_id, event_id, day) "
                       "SELECT partner_id, account_id, event_id, day FROM usage_events"))
        c.execute(text("ALTER TABLE usage_event_ids ADD CONSTRAINT pk_usage_event_ids "
                       "PRIMARY KEY (partner_id, account_id, event_id)"))
        c.execute(text("""
            INSERT INTO usage_daily (partner_id, account_id, metric, day, qty_sum, events, qty_max, last_at,
                                     last_event_id, last_qty)
            SELECT partner_id, account_id, metric, day, sum(quantity), count(*), max(quantity), max(occurred_at),
                   (array_agg(event_id ORDER BY occurred_at DESC, event_id DESC))[1],
                   (array_agg(quantity ORDER BY occurred_at DESC, event_id DESC))[1]
            FROM usage_events GROUP BY partner_id, account_id, metric, day"""))
        c.execute(text("""
            INSERT INTO usage_distinct (partner_id, account_id, metric, day, value)
            SELECT DISTINCT partner_id, account_id, metric, day, properties ->> 'recipient'
            FROM usage_events WHERE metric = 'unique_recipients'"""))
        c.execute(text("""
            UPDATE usage_daily u SET distinct_values = d.n
            FROM (SELECT partner_id, account_id, metric, day, count(*) n FROM usage_distinct
                  GROUP BY 1, 2, 3, 4) d
            WHERE (u.partner_id, u.account_id, u.metric, u.day) = (d.partner_id, d.account_id, d.metric, d.day)"""))
        c.execute(text("""
            INSERT INTO usage_monthly (partner_id, account_id, metric, month, qty_sum, events, qty_max, last_at,
                                       last_event_id, last_qty)
            SELECT partner_id, account_id, metric, CAST(date_trunc('month', day) AS date), sum(qty_sum), sum(events),
                   max(qty_max), max(last_at), (array_agg(last_event_id ORDER BY last_at DESC, last_event_id DESC))[1],
                   (array_agg(last_qty ORDER BY last_at DESC, last_event_id DESC))[1]
            FROM usage_daily GROUP BY 1, 2, 3, 4"""))
        c.execute(text("INSERT INTO usage_partner_daily (partner_id, metric, day, qty_sum, events) "
                       "SELECT partner_id, metric, day, sum(qty_sum), sum(events) FROM usage_daily GROUP BY 1, 2, 3"))
        c.execute(text("INSERT INTO usage_partner_monthly (partner_id, metric, month, qty_sum, events) "
                       "SELECT partner_id, metric, month, sum(qty_sum), sum(events) FROM usage_monthly "
                       "GROUP BY 1, 2, 3"))
        for sql in REBUILD_SQL:  # the closed months' distinct-count rollups (migration 0021)
            c.execute(text(sql))
        c.execute(text("INSERT INTO bench_meta (events, starts, ends) VALUES (:n, :s, :e)"),
                  {"n": events, "s": start, "e": end})


def months_of(start: datetime, end: datetime) -> int:
    """The number of calendar months a window [start, end) touches."""
    last = end - timedelta(microseconds=1)
    return (last.year - start.year) * 12 + last.month - start.month + 1


def ensure(engine: Engine, events: int, log=print, months: int = MONTHS) -> tuple[datetime, datetime, bool]:
    """Reuse the data set when it already has `events` events over `months` months; returns (start, end,
    reused)."""
    upgrade(engine)
    have = existing_size(engine)
    if have and have[0] == events and months_of(have[1], have[2]) == months:
        log(f"Reusing the data set of {events:,} events over {months} months.")
        return have[1], have[2], True
    log(f"Building a data set of {events:,} events over {months} months (deterministic seed {SEED}) ...")
    start, end = build(engine, events, log, months)
    return start, end, False


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m seeds.bulk")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--months", type=int, default=MONTHS)
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    eng = bench_engine(args.data_dir)
    ensure(eng, args.events, months=args.months)
    eng.dispose()


if __name__ == "__main__":
    main()
