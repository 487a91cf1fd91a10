"""Command-line usage import, for scheduled jobs.

    python -m core.usage import FILE --partner ID [--dry-run] [--source NAME] [--batch-rows N] [--max-mb MB]
    python -m core.usage retention --older-than-months N [--archive-dir DIR] [--dry-run]   (as the owner)

Streams a CSV file (format: docs/usage-import.md): parsed once, row by row, in batches of --batch-rows events
(memory stays about one batch, whatever the file's size; files over --max-mb, default 2048, are refused).
Every batch goes through the same validation as the upload page and is recorded in ONE transaction for the
whole file (all or nothing; event ids seen before are skipped as duplicates). After a batch with errors the
rest of the file is still validated (nothing more is written) so that every bad line is reported. Prints
inserted / duplicates / corrections / errors; exits 0 on success, 1 when the file has errors (nothing is
written), 2 for usage errors. Runs as the system actor (recorded as "system" in the audit log).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import clock
from core.accounts.actor import SYSTEM
from core.bootstrap import bootstrap
from core.errors import DomainError
from core.usage.csv_import import CLI_BATCH, CLI_MAX_BYTES, FIRST_DATA_LINE, stream_csv_file
from core.usage.ingest import IngestResult, Preview, preview_events, record_events
from core.usage.retention import run_retention
from core.usage.validation import BatchValidationError, check_events
from db.engine import make_engine, owner_url, partner_scope, unit_of_work


def main(argv: list[str] | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m core.usage")
    sub = ap.add_subparsers(dest="command", required=True)
    imp = sub.add_parser("import", help="import a CSV file of usage events")
    imp.add_argument("file", type=Path)
    imp.add_argument("--partner", type=int, required=True, help="partner id the events belong to")
    imp.add_argument("--source", default="cli", help="source recorded for rows without one (default cli)")
    imp.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    imp.add_argument("--batch-rows", type=int, default=CLI_BATCH, help=f"events per batch (default {CLI_BATCH})")
    imp.add_argument("--max-mb", type=int, default=CLI_MAX_BYTES // 2**20, help="refuse larger files (default 2048)")
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
    if args.batch_rows < 1 or args.max_mb < 1:
        print("error: --batch-rows and --max-mb must be positive", file=sys.stderr)
        return 2
    engine = make_engine()
    batches = stream_csv_file(args.file, batch=args.batch_rows, max_bytes=args.max_mb * 2**20)
    try:
        with unit_of_work(engine, partner_scope(args.partner)) as s:  # row-level security: that partner only
            if args.dry_run:
                p = _preview(s, args, batches)
                print(f"rows={p.rows} new={p.new} duplicates={p.duplicates} corrections={p.corrections} errors=0 "
                      "(dry run: nothing written)")
                s.rollback()
                return 0
            r = _record(s, args, batches)
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


MAX_LISTED = 1000  # bad lines listed at most (every one is counted)


def _merge(bad: BatchValidationError | None, exc: BatchValidationError) -> BatchValidationError:
    if bad is None:
        return exc
    rows = dict(list({**bad.rows, **exc.rows}.items())[:MAX_LISTED])
    return BatchValidationError(rows, bad.total_bad + exc.total_bad)


def _each_batch(batches, step) -> None:
    """step(events, first_row, clean) for every batch, clean meaning no batch so far had errors. A batch's
    BatchValidationError is merged with the others' and raised after the last batch, so that every bad line
    of the file is reported."""
    first, bad = FIRST_DATA_LINE, None
    for events in batches:
        try:
            step(events, first, bad is None)
        except BatchValidationError as exc:
            bad = _merge(bad, exc)
        first += len(events)
    if bad is not None:
        raise bad


def _record(s, args, batches) -> IngestResult:
    """Record every batch in the caller's transaction; after the first bad batch, validate the rest (writing
    nothing more) and raise one BatchValidationError with every bad line (the caller rolls back)."""
    total = IngestResult()

    def step(events: list, first: int, clean: bool) -> None:
        if not clean:
            check_events(s, args.partner, events, default_source=args.source, first_row=first)
            return
        r = record_events(s, SYSTEM, args.partner, events, default_source=args.source, first_row=first)
        total.received += r.received
        total.inserted += r.inserted
        total.duplicates += r.duplicates
        total.corrections += r.corrections
        total.correction_groups += r.correction_groups

    _each_batch(batches, step)
    return total


def _preview(s, args, batches) -> Preview:
    """The dry run, batch by batch (an event id repeated in two batches of one file counts as new twice)."""
    totals = [0, 0, 0, 0]

    def step(events: list, first: int, _clean: bool) -> None:
        p = preview_events(s, SYSTEM, args.partner, events, default_source=args.source, first_row=first)
        for i, n in enumerate((p.rows, p.new, p.duplicates, p.corrections)):
            totals[i] += n

    _each_batch(batches, step)
    return Preview(*totals)


def _retention(args: argparse.Namespace) -> int:
    """Runs as the owner (DETACH/DROP are the table owner's rights): exit 0 done, 1 refused, 2 bad input."""
    if args.older_than_months < 1:
        print("error: --older-than-months must be at least 1 (the current month is never archived)", file=sys.stderr)
        return 2
    engine = make_engine(owner_url())
    try:
        report = run_retention(engine, clock.today(), args.older_than_months, archive_dir=args.archive_dir,
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


if __name__ == "__main__":  # after every definition: `python -m core.usage.cli retention ...` needs _retention
    sys.exit(main())
