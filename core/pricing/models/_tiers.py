"""Tier arithmetic shared by the tiered models (graduated, volume, allowance's overage tiers).

A tier covers the interval (lower, last]: `lower` is the previous tier's `last` (0 for the first tier), so
whole-number tiers 1–1,000 / 1,001–5,000 cover (0, 1000] and (1000, 5000], and fractional tiers 0–0.5 /
0.5–2 cover [0, 0.5] and (0.5, 2]. A tier is "entered" when the quantity is above its lower bound; a first tier
starting at 0 is always entered (its flat fee is due even at zero usage). Beyond a closed last tier, the last
tier's price applies to the excess. A tier with a block size prices each started block of `block_size` units
in it at `unit_price` (Kill Bill's tiered blocks).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, Decimal

from ..explain import Part, part, register_templates
from ..money import format_price, format_quantity
from ..spec import Bound, Tier
from .base import ZERO, Priced, exact, priced, quantity

__all__ = ["tier_lower", "tier_for", "price_graduated", "price_volume", "tiers_text", "tier_breakpoints"]


def _d(b: Bound) -> Decimal:
    return b if isinstance(b, Decimal) else Decimal(b)


def _lowers(tiers: Sequence[Tier]) -> list[Decimal]:
    out: list[Decimal] = []
    for i, t in enumerate(tiers):
        if i == 0:
            out.append(ZERO)
        else:
            prev = tiers[i - 1].last
            out.append(_d(prev) if prev is not None else tier_lower(t))
    return out


def tier_lower(t: Tier) -> Decimal:
    """Exclusive lower bound of a single whole-number tier (first-1; 0 for a tier starting at 0). For a list,
    the engine uses the previous tier's end, which is the same for whole-number tiers."""
    if isinstance(t.first, Decimal):
        return t.first
    return Decimal(t.first - 1 if t.first > 0 else 0)


def _entered(q: Decimal, i: int, t: Tier, lower: Decimal) -> bool:
    return (i == 0 and t.first == 0) or q > lower


def _index_for(q: Decimal, tiers: Sequence[Tier]) -> int | None:
    found = None
    for i, (t, lower) in enumerate(zip(tiers, _lowers(tiers), strict=True)):
        if _entered(q, i, t, lower):
            found = i
        else:
            break
    return found


def tier_for(quantity_: Decimal, tiers: Sequence[Tier]) -> Tier | None:
    """The tier whose interval contains the quantity (None only for 0 with tiers starting at 1).

    Beyond a closed last tier, the last tier is returned.
    """
    i = _index_for(quantity(quantity_), tiers)
    return None if i is None else tiers[i]


def _tier(t: Tier) -> dict[str, Bound | None]:
    return {"first": t.first, "last": t.last}


def _units_cost(units: Decimal, t: Tier) -> tuple[Decimal, list[Part]]:
    """Price `units` units at the tier's price: per unit, or per started block."""
    if t.block_size is None:
        return units * t.unit_price, [part("times", qty=units, price=t.unit_price)]
    blocks = (units / t.block_size).to_integral_value(rounding=ROUND_CEILING)
    return blocks * t.unit_price, [part("tier_blocks", qty=units, size=t.block_size, blocks=blocks,
                                        price=t.unit_price)]


@exact
def price_graduated(quantity_: Decimal, tiers: Sequence[Tier]) -> Priced:
    """Each unit priced by the tier it falls in; a tier's flat fee once when usage enters it."""
    q = quantity(quantity_)
    amount = ZERO
    items: list[list[Part]] = []
    n = len(tiers)
    for i, (t, lo) in enumerate(zip(tiers, _lowers(tiers), strict=True)):
        if not _entered(q, i, t, lo):
            break
        top = q if (t.last is None or i == n - 1) else min(q, _d(t.last))
        units = top - lo if top > lo else ZERO
        if units > 0:
            cost, item = _units_cost(units, t)
            amount += cost
            items.append(item)
        if t.flat_fee:
            amount += t.flat_fee
            items.append([part("tier_flat", fee=t.flat_fee, **_tier(t))])
    if not items:
        items.append([part("no_charge")])
    return priced(amount, items)


@exact
def price_volume(quantity_: Decimal, tiers: Sequence[Tier]) -> Priced:
    """The tier reached by the total prices every unit (or every started block), plus that tier's flat fee."""
    q = quantity(quantity_)
    i = _index_for(q, tiers)
    if i is None:
        return priced(ZERO, [[part("no_charge")]])
    t = tiers[i]
    items: list[list[Part]] = []
    if t.block_size is not None:
        cost, item = _units_cost(q, t)
        items.append([*item, part("tier_note", **_tier(t))])
        if t.flat_fee:
            items.append([part("flat", fee=t.flat_fee)])
        return priced(cost + t.flat_fee, items)
    amount = q * t.unit_price + t.flat_fee
    if t.unit_price or not t.flat_fee:
        items.append([part("volume_tier", qty=q, price=t.unit_price, **_tier(t))])
        if t.flat_fee:
            items.append([part("flat", fee=t.flat_fee)])
    else:
        items.append([part("band", fee=t.flat_fee, **_tier(t))])
    return priced(amount, items)


def tier_breakpoints(tiers: Sequence[Tier], offset: Decimal = ZERO) -> list[Decimal]:
    """Quantities around which a tiered price changes slope (for the lab's break-even search)."""
    out: list[Decimal] = []
    for t, lo in zip(tiers, _lowers(tiers), strict=True):
        out += [offset + lo, offset + lo + 1]
        if t.last is not None:
            out += [offset + _d(t.last), offset + _d(t.last) + 1]
    return out


def tiers_text(tiers: Sequence[Tier]) -> str:
    """Plain-language tiers: "1–1,000: 0.10; 1,001+: 0.08 + 5.00 flat"."""
    parts = []
    for t in tiers:
        lo = format_quantity(_d(t.first))
        rng = f"{lo}+" if t.last is None else f"{lo}–{format_quantity(_d(t.last))}"
        txt = f"{rng}: {format_price(t.unit_price)}"
        if t.block_size is not None:
            txt += f" per block of {format_quantity(t.block_size)}"
        if t.flat_fee:
            txt += f" + {format_price(t.flat_fee)} flat"
        parts.append(txt)
    return "; ".join(parts)


_TIER_TEMPLATES = {
    "en": {"tier_flat": "{fee:p} flat (tier {range})", "volume_tier": "{qty:q} × {price:p} (tier {range})",
           "band": "band {range}: {fee:p} flat", "tier_note": " (tier {range})",
           "tier_blocks": "{qty:q} in blocks of {size:q} → {blocks:q} × {price:p}"},
    "de": {"tier_flat": "{fee:p} pauschal (Stufe {range})", "volume_tier": "{qty:q} × {price:p} (Stufe {range})",
           "band": "Staffel {range}: {fee:p} pauschal", "tier_note": " (Stufe {range})",
           "tier_blocks": "{qty:q} in Blöcken zu {size:q} → {blocks:q} × {price:p}"},
    "nb": {"tier_flat": "{fee:p} fast (trinn {range})", "volume_tier": "{qty:q} × {price:p} (trinn {range})",
           "band": "intervall {range}: {fee:p} fast", "tier_note": " (trinn {range})",
           "tier_blocks": "{qty:q} i blokker à {size:q} → {blocks:q} × {price:p}"},
}

register_templates(_TIER_TEMPLATES)
