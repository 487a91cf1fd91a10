from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from core.errors import ValidationError
from core.usage.aggregates import period_usage
from core.usage.cli import main
from core.usage.csv_import import parse_csv

GOOD = """account_id,metric,quantity,occurred_at,event_id,prop.mailing,prop.recipient
{a},documents,2,2026-01-05T09:15:00Z,d1,,
{a},unique_recipients,1,2026-01-05T09:16:00Z,r1,M-1,ola@example.no
{a},unique_recipients,1,2026-01-06T09:16:00Z,r2,M-1,ola@example.no
"""


def test_parse_csv_props_and_errors():
    evs = parse_csv(GOOD.format(a=5).encode())
    assert evs[1]["properties"] == {"mailing": "M-1", "recipient": "ola@example.no"}
    assert "properties" not in evs[0]
    with pytest.raises(ValidationError, match="Missing column"):
        parse_csv(b"account_id,metric\n1,documents\n")
    with pytest.raises(ValidationError, match="not UTF-8"):
        parse_csv(b"\xff\xfe\x00bad")


def test_cli_import_twice_and_errors(world, db, tmp_path, capsys):
    a = world.a
    f = tmp_path / "u.csv"
    f.write_text(GOOD.format(a=a.account_id))
    assert main(["import", str(f), "--partner", str(a.partner_id), "--dry-run"]) == 0
    assert "new=3" in capsys.readouterr().out
    assert main(["import", str(f), "--partner", str(a.partner_id)]) == 0
    assert "inserted=3 duplicates=0" in capsys.readouterr().out
    assert main(["import", str(f), "--partner", str(a.partner_id)]) == 0
    assert "inserted=0 duplicates=3" in capsys.readouterr().out
    with Session(db) as s:
        u = period_usage(s, a.partner_id, a.account_id, date(2026, 1, 1), date(2026, 1, 31))
    assert u["documents"] == 2 and u["unique_recipients"] == 1
    bad = tmp_path / "bad.csv"
    bad.write_text(GOOD.format(a=a.account_id) + f"{world.b.account_id},documents,1,2026-01-05T00:00:00Z,x,,\n\n")
    assert main(["import", str(bad), "--partner", str(a.partner_id)]) == 1
    err = capsys.readouterr().err
    assert "line 5: unknown customer account" in err and "line 6: empty row" in err
    assert "nothing was imported" in err


def test_the_module_runs_as_a_script_with_every_command(database_url):
    """`python -m core.usage.cli retention ...` ran main() before _retention was defined (NameError)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-m", "core.usage.cli", "retention", "--older-than-months", "0"],
                         capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
                         env={**os.environ, "DATABASE_URL": database_url})
    assert out.returncode == 2, out.stderr
    assert "--older-than-months must be at least 1" in out.stderr
