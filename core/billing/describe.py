"""A plan in plain language (what, metric, price per row), for showing prices to staff and Managers."""

from __future__ import annotations

from typing import Any

from core.pricing import PlanSpec, dimension_variant, get_model
from core.pricing.money import format_price, format_quantity


def _charge_text(c: Any) -> str:
    """The charge's price in plain English; the model describes itself (core.pricing.models). An unknown model
    is an error, never silently described as another one."""
    unit = c.unit or c.metric
    if c.settle == "wallet":
        return f"{format_quantity(c.credit_rate)} credits per {unit}, drawn from prepaid credits"
    model = get_model(c.model)  # KeyError for a model nobody registered
    txt = model.describe(c)
    if c.dimension is not None:
        per_value = "; ".join(f"{d.title}: {model.describe(dimension_variant(c, d))}" for d in c.dimension_prices)
        txt = f"by {c.dimension}: {per_value}{'; ' if per_value else ''}other values: {txt}"
    if c.credit_rate is not None:
        txt = f"{format_quantity(c.credit_rate)} credits per {unit}; per credit: {txt}"
    if c.min_amount is not None:
        txt += f"; minimum {format_price(c.min_amount)}"
    return txt


def describe_spec(spec: PlanSpec) -> list[dict[str, str]]:
    """The plan as plain-language rows (what, metric, price), for showing prices to staff and Managers."""
    rows = [{"item": c.label or c.id, "metric": c.metric, "model": c.model, "price": _charge_text(c)}
            for c in spec.charges]
    for f in spec.fees:
        timing = (f.timing or spec.timing).replace("_", " ")
        price = f"{format_price(f.amount)} per month" + (f" per {f.metric}" if f.kind == "feature" else "")
        price += f", billed {timing}"
        if f.start or f.end:
            price += f", from {f.start.isoformat() if f.start else '…'} to {f.end.isoformat() if f.end else '…'}"
        rows.append({"item": f.label or f.id, "metric": f.metric or "", "model": f"{f.kind} fee", "price": price})
    for d in spec.discounts:
        value = (f"{format_quantity(d.percent)}%" if d.percent is not None
                 else f"{format_price(d.amount)} per month" if d.amount is not None else "")
        scope = ", ".join(d.charges) if d.charges else {"all": "usage and fees"}.get(d.applies_to, d.applies_to)
        price = f"−{value} on {scope}"
        if d.start or d.end:
            price += f", from {d.start.isoformat() if d.start else '…'} to {d.end.isoformat() if d.end else '…'}"
        rows.append({"item": d.label or d.id, "metric": "", "model": "discount", "price": price})
    if spec.minimum_spend is not None:
        rows.append({"item": "Minimum spend", "metric": "", "model": "minimum",
                     "price": f"{format_price(spec.minimum_spend)} per month"})
    return rows
