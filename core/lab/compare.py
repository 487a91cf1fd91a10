"""The billing-model lab: re-price the same monthly usage under several price models, side by side.

The maths is pure (no database): `reprice(monthly_usage, models)` rates every month under every model with
`core.pricing.rate_plan` — the very engine statements use — and derives totals, the difference and saving
against the current model, effective prices per document and per page, and break-even volumes
(`core.pricing.break_even`). The services around it load a customer's real monthly usage and current plan
(`lab_for_account`), offer the plans that could be compared (`comparable_plans`), and apply a model to a
customer through the normal plan services (`apply_model`: a customer-specific plan when the model was
edited on the spot, then `core.billing.plans.assign_plan` with an effective date — both audited there). Nothing is
saved unless a model is applied.

Months are calendar months and fees are those of a whole month; the month in progress is priced with its
usage so far (what the Pricing page's month-to-date preview shows).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import allowed, authorize
from core.billing import plans, ratecard_spec, ratecards
from core.billing.usage_detail import with_detail
from core.errors import NotFound, ValidationError
from core.pricing import (
    PlanSpec,
    PlanValidationError,
    Usage,
    break_even,
    rate_plan,
    round_money,
    validate_plan,
)
from core.usage.aggregates import period_usage
from db.models import CustomerAccount
from db.models.billing import Plan

ZERO = Decimal(0)
# Margin break-even volumes are looked for from this monthly volume up: below it, prices rounded to the cent
# make a model and the platform's charge look equal or swapped for a unit or two (noise, not a break-even).
MARGIN_FROM = 100
MODEL_KINDS = {
    "per_document": "Per document",
    "per_page": "Per page",
    "credits": "Credits",
    "tiers": "Tiers",
    "allowance": "Allowance + overage",
    "package": "Package",
    "per_unit": "Per unit (any metric)",
}
# The on-the-spot model that fits a customer's dominant billable metric (default_model); other metrics get
# a per-unit price on that metric.
KIND_FOR_METRIC = {"documents": "per_document", "pages": "per_page", "credits": "credits"}
# Synthetic document customers: (documents, pages) in the first month, growing 3 % a month.
PROFILES: dict[str, tuple[int, int]] = {"small": (300, 1_200), "medium": (2_500, 10_000), "large": (15_000, 60_000)}
PROFILE_GROWTH = Decimal("0.03")
BREAK_EVEN_METRICS = ("documents", "pages", "messages", "recipients", "credits")


# ---------------------------------------------------------------- months


def month_end(m: date) -> date:
    return m.replace(day=calendar.monthrange(m.year, m.month)[1])


def months_between(start: date, end: date) -> list[date]:
    """The first days of the calendar months from start's month to end's month."""
    if end < start:
        raise ValidationError({"period": "The date range ends before it starts."})
    out, m = [], start.replace(day=1)
    while m <= end:
        out.append(m)
        m = date(m.year + (m.month == 12), m.month % 12 + 1, 1)
    return out


def synthetic_usage(profile: str, start: date, end: date) -> dict[date, dict[str, Decimal]]:
    """A made-up document customer for partners without a real one at hand (deterministic)."""
    if profile not in PROFILES:
        raise ValidationError({"profile": f"Choose one of: {', '.join(PROFILES)}."})
    docs, pages = PROFILES[profile]
    out = {}
    for i, m in enumerate(months_between(start, end)):
        f = (1 + PROFILE_GROWTH) ** i
        out[m] = {"documents": (docs * f).quantize(Decimal(1), ROUND_HALF_UP),
                  "pages": (pages * f).quantize(Decimal(1), ROUND_HALF_UP)}
    return out


# ---------------------------------------------------------------- models


@dataclass(frozen=True)
class LabModel:
    """A price model to compare: an existing plan (plan_id set) or one edited on the spot."""

    name: str
    spec: PlanSpec
    current: bool = False
    plan_partner_id: int | None = None
    plan_id: int | None = None


def _dec(errors: dict[str, str], key: str, value: Any, label: str, *, required: bool = True) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors[key] = f"{label} is required."
        return None
    try:
        d = Decimal(str(value).strip())
    except ArithmeticError:
        errors[key] = f"{label} must be a number."
        return None
    if not d.is_finite() or d < 0:
        errors[key] = f"{label} must be 0 or more."
        return None
    return d


def model_spec(currency: str, kind: str, *, metric: str | None = None, unit_price: Any = None,
               tiers: Sequence[Mapping[str, Any]] | None = None, tier_mode: str = "volume",
               included_units: Any = None, overage_price: Any = None, package_size: Any = None,
               credit_rate: Any = None, base_fee: Any = None) -> PlanSpec:
    """A plan built from a few simple settings (the lab's on-the-spot models), validated like any plan.

    per_document / per_page: unit_price per document / page; per_unit: unit_price per unit of `metric`;
    credits: credit_rate credits per unit of `metric` (default documents) at unit_price per credit; tiers: `tiers` [{first, last, unit_price}]
    graduated or volume on `metric`; allowance: included_units then overage_price; package: blocks of
    package_size at unit_price per block. base_fee: an optional monthly fee."""
    errors: dict[str, str] = {}
    if kind not in MODEL_KINDS:
        raise ValidationError({"kind": f"Choose one of: {', '.join(MODEL_KINDS.values())}."})
    metric = metric or {"per_document": "documents", "per_page": "pages"}.get(kind, "documents")
    charge: dict[str, Any] = {"id": "usage", "metric": metric, "label": MODEL_KINDS[kind]}
    if kind in ("per_document", "per_page", "per_unit"):
        charge.update(model="per_unit", unit_price=_dec(errors, "unit_price", unit_price, "Unit price"))
    elif kind == "credits":
        charge.update(model="per_unit", credit_rate=_dec(errors, "credit_rate", credit_rate, "Credits per unit"),
                      unit_price=_dec(errors, "unit_price", unit_price, "Price per credit"))
    elif kind == "tiers":
        if tier_mode not in ("graduated", "volume"):
            errors["tier_mode"] = "Tiers are graduated or volume."
        rows = []
        for i, t in enumerate(tiers or []):
            if all(t.get(k) in (None, "") for k in ("first", "last", "unit_price")):
                continue  # an empty editor row
            try:
                first = int(t.get("first"))  # type: ignore[arg-type]
                last = None if t.get("last") in (None, "") else int(t.get("last"))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                errors[f"tiers[{i}]"] = "Tier bounds must be whole numbers (leave the last 'to' empty)."
                continue
            rows.append({"first": first, "last": last,
                         "unit_price": _dec(errors, f"tiers[{i}].unit_price", t.get("unit_price"), "Tier price")})
        if not rows:
            errors.setdefault("tiers", "Add at least one tier.")
        charge.update(model=tier_mode, tiers=rows)
    elif kind == "allowance":
        charge.update(model="allowance", included_units=_dec(errors, "included_units", included_units, "Included units"),
                      overage_price=_dec(errors, "overage_price", overage_price, "Overage price"))
    else:
        charge.update(model="package", package_size=_dec(errors, "package_size", package_size, "Package size"),
                      unit_price=_dec(errors, "unit_price", unit_price, "Package price"))
    fee = _dec(errors, "base_fee", base_fee, "Monthly fee", required=False)
    if errors:
        raise ValidationError(errors)
    spec = {"currency": currency, "charges": [_strings(charge)],
            "fees": [{"id": "base", "kind": "base", "amount": str(fee), "label": "Monthly fee"}] if fee else []}
    try:
        return validate_plan(spec, expected_currency=currency)
    except PlanValidationError as exc:
        raise ValidationError({p or "_form": m for p, m in exc.problems}) from None


def _strings(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dict):
        return {k: _strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_strings(x) for x in v]
    return v


# ---------------------------------------------------------------- re-pricing (pure)


@dataclass(frozen=True)
class ModelResult:
    name: str
    current: bool
    per_month: dict[date, Decimal]
    total: Decimal
    difference: Decimal | None  # total − current model's total (None without a current model)
    saving: Decimal | None  # current total − total: what the customer saves under this model
    saving_pct: Decimal | None
    per_document: Decimal | None  # effective price: total / documents
    per_page: Decimal | None
    # The model's metrics the usage never has. When it prices NONE of the metrics used (`comparable` False)
    # its total is only its fees: comparing it (a "saving") would be meaningless, the page says so instead.
    unused_metrics: tuple[str, ...] = ()
    comparable: bool = True
    # charges priced per value of an event property (dimensions): amount per statement line ("SMS – Norway")
    # over the months, so the lab compares the models value by value
    per_value: dict[str, Decimal] = field(default_factory=dict)
    # two price layers (issue 10): the model's price − the platform's charge (rate card) for the same usage
    margin: Decimal | None = None
    margin_per_month: dict[date, Decimal] | None = None

    @property
    def platform_charge(self) -> Decimal | None:
        """What the platform charges the partner for the same usage (rate card), when a card prices it."""
        return None if self.margin is None else self.total - self.margin


@dataclass(frozen=True)
class BreakEven:
    model: str
    against: str
    metric: str
    volume: int | None  # monthly volume at which the cheaper model changes (None: not in the range looked at)
    cheaper_below: str | None  # which model is cheaper below the volume (or everywhere when volume is None)


@dataclass(frozen=True)
class LabResult:
    currency: str
    months: list[date]
    usage: dict[date, dict[str, Decimal]]
    models: list[ModelResult]
    break_even: list[BreakEven]
    platform_cost: dict[date, Decimal] | None = None  # per month, at the partner's rate card
    margin_break_even: list[BreakEven] = field(default_factory=list)  # where a model's margin turns positive

    def table(self) -> list[dict[str, Any]]:
        """One row per month with each model's amount (for the page's table and chart)."""
        return [{"month": m.strftime("%Y-%m"), **{r.name: r.per_month[m] for r in self.models}} for m in self.months]


def _effective(total: Decimal, qty: Decimal) -> Decimal | None:
    return (total / qty).quantize(Decimal("0.0001"), ROUND_HALF_UP) if qty > 0 else None


def used_metrics(usage: Mapping[date, Mapping[str, Decimal]]) -> set[str]:
    """The metrics with any non-zero usage in the months."""
    return {k for u in usage.values() for k, v in u.items() if v}


def dominant_metric(usage: Mapping[date, Mapping[str, Decimal]], current: LabModel | None = None) -> str | None:
    """The customer's dominant billable metric: of the metrics it used that its current plan prices (all it
    used when the plan prices none of them, or without a plan), the one with the largest volume."""
    totals: dict[str, Decimal] = {}
    for u in usage.values():
        for k, v in u.items():
            if v:
                totals[k] = totals.get(k, ZERO) + Decimal(v)
    if current is not None and set(totals) & current.spec.metrics:
        totals = {k: v for k, v in totals.items() if k in current.spec.metrics}
    return max(sorted(totals), key=lambda k: totals[k]) if totals else None


def default_model(usage: Mapping[date, Mapping[str, Decimal]], current: LabModel | None = None) -> tuple[str, str]:
    """(kind, metric) of the first on-the-spot model for this usage: pages → per page, documents → per
    document, credits → credits, any other metric → per unit of it; per document without usage."""
    metric = dominant_metric(usage, current) or "documents"
    return KIND_FOR_METRIC.get(metric, "per_unit"), metric


def _break_even_metric(models: Sequence[LabModel], usage: Mapping[date, Mapping[str, Decimal]]) -> str | None:
    used = {k for u in usage.values() for k, v in u.items() if v}
    priced = set().union(*(m.spec.metrics for m in models)) if models else set()
    for metric in BREAK_EVEN_METRICS:
        if metric in used and metric in priced:
            return metric
    rest = sorted(used & priced)
    return rest[0] if rest else None


def reprice(usage: Mapping[date, Mapping[str, Decimal]], models: Sequence[LabModel], *,
            detail: Mapping[date, Mapping[str, Usage]] | None = None, cost: PlanSpec | None = None) -> LabResult:
    """Rate every month of `usage` under every model (same currency), with totals, savings against the
    model marked current (or the first), effective prices and break-even volumes against it. `detail`: per
    month, metrics with their usage per property value (and events), used for rating instead of the plain
    quantity (charges with a dimension are then compared value by value, `ModelResult.per_value`). With
    `cost` (the partner's rate card as a plan, core.billing.ratecard_spec.cost_plan): each model's margin, and
    the volume at which it turns positive."""
    if not models:
        raise ValidationError({"models": "Pick at least one price model."})
    currencies = {m.spec.currency for m in models}
    if len(currencies) != 1:
        raise ValidationError({"models": "All models must be in the same currency: " + ", ".join(sorted(currencies))})
    currency = currencies.pop()
    months = sorted(usage)
    base = next((m for m in models if m.current), models[0])
    docs = sum((Decimal(usage[m].get("documents", ZERO)) for m in months), ZERO)
    pages = sum((Decimal(usage[m].get("pages", ZERO)) for m in months), ZERO)
    per_model: list[tuple[LabModel, dict[date, Decimal], Decimal]] = []
    per_value: dict[str, dict[str, Decimal]] = {}
    if cost is not None and cost.currency != currency:
        cost = None  # a card in another currency cannot be compared
    costs = {m: rate_plan(cost, usage[m], m, month_end(m)).total for m in months} if cost is not None else None
    for model in models:
        amounts = {}
        values = per_value.setdefault(model.name, {})
        for m in months:
            month_usage: dict[str, Decimal | Usage] = {**usage[m], **((detail or {}).get(m) or {})}
            r = rate_plan(model.spec, month_usage, m, month_end(m))
            amounts[m] = r.total
            for ln in r.lines:
                if ln.dimension_value is not None:
                    values[ln.label] = values.get(ln.label, ZERO) + ln.amount
        per_model.append((model, amounts, sum(amounts.values(), ZERO)))
    base_total = next(t for mdl, _, t in per_model if mdl is base)
    used = used_metrics(usage)
    results = []
    for model, amounts, total in per_model:
        diff = total - base_total
        pct = (-diff * 100 / base_total).quantize(Decimal("0.1"), ROUND_HALF_UP) if base_total else None
        priced = model.spec.metrics
        margins = {m: amounts[m] - costs[m] for m in months} if costs is not None else None
        results.append(ModelResult(model.name, model is base, amounts, total, diff, -diff, pct,
                                   _effective(total, docs), _effective(total, pages),
                                   tuple(sorted(priced - used)), not priced or bool(priced & used),
                                   per_value.get(model.name, {}),
                                   sum(margins.values(), ZERO) if margins is not None else None, margins))
    margin_even: list[BreakEven] = []
    if cost is not None:
        cost_model = LabModel("Platform charge", cost)
        margin_even = [be for model in models for be in _break_evens(usage, [model, cost_model], cost_model, lo=MARGIN_FROM)]
    return LabResult(currency, months, {m: dict(usage[m]) for m in months}, results,
                     _break_evens(usage, models, base), costs, margin_even)


def _break_evens(usage: Mapping[date, Mapping[str, Decimal]], models: Sequence[LabModel],
                 base: LabModel, lo: int = 0) -> list[BreakEven]:
    metric = _break_even_metric(models, usage)
    if metric is None or not usage:
        return []
    n = Decimal(len(usage))
    keys = {k for u in usage.values() for k in u}
    average = {k: (sum((Decimal(u.get(k, ZERO)) for u in usage.values()), ZERO) / n).quantize(Decimal(1))
               for k in keys if k != metric}
    peak = max(int(Decimal(u.get(metric, ZERO))) for u in usage.values())
    hi = max(3 * peak, 20_001)  # > 20,000 wide: break_even bisects between price breakpoints (fast, exact)
    out = []
    for model in models:
        if model is base:
            continue
        volume = break_even(model.spec, base.spec, metric, lo, hi, base_usage=average)
        probe = dict(average, **{metric: Decimal(max((volume or 1) - 1, 0))})
        a = rate_plan(model.spec, probe, date(2001, 1, 1), date(2001, 1, 31)).total
        b = rate_plan(base.spec, probe, date(2001, 1, 1), date(2001, 1, 31)).total
        cheaper = model.name if a < b else base.name if b < a else None
        out.append(BreakEven(model.name, base.name, metric, volume, cheaper))
    return out


# ---------------------------------------------------------------- services


@dataclass(frozen=True)
class AccountLab:
    account_id: int
    account_name: str
    currency: str
    usage: dict[date, dict[str, Decimal]]
    current: LabModel | None
    # per month: the current plan's metrics that need detail (per property value, events), for reprice(detail=)
    detail: dict[date, dict[str, Usage]] = field(default_factory=dict)


def lab_for_account(session: Session, actor: Actor, partner_id: int, account_id: int, start: date,
                    end: date) -> AccountLab:
    """A customer's real usage per calendar month of [start, end] and its current plan (with its
    customer-specific overrides) as the model to compare against. Staff and admins (plan.manage)."""
    authorize(actor, "plan.manage", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or acc.status == "deleted":
        raise NotFound(f"Customer account {account_id} does not exist.")
    usage = {}
    for m in months_between(start, end):
        usage[m] = {k: v for k, v in period_usage(session, partner_id, account_id, max(m, start),
                                                  min(month_end(m), end)).items() if v}
    cur = plans.current_assignment(session, actor, partner_id, account_id, on=end)
    current = None
    if cur is not None:
        a = cur.assignment
        current = LabModel(f"Current: {a.plan_name}", cur.spec, True, a.plan_partner_id, a.plan_id)
    detail: dict[date, dict[str, Usage]] = {}
    if current is not None:
        for m in months_between(start, end):
            full = with_detail(session, current.spec, usage[m], partner_id, account_id, max(m, start),
                               min(month_end(m), end))
            detail[m] = {k: v for k, v in full.items() if isinstance(v, Usage)}
    return AccountLab(account_id, acc.name, acc.currency, usage, current, detail)


def platform_cost_plan(session: Session, actor: Actor, partner_id: int, on: date) -> PlanSpec | None:
    """The partner's rate card in force on `on` as a plan (for margins in the lab), or None: no card, or the
    actor may not see the platform's charges (`margin.view`: partner staff and platform admins only)."""
    if not allowed(actor, "margin.view", partner_id) or not (actor.is_staff or actor.is_admin):
        return None
    rc = ratecards.card_in_force(session, partner_id, on)
    return ratecard_spec.cost_plan(rc.card) if rc is not None else None


def comparable_plans(session: Session, actor: Actor, partner_id: int, currency: str) -> list[LabModel]:
    """The customer plans of the partner (and the platform's) in the currency, latest version each."""
    authorize(actor, "plan.manage", partner_id)
    out = []
    for row in plans.list_plans(session, actor, subject="account", currency=currency):
        if row.partner_id != partner_id and row.owner != "Platform":
            continue  # an admin sees every partner's plans: only this partner's and the platform's apply
        detail = plans.get_plan(session, actor, row.partner_id, row.id)
        out.append(LabModel(f"{row.name} ({row.code})", detail.spec(), False, row.partner_id, row.id))
    return out


def apply_model(session: Session, actor: Actor, partner_id: int, account_id: int, *, effective_from: date,
                plan_id: int | None = None, plan_partner_id: int | None = None, spec: PlanSpec | None = None,
                name: str | None = None) -> Any:
    """Put the customer on a model from a date: an existing plan, or (spec) a customer-specific plan created
    from the edited model first. Goes through core.billing.plans (validation, permission, audit)."""
    authorize(actor, "plan.manage", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or acc.status == "deleted":
        raise NotFound(f"Customer account {account_id} does not exist.")
    if (plan_id is None) == (spec is None):
        raise ValidationError({"model": "Choose one model to apply."})
    if spec is not None:
        taken = set(session.scalars(select(Plan.code).where(Plan.partner_id == partner_id)))
        n = 1
        while f"lab-{account_id}-{n}" in taken:
            n += 1
        plan = plans.create_plan(session, actor, partner_id=partner_id, name=(name or f"{acc.name} – lab model")[:200],
                                 code=f"lab-{account_id}-{n}", currency=acc.currency, spec=spec,
                                 description=f"Made in the billing-model lab for {acc.name}.",
                                 effective_from=effective_from)
        plan_id, plan_partner_id = plan.id, partner_id
    assert plan_id is not None  # exactly one of plan_id and spec was given
    return plans.assign_plan(session, actor, partner_id, account_id, plan_id=plan_id, effective_from=effective_from,
                             plan_partner_id=plan_partner_id)


def money(amount: Decimal | None, currency: str) -> Decimal | None:
    return None if amount is None else round_money(amount, currency)
