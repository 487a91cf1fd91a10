"""Export a loaded world back to a scenario file and load it into an empty database: the same statements
(issue 16), for the history world (price versions, plan and mode changes, wallet history, statements
finalised, credited, voided and generated again, a deleted customer) and the four demo worlds."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.orm import Session

from db.testing import reset_data
from seeds.scenario import SCENARIOS_DIR, export_statements, load_file, main
from seeds.scenario_export import export_world


def _statements(db, months: list[str]) -> dict[str, list[dict]]:
    out = {}
    for m in months:
        data, _ = export_statements(db, date.fromisoformat(m + "-01"))
        for st in data["statements"]:  # account ids are the new database's
            st.pop("account_id")
            st["modes"] = [m[:3] for m in st["modes"] or []]
            for sec in st["sections"]:
                sec.pop("account_id")
        out[m] = data["statements"]
    return out


def _round_trip(db, tmp_path, file: str, today: date, months: list[str]) -> str:
    load_file(db, SCENARIOS_DIR / file, today=today)
    before = _statements(db, months)
    with Session(db) as s:
        text = export_world(s)
    out = tmp_path / "exported.toml"
    out.write_text(text, encoding="utf-8")
    reset_data(db)
    load_file(db, out, today=today)
    after = _statements(db, months)
    for m in months:
        assert after[m] == before[m], m
    assert sum(len(v) for v in before.values()) > 0
    return text


def test_history_world_round_trip_gives_the_same_statements(db, tmp_path):
    text = _round_trip(db, tmp_path, "history.toml", date(2026, 5, 20), ["2026-01", "2026-02", "2026-03", "2026-04"])
    # the history is in the file: a price version, a plan change, modes, wallet events, statement actions
    for fragment in ('"charges.pages.unit_price" = "0.60"', 'plan = "per-document"', 'mode = "partner_prepaid"',
                     "top_up = ", "refund = ", "expire = ", 'void = "Beta Bygg"', 'regenerate = "Beta Bygg"',
                     'credit = "Alfa Regnskap"', 'deleted = "2026-03-16"', 'tax_rate = "25"'):
        assert fragment in text, fragment


def test_document_ai_world_round_trip(db, tmp_path):
    _round_trip(db, tmp_path, "docai.toml", date(2026, 11, 20), ["2026-09", "2026-10"])


def test_sms_and_newsletter_worlds_round_trip(db, tmp_path):
    # events kept one by one for metrics that are not summed (keywords: latest), fees in advance, prepaid
    # draws and automatic purchases made again by the usage, on-demand charges
    _round_trip(db, tmp_path, "sms.toml", date(2026, 11, 20), ["2026-10"])
    reset_data(db)
    _round_trip(db, tmp_path, "newsletter.toml", date(2026, 11, 20), ["2026-10"])


def test_accounting_world_round_trip(db, tmp_path):
    # agency customers on collective invoices, client bands from a partner-level plan, events whose
    # properties decide whether a client counts as active
    _round_trip(db, tmp_path, "accounting.toml", date(2026, 11, 20), ["2026-10"])


def test_export_command_writes_a_file(db, tmp_path, capsys):
    load_file(db, SCENARIOS_DIR / "history.toml", today=date(2026, 5, 20))
    out = tmp_path / "w.toml"
    assert main(["export", "--partner", "Fjord Dokument AS", "--out", str(out)]) == 0
    assert "[[partners]]" in out.read_text(encoding="utf-8") and "[[admins]]" not in out.read_text(encoding="utf-8")
    assert main(["check", str(SCENARIOS_DIR / "sms.toml")]) == 0
    assert "File is valid." in capsys.readouterr().out


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
