"""Demo scenarios: load a scenario file into the database, and export a month's statements as JSON.

    python -m seeds.scenario load seeds/scenarios/default.toml [--add] [--today YYYY-MM-DD] [--check]
    python -m seeds.scenario check FILE [--today YYYY-MM-DD]
    python -m seeds.scenario export [--partner "Nordic Docs AS"] [--password PW] [--out FILE]
    python -m seeds.scenario export-statements --month 2025-05 [--partner "Nordic Docs AS"] [--finalise] [--out FILE]

A file is checked completely first (seeds.scenario_format: every problem with its place, nothing written),
then loaded in ONE transaction through the core services as the system actor, so every rule of the product
applies (validation, audit, plan checks, billing modes, wallets). Usage goes through
core.usage.ingest.record_events in batches, chronologically, so the ingestion hooks (threshold alerts, and
settlement of partner-paid usage when that module is installed) see it as they would live.

The usage generator is deterministic: the same file, seed and "today" always produce the same events.

`export-statements` generates the month's statements with core.statements.lifecycle as the system actor (drafts, or
final statements with --finalise: the very documents the Statements page shows and finalises) and prints
them as JSON, sorted; running it again writes nothing new and prints the same JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts.actor import SYSTEM, Actor
from core.bootstrap import bootstrap
from core.errors import DomainError, NotFound
from core.pricing.money import round_money
from core.statements import lifecycle, planning, reading
from db.models import CustomerAccount, Partner, User
from seeds.scenario_format import ScenarioError, read_scenario
from seeds.scenario_load import (  # noqa: F401  (re-exported)
    BATCH,
    SOURCE,
    LoadSummary,
    Progress,
    batches,
    customer_events,
    load_scenario,
)
from seeds.scenario_usage import generate  # noqa: F401  (re-exported)

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "default.toml"


# ---------------------------------------------------------------- loading


def database_has_data(session: Session) -> dict[str, int]:
    """What is already there (users, non-house partners, customer accounts); empty dict = empty database."""
    found = {
        "users": session.scalar(select(func.count()).select_from(User)) or 0,
        "partners": session.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) or 0,
        "customer accounts": session.scalar(select(func.count()).select_from(CustomerAccount)) or 0,
    }
    return {k: v for k, v in found.items() if v}


# ---------------------------------------------------------------- statements as JSON


KIND_ORDER = {"statement": 0, "collective": 1, "commission": 2, "credit_note": 3}


def partner_ids(session: Session, partner: str | None = None) -> list[int]:
    """The partners to export: all (the house partner too: it may have direct customers), or the one named
    by `partner` (its name or id). Raises NotFound for an unknown partner."""
    q = select(Partner.id).order_by(Partner.id)
    if partner:
        q = q.where(Partner.id == int(partner)) if partner.strip().isdigit() else q.where(Partner.name == partner)
    ids = list(session.scalars(q))
    if partner and not ids:
        raise NotFound(f"No partner named {partner!r}.")
    return ids


def generate_statements(engine, month: str | date, pids: list[int], *, finalise: bool = False,
                        actor: Actor = SYSTEM) -> dict[str, int]:
    """Generate the month's statements through core.statements.lifecycle (drafts, or final ones with `finalise`), one
    transaction per partner. Idempotent: unchanged drafts are not written and finals are left alone, so
    running it again creates nothing. Returns the counts of the outcomes (created, unchanged, final ...)."""
    from db.engine import unit_of_work

    counts: dict[str, int] = defaultdict(int)
    for pid in pids:
        with unit_of_work(engine) as session:
            for out in lifecycle.generate_month(session, actor, pid, month, finalise=finalise):
                counts[out.action] += 1
    return dict(counts)


def _money(amount: Any, currency: str) -> str | None:
    """An amount as the exact decimal string in the currency's minor unit ('99.00', not the stored '99.0000')."""
    return None if amount is None else str(round_money(Decimal(str(amount)), currency))


def _line_json(ln: dict[str, Any], currency: str) -> dict[str, Any]:
    return {"label": ln["label"], "kind": ln["kind"], "metric": ln["metric"], "quantity": ln["quantity"],
            "amount": _money(ln["amount"], currency), "explanation": ln["explanation"], "credits": ln["credits"],
            "mode": ln["mode"]}


def _sections(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The lines grouped as printed: a customer statement has one section (name None); a collective invoice
    one per agency customer (its name) and then the partner-level fees (name None). Each with its total."""
    out: list[dict[str, Any]] = []
    for ln in doc["lines"]:
        name = ln["section"]
        if not out or out[-1]["section"] != name:
            out.append({"section": name, "account_id": ln["section_account_id"], "lines": [], "total": Decimal(0)})
        out[-1]["lines"].append(_line_json(ln, doc["currency"]))
        out[-1]["total"] += Decimal(ln["amount"])
    for sec in out:
        sec["total"] = _money(sec["total"], doc["currency"])
    return out


def statement_json(doc: dict[str, Any], partner_name: str, customer: str | None,
                   account_id: int | None) -> dict[str, Any]:
    """One statement (core.statements.reading.get_statement's document, to_json) as JSON-safe values. Amounts are strings
    (exact decimals); no database timestamps, so the same statement always gives the same JSON."""
    cur = doc["currency"]
    return {
        "partner": partner_name, "customer": customer, "account_id": account_id,
        "kind": doc["kind"], "status": doc["status"], "number": doc["number"],
        "period": [doc["period_start"], doc["period_end"]], "issued_on": doc["issued_on"], "due_on": doc["due_on"],
        "currency": doc["currency"], "language": doc["language"],
        "issuer": {"name": doc["issuer"]["name"], "address": doc["issuer"]["address"]},
        "addressee": doc["addressee"], "payer": doc["payer"], "modes": doc["modes"],
        "sections": _sections(doc),
        "subtotal": _money(doc["subtotal"], cur), "tax_rate": doc["tax_rate"], "tax": _money(doc["tax_amount"], cur),
        "total": _money(doc["total"], cur), "credits_drawn": doc["credits_drawn"],
        "charged_on_demand": _money(doc["charged_on_demand"], cur),
        "credit_note_for": doc["credit_note_for"],
    }


def month_statements(session: Session, month: str | date, pids: list[int],
                     actor: Actor = SYSTEM) -> list[dict[str, Any]]:
    """The live (not void) statements, collective invoices and credit notes of the partners' month, as JSON,
    sorted by partner, kind, addressee and number. Reads only: generate them first (generate_statements)."""
    out: list[tuple[tuple, dict[str, Any]]] = []
    for pid in pids:
        partner_name = session.get(Partner, pid).name  # type: ignore[union-attr]
        names = dict(session.execute(select(CustomerAccount.id, CustomerAccount.name)
                                     .where(CustomerAccount.partner_id == pid)).all())
        for row in reading.list_statements(session, actor, pid, month=month):
            if row.status == "void":
                continue
            doc = reading.get_statement(session, actor, pid, row.id).to_json()
            data = statement_json(doc, partner_name, names.get(row.account_id) if row.account_id else None,
                                  row.account_id)
            key = (partner_name, pid, KIND_ORDER.get(row.kind, 9), (data["customer"] or "").lower(),
                   row.account_id or 0, row.number or "", row.id)
            out.append((key, data))
    return [d for _, d in sorted(out, key=lambda kv: kv[0])]


def export_statements(engine, month: str | date, partner: str | None = None, *, finalise: bool = False,
                      actor: Actor = SYSTEM) -> tuple[dict[str, Any], dict[str, int]]:
    """Generate (drafts, or final statements) and export the month's statements: what `export-statements`
    prints, and the counts of what generating did (created, unchanged, finalised, final ...). Running it twice
    gives the same JSON and creates nothing the second time."""
    start, end = planning.month_period(month)
    with Session(engine) as session:
        pids = partner_ids(session, partner)
    generated = generate_statements(engine, start, pids, finalise=finalise, actor=actor)
    with Session(engine) as session:
        data = month_statements(session, start, pids, actor)
    return {"month": start.strftime("%Y-%m"), "period": [start.isoformat(), end.isoformat()],
            "statements": data}, generated


# ---------------------------------------------------------------- commands


def _engine():
    from db.engine import make_engine, owner_url
    from db.migrate import upgrade

    eng = make_engine(owner_url())  # a set-up tool: stamps history in append-only tables (0018)
    upgrade(eng)
    return eng


def load_file(engine, path: Path | str, *, add: bool = False, today: date | None = None,
              check_only: bool = False, progress: Progress | None = None,
              notes: Callable[[str], None] | None = None) -> LoadSummary:
    """Check and load a scenario file in one transaction. Raises ScenarioError (nothing written) or
    RefusedNonEmpty. `progress` hears each partner's usage as it is written (seeds.loader.ProgressLine),
    `notes` what is being checked and loaded (a line of text each)."""
    from db.engine import unit_of_work

    with unit_of_work(engine) as session:
        if not add and not check_only:
            found = database_has_data(session)
            if found:
                raise RefusedNonEmpty(found)
        sc = read_scenario(path, session, today=today or clock.today(), progress=notes)
        if check_only:
            return LoadSummary(counts=defaultdict(int, {"partners (checked)": len(sc.partners)}))
        return load_scenario(session, sc, progress=progress, notes=notes)


class RefusedNonEmpty(Exception):
    def __init__(self, found: dict[str, int]):
        self.found = found
        what = ", ".join(f"{v:,} {k}" for k, v in found.items())
        super().__init__(f"The database is not empty ({what}): nothing was loaded. "
                         "Use --add to add the scenario to the existing data.")


def _export(engine, args) -> int:
    from seeds.scenario_export import ExportError, export_world

    try:
        with Session(engine) as session:
            text = export_world(session, password=args.password, partner=args.partner)
    except ExportError as exc:
        print(f"Cannot export: {exc}", file=sys.stderr)
        return 2
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"Scenario written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m seeds.scenario", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ld = sub.add_parser("load", help="check a scenario file and load it into the configured database")
    ld.add_argument("file", type=Path)
    ld.add_argument("--add", action="store_true", help="add to a database that already has data")
    ld.add_argument("--today", type=date.fromisoformat, help="the day relative dates are counted from")
    ld.add_argument("--check", action="store_true", help="only check the file; write nothing")
    ck = sub.add_parser("check", help="check a scenario file (and its includes); write nothing")
    ck.add_argument("file", type=Path)
    ck.add_argument("--today", type=date.fromisoformat, help="the day relative dates are counted from")
    xp = sub.add_parser("export", help="export the loaded world (or one partner) back to a scenario file")
    xp.add_argument("--partner", help="only this partner (by name)")
    xp.add_argument("--password", default="demo-pass-2026", help="the password of the exported users")
    xp.add_argument("--out", type=Path, help="write to this file instead of standard output")
    ex = sub.add_parser("export-statements", help="generate a month's statements and print them as JSON")
    ex.add_argument("--month", required=True, help="YYYY-MM")
    ex.add_argument("--partner", help="a partner's name or id (default: all)")
    ex.add_argument("--finalise", action="store_true",
                    help="finalise the statements (numbers, immutable) instead of leaving drafts")
    ex.add_argument("--out", type=Path, help="write to this file instead of standard output")
    return ap


def main(argv: list[str] | None = None) -> int:
    from seeds.loader import ProgressLine

    bootstrap()
    args = _parser().parse_args(argv)
    engine = _engine()
    try:
        if args.command == "export":
            return _export(engine, args)
        if args.command == "check":
            args.add, args.check = True, True
        if args.command in ("load", "check"):
            try:
                summary = load_file(engine, args.file, add=args.add, today=args.today, check_only=args.check,
                                    progress=ProgressLine(sys.stderr), notes=_progress)
            except ScenarioError as exc:
                print(f"{args.file}: {len(exc.problems)} problem(s); nothing was written:", file=sys.stderr)
                print(exc.report(), file=sys.stderr)
                return 2
            except RefusedNonEmpty as exc:
                print(str(exc), file=sys.stderr)
                return 3
            print("File is valid." if args.check else summary.text())
            return 0
        try:
            month = datetime.strptime(args.month, "%Y-%m").date()
        except ValueError:
            print("--month must look like 2025-05", file=sys.stderr)
            return 2
        try:
            data, generated = export_statements(engine, month, args.partner, finalise=args.finalise)
        except DomainError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        text = json.dumps(data, indent=2, ensure_ascii=False)
        done = ", ".join(f"{v} {k}" for k, v in sorted(generated.items())) or "nothing to bill"
        print(f"Statements {data['month']}: {done}", file=sys.stderr)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
            print(f"{len(data['statements'])} statements written to {args.out}")
        else:
            print(text)
        return 0
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
