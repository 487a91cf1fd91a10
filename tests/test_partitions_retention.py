"""Retention (core.usage.retention): months older than the setting are detached and archived only when
final; statements of archived months stay intact (amounts, PDF and CSV exports identical) and dashboards
still answer from the aggregates; an archived event re-sent is still a duplicate."""

from __future__ import annotations

import csv
import gzip
import io
import re
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.statements import lifecycle, reading
from core.usage import cli
from core.usage.reports import account_series, usage_summary
from core.usage.retention import run_retention
from db.engine import unit_of_work
from tests.statements_helpers import END, MID, MONTH, PER_PAGE_SPEC, START, assign, generate, listed, record

TODAY = date(2027, 1, 15)  # keep 2 months: November and December 2026; October 2026 is archived


@pytest.fixture
def october(world, db, owner_engine):
    """Partner a's October 2026: one customer on a per-page plan with usage, its own October partition."""
    a = world.a
    with owner_engine.begin() as c:
        c.execute(text("SELECT usage_ensure_partitions('2026-10-01', '2026-11-01')"))
    assign(db, a.staff, a.partner_id, a.account_id, PER_PAGE_SPEC, "pp")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 120, "p1")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 30, "p2", MID.replace(day=28))
    yield a
    with owner_engine.begin() as c:  # archived tables live outside the truncated schema
        c.execute(text("DROP TABLE IF EXISTS usage_archive.usage_events_2026_10"))


def _attached(engine) -> set[str]:
    with engine.connect() as c:
        return set(c.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                                  "WHERE i.inhparent = CAST('usage_events' AS regclass)")).scalars())


def _finalise_october(db, world) -> int:
    """Every October statement of partner a final (the platform issues them by default)."""
    a = world.a
    generate(db, a.staff, a.partner_id)
    rows = listed(db, a.staff, a.partner_id)
    with unit_of_work(db) as s:
        for r in rows:
            lifecycle.finalise(s, world.admin, a.partner_id, r.id)
    return next(r.id for r in rows if r.account_id == a.account_id)


def _stable(pdf: bytes) -> bytes:
    """The PDF without what differs between any two renderings (its random file ID, its creation time)."""
    pdf = re.sub(rb"/ID \[<[0-9A-F]+><[0-9A-F]+>\]", b"/ID []", pdf)
    return re.sub(rb"/CreationDate \(D:[^)]*\)", b"/CreationDate ()", pdf)


def _what_users_see(db, a, sid: int):
    with Session(db) as s:
        st = reading.get_statement(s, a.staff, a.partner_id, sid)
        return {
            "total": (st.total, st.currency, st.lines if hasattr(st, "lines") else None),
            "pdf": _stable(reading.export_pdf(s, a.staff, a.partner_id, sid)),
            "csv": reading.export_csv(s, a.staff, a.partner_id, sid),
            "month_csv": reading.export_month_csv(s, a.staff, a.partner_id, MONTH),
            "summary": usage_summary(s, a.staff, start=START, end=END, partner_id=a.partner_id),
            "series": account_series(s, a.staff, a.partner_id, a.account_id, start=START, end=END),
        }


def test_a_month_that_is_not_final_is_refused_and_nothing_moves(october, db, owner_engine, tmp_path):
    a = october
    report = run_retention(owner_engine, TODAY, 2, archive_dir=tmp_path)
    assert report.archived == [] and list(tmp_path.iterdir()) == []
    assert any("2026-10: account" in r and "not final" in r for r in report.refused), report.refused
    assert "usage_events_2026_10" in _attached(db)
    # a draft statement is not final either
    generate(db, a.staff, a.partner_id)
    report = run_retention(owner_engine, TODAY, 2)
    assert any("is still a draft" in r for r in report.refused), report.refused
    assert "usage_events_2026_10" in _attached(db)


def test_archived_month_keeps_its_statements_and_dashboards(october, world, db, owner_engine, tmp_path):
    a = october
    sid = _finalise_october(db, world)
    before = _what_users_see(db, a, sid)
    report = run_retention(owner_engine, TODAY, 2, archive_dir=tmp_path, log=lambda _m: None)
    assert report.refused == []
    assert [(m, n) for m, n, _ in report.archived if m == date(2026, 10, 1)] == [(date(2026, 10, 1), 2)]
    assert "usage_events_2026_10" not in _attached(db)
    with db.connect() as c:
        assert c.execute(text("SELECT count(*) FROM usage_events WHERE day BETWEEN :s AND :e"),
                         {"s": START, "e": END}).scalar() == 0
    # the archive: every column, every row
    with gzip.open(tmp_path / "usage_events_2026_10.csv.gz", "rt") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    assert sorted((r["event_id"], r["quantity"], r["day"]) for r in rows) == [
        ("p1", "120.000000", "2026-10-15"), ("p2", "30.000000", "2026-10-28")]
    assert not list(tmp_path.glob("*.part"))
    assert before["total"][0] > 0 and "p1" not in before["csv"]  # a real statement, built from aggregates
    after = _what_users_see(db, a, sid)
    assert after == before  # amounts, PDF and CSV bytes, dashboard answers: identical
    # an archived event re-sent is still a duplicate (its key is kept)
    again = record(db, a.staff, a.partner_id, a.account_id, "pages", 120, "p1")
    assert (again.inserted, again.corrections, again.duplicates) == (0, 0, 1)


def test_without_an_archive_dir_the_month_moves_to_the_archive_schema(october, world, db, owner_engine):
    a = october
    _finalise_october(db, world)
    dry = run_retention(owner_engine, TODAY, 2, dry_run=True)
    assert dry.refused == [] and dry.archived == [] and "usage_events_2026_10" in _attached(db)
    report = run_retention(owner_engine, TODAY, 2, log=lambda _m: None)
    assert (date(2026, 10, 1), 2, 'usage_archive."usage_events_2026_10"') in report.archived
    with owner_engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM usage_archive.usage_events_2026_10 WHERE partner_id = :p"),
                         {"p": a.partner_id}).scalar() == 2
    with db.connect() as c:  # out of the app's reach
        assert c.execute(text("SELECT count(*) FROM usage_events WHERE partner_id = :p"), {"p": a.partner_id}).scalar() == 0


def test_bad_settings_are_refused_with_a_message(owner_engine, db, capsys):
    with pytest.raises(ValidationError):
        run_retention(owner_engine, TODAY, 0)
    assert cli.main(["retention", "--older-than-months", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
