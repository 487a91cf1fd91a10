"""CSV formula injection: no exported cell starts a formula; numbers stay numbers (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.export import csv_text, records_csv, safe_cell
from core.statements import reading as statements
from tests.billing_factories import PAGES_SPEC
from tests.statements_helpers import MONTH, assign, generate, listed, record

ROOT = Path(__file__).resolve().parent.parent
FORMULAS = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)", "\t=1", "\r=1", " =1"]


def _cells(data: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(data)) for c in row]


def _assert_no_formula(data: str) -> None:
    for cell in _cells(data):
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", cell):
            continue  # a number
        assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_safe_cell_neutralises_formulas_and_keeps_numbers():
    for f in FORMULAS:
        assert safe_cell(f) == "'" + f
    assert safe_cell("-12.50") == "-12.50" and safe_cell("+3") == "+3"
    assert safe_cell(Decimal("-1.5")) == Decimal("-1.5") and safe_cell(-7) == -7
    assert safe_cell("Customer a1") == "Customer a1" and safe_cell(None) == ""
    data = csv_text(["name", "amount"], [[f, Decimal("-4.20")] for f in FORMULAS])
    _assert_no_formula(data)
    assert list(csv.reader(io.StringIO(data)))[1][1] == "-4.20"
    _assert_no_formula(records_csv([{"event_id": f, "quantity": Decimal("-3")} for f in FORMULAS]))


def test_statement_and_month_exports_neutralise_user_text(world, db):
    a = world.a
    assign(db, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "std")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "e1")
    with db.begin() as c:  # names as a hostile customer or colleague would type them
        c.execute(text("UPDATE partners SET name = :n WHERE id = :p"), {"n": FORMULAS[0], "p": a.partner_id})
        c.execute(text("UPDATE customer_accounts SET name = :n WHERE partner_id = :p AND id = :a"),
                  {"n": FORMULAS[3], "p": a.partner_id, "a": a.account_id})
    generate(db, a.staff, a.partner_id)
    rows = listed(db, a.staff, a.partner_id, account_id=a.account_id)
    with Session(db) as s:
        one = statements.export_csv(s, a.staff, a.partner_id, rows[0].id)
        month = statements.export_month_csv(s, a.staff, a.partner_id, MONTH)
    for data in (one, month):
        _assert_no_formula(data)
        parsed = list(csv.DictReader(io.StringIO(data)))
        mine = [r for r in parsed if r["addressee"] == "'" + FORMULAS[3]]
        assert mine and mine[0]["issuer"] == "Platform direct"
        assert mine[0]["total"] == "206.00"  # still a number


def test_every_csv_export_goes_through_core_export():
    """Structural: a CSV is only written by core.export (no csv.writer or DataFrame.to_csv elsewhere)."""
    offenders = []
    for folder in ("core", "pages", "seeds", "db"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "core" / "export.py":
                continue
            source = path.read_text()
            if re.search(r"csv\.(writer|DictWriter)\(|\.to_csv\(", source):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
