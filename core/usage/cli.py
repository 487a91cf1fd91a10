"""Command-line usage import, for scheduled jobs.

    python -m core.usage import FILE --partner ID [--dry-run] [--source NAME] [--batch-rows N]

Reads a CSV file (format: docs/usage-import.md), validates it through the same path as the upload page and
records it in one transaction (all or nothing; event ids seen before are skipped as duplicates). Prints
inserted / duplicates / corrections / errors; exits 0 on success, 1 when the file has errors (nothing is
written), 2 for usage errors. Runs as the system actor (recorded as "system" in the audit log).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.accounts.actor import SYSTEM
from core.bootstrap import bootstrap
from core.errors import DomainError
from core.usage.csv_import import FIRST_DATA_LINE, parse_csv
from core.usage.ingest import preview_events, record_events
from core.usage.validation import BatchValidationError
from db.engine import make_engine, unit_of_work


def main(argv: list[str] | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m core.usage")
    sub = ap.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a CSV file of usage events")
    imp.add_argument("file", type=Path)
    imp.add_argument("--partner", type=int, required=True, help="partner id the events belong to")
    imp.add_argument("--source", default="cli", help="source recorded for rows without one (default cli)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    args = ap.parse_args(argv)
    if not args.file.is_file():
        print(f"error: no such file: {args.file}", file=sys.stderr)
        return 2
    engine = make_engine()
    try:
        events = parse_csv(args.file.read_bytes())
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


if __name__ == "__main__":
    sys.exit(main())
