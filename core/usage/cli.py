"""Command-line usage import, for scheduled jobs.

    python -m core.usage import FILE --partner ID [--dry-run] [--source NAME] [--batch-rows N]
    python -m core.usage retention --older-than-months N [--archive-dir DIR] [--dry-run]   (as the owner)

Reads a CSV file (format: docs/usage-import.md), validates it through the same path as the upload page and
records it in one transaction (all or nothing; event ids seen before are skipped as duplicates). Prints
inserted / duplicates / corrections / errors; exits 0 on success, 1 when the file has errors (nothing is
written), 2 for usage errors. Runs as the system actor (recorded as "system" in the audit log).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from core.accounts.actor import SYSTEM
from core.bootstrap import bootstrap
from core.errors import DomainError
from core.usage.csv_import import FIRST_DATA_LINE, parse_csv
from core.usage.ingest import preview_events, record_events
from core.usage.retention import run_retention
from core.usage.validation import BatchValidationError
from db.engine import make_engine, owner_url, unit_of_work


def main(argv: list[str] | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m core.usage")
    sub = ap.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a CSV file of usage events")
    imp.add_argument("file", type=Path)
    imp.add_argument("--partner", type=int, required=True, help="partner id the events belong to")
    imp.add_argument("--source", default="cli", help="source recorded for rows without one (default cli)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    ret = sub.add_parser("retention", help="archive finalised months of raw events (core.usage.retention)")
    ret.add_argument("--older-than-months", type=int, required=True, help="keep this many months before this one")
    ret.add_argument("--archive-dir", type=Path, help="write each month to DIR/usage_events_YYYY_MM.csv.gz")
    ret.add_argument("--dry-run", action="store_true", help="say what would be archived, change nothing")
    args = ap.parse_args(argv)
    if args.command == "retention":
        return _retention(args)
    if not args.file.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    engine = make_engine()
    try:
        events = parse_csv(args.file.read_bytes(), max_bytes=None)  # the upload's cap is for the web page
        with unit_of_work(engine) as s:
            if args.dry_run:
                p = preview_events(s, SYSTEM, args.partner, events, default_source=args.source,
                                   first_row=FIRST_DATA_LINE)
                print(f"rows={p.rows} new={p.new} duplicates={p.duplicates} corrections={p.corrections} errors=0 "
                      "(dry run: nothing written)")
                s.rollback()
                return 0
            r = record_events(s, SYSTEM, args.partner, events, default_source=args.source,
                              first_row=FIRST_DATA_LINE)
        print(f"rows={r.received} inserted={r.inserted} duplicates={r.duplicates} corrections={r.corrections} "
              "errors=0")
        for g in r.correction_groups:
            print(f"needs a correction: account {g.account_id} {g.metric} {g.day}: {g.events} event(s), "
                  f"quantity {g.quantity} (period is final)")
        return 0
    except BatchValidationError as exc:
        for row, msgs in sorted(exc.rows.items()):
            print(f"line {row}: {'; '.join(msgs)}", file=sys.stderr)
        print(f"errors={exc.total_bad}: nothing was imported", file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()


def _retention(args: argparse.Namespace) -> int:
    """Runs as the owner (DETACH/DROP are the table owner's rights): exit 0 done, 1 refused, 2 bad input."""
    if args.older_than_months < 1:
        print("error: --older-than-months must be at least 1 (the current month is never archived)", file=sys.stderr)
        return 2
    engine = make_engine(owner_url())
    try:
        report = run_retention(engine, date.today(), args.older_than_months, archive_dir=args.archive_dir,
                               dry_run=args.dry_run)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    for reason in report.refused:
        print(f"not final: {reason}", file=sys.stderr)
    if report.refused:
        print(f"refused: months before {report.cutoff} are not all final; nothing was archived", file=sys.stderr)
        return 1
    print(f"archived={len(report.archived)} months before {report.cutoff}" + (" (dry run)" if args.dry_run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
