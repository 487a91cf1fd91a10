"""A plan in plain language (what, metric, price per row), for showing prices to staff and Managers."""

from __future__ import annotations

from typing import Any

from core.pricing import PlanSpec
from core.pricing.money import format_price, format_quantity


def _tiers_text(tiers: Any) -> str:
    parts = []
    for t in tiers:
        rng = f"{t.first}+" if t.last is None else f"{t.first}–{t.last}"
        txt = f"{rng}: {format_price(t.unit_price)}"
        if t.flat_fee:
            txt += f" + {format_price(t.flat_fee)} flat"
        parts.append(txt)
    return "; ".join(parts)


def _charge_text(c: Any) -> str:
    unit = c.unit or c.metric
    if c.settle == "wallet":
        return f"{format_quantity(c.credit_rate)} credits per {unit}, drawn from prepaid credits"
    m = c.model
    if m == "per_unit":
        txt = f"{format_price(c.unit_price)} each"
    elif m == "graduated":
        txt = "graduated: " + _tiers_text(c.tiers)
    elif m == "volume":
        txt = "volume: " + _tiers_text(c.tiers)
    elif m == "package":
        txt = f"{format_price(c.unit_price)} per block of {format_quantity(c.package_size)}"
        if c.free_units:
            txt += f", first {format_quantity(c.free_units)} free"
    elif m == "allowance":
        txt = f"{format_quantity(c.included_units)} included, then "
        txt += (f"{format_price(c.overage_price)} each" if c.overage_price is not None
                else "graduated " + _tiers_text(c.overage_tiers))
        if c.included_fee is not None:
            txt += f" (included fee {format_price(c.included_fee)})"
    else:
        txt = (f"free up to {format_quantity(c.threshold)}, then {format_price(c.threshold_price)} each "
               f"(alert when crossed)")
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
