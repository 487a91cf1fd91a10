"""Export a loaded world back to a scenario file (`python -m seeds.scenario export`), so a demo built in the
UI can be kept as a file. Loading the file into an empty database gives the same statements
(tests/test_scenarios_export.py).

What is written: the metrics, the platform admins and plans, and per partner its staff, statement
settings, wallet settings and history (purchases as dated top-ups, adjustments, refunds, expiry; draws and
automatic purchases are made again by the usage), plans with their price versions (as changes against the
version before), customers with their creation and deletion dates, users, plan and billing-mode history,
their usage (per day, metric and properties for summed metrics, else every event) and the statement history
(finalised months, voids, credit notes, months generated again). Users get the password given to the
export (passwords are not exported). Not exported: payment cards (a partner with one gets the demo card),
partial credit notes (exported as full), actions on collective invoices, and price versions that add or
remove charges (reported: ExportError).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core import clock
from core.accounts.accounts import ACCOUNT_FIELDS
from core.usage.metrics import get_metrics
from db.models import CustomerAccount, Partner, User
from db.models.billing import Plan, PlanAssignment, PlanVersion
from db.models.statements import Statement, StatementSettings
from db.models.wallet import BillingMode, PaymentMethod, Wallet
from seeds import scenario_toml as toml
from seeds.scenario_ratecards import export_partner_card, export_standard_cards


class ExportError(Exception):
    pass


def _clean(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None and x != [] and x != ()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _diff(a: dict[str, Any], b: dict[str, Any], code: str) -> dict[str, Any]:
    """The override paths that turn spec `a` into spec `b` (docs/pricing.md, Overrides)."""
    out: dict[str, Any] = {}
    if a.get("minimum_spend") != b.get("minimum_spend"):
        out["minimum_spend"] = b.get("minimum_spend")
    for group in ("charges", "fees", "discounts"):
        ia, ib = a.get(group) or [], b.get(group) or []
        if [x.get("id") for x in ia] != [x.get("id") for x in ib]:
            raise ExportError(f"plan {code}: a price version adds or removes {group}; not expressible as changes")
        for xa, xb in zip(ia, ib, strict=True):
            for f in sorted(set(xa) | set(xb)):
                va, vb = xa.get(f), xb.get(f)
                if va == vb:
                    continue
                if isinstance(va, list) and isinstance(vb, list) and len(va) == len(vb) and f.endswith("tiers"):
                    for i, (ta, tb) in enumerate(zip(va, vb, strict=True)):
                        out.update({f"{group}.{xa['id']}.{f}.{i}.{k}": tb.get(k) for k in set(ta) | set(tb)
                                    if ta.get(k) != tb.get(k)})
                elif isinstance(vb, list | dict):
                    raise ExportError(f"plan {code}: a price version changes {group}.{xa['id']}.{f}")
                else:
                    out[f"{group}.{xa['id']}.{f}"] = vb
    return {k: (None if v is None else str(v)) for k, v in out.items()}


def _plan(session: Session, plan: Plan, platform: bool) -> dict[str, Any]:
    versions = list(session.scalars(select(PlanVersion).where(PlanVersion.partner_id == plan.partner_id,
                                                             PlanVersion.plan_id == plan.id)
                                    .order_by(PlanVersion.version)))
    first = _clean(dict(versions[0].spec))
    out: dict[str, Any] = {"code": plan.code, "name": plan.name, "description": plan.description,
                           "subject": plan.subject if plan.subject != "account" else None}
    if platform:
        out["currency"] = plan.currency
    out |= {"timing": first.get("timing"), "minimum_spend": first.get("minimum_spend"),
            "charges": first.get("charges") or None, "fees": first.get("fees") or None,
            "discounts": first.get("discounts") or None}
    out["versions"] = [{"from": v.effective_from, "set": _diff(dict(p.spec), dict(v.spec), plan.code),
                        "note": v.note} for p, v in zip(versions, versions[1:], strict=False)] or None
    return out


def _plans(session: Session, pid: int, platform: bool = False) -> list[dict[str, Any]]:
    return [_plan(session, p, platform) for p in session.scalars(select(Plan).where(Plan.partner_id == pid)
                                                                  .order_by(Plan.id))]


def _wallet(session: Session, pid: int) -> tuple[dict | None, list[dict]]:
    w = session.scalar(select(Wallet).where(Wallet.partner_id == pid))
    if w is None:
        return None, []
    conf = {"low_balance_threshold": w.low_balance_threshold, "auto_buy_credits": w.auto_buy_credits,
            "overdraft_policy": w.overdraft_policy if w.overdraft_policy != "refuse" else None,
            "overdraft_limit": w.overdraft_limit or None}
    rows = session.execute(text("SELECT id, kind, credits, reason, refund_of, created_at FROM wallet_ledger "
                                "WHERE partner_id = :p AND kind IN ('purchase', 'adjustment', 'refund', 'expiry') "
                                "ORDER BY created_at, id"), {"p": pid}).all()
    history, index = [], {}
    for r in rows:
        item: dict[str, Any] = {"on": r.created_at.date()}
        if r.kind == "purchase":
            index[r.id] = len(history)
            item["top_up"] = r.credits
        elif r.kind == "adjustment":
            item |= {"adjust": r.credits, "reason": r.reason}
        elif r.kind == "refund":
            item |= {"refund": -r.credits, "of": index[r.refund_of], "reason": r.reason}
        else:
            item |= {"expire": -r.credits, "reason": r.reason}
        history.append(item)
    return conf, history


def _statement_history(session: Session, pid: int, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = list(session.scalars(select(Statement).where(Statement.partner_id == pid, Statement.number.is_not(None))
                                .order_by(Statement.issued_on, Statement.id)))
    out: list[tuple[date, int, dict[str, Any]]] = []
    by_id = {r.id: r for r in rows}
    months: dict[date, date] = {}
    for r in rows:
        if r.kind != "credit_note":
            months[r.period_start] = min(months.get(r.period_start, r.issued_on), r.issued_on)
    finalised: dict[date, date] = dict(months)
    seen: set[tuple[int | None, date]] = set()
    for r in rows:
        month, who = r.period_start.strftime("%Y-%m"), names.get(r.account_id or 0)
        if r.kind != "credit_note" and (r.account_id, r.period_start) in seen and who:
            out.append((r.issued_on, 3, {"month": month, "regenerate": who, "on": r.issued_on}))
        if r.kind != "credit_note":
            seen.add((r.account_id, r.period_start))
        if r.kind != "credit_note" and r.status == "void" and who and r.voided_at:
            out.append((r.voided_at.date(), 2, {"month": month, "void": who, "reason": r.void_reason,
                                                "on": r.voided_at.date()}))
        orig = by_id.get(r.credit_note_for or 0)
        if r.kind == "credit_note" and orig is not None and orig.status != "void" and who:
            out.append((r.issued_on, 1, {"month": month, "credit": who, "reason": r.reason, "on": r.issued_on}))
    out += [(on, 0, {"month": m.strftime("%Y-%m"), "finalise": True, "on": on}) for m, on in finalised.items()]
    return [x for _, _, x in sorted(out, key=lambda t: (t[0], t[1]))]


def _usage(session: Session, pid: int, account_id: int, summed: set[str]) -> list[dict[str, Any]]:
    rows = session.execute(text(
        "SELECT metric, day, sum(quantity) AS q, NULL AS at, properties AS props FROM usage_events "
        "WHERE partner_id = :p AND account_id = :a AND metric = ANY(:m) GROUP BY metric, day, properties "
        "UNION ALL SELECT metric, day, quantity, occurred_at, properties FROM usage_events "
        "WHERE partner_id = :p AND account_id = :a AND NOT metric = ANY(:m) ORDER BY 2, 1"),
        {"p": pid, "a": account_id, "m": sorted(summed)}).all()
    return [{"metric": r.metric, "quantity": r.q, "at": r.at or r.day, "properties": r.props or None} for r in rows]


def _customers(session: Session, pid: int, house_id: int, summed: set[str]) -> list[dict[str, Any]]:
    codes = {(p.partner_id, p.id): (p.code if p.partner_id == pid else f"platform:{p.code}")
             for p in session.scalars(select(Plan).where(Plan.partner_id.in_((pid, house_id))))}
    out = []
    for acc in session.scalars(select(CustomerAccount).where(CustomerAccount.partner_id == pid)
                               .order_by(CustomerAccount.id)):
        c: dict[str, Any] = {k: getattr(acc, k) for k in ACCOUNT_FIELDS}
        c["created"] = acc.created_at.date()
        if acc.status == "deleted" and acc.deleted_at:
            c["deleted"] = acc.deleted_at.date()
        c["users"] = [{"email": u.email, "name": u.display_name, "role": u.role} for u in session.scalars(
            select(User).where(User.partner_id == pid, User.account_id == acc.id).order_by(User.id))] or None
        c["plans"] = [{"plan": codes[(a.plan_partner_id, a.plan_id)], "from": a.effective_from,
                       "overrides": dict(a.overrides) or None}
                      for a in session.scalars(select(PlanAssignment).where(
                          PlanAssignment.partner_id == pid, PlanAssignment.account_id == acc.id)
                          .order_by(PlanAssignment.effective_from, PlanAssignment.id))] or None
        c["modes"] = [{"mode": m.mode, "from": m.effective_from, "on_decline": m.on_decline}
                      for m in session.scalars(select(BillingMode).where(
                          BillingMode.partner_id == pid, BillingMode.account_id == acc.id)
                          .order_by(BillingMode.effective_from))] or None
        c["events"] = _usage(session, pid, acc.id, summed) or None
        out.append(c)
    return out


def _settings(session: Session, pid: int) -> dict[str, Any] | None:
    row = session.get(StatementSettings, pid)
    if row is None:
        return None
    return _clean({"tax_rate": row.tax_rate, "language": row.language, "payment_terms_days": row.payment_terms_days,
                   "number_prefix": row.number_prefix, "display_name": row.display_name, "address": row.address,
                   "logo_text": row.logo_text, "footer": row.footer, "labels": dict(row.labels or {}) or None})


def _card(read: Any) -> Any:
    try:
        return read()
    except ValueError as exc:
        raise ExportError(f"rate cards: {exc}") from exc


def _partner(session: Session, p: Partner, house_id: int, summed: set[str]) -> dict[str, Any]:
    settings = _settings(session, p.id)
    conf, history = _wallet(session, p.id)
    has_card = session.scalar(select(PaymentMethod.id).where(PaymentMethod.partner_id == p.id,
                                                             PaymentMethod.kind == "card").limit(1))
    customers = _customers(session, p.id, house_id, summed)
    names = {c_id: c for c_id, c in session.execute(select(CustomerAccount.id, CustomerAccount.name)
                                                     .where(CustomerAccount.partner_id == p.id)).all()}
    pp = session.execute(select(Plan.code, PlanAssignment.effective_from).join(
        Plan, (Plan.partner_id == PlanAssignment.plan_partner_id) & (Plan.id == PlanAssignment.plan_id)).where(
        PlanAssignment.partner_id == p.id, PlanAssignment.account_id.is_(None))
        .order_by(PlanAssignment.effective_from)).all()
    if len(pp) > 1:
        raise ExportError(f"partner {p.name}: more than one partner-level plan over time (the format has one)")
    out: dict[str, Any] = {
        "name": p.name, "currency": p.currency, "country": p.country, "contact_email": p.contact_email,
        "created": p.created_at.date(),
        "partner_plan": pp[0].code if pp else None, "partner_plan_from": pp[0].effective_from if pp else None,
        "staff": [{"email": u.email, "name": u.display_name} for u in session.scalars(
            select(User).where(User.partner_id == p.id, User.role == "partner_staff").order_by(User.id))] or None,
        "card": {"number": "4242424242424242"} if has_card and conf is None else None,
        "wallet": {k: v for k, v in conf.items() if v is not None} if conf is not None else None,
        "wallet_history": history or None,
        "statement_history": _statement_history(session, p.id, names) or None,
    }
    out["statements"] = settings
    out["rate_card"] = _card(lambda: export_partner_card(session, p.id))
    out["[[plans"] = _plans(session, p.id)
    out["[[customers"] = customers
    return out


def export_world(session: Session, *, password: str = "demo-pass-2026", name: str = "Exported world",
                 partner: str | None = None) -> str:
    """The database's world (or one partner's) as scenario TOML. Raises ExportError for what the format
    cannot say."""
    house = session.scalar(select(Partner).where(Partner.is_house))
    catalogue = get_metrics(session)
    summed = {k for k, m in catalogue.items() if m.aggregation == "sum"}
    start = session.scalar(text("SELECT least((SELECT min(effective_from) FROM plan_versions), "
                                "(SELECT min(day) FROM usage_events))")) or clock.today()
    head: dict[str, Any] = {"password": password}
    out = toml.lines(head) + [""] + toml.lines({"name": name, "seed": "export", "start": start}, "scenario")
    for m in catalogue.values():
        out += [""] + toml.lines({"key": m.key, "name": m.name, "unit": m.unit, "aggregation": m.aggregation,
                                  "property": m.property, "counts_as_active": m.counts_as_active or None},
                                 "metrics", many=True)
    if partner is None:
        house_settings = _settings(session, house.id)  # type: ignore[union-attr]
        if house_settings:
            out += [""] + toml.lines(house_settings, "platform.statements")
        for u in session.scalars(select(User).where(User.role == "platform_admin").order_by(User.id)):
            out += [""] + toml.lines({"email": u.email, "name": u.display_name}, "admins", many=True)
        for card in _card(lambda: export_standard_cards(session, house.id)):  # type: ignore[union-attr]
            out += [""] + toml.lines(card, "rate_cards", many=True)
        for pl in _plans(session, house.id, platform=True):  # type: ignore[union-attr]
            out += [""] + toml.lines(pl, "platform_plans", many=True)
    q = select(Partner).where(~Partner.is_house).order_by(Partner.id)
    if partner:
        q = q.where(Partner.name == partner)
    for p in session.scalars(q):
        out += [""] + toml.lines(_partner(session, p, house.id, summed), "partners", many=True)  # type: ignore[union-attr]
    return "\n".join(out) + "\n"


