"""Charges with a dimension: the usage split per value of an event property, each value priced as the charge
with that value's prices (the others at the charge's own, default, price). Pure: stdlib only."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from .explain import Part, part
from .spec import ChargeSpec
from .usage import RatingError, Usage
from .validate import dimension_variant

__all__ = ["dimension_buckets"]

ZERO = Decimal(0)


def _other_events(c: ChargeSpec, u: Usage, rest: Decimal, per_value: Mapping[str, Usage]) -> tuple[Decimal, ...] | None:
    """The events priced at the default price, in their order (None when the usage does not tell them)."""
    listed = {d.value for d in c.dimension_prices}
    props = u.event_props.get(c.dimension or "")
    if u.events is not None and props is not None:
        return tuple(a for a, v in zip(u.events, props, strict=True) if v is None or v not in listed)
    others = [vu for k, vu in per_value.items() if k not in listed]
    return others[0].events if len(others) == 1 and others[0].quantity == rest else None


def dimension_buckets(c: ChargeSpec, u: Usage, usage_of: Callable[[object, str], Usage]
                      ) -> list[tuple[ChargeSpec, Usage, Part, str]]:
    """(priced as, usage, label part, value) per listed value with usage, then the other values at the
    charge's own (default) price. With no usage at all: one zero line at the default price."""
    dim = c.dimension or ""
    per_value = {str(k): usage_of(v, f"{c.metric!r} {dim}={k!r}") for k, v in (u.by_value.get(dim) or {}).items()}
    out: list[tuple[ChargeSpec, Usage, Part, str]] = []
    listed, listed_count, counts_known = ZERO, 0, u.event_count is not None
    for d in c.dimension_prices:
        vu = per_value.get(d.value)
        if vu is None:
            continue
        listed += vu.quantity
        if vu.event_count is None:
            counts_known = False
        else:
            listed_count += vu.event_count
        if vu.quantity or vu.event_count:
            out.append((dimension_variant(c, d), vu, part("dim_value", value=d.title), d.value))
    rest = u.quantity - listed
    if rest < 0:
        raise RatingError(f"usage of {c.metric!r} by {dim} adds up to more than its total {u.quantity}")
    count = (u.event_count or 0) - listed_count if counts_known else None
    events = _other_events(c, u, rest, per_value)
    if rest or not out:
        out.append((c, Usage(rest, count, events), part("dim_other"), ""))
    return out
