"""The command-line usage import streams its file (parsed once, in batches, bounded memory, a size cap), runs as
the app role bound to the one partner it imports for (row-level security), and stays all or nothing."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

import core.usage.cli as cli
from core.usage.aggregates import period_usage
from core.usage.cli import main

HEADER = "account_id,metric,quantity,occurred_at,event_id\n"


def _file(tmp_path, account_id: int, n: int, extra: str = ""):
    f = tmp_path / "big.csv"
    f.write_text(HEADER + "".join(f"{account_id},documents,1,2026-01-05T09:15:00Z,ev{i}\n" for i in range(n)) + extra)
    return f


def test_the_cli_streams_in_batches_of_bounded_size(world, db, tmp_path, capsys, monkeypatch):
    a = world.a
    f = _file(tmp_path, a.account_id, 25, extra=f"{a.account_id},documents,1,2026-01-05T09:15:00Z,ev3\n")
    sizes: list[int] = []
    real = cli.record_events

    def spy(s, actor, partner_id, events, **kw):
        sizes.append(len(events))
        return real(s, actor, partner_id, events, **kw)

    monkeypatch.setattr(cli, "record_events", spy)
    assert main(["import", str(f), "--partner", str(a.partner_id), "--batch-rows", "10"]) == 0
    assert sizes == [10, 10, 6]  # never the whole file at once
    # a repeated id in a later batch counts as a duplicate, as in one batch
    assert "rows=26 inserted=25 duplicates=1" in capsys.readouterr().out
    with Session(db) as s:
        assert period_usage(s, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))["documents"] == 25
    assert main(["import", str(f), "--partner", str(a.partner_id), "--batch-rows", "7", "--dry-run"]) == 0
    assert "rows=26 new=0 duplicates=26" in capsys.readouterr().out


def test_a_bad_line_in_a_later_batch_writes_nothing_and_every_bad_line_is_reported(world, db, tmp_path, capsys):
    a, b = world.a, world.b
    f = _file(tmp_path, a.account_id, 12, extra=f"{b.account_id},documents,1,2026-01-05T09:15:00Z,x\n\n")
    f.write_text(f.read_text().replace("1,2026-01-05T09:15:00Z,ev2", "-1,2026-01-05T09:15:00Z,ev2"))
    assert main(["import", str(f), "--partner", str(a.partner_id), "--batch-rows", "5"]) == 1
    err = capsys.readouterr().err
    # line 4 (batch 1) and lines 14, 15 (batch 3): the file's own line numbers across batches
    assert "line 4:" in err and "line 14: unknown customer account" in err and "line 15: empty row" in err
    assert "errors=3: nothing was imported" in err
    with Session(db) as s:
        assert period_usage(s, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31)).get("documents", 0) == 0


def test_the_cli_has_a_documented_size_cap(world, tmp_path, capsys):
    f = _file(tmp_path, world.a.account_id, 40_000)  # about 2 MB
    assert main(["import", str(f), "--partner", str(world.a.partner_id), "--max-mb", "1"]) == 1
    assert "over the limit of 1 MB" in capsys.readouterr().err


def test_the_cli_runs_bound_to_its_partner(world, db, tmp_path, capsys):
    """Another partner's account id in the file is refused (validation reads only that partner's accounts)."""
    b = world.b
    f = _file(tmp_path, b.account_id, 2)
    assert main(["import", str(f), "--partner", str(world.a.partner_id)]) == 1
    assert "unknown customer account" in capsys.readouterr().err
