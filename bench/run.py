"""The benchmark: `python -m bench.run --events N` (what `make bench EVENTS=N` runs).

Builds or reuses the data set (seeds/bulk.py, in the embedded PostgreSQL at .data/bench-pg) and, in two more
databases, the sets that the dashboard queries are also measured on: the small one (.data/bench-pg-small,
--small-events over --small-months: 1M events over 25 months by default) and the long-history one
(.data/bench-pg-long: the run's events over a history as many times longer, so its months are as dense as the
small set's). It runs every measurement function in MEASUREMENTS and writes bench/results.json WHOLE
(never merged with older figures; --only writes bench/results-partial.json). Every figure carries the time,
the cores, the load average and the PostgreSQL version of the moment it was measured. A measurement function
takes a BenchContext and returns {figure name: {"value": ..., "unit": ..., "target": ...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, text

from bench import dashboards
from core.accounts.actor import Actor
from core.bootstrap import bootstrap
from core.usage.ingest import record_events
from db.engine import app_url, make_engine, tenant_session
from db.roles import ensure_app_role
from seeds import bulk

RESULTS = Path(__file__).resolve().parent / "results.json"
# The small set's history: the dashboards' 12 months and the 12 months before them (their previous period,
# which the overviews also total), so that the small and the long set differ only in the history's length.
SMALL_MONTHS = 25


@dataclass
class BenchContext:
    engine: Engine
    url: str
    events: int
    start: datetime  # data window [start, end)
    end: datetime
    notes: dict = field(default_factory=dict)
    small: BenchContext | None = None  # the small data set (its own database), for the size ratios
    long: BenchContext | None = None  # the run's events over a long history at the small set's density

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


Figures = dict[str, dict]
MEASUREMENTS: list[Callable[[BenchContext], Figures]] = []


def measurement(fn: Callable[[BenchContext], Figures]) -> Callable[[BenchContext], Figures]:
    """Register a measurement (other modules in bench/ may register theirs the same way)."""
    MEASUREMENTS.append(fn)
    return fn


def fig(value, unit: str, target: str | None) -> dict:
    return {"value": value, "unit": unit, "target": target}


def _p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


# ---------------------------------------------------------------- ingestion


INGEST_ACCOUNTS = 50
INGEST_BATCH = 50_000


def _ingest_rows(n: int, accounts: list[int], start: datetime) -> list[dict]:
    """Deterministic events for the ingest test (the same rows go to the bare COPY)."""
    metrics = ["pages", "documents", "credits", "messages", "api_requests"]
    span = 28 * 86400
    return [{"account_id": accounts[(i * 7919) % len(accounts)], "event_id": f"in-{i}", "metric": metrics[i % 5],
             "quantity": Decimal(1 + i % 17), "occurred_at": start + timedelta(seconds=(i * 104729) % span),
             "source": "bench", "properties": {"mailing": f"M{i % 97}"} if i % 3 == 0 else None}
            for i in range(n)]


def _ingest_partner(engine: Engine) -> tuple[int, list[int]]:
    """The ingest partner and its accounts with no usage (kept between runs: its audit entries are
    append-only, so the partner itself is never deleted)."""
    with engine.begin() as c:
        pid = c.execute(text("SELECT id FROM partners WHERE slug = 'bench-ingest'")).scalar()
        if pid is None:
            pid = c.execute(text("INSERT INTO partners (name, slug, currency) VALUES ('Bench ingest', 'bench-ingest', "
                                 "'EUR') RETURNING id")).scalar_one()
            c.execute(text("INSERT INTO customer_accounts (partner_id, name, country, currency) "
                           "SELECT :p, 'Ingest ' || i, 'NO', 'EUR' FROM generate_series(1, :n) i"),
                      {"p": pid, "n": INGEST_ACCOUNTS})
        for t in bulk.usage_tables(c):
            c.execute(text(f"DELETE FROM {t} WHERE partner_id = :p"), {"p": pid})
        accs = list(c.execute(text("SELECT id FROM customer_accounts WHERE partner_id = :p ORDER BY id"),
                              {"p": pid}).scalars())
    return pid, accs


INGEST_WORKERS = 2  # concurrent batches (separate connections and transactions), like two API clients


def _in_workers(fn: Callable[[int], None], n_batches: int, workers: int) -> float:
    """Run fn(batch_index) for every batch on `workers` threads (batch i on thread i % workers); seconds."""
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(w, n_batches, workers):
                fn(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


_FLOOR_KEYS_SQL = "COPY usage_event_ids (partner_id, account_id, event_id, day) FROM STDIN"


def _app_engine(ctx: BenchContext) -> Engine:
    """The app's least-privilege role on the benchmark server (created and granted by the owner)."""
    ensure_app_role(ctx.engine)
    return make_engine(app_url(ctx.url), pool_size=INGEST_WORKERS + 2)


_FLOOR_COPY_SQL = ("COPY usage_events (partner_id, account_id, event_id, metric, quantity, occurred_at, day, source, "
                   "properties) FROM STDIN")


@measurement
def ingestion(ctx: BenchContext) -> Figures:
    """record_events (the real path: validation, idempotent insert, aggregates, billing hooks, audit) in
    50k-event batches, each its own transaction, from one and from INGEST_WORKERS concurrent workers;
    beside a bare COPY of the same rows into an unindexed table with the same concurrency."""
    n = max(100_000, min(500_000, ctx.events // 20))
    batches = range(0, n, INGEST_BATCH)
    staff_of = {}
    rows: list[dict] = []

    def setup() -> None:
        pid, accs = _ingest_partner(ctx.engine)
        staff_of["pid"] = pid
        staff_of["actor"] = Actor(user_id=0, partner_id=pid, role="partner_staff", email="bench",
                                  display_name="Bench")
        rows[:] = _ingest_rows(n, accs, ctx.end - timedelta(days=28))

    inserted = []
    app = _app_engine(ctx)  # as the app ingests: the app role, under row-level security, bound to the partner

    def ingest(i: int) -> None:
        with tenant_session(app, staff_of["pid"]) as s, s.begin():
            inserted.append(record_events(s, staff_of["actor"], staff_of["pid"], rows[batches[i]:batches[i] + INGEST_BATCH],
                                          default_source="bench").inserted)

    def resend(i: int) -> None:
        with tenant_session(app, staff_of["pid"]) as s, s.begin():
            assert record_events(s, staff_of["actor"], staff_of["pid"],
                                 rows[batches[i]:batches[i] + INGEST_BATCH]).inserted == 0

    seconds = {}
    for workers in (1, INGEST_WORKERS):
        setup()
        inserted.clear()
        seconds[workers] = _in_workers(ingest, len(batches), workers)
        assert sum(inserted) == n, (sum(inserted), n)
        _check_ingested(ctx.engine, staff_of["pid"], rows)
    # the same batches again: all duplicates (the idempotent path's cost for retries)
    dup_s = _in_workers(resend, len(batches), INGEST_WORKERS)
    # bare COPY of the same rows (already typed) into an unindexed table
    copy_rows = [(staff_of["pid"], r["account_id"], r["event_id"], r["metric"], r["quantity"], r["occurred_at"],
                  r["occurred_at"].date(), r["source"],
                  json.dumps(r["properties"]) if r["properties"] else None) for r in rows]

    def bare_copy(i: int) -> None:
        with ctx.engine.begin() as c:
            raw = c.connection.driver_connection
            with raw.cursor() as cur, cur.copy("COPY bench_bare_copy FROM STDIN") as cp:
                for r in copy_rows[batches[i]:batches[i] + INGEST_BATCH]:
                    cp.write_row(r)

    copy_seconds = {}
    for workers in (1, INGEST_WORKERS):
        with ctx.engine.begin() as c:
            c.execute(text("DROP TABLE IF EXISTS bench_bare_copy"))
            c.execute(text("CREATE TABLE bench_bare_copy (partner_id bigint, account_id bigint, event_id text, "
                           "metric text, quantity numeric(24,6), occurred_at timestamptz, day date, source text, "
                           "properties jsonb)"))
        copy_seconds[workers] = _in_workers(bare_copy, len(batches), workers)
    with ctx.engine.begin() as c:
        c.execute(text("DROP TABLE bench_bare_copy"))

    # The storage floor: the same rows COPYed straight into usage_events itself (partitioned by month, its
    # history key) and their keys into usage_event_ids (the idempotency key, migration 0020), with no
    # validation, no duplicate handling and no aggregates. No ingestion path that stores events with those
    # two keys can be faster than this.
    def floor_copy(i: int) -> None:
        with ctx.engine.begin() as c:
            raw = c.connection.driver_connection
            with raw.cursor() as cur, cur.copy(_FLOOR_KEYS_SQL) as cp:
                for r in copy_rows[batches[i]:batches[i] + INGEST_BATCH]:
                    cp.write_row((r[0], r[1], r[2], r[6]))
            with raw.cursor() as cur, cur.copy(_FLOOR_COPY_SQL) as cp:
                for r in copy_rows[batches[i]:batches[i] + INGEST_BATCH]:
                    cp.write_row(r)

    floor_seconds = {}
    for workers in (1, INGEST_WORKERS):
        with ctx.engine.begin() as c:
            c.execute(text("DELETE FROM usage_events WHERE partner_id = :p"), {"p": staff_of["pid"]})
            c.execute(text("DELETE FROM usage_event_ids WHERE partner_id = :p"), {"p": staff_of["pid"]})
        floor_seconds[workers] = _in_workers(floor_copy, len(batches), workers)
    app.dispose()
    _ingest_partner(ctx.engine)  # remove the ingested rows again: the data set stays as generated
    # ... and tidy up as autovacuum would before the queries are measured: the deleted rows' dead tuples
    # and cleared visibility-map bits would otherwise turn index-only scans into heap visits.
    with ctx.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for t in ("usage_events", "usage_event_ids", "usage_daily", "usage_monthly", "usage_distinct",
                  "usage_partner_daily", "usage_partner_monthly"):
            c.execute(text(f"VACUUM ANALYZE {t}"))
    rate = {w: n / sec for w, sec in seconds.items()}
    copy_rate = {w: n / sec for w, sec in copy_seconds.items()}
    floor_rate = {w: n / sec for w, sec in floor_seconds.items()}
    ctx.notes["ingest"] = {"events": n, "batch": INGEST_BATCH, "workers": INGEST_WORKERS,
                           "seconds": {str(w): round(v, 2) for w, v in seconds.items()},
                           "copy_seconds": {str(w): round(v, 2) for w, v in copy_seconds.items()},
                           "floor_seconds": {str(w): round(v, 2) for w, v in floor_seconds.items()},
                           "duplicate_resend_seconds": round(dup_s, 2)}
    w = INGEST_WORKERS
    return {
        "ingest_events_per_s": fig(round(rate[w]), "events/s", ">= 100000"),
        "ingest_copy_events_per_s": fig(round(copy_rate[w]), "events/s", None),
        # issue 18 replaced the bare-COPY target (0.5) by the storage floor's (docs/performance.md)
        "ingest_vs_copy_ratio": fig(round(rate[w] / copy_rate[w], 3), "ratio", None),
        "ingest_events_per_s_one_worker": fig(round(rate[1]), "events/s", None),
        "ingest_copy_events_per_s_one_worker": fig(round(copy_rate[1]), "events/s", None),
        "ingest_vs_copy_ratio_one_worker": fig(round(rate[1] / copy_rate[1], 3), "ratio", None),
        "ingest_duplicates_per_s": fig(round(n / dup_s), "events/s", None),
        "ingest_floor_events_per_s": fig(round(floor_rate[w]), "events/s", None),
        "ingest_floor_vs_copy_ratio": fig(round(floor_rate[w] / copy_rate[w], 3), "ratio", None),
        "ingest_vs_floor_ratio": fig(round(rate[w] / floor_rate[w], 3), "ratio", ">= 0.8"),
        "ingest_floor_events_per_s_one_worker": fig(round(floor_rate[1]), "events/s", None),
    }


def _check_ingested(engine: Engine, pid: int, rows: list[dict]) -> None:
    """The measured run really did the work: every event stored once, aggregates equal to the events."""
    with engine.connect() as c:
        events, qty = c.execute(text("SELECT count(*), sum(quantity) FROM usage_events WHERE partner_id = :p"),
                                {"p": pid}).one()
        daily = c.execute(text("SELECT sum(events), sum(qty_sum) FROM usage_daily WHERE partner_id = :p"),
                          {"p": pid}).one()
        partner = c.execute(text("SELECT sum(events), sum(qty_sum) FROM usage_partner_daily WHERE partner_id = :p"),
                            {"p": pid}).one()
    expected = sum((r["quantity"] for r in rows), Decimal(0))
    assert (events, qty) == (len(rows), expected), (events, qty)
    assert tuple(daily) == (len(rows), expected) == tuple(partner), (daily, partner)


# ---------------------------------------------------------------- dashboard queries (bench/dashboards.py)


def _biggest(ctx: BenchContext) -> tuple[int, int]:
    """(partner with the most events, its biggest account)."""
    return dashboards.biggest(ctx.engine)


@measurement
def dashboard_queries(ctx: BenchContext) -> Figures:
    """Every dashboard query at the run's size and, in the same run, at the small data set's size and on the
    long-history set (each in its own database), each answer checked against the raw events.

    Two ratios of p95 against the small set:
    - `_p95_ratio_history` (target): the run's events spread over a history as many times longer as they are
      more numerous, so the months the dashboards read are as dense as the small set's. The dashboards must
      cost the same whatever the history's size.
    - `_p95_ratio_vs_small` (information): the run's data set, whose 13 months hold about twenty times the
      events of the small set's last 13. Its current year is denser: more accounts have usage on more days,
      so the same question has more rollup rows to read and a bigger answer (`_rows` against `_rows_small`)."""
    detail = dashboards.measure_queries(ctx.engine, ctx.last_day, ctx.end)
    small = dashboards.measure_queries(ctx.small.engine, ctx.small.last_day, ctx.small.end) if ctx.small else {}
    long = dashboards.measure_queries(ctx.long.engine, ctx.long.last_day, ctx.long.end) if ctx.long else {}
    figures: Figures = {}
    for name, d in detail.items():
        figures[f"q_{name}_p95_ms"] = fig(d["p95_ms"], "ms", "<= 100")
        figures[f"q_{name}_median_ms"] = fig(d["median_ms"], "ms", None)
        figures[f"q_{name}_rows"] = fig(d["rows"], "rows", None)
        if "speedup" in d:
            figures[f"q_{name}_speedup_vs_raw"] = fig(d["speedup"], "x",
                                                      ">= 20" if name in dashboards.SPEEDUP_TARGETED else None)
        if name in small:
            d["small"] = small[name]
            figures[f"q_{name}_p95_ms_small"] = fig(small[name]["p95_ms"], "ms", None)
            figures[f"q_{name}_median_ms_small"] = fig(small[name]["median_ms"], "ms", None)
            figures[f"q_{name}_rows_small"] = fig(small[name]["rows"], "rows", None)
            ratio = round(d["p95_ms"] / max(small[name]["p95_ms"], 0.01), 2)
            figures[f"q_{name}_p95_ratio_vs_small"] = fig(ratio, "ratio", None)
        if name in long:
            d["long"] = long[name]
            figures[f"q_{name}_p95_ms_long"] = fig(long[name]["p95_ms"], "ms", "<= 100")
            figures[f"q_{name}_median_ms_long"] = fig(long[name]["median_ms"], "ms", None)
            figures[f"q_{name}_rows_long"] = fig(long[name]["rows"], "rows", None)
            if name in small:
                ratio = round(long[name]["p95_ms"] / max(small[name]["p95_ms"], 0.01), 2)
                figures[f"q_{name}_p95_ratio_history"] = fig(ratio, "ratio", "<= 1.2")
    ctx.notes["queries"] = detail
    if ctx.small:
        ctx.notes["small_dataset_events"] = ctx.small.events
    if ctx.long:
        ctx.notes["long_dataset"] = {"events": ctx.long.events, "window": [str(ctx.long.start.date()),
                                                                          str(ctx.long.last_day)]}
    worst = max(detail.values(), key=lambda d: d["p95_ms"])
    figures["dashboard_p95_ms"] = fig(worst["p95_ms"], "ms", "<= 100")
    figures["dashboard_speedup_vs_raw"] = fig(min(d["speedup"] for n, d in detail.items()
                                                  if n in dashboards.SPEEDUP_TARGETED), "x", ">= 20")
    for suffix, target in (("_p95_ratio_vs_small", None), ("_p95_ratio_history", "<= 1.2")):
        ratios = [v["value"] for k, v in figures.items() if k.startswith("q_") and k.endswith(suffix)]
        if ratios:
            figures[f"dashboard{suffix}"] = fig(max(ratios), "ratio", target)
    return figures


# ---------------------------------------------------------------- the dashboard page (AppTest)


@measurement
def dashboard_page(ctx: BenchContext) -> Figures:
    """Run the partner dashboard page in AppTest in a separate process (its peak RSS is the page's)."""
    pid, _ = _biggest(ctx)
    res = dashboards.page_probe(ctx.url, pid, (ctx.end - timedelta(days=365)).date(), ctx.last_day)
    ctx.notes["page"] = res
    return {
        "dashboard_page_s": fig(res["page_s"], "s", "< 1"),
        "dashboard_page_rerun_s": fig(res["rerun_s"], "s", None),
        "dashboard_page_cold_s": fig(res["cold_s"], "s", None),  # a fresh process's first session (imports)
        "dashboard_page_peak_mb": fig(res["peak_mb"], "MB", None),
    }


# ---------------------------------------------------------------- statements (bench/statements.py)


@measurement
def statements_month(ctx: BenchContext) -> Figures:
    """Statements for all customer accounts of the data set for the last full month of the window."""
    from bench.statements import last_full_month, measure

    return measure(ctx.engine, last_full_month(ctx.end.date()))


# ---------------------------------------------------------------- wallet draws (bench/wallet.py)


@measurement
def wallet_draws(ctx: BenchContext) -> Figures:
    """Concurrent prepaid-credit draws from 8 workers (bench/wallet.py), on the benchmark database."""
    from bench.wallet import WORKERS, measure

    engine = make_engine(ctx.url, pool_size=WORKERS + 2)
    try:
        return measure(engine)
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the billing-model lab (issue 6)


@measurement
def lab_reprice(ctx: BenchContext) -> Figures:
    """13 months of the biggest account re-priced under four models (bench/lab.py)."""
    from bench.lab import measure

    pid, acc = _biggest(ctx)
    return measure(ctx.engine, pid, acc, ctx.start.date(), ctx.last_day)


# ---------------------------------------------------------------- the HTTP API (issue 17)


@measurement
def api_ingest(ctx: BenchContext) -> Figures:
    """Batches of 1,000 events over HTTP from 2 clients into a real API process, and the core path (bench/api_ingest.py)."""
    from bench.api_ingest import measure

    return measure(ctx.engine, ctx.url, ctx.events, ctx.end)


@measurement
def load_test(ctx: BenchContext) -> Figures:
    """Concurrent users over Streamlit's protocol against the demo database (bench/loadtest.py): 5, 10 and 20
    sessions, LOAD_SECONDS each (180 by default)."""
    from bench import loadtest

    res = loadtest.measure([5, 10, 20], float(os.environ.get("LOAD_SECONDS", "180")))
    ctx.notes["load"] = res["detail"]
    return res["figures"]


# ---------------------------------------------------------------- running


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        info["memory_gb"] = round(int(mem) / 1024 / 1024, 1)
        cpu = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = cpu[0].split(":", 1)[1].strip() if cpu else None
    except OSError:
        pass
    return info


def run_stamp(engine: Engine) -> dict:
    """What every figure of a run records: when, on how many cores, under what load, on which PostgreSQL."""
    with engine.connect() as conn:
        pg = conn.execute(text("SHOW server_version")).scalar()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        load = None
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "cores": os.cpu_count(), "load_avg": load,
            "postgres": pg}


def write_results(figures: Figures, meta: dict, *, partial: bool) -> Path:
    """A full run writes bench/results.json whole (never merged with older figures), so every figure in it
    comes from one run on one machine. A partial run (--only) writes bench/results-partial.json instead."""
    stamp = meta["stamp"]
    data: dict = {k: {**stamp, **v} for k, v in figures.items()}  # a figure's own stamp wins
    data["_run"] = meta
    path = RESULTS.with_name("results-partial.json") if partial else RESULTS
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def _small_context(args: argparse.Namespace, data_dir: Path) -> BenchContext | None:
    """The small data set in its own database (built once, then reused), when it differs from the run's."""
    if args.small_events <= 0 or args.small_events == args.events or (args.only and "dashboard_queries" not in args.only):
        return None
    engine = bulk.bench_engine(Path(os.environ.get("BENCH_SMALL_DATA_DIR", f"{data_dir}-small")))
    start, end, _ = bulk.ensure(engine, args.small_events, months=args.small_months)
    return BenchContext(engine, engine.url.render_as_string(hide_password=False), args.small_events, start, end)


def long_months(events: int, small: BenchContext) -> int:
    """The most months (ending today, like every data set) over which `events` events are at least as dense
    per day as the small set's: a history as many times longer as the events are more numerous."""
    days_allowed = (small.end - small.start).days * events / small.events
    months = bulk.months_of(small.start, small.end) * -(-events // small.events)
    while months > 1:
        start, end = bulk.window(small.end.date(), months)
        if (end - start).days <= days_allowed:
            break
        months -= 1
    return months


def _long_context(args: argparse.Namespace, data_dir: Path, small: BenchContext | None) -> BenchContext | None:
    """The run's events over a long history at the small set's density (its own database, built once, then
    reused): what the dashboards' history ratio compares with the small set."""
    if small is None or args.events <= small.events:
        return None
    engine = bulk.bench_engine(Path(os.environ.get("BENCH_LONG_DATA_DIR", f"{data_dir}-long")))
    start, end, _ = bulk.ensure(engine, args.events, months=long_months(args.events, small))
    return BenchContext(engine, engine.url.render_as_string(hide_password=False), args.events, start, end)


def main(argv: list[str] | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m bench.run")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--small-events", type=int, default=1_000_000,
                    help="the second data set's size for the dashboards' size ratios (0: none)")
    ap.add_argument("--small-months", type=int, default=SMALL_MONTHS,
                    help="the months of the small set's history (the long set's is as many times longer as it "
                         "has more events)")
    ap.add_argument("--only", nargs="*", help="names of measurement functions to run")
    args = ap.parse_args(argv)
    data_dir = Path(os.environ.get("BENCH_DATA_DIR", bulk.BENCH_DIR))
    engine = bulk.bench_engine(data_dir)
    t0 = time.perf_counter()
    start, end, reused = bulk.ensure(engine, args.events)
    build_s = time.perf_counter() - t0
    ctx = BenchContext(engine, engine.url.render_as_string(hide_password=False), args.events, start, end)
    ctx.small = _small_context(args, data_dir)
    ctx.long = _long_context(args, data_dir, ctx.small)
    figures: Figures = {
        "dataset_events": fig(args.events, "events", None),
        "dataset_accounts": fig(bulk.ACCOUNTS, "accounts", None),
        "dataset_partners": fig(bulk.PARTNERS, "partners", None),
    }
    for k in figures:
        figures[k].update(run_stamp(engine))
    for fn in MEASUREMENTS:
        if args.only and fn.__name__ not in args.only:
            continue
        print(f"- {fn.__name__} ...", flush=True)
        got = fn(ctx)
        stamp = run_stamp(engine)  # when this measurement ended, and the load it ran under
        for k, v in got.items():
            print(f"    {k}: {v['value']} {v['unit']} (target {v['target']})", flush=True)
            figures[k] = {**v, **stamp}
    meta = {"events": args.events, "small_events": ctx.small.events if ctx.small else None,
            "long_history": ({"events": ctx.long.events, "window": [str(ctx.long.start.date()),
                                                                   str(ctx.long.last_day)]} if ctx.long else None),
            "window": [str(start.date()), str(end.date())], "reused_dataset": reused,
            "build_s": round(build_s, 1), "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), "stamp": run_stamp(engine), "only": args.only or None, **ctx.notes}
    path = write_results(figures, meta, partial=bool(args.only))
    print(f"Wrote {path}")
    for other in (ctx.small, ctx.long):
        if other:
            other.engine.dispose()
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
