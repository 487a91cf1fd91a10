"""Retention of raw usage events: detach and archive the monthly partitions of usage_events older than a
setting (an owner's / DBA's command: DETACH and DROP are the table owner's rights, never the app role's).

    python -m core.usage retention --older-than-months N [--archive-dir DIR] [--dry-run]

A month is archived only when it is finalised: every stored event of it lies in a finalised (locked)
period of its account, and no draft statement covers any of its days. Otherwise the command refuses and
archives nothing (one clear line per month and reason). With --archive-dir each month is written to
DIR/usage_events_YYYY_MM.csv.gz (CSV with a header, every column; written to a temporary file, row count
checked, renamed into place after the drop committed) and the partition is dropped; without it the
partition stays in the schema `usage_archive`, out of every query of the app. Detaching locks usage_events
briefly (ACCESS EXCLUSIVE: DETACH ... CONCURRENTLY is not allowed beside a default partition).

What stays: statements keep their lines, totals and document snapshot, so their amounts and PDF/CSV
exports rebuild identically; the daily and monthly aggregates (and distinct values) stay, so dashboards of
archived months still answer; the idempotency keys (usage_event_ids) stay, so an archived event re-sent is
still a duplicate. Events of old months still in the default partition get their partition first.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from core.errors import ValidationError
from core.usage.partitions import (
    ARCHIVE_SCHEMA,
    DEFAULT_PARTITION,
    PARTITION_NAME,
    PARTS_SCHEMA,
    Partition,
    add_months,
    month_start,
)

# An event is finalised when its day lies in a locked period of its account (core.usage.periods).
_UNLOCKED_SQL = """
SELECT e.partner_id, e.account_id, min(e.day) AS day, count(*) AS n FROM {part} e
WHERE NOT EXISTS (SELECT 1 FROM usage_period_locks l WHERE l.partner_id = e.partner_id
                  AND l.account_id = e.account_id AND e.day BETWEEN l.period_start AND l.period_end)
GROUP BY e.partner_id, e.account_id ORDER BY 1, 2 LIMIT 5
"""
_DRAFTS_SQL = """
SELECT partner_id, id FROM statements WHERE status = 'draft' AND period_start < :e AND period_end >= :s
ORDER BY 1, 2 LIMIT 5
"""


@dataclass
class RetentionReport:
    cutoff: date  # months starting before this are candidates
    archived: list[tuple[date, int, str]] = field(default_factory=list)  # (month, rows, where)
    refused: list[str] = field(default_factory=list)


def _attached_months(conn: Connection) -> list[Partition]:
    """The monthly partitions attached to usage_events, oldest first (the default partition left out)."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST('public.usage_events' AS regclass)")).scalars()
    out = []
    for n in names:
        m = PARTITION_NAME.match(n)
        if m:
            out.append(Partition(n, date(int(m.group(1)), int(m.group(2)), 1)))
    return sorted(out, key=lambda p: p.month)


def _qualified(p: Partition) -> str:
    return f'{PARTS_SCHEMA}."{p.name}"'


def _not_finalised(conn: Connection, p: Partition) -> list[str]:
    """Why the month of partition p may not be archived yet (empty when it may)."""
    reasons = []
    for r in conn.execute(text(_UNLOCKED_SQL.format(part=_qualified(p)))):
        reasons.append(f"{p.month:%Y-%m}: account {r.account_id} of partner {r.partner_id} has {r.n} event(s) "
                       f"in a period that is not final (from {r.day})")
    for r in conn.execute(text(_DRAFTS_SQL), {"s": p.month, "e": add_months(p.month, 1)}):
        reasons.append(f"{p.month:%Y-%m}: statement {r.id} of partner {r.partner_id} is still a draft")
    return reasons


def _pull_old_default_rows(conn: Connection, cutoff: date) -> None:
    """Old months still in the default partition get their own partition (and their rows) first."""
    oldest = conn.execute(text(f"SELECT min(day) FROM {PARTS_SCHEMA}.{DEFAULT_PARTITION} WHERE day < :c"),
                          {"c": cutoff}).scalar()
    if oldest is not None:
        conn.execute(text("SELECT usage_ensure_partitions(:a, :b)"),
                     {"a": month_start(oldest), "b": add_months(cutoff, -1)})


def _write_archive(conn: Connection, table: str, rows: int, tmp: Path) -> None:
    """COPY `table` to the gzip file `tmp` (CSV with a header) and check that every row is in it."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with gzip.open(tmp, "wb") as out, raw.cursor() as cur, cur.copy(
            f"COPY (SELECT * FROM {table} ORDER BY partner_id, account_id, day, occurred_at, event_id) "
            "TO STDOUT WITH (FORMAT csv, HEADER true)") as cp:
        for chunk in cp:
            out.write(chunk)
    with gzip.open(tmp, "rb") as back:
        lines = sum(1 for _ in back) - 1  # the header
    if lines < rows:
        raise RuntimeError(f"the archive {tmp} is short: {lines} lines for {rows} rows")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())


def _archive_month(owner: Engine, p: Partition, archive_dir: Path | None) -> tuple[int, str]:
    """Detach the month and move it to the archive schema in one short transaction (the parent locked
    first, so no deadlock with ingestion; later events of the month land in the default partition). With
    archive_dir, then COPY it to a gzip CSV file, drop it, and give the file its final name only after the
    drop committed: a failed run leaves the month whole in the archive schema, never a half archive."""
    final = archive_dir / f"{p.name}.csv.gz" if archive_dir is not None else None
    if final is not None and final.exists():
        raise ValidationError({"archive_dir": f"{final} exists already: refusing to overwrite an archive."})
    archived = f'{ARCHIVE_SCHEMA}."{p.name}"'
    with owner.begin() as conn:
        if conn.execute(text("SELECT to_regclass(:t)"), {"t": archived}).scalar() is not None:
            raise ValidationError({"month": f"{archived} exists already (archived before): move it away first."})
        conn.execute(text("LOCK TABLE public.usage_events IN ACCESS EXCLUSIVE MODE"))
        conn.execute(text(f"ALTER TABLE public.usage_events DETACH PARTITION {_qualified(p)}"))
        conn.execute(text(f"ALTER TABLE {_qualified(p)} SET SCHEMA {ARCHIVE_SCHEMA}"))
        rows = int(conn.execute(text(f"SELECT count(*) FROM {archived}")).scalar_one())
    if final is None:
        return rows, archived
    assert archive_dir is not None
    archive_dir.mkdir(parents=True, exist_ok=True)
    tmp = archive_dir / f"{p.name}.csv.gz.part"
    try:
        with owner.begin() as conn:
            _write_archive(conn, archived, rows, tmp)
            conn.execute(text(f"DROP TABLE {archived}"))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.rename(final)
    return rows, str(final)


def run_retention(owner: Engine, today: date, older_than_months: int, *, archive_dir: Path | None = None,
                  dry_run: bool = False, log: Callable[[str], None] = print) -> RetentionReport:
    """Archive the months that start before (this month - older_than_months). All or nothing: when any
    candidate month is not finalised, nothing is archived and the report lists why."""
    if older_than_months < 1:
        raise ValidationError({"older_than_months": "Keep at least 1 month (the current month is never archived)."})
    cutoff = add_months(month_start(today), -older_than_months)
    report = RetentionReport(cutoff)
    with owner.begin() as conn:
        _pull_old_default_rows(conn, cutoff)
    with owner.connect() as conn:
        candidates = [p for p in _attached_months(conn) if p.month < cutoff]
        for p in candidates:
            report.refused += _not_finalised(conn, p)
    if report.refused or dry_run:
        return report
    for p in candidates:
        rows, where = _archive_month(owner, p, archive_dir)
        report.archived.append((p.month, rows, where))
        log(f"archived {p.month:%Y-%m}: {rows} event(s) -> {where}")
    return report
