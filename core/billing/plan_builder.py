"""What the Pricing page's plan builder needs from core: the partner's metrics, a charge from the builder's form
(plain text as typed) in the stored form, plain-language rows of a draft plan, the price calculator and
per-customer overrides from the same form.

The charge models describe their own fields (core.pricing.models: label, kind, help); nothing here knows a
model by name. Money is never computed in the page: the calculator rates with the engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing import plans
from core.billing.describe import describe_spec
from core.errors import ValidationError
from core.pricing import (
    PlanSpec,
    PlanValidationError,
    Rating,
    Usage,
    get_model,
    plan_from_dict,
    rate_plan,
)
from core.usage import dimensions as usage_dimensions
from db.models.billing import PlanVersion
from db.models.usage import Metric, UsagePartnerMonthly

__all__ = ["TIER_COLUMNS", "partner_metrics", "dimension_choices", "charge_from_form", "check_charge", "describe_draft",
           "CalculatorInput", "calculator_needs", "calculate", "overrides_from_form", "describe_overrides",
           "tier_rows"]

# the tiers editor's columns (label shown, stored key)
TIER_COLUMNS = (("From", "first"), ("To (empty = and above)", "last"), ("Price", "unit_price"),
                ("Flat fee", "flat_fee"), ("Block size (optional)", "block_size"))
_NOMINAL = (date(2001, 1, 1), date(2001, 1, 31))  # a 31-day month: fees unprorated


# ---------------------------------------------------------------- metrics


def partner_metrics(session: Session, actor: Actor, partner_id: int) -> list[Metric]:
    """The metrics this partner's catalogue uses: those its plans price (latest version of each, its own and the
    platform's offered to it) and those its customers have usage of. A partner with none yet gets them all."""
    authorize(actor, "plan.view", partner_id)
    keys: set[str] = set()
    for row in plans.list_plans(session, actor):
        if row.subject == "account" and (row.partner_id == partner_id or row.owner == "Platform"):
            v = session.scalar(select(PlanVersion.spec).where(
                PlanVersion.partner_id == row.partner_id, PlanVersion.plan_id == row.id)
                .order_by(PlanVersion.version.desc()).limit(1))
            for c in (v or {}).get("charges") or []:
                keys.add(str(c.get("metric")))
            for f in (v or {}).get("fees") or []:
                if f.get("metric"):
                    keys.add(str(f["metric"]))
    keys.update(session.scalars(select(UsagePartnerMonthly.metric).where(
        UsagePartnerMonthly.partner_id == partner_id).distinct()))
    metrics = list(session.scalars(select(Metric).order_by(Metric.builtin.desc(), Metric.key)))
    used = [m for m in metrics if m.key in keys]
    return used or metrics


# ---------------------------------------------------------------- a charge from the form


def dimension_choices(session: Session, actor: Actor, partner_id: int) -> dict[str, dict[str, str]]:
    """metric -> event property -> label: the dimensions declared in the catalogue, which the builder offers for
    "the price depends on" (ingestion keeps their per-value aggregates: core.usage.dimensions)."""
    authorize(actor, "plan.view", partner_id)
    return usage_dimensions.declared(session)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v != v:  # NaN from an empty data-editor cell
        return None
    s = str(v).strip()
    return s or None


def tier_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the tiers editor (keyed by column label or stored key) → stored tiers; empty rows dropped."""
    out = []
    for row in rows:
        t = {key: _text(row.get(label, row.get(key))) for label, key in TIER_COLUMNS}
        if not any(t.values()):
            continue
        t["flat_fee"] = t["flat_fee"] or "0"
        if t["block_size"] is None:
            del t["block_size"]
        out.append(t)
    return out


def charge_from_form(*, cid: str, metric: str, model: str, values: Mapping[str, Any],
                     tiers: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, unit: Any = None,
                     label: Any = None, settle: str = "money", credit_rate: Any = None, min_amount: Any = None,
                     dimension: Any = None, dimension_rows: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The stored form of a charge from the builder: only the chosen model's fields (blank = not set), tiers
    from the tiers editor, prices per value of an event property from the values table."""
    m = get_model(model)
    charge: dict[str, Any] = {"id": (cid or "").strip(), "metric": metric, "model": model, "settle": settle,
                              "unit": _text(unit), "label": _text(label), "credit_rate": _text(credit_rate),
                              "min_amount": _text(min_amount)}
    for f in m.fields:
        if f.kind == "tiers":
            rows = tier_rows((tiers or {}).get(f.name) or [])
            if rows:
                charge[f.name] = rows
        elif _text(values.get(f.name)) is not None:
            charge[f.name] = _text(values.get(f.name))
    dim = _text(dimension)
    if dim:
        charge["dimension"] = dim
        charge["dimension_prices"] = []
        for row in dimension_rows:
            value = _text(row.get("value"))
            if value is None:
                continue
            entry: dict[str, Any] = {"value": value, "label": _text(row.get("label"))}
            for f in m.fields:
                if f.kind != "tiers" and _text(row.get(f.name)) is not None:
                    entry[f.name] = _text(row.get(f.name))
            charge["dimension_prices"].append(entry)
    return charge


def check_charge(session: Session, charge: Mapping[str, Any], currency: str) -> dict[str, Any]:
    """Validate one charge alone (before it joins the draft): ValidationError keyed `spec.charges[0]...`."""
    try:
        plan_from_dict({"currency": currency, "charges": [dict(charge)]}, known_metrics=plans.known_metrics(session))
    except PlanValidationError as exc:
        raise plans.spec_errors(exc) from None
    return dict(charge)


# ---------------------------------------------------------------- describing a draft


def describe_draft(spec_dict: Mapping[str, Any]) -> list[dict[str, str]]:
    """The draft's charges, fees, discounts and minimum in plain language, each as soon as it is added; an item
    that is not valid (yet) says what is wrong instead of its price."""
    try:
        return describe_spec(plan_from_dict(spec_dict))
    except PlanValidationError:
        pass
    rows: list[dict[str, str]] = []
    base = {"currency": spec_dict.get("currency"), "timing": spec_dict.get("timing") or "in_arrears"}
    for key in ("charges", "fees", "discounts"):
        for item in spec_dict.get(key) or []:
            one = {**base, key: [item]}
            if key == "discounts" and item.get("charges"):
                one["charges"] = [c for c in spec_dict.get("charges") or [] if c.get("id") in item["charges"]]
            try:
                rows += [r for r in describe_spec(plan_from_dict(one))
                         if r["item"] in (item.get("label"), item.get("id"))]
            except PlanValidationError as exc:
                rows.append({"item": str(item.get("label") or item.get("id")), "metric": str(item.get("metric") or ""),
                             "model": str(item.get("model") or item.get("kind") or key[:-1]),
                             "price": "not valid: " + "; ".join(m for _, m in exc.problems)})
    return rows


# ---------------------------------------------------------------- the price calculator


@dataclass(frozen=True)
class CalculatorInput:
    """What the calculator's fields hold (text as typed): per metric a quantity, and where a charge needs it the
    number of transactions, the transaction amounts ("200, 100, 100, 50") and quantities per property value."""

    quantities: Mapping[str, Any]
    counts: Mapping[str, Any] | None = None
    transactions: Mapping[str, Any] | None = None
    per_value: Mapping[str, Mapping[str, Any]] | None = None  # metric -> value -> quantity


def _dec(errors: dict[str, str], key: str, v: Any, what: str) -> Decimal | None:
    t = _text(v)
    if t is None:
        return None
    try:
        d = Decimal(t.replace(",", "")) if t.count(",") and "." in t else Decimal(t)
    except InvalidOperation:
        errors[key] = f"{what}: not a number: {t!r}"
        return None
    if not d.is_finite() or d < 0:
        errors[key] = f"{what} must be a number ≥ 0"
        return None
    return d


def _metric_usage(errors: dict[str, str], metric: str, inp: CalculatorInput, dims: Sequence[str]) -> Decimal | Usage:
    events: tuple[Decimal, ...] | None = None
    raw = _text((inp.transactions or {}).get(metric))
    if raw:
        parsed = [_dec(errors, f"transactions.{metric}", x, "Transaction amount") for x in raw.replace(";", " ")
                  .replace(",", " ").split()]
        events = tuple(x for x in parsed if x is not None)
    q = _dec(errors, f"quantities.{metric}", (inp.quantities or {}).get(metric), f"Quantity of {metric}")
    quantity = sum(events, Decimal(0)) if events is not None else (q or Decimal(0))
    count_raw = _dec(errors, f"counts.{metric}", (inp.counts or {}).get(metric), "Number of transactions")
    count = len(events) if events is not None else (int(count_raw) if count_raw is not None else None)
    by_value: dict[str, dict[str, Decimal | Usage]] = {}
    for value, v in ((inp.per_value or {}).get(metric) or {}).items():
        d = _dec(errors, f"per_value.{metric}.{value}", v, f"Quantity for {value}")
        if d is not None:
            for dim in dims:
                by_value.setdefault(dim, {})[value] = d
    if by_value and raw is None and q is None:
        quantity = sum((x for x in next(iter(by_value.values())).values() if isinstance(x, Decimal)), Decimal(0))
    if events is None and count is None and not by_value:
        return quantity
    return Usage(quantity, count=count, events=events, by_value=by_value)


@dataclass(frozen=True)
class MetricNeeds:
    count: bool  # the number of transactions
    events: bool  # each transaction's amount
    values: tuple[tuple[str, str], ...]  # (value, label) priced per value


def calculator_needs(spec_dict: Mapping[str, Any]) -> dict[str, MetricNeeds]:
    """Per metric of a (valid) draft: which extra calculator fields its charges need ({} for an invalid one)."""
    from core.billing.usage_detail import needs

    try:
        spec = plan_from_dict(spec_dict)
    except PlanValidationError:
        return {}
    out = {}
    for metric, n in needs(spec).items():
        values = tuple((d.value, d.title) for c in spec.charges if c.metric == metric for d in c.dimension_prices)
        out[metric] = MetricNeeds(n.count, n.events, values)
    return out


def calculate(spec_dict: Mapping[str, Any], inp: CalculatorInput) -> Rating:
    """Rate the (draft) plan over one nominal month at the typed quantities: every line with its explanation,
    fees and discounts included. ValidationError for a plan or a quantity that is not valid."""
    try:
        spec = plan_from_dict(spec_dict)
    except PlanValidationError as exc:
        raise plans.spec_errors(exc) from None
    errors: dict[str, str] = {}
    dims: dict[str, list[str]] = {}
    for c in spec.charges:
        if c.dimension:
            dims.setdefault(c.metric, []).append(c.dimension)
    usage = {m: _metric_usage(errors, m, inp, dims.get(m, [])) for m in spec.metrics}
    if errors:
        raise ValidationError(errors)
    try:
        return rate_plan(spec, usage, *_NOMINAL)
    except ValueError as exc:  # RatingError: e.g. a percentage charge needs the transactions
        raise ValidationError({"calculator": str(exc)}) from None


# ---------------------------------------------------------------- per-customer overrides from the same form


def overrides_from_form(spec: PlanSpec, edits: Mapping[str, Mapping[str, Any]],
                        tier_edits: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                        fee_edits: Mapping[str, Any] | None = None,
                        discount_edits: Mapping[str, Any] | None = None) -> dict[str, str | None]:
    """The dotted-path overrides for what differs from the plan: `edits` charge id -> field -> text as typed
    (the model's own fields), `tier_edits` charge id -> tier rows, fees id -> amount, discounts id -> value."""
    out: dict[str, str | None] = {}
    for c in spec.charges:
        model = get_model(c.model)
        for f in model.fields:
            if f.kind == "tiers":
                continue
            typed = _text((edits.get(c.id) or {}).get(f.name))
            current = c.field(f.name)
            if typed is not None and (current is None or _differs(typed, current)):
                out[f"charges.{c.id}.{f.name}"] = typed
        rows = tier_rows((tier_edits or {}).get(c.id) or [])
        for i, (t, row) in enumerate(zip(c.tiers, rows, strict=False)):
            for key in ("unit_price", "flat_fee", "block_size"):
                typed = row.get(key)
                cur = getattr(t, key)
                if typed is not None and (cur is None or _differs(typed, cur)):
                    out[f"charges.{c.id}.tiers.{i}.{key}"] = typed
    for fee in spec.fees:
        typed = _text((fee_edits or {}).get(fee.id))
        if typed is not None and _differs(typed, fee.amount):
            out[f"fees.{fee.id}.amount"] = typed
    for d in spec.discounts:
        typed = _text((discount_edits or {}).get(d.id))
        field = "percent" if d.percent is not None else "amount"
        cur = d.percent if d.percent is not None else d.amount
        if typed is not None and (cur is None or _differs(typed, cur)):
            out[f"discounts.{d.id}.{field}"] = typed
    return out


def _differs(typed: str, current: Any) -> bool:
    try:
        return Decimal(typed) != Decimal(str(current))
    except InvalidOperation:
        return True  # not a number: let validation say so


def describe_overrides(spec: PlanSpec, overrides: Mapping[str, Any] | None) -> list[str]:
    """Overrides in words: "Pages – price per unit: 0.09" (the model's field labels), never a Python dict."""
    out = []
    for path, value in (overrides or {}).items():
        parts = str(path).split(".")
        text = str(path)
        if len(parts) >= 3 and parts[0] == "charges":
            try:
                c = spec.charge(parts[1])
                labels = {f.name: f.label for f in get_model(c.model).fields}
                name = c.label or c.id
                if len(parts) == 3:
                    text = f"{name} – {labels.get(parts[2], parts[2]).lower()}"
                elif parts[2] == "tiers" and len(parts) == 5:
                    text = f"{name} – tier {int(parts[3]) + 1} {parts[4].replace('_', ' ')}"
                elif parts[2] == "dimension_prices" and len(parts) == 5:
                    text = f"{name} – {parts[3]}: {labels.get(parts[4], parts[4]).lower()}"
            except (KeyError, ValueError):
                pass
        elif len(parts) == 3 and parts[0] in ("fees", "discounts"):
            text = f"{parts[1]} {parts[2]}"
        elif path == "minimum_spend":
            text = "minimum spend"
        out.append(f"{text}: {'(removed)' if value is None else value}")
    return out
