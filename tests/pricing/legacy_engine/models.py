"""The charge models as small pure functions.

Every function takes Decimal quantities/prices and returns ``Priced(amount, items)`` where
``amount`` is the UNROUNDED Decimal amount and ``items`` are the pieces of the explanation as structured
parts (core.pricing.explain; joined with " + " by the engine); ``.parts`` renders them in English,
e.g. ("1,000 × 0.10", "200 × 0.08").

Tier-bound semantics (whole units, inclusive): a tier [first, last] covers the quantity
interval (first-1, last]; a tier starting at 0 covers [0, last]. A tier is "entered" when the
quantity is > first-1 (for a tier starting at 0: always, including zero usage). If the last tier
is closed (last is not None) and the quantity goes beyond it, the last tier's price applies to the
excess (the last tier is treated as extending upwards).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, Context, Decimal, localcontext
from typing import NamedTuple, TypeVar

from .explain import Part, part, render_parts
from .spec import Tier

__all__ = [
    "Priced",
    "tier_lower",
    "tier_for",
    "price_per_unit",
    "price_graduated",
    "price_volume",
    "price_package",
    "price_allowance",
    "price_threshold",
    "threshold_crossed",
]

ZERO = Decimal(0)
_CTX = Context(prec=40)
_F = TypeVar("_F", bound=Callable[..., object])


def _exact(fn: _F) -> _F:
    """Run with a fixed high-precision decimal context (independent of the caller's context)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        with localcontext(_CTX):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Priced(NamedTuple):
    amount: Decimal  # unrounded
    items: tuple[tuple[Part, ...], ...] = ()  # the explanation pieces, structured (see core.pricing.explain)

    @property
    def parts(self) -> tuple[str, ...]:
        """The explanation pieces in English, e.g. ("1,000 × 0.10", "200 × 0.08") (rendered on demand)."""
        return tuple(render_parts(i, "en") for i in self.items)


def _priced(amount: Decimal, items: Sequence[Sequence[Part]]) -> Priced:
    return Priced(amount, tuple(tuple(i) for i in items))


def _tier(t: Tier) -> dict[str, int | None]:
    return {"first": t.first, "last": t.last}


def _q(quantity: Decimal) -> Decimal:
    if isinstance(quantity, float) or isinstance(quantity, bool):
        raise TypeError("quantity must be a Decimal, not a float")
    q = quantity if isinstance(quantity, Decimal) else Decimal(quantity)
    if not q.is_finite() or q < 0:
        raise ValueError(f"quantity must be a finite number >= 0, got {quantity}")
    return q


def tier_lower(t: Tier) -> int:
    """Exclusive lower bound of the tier's interval (first-1), 0 for a tier starting at 0."""
    return t.first - 1 if t.first > 0 else 0


def _entered(q: Decimal, t: Tier) -> bool:
    return t.first == 0 or q > t.first - 1


def tier_for(quantity: Decimal, tiers: Sequence[Tier]) -> Tier | None:
    """The tier whose interval contains the quantity (None only for 0 with tiers starting at 1).

    Beyond a closed last tier, the last tier is returned.
    """
    q = _q(quantity)
    found = None
    for t in tiers:
        if _entered(q, t):
            found = t
        else:
            break
    return found


@_exact
def price_per_unit(quantity: Decimal, unit_price: Decimal) -> Priced:
    q = _q(quantity)
    return _priced(q * unit_price, [[part("times", qty=q, price=unit_price)]])


@_exact
def price_graduated(quantity: Decimal, tiers: Sequence[Tier]) -> Priced:
    """Each unit priced by the tier it falls in; a tier's flat fee once when usage enters it."""
    q = _q(quantity)
    amount = ZERO
    items: list[list[Part]] = []
    n = len(tiers)
    for i, t in enumerate(tiers):
        if not _entered(q, t):
            break
        lo = tier_lower(t)
        top = q if (t.last is None or i == n - 1) else min(q, Decimal(t.last))
        units = top - lo if top > lo else ZERO
        if units > 0:
            amount += units * t.unit_price
            items.append([part("times", qty=units, price=t.unit_price)])
        if t.flat_fee:
            amount += t.flat_fee
            items.append([part("tier_flat", fee=t.flat_fee, **_tier(t))])
    if not items:
        items.append([part("no_charge")])
    return _priced(amount, items)


@_exact
def price_volume(quantity: Decimal, tiers: Sequence[Tier]) -> Priced:
    """The tier reached by the total prices every unit, plus that tier's flat fee."""
    q = _q(quantity)
    t = tier_for(q, tiers)
    if t is None:
        return _priced(ZERO, [[part("no_charge")]])
    items: list[list[Part]] = []
    amount = q * t.unit_price + t.flat_fee
    if t.unit_price or not t.flat_fee:
        items.append([part("volume_tier", qty=q, price=t.unit_price, **_tier(t))])
        if t.flat_fee:
            items.append([part("flat", fee=t.flat_fee)])
    else:
        items.append([part("band", fee=t.flat_fee, **_tier(t))])
    return _priced(amount, items)


@_exact
def price_package(quantity: Decimal, package_size: Decimal, block_price: Decimal,
                  free_units: Decimal = ZERO) -> Priced:
    """Price per block of package_size units; a partial block counts as a whole; free units first."""
    q = _q(quantity)
    if package_size < 1:
        raise ValueError("package size must be at least 1")
    billable = q - free_units if q > free_units else ZERO
    blocks = (billable / package_size).to_integral_value(rounding=ROUND_CEILING)
    head = part("package_billable", billable=billable)
    if free_units:
        head = part("package_free", free=min(q, free_units), billable=billable)
    tail = part("package_block" if blocks == 1 else "package_blocks", blocks=blocks, size=package_size,
                price=block_price)
    return _priced(blocks * block_price, [[head, tail]])


@_exact
def price_allowance(quantity: Decimal, included_units: Decimal, overage_price: Decimal | None = None,
                    overage_tiers: Sequence[Tier] = (), included_fee: Decimal | None = None) -> Priced:
    """First included_units are included; the rest at overage_price or graduated overage_tiers
    (overage tier bounds count overage units: the first unit over the allowance is unit 1)."""
    q = _q(quantity)
    over = q - included_units if q > included_units else ZERO
    amount = ZERO
    head = [part("included", used=min(q, included_units), included=included_units)]
    if included_fee is not None:
        head.append(part("included_fee", fee=included_fee))
        amount += included_fee
    items = [head]
    if over > 0:
        if overage_tiers:
            sub = price_graduated(over, overage_tiers)
            amount += sub.amount
            tail: list[Part] = [part("over_head", over=over)]
            for k, it in enumerate(sub.items):
                if k:
                    tail.append(part("plus"))
                tail.extend(it)
            items.append(tail)
        else:
            price = overage_price if overage_price is not None else ZERO
            amount += over * price
            items.append([part("over_price", over=over, price=price)])
    return _priced(amount, items)


def threshold_crossed(quantity: Decimal, threshold: Decimal) -> bool:
    return _q(quantity) > threshold


@_exact
def price_threshold(quantity: Decimal, threshold: Decimal, price: Decimal) -> Priced:
    """Nothing up to the threshold (inclusive), then price per unit on what exceeds it."""
    q = _q(quantity)
    over = q - threshold if q > threshold else ZERO
    if over == 0:
        return _priced(ZERO, [[part("within_threshold", threshold=threshold)]])
    return _priced(over * price, [[part("above_threshold", over=over, threshold=threshold, price=price)]])
