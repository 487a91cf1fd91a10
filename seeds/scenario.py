"""Demo scenarios: load a scenario file into the database, and export a month's statements as JSON.

    python -m seeds.scenario load seeds/scenarios/default.toml [--add] [--today YYYY-MM-DD] [--check]
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
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import ROLE_LABELS, SYSTEM, Actor
from core.billing import modes as billing_modes
from core.billing import payments, plans, wallet
from core.bootstrap import bootstrap
from core.errors import DomainError, NotFound
from core.pricing.money import round_money
from core.statements import lifecycle, planning, reading
from core.usage import ingest as usage
from core.usage import metrics
from db.models import CustomerAccount, Partner, User
from seeds.scenario_format import (
    CustomerDef,
    Generator,
    PartnerDef,
    Scenario,
    ScenarioError,
    read_scenario,
)

SCENARIOS_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS_DIR / "default.toml"
BATCH = 5000
SOURCE = "scenario"


# ---------------------------------------------------------------- the usage generator


def _months_between(start: date, day: date) -> float:
    return (day - start).days / 30.4375


def _quantity(g: Generator, rng: random.Random, base: Decimal, months: float) -> Decimal:
    """base × (1 + growth)^months × noise, rounded half up to `decimals`. Exact when growth and noise are 0,
    so a person can compute it from the file."""
    noise = rng.gauss(1.0, float(g.noise)) if g.noise else 1.0
    if not g.growth and not g.noise:
        q = base
    else:
        q = Decimal(repr(float(base) * (1.0 + float(g.growth)) ** months * max(0.0, noise)))
    return q.quantize(Decimal(1).scaleb(-g.decimals), rounding=ROUND_HALF_UP)


def generate(g: Generator) -> Iterator[tuple[date, Decimal]]:
    """(day, quantity) pairs of one generator, deterministic for its seed and dates. Days without usage
    (weekends when weekdays_only, a quantity that rounds to 0) are left out."""
    rng = random.Random(g.seed)
    if g.daily is not None:
        day = g.start
        while day <= g.end:
            if not (g.weekdays_only and day.weekday() >= 5):
                q = _quantity(g, rng, g.daily, _months_between(g.start, day))
                if q > 0:
                    yield day, q
            day += timedelta(days=1)
        return
    assert g.monthly is not None
    y, m = g.start.year, g.start.month
    while True:
        day = date(y, m, g.day)
        if day > g.end:
            return
        if day >= g.start:
            q = _quantity(g, rng, g.monthly, _months_between(g.start, day))
            if q > 0:
                yield day, q
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _at(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def customer_events(c: CustomerDef, account_id: int) -> list[dict[str, Any]]:
    """Every usage event of one customer as core.usage.ingest.record_events takes it."""
    out: list[dict[str, Any]] = []
    for j, g in enumerate(c.usage):
        for day, q in generate(g):
            out.append({"account_id": account_id, "metric": g.metric, "quantity": q, "occurred_at": _at(day),
                        "event_id": f"sc-g{j}-{day:%Y%m%d}", "properties": dict(g.properties) or None})
    for i, e in enumerate(c.events):
        at = e.at if e.at.tzinfo else e.at.replace(tzinfo=UTC)
        out.append({"account_id": account_id, "metric": e.metric, "quantity": e.quantity, "occurred_at": at,
                    "event_id": f"sc-e{i}", "properties": e.properties})
    return out


def batches(events: list[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    """Chronological batches, one month and one metric each: the ingestion hooks then re-rate only the
    accounts the metric concerns (threshold alerts), and partner-paid usage is settled in date order."""
    groups: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        groups[(e["occurred_at"].date().replace(day=1), e["metric"])].append(e)
    for key in sorted(groups):
        rows = sorted(groups[key], key=lambda e: (e["occurred_at"], e["account_id"], e["event_id"]))
        for i in range(0, len(rows), size):
            yield rows[i:i + size]


# ---------------------------------------------------------------- loading


@dataclass
class LoadSummary:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    partners: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    password: str = ""

    def text(self) -> str:
        lines = ["Created: " + ", ".join(f"{v:,} {k}" for k, v in self.counts.items() if v)]
        lines += [f"  {p}" for p in self.partners]
        if self.logins:
            lines.append(f"\nDemo logins (password for all: {self.password}):")
            lines += [f"  {email:38s} {what}" for email, what in self.logins]
        return "\n".join(lines)


def database_has_data(session: Session) -> dict[str, int]:
    """What is already there (users, non-house partners, customer accounts); empty dict = empty database."""
    found = {
        "users": session.scalar(select(func.count()).select_from(User)) or 0,
        "partners": session.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) or 0,
        "customer accounts": session.scalar(select(func.count()).select_from(CustomerAccount)) or 0,
    }
    return {k: v for k, v in found.items() if v}


def _plan_ids(session: Session, owner_id: int, defs: list, effective_from: date, s: LoadSummary) -> dict[str, int]:
    out = {}
    for pd in defs:
        plan = plans.create_plan(session, SYSTEM, name=pd.name, code=pd.code, currency=pd.currency, spec=pd.spec,
                                 partner_id=owner_id, description=pd.description, subject=pd.subject,
                                 effective_from=effective_from)
        out[pd.code] = plan.id
        s.counts["plans"] += 1
    return out


def _wallet(session: Session, pid: int, p: PartnerDef, sc: Scenario, s: LoadSummary) -> None:
    if p.card is not None:
        payments.add_card(session, SYSTEM, pid, number=p.card["number"], exp_month=p.card["exp_month"],
                          exp_year=p.card["exp_year"], label=p.card.get("label"))
        s.counts["payment cards"] += 1
    if p.wallet is None:
        return
    w = p.wallet
    wallet.get_or_create_wallet(session, SYSTEM, pid)
    if w.get("buy"):
        wallet.buy_credits(session, SYSTEM, pid, w["buy"], idempotency_key=f"scenario:{pid}:{sc.today}",
                           same_transaction=True)  # the partner is created in this transaction
        s.counts["credit purchases"] += 1
    wallet.configure(session, SYSTEM, pid, low_balance_threshold=w.get("low_balance_threshold"),
                     auto_buy_credits=w.get("auto_buy_credits"),
                     overdraft_policy=w.get("overdraft_policy", "refuse"),
                     overdraft_limit=w.get("overdraft_limit") or 0)
    s.counts["wallets"] += 1


def _customer(session: Session, pid: int, house_id: int, c: CustomerDef, own: dict[str, int],
              platform: dict[str, int], s: LoadSummary) -> int:
    acc = accounts.create_account(session, SYSTEM, partner_id=pid, **c.fields)
    s.counts["customer accounts"] += 1
    for u in c.users:
        accounts.create_user(session, SYSTEM, partner_id=pid, account_id=acc.id, email=u["email"],
                             display_name=u["name"], role=u["role"], password=s.password)
        s.counts["users"] += 1
        s.logins.append((u["email"], f"{ROLE_LABELS[u['role']]}, {acc.name}"))
    if c.plan:
        if c.plan_owner == "platform":
            plan_id, owner = platform[c.plan.split(":", 1)[1]], house_id
        else:
            plan_id, owner = own[c.plan], pid
        plans.assign_plan(session, SYSTEM, pid, acc.id, plan_id=plan_id, effective_from=c.plan_from,
                          overrides=c.overrides or None, plan_partner_id=owner)
        s.counts["plan assignments"] += 1
    if c.mode:
        # a scenario sets the mode before any of its usage exists, so a start date in the past is fine here
        billing_modes.set_mode(session, SYSTEM, pid, acc.id, c.mode, c.mode_from, c.on_decline, today=c.mode_from)
        s.counts["billing modes"] += 1
    return acc.id


# progress(partner name, partner number (1-based), partners, usage events written, usage events of the partner)
Progress = Callable[[str, int, int, int, int], None]


def load_scenario(session: Session, sc: Scenario, actor: Actor = SYSTEM, progress: Progress | None = None) -> LoadSummary:
    """Write a checked scenario through the core services (caller owns the one transaction). `progress` is
    called before a partner's usage and after each batch of it (the long part)."""
    s = LoadSummary(password=sc.password)
    for m in sc.metrics:
        metrics.add_metric(session, actor, **m)
        s.counts["metrics"] += 1
    for a in sc.admins:
        accounts.create_admin(session, actor, email=a["email"], display_name=a["name"], password=sc.password)
        s.counts["admins"] += 1
        s.logins.append((a["email"], "Platform admin"))
    house_id = house_partner(session).id
    platform = _plan_ids(session, house_id, sc.platform_plans, sc.start, s)
    for n, p in enumerate(sc.partners, start=1):
        partner = accounts.create_partner(session, actor, name=p.name, contact_email=p.contact_email,
                                          currency=p.currency, country=p.country)
        s.counts["partners"] += 1
        for st in p.staff:
            accounts.create_staff(session, actor, partner_id=partner.id, email=st["email"], display_name=st["name"],
                                  password=sc.password)
            s.counts["staff"] += 1
            s.logins.append((st["email"], f"Partner staff, {p.name}"))
        _wallet(session, partner.id, p, sc, s)
        own = _plan_ids(session, partner.id, p.plans, sc.start, s)
        if p.partner_plan:
            plans.assign_partner_plan(session, actor, partner.id, plan_id=platform[p.partner_plan],
                                      effective_from=p.partner_plan_from)
            s.counts["plan assignments"] += 1
        events: list[dict[str, Any]] = []
        for c in p.customers:
            acc_id = _customer(session, partner.id, house_id, c, own, platform, s)
            events += customer_events(c, acc_id)
        written = 0
        for batch in batches(events):
            if progress:
                progress(p.name, n, len(sc.partners), written, len(events))
            res = usage.record_events(session, actor, partner.id, batch, default_source=SOURCE)
            s.counts["usage events"] += res.inserted
            written += len(batch)
        if progress:
            progress(p.name, n, len(sc.partners), written, len(events))
        s.partners.append(f"{p.name} ({p.currency}): {len(p.staff)} staff, {len(p.customers)} customers, "
                          f"{len(p.plans)} plans, {len(events):,} usage events")
    return s


# ---------------------------------------------------------------- statements as JSON


KIND_ORDER = {"statement": 0, "collective": 1, "credit_note": 2}


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
    from db.engine import database_url, make_engine
    from db.migrate import upgrade

    eng = make_engine(database_url())
    upgrade(eng)
    return eng


def load_file(engine, path: Path | str, *, add: bool = False, today: date | None = None,
              check_only: bool = False, progress: Progress | None = None) -> LoadSummary:
    """Check and load a scenario file in one transaction. Raises ScenarioError (nothing written) or
    RefusedNonEmpty."""
    from db.engine import unit_of_work

    with unit_of_work(engine) as session:
        if not add and not check_only:
            found = database_has_data(session)
            if found:
                raise RefusedNonEmpty(found)
        sc = read_scenario(path, session, today=today or datetime.now(UTC).date())
        if check_only:
            return LoadSummary(counts=defaultdict(int, {"partners (checked)": len(sc.partners)}))
        return load_scenario(session, sc, progress=progress)


class RefusedNonEmpty(Exception):
    def __init__(self, found: dict[str, int]):
        self.found = found
        what = ", ".join(f"{v:,} {k}" for k, v in found.items())
        super().__init__(f"The database is not empty ({what}): nothing was loaded. "
                         "Use --add to add the scenario to the existing data.")


def main(argv: list[str] | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m seeds.scenario", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ld = sub.add_parser("load", help="check a scenario file and load it into the configured database")
    ld.add_argument("file", type=Path)
    ld.add_argument("--add", action="store_true", help="add to a database that already has data")
    ld.add_argument("--today", type=date.fromisoformat, help="the day relative dates are counted from")
    ld.add_argument("--check", action="store_true", help="only check the file; write nothing")
    ex = sub.add_parser("export-statements", help="generate a month's statements and print them as JSON")
    ex.add_argument("--month", required=True, help="YYYY-MM")
    ex.add_argument("--partner", help="a partner's name or id (default: all)")
    ex.add_argument("--finalise", action="store_true",
                    help="finalise the statements (numbers, immutable) instead of leaving drafts")
    ex.add_argument("--out", type=Path, help="write to this file instead of standard output")
    args = ap.parse_args(argv)
    engine = _engine()
    try:
        if args.command == "load":
            try:
                summary = load_file(engine, args.file, add=args.add, today=args.today, check_only=args.check)
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
