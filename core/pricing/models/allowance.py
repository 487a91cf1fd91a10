"""allowance: the first `included_units` are included (optionally for an included fee), the rest at an overage
price or graduated overage tiers whose bounds count overage units (the first unit over is unit 1)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from ..checks import Problems
from ..explain import Part, part
from ..money import format_price, format_quantity
from ..spec import ChargeSpec, Tier
from ..usage import Usage
from ._tiers import price_graduated, tier_breakpoints, tiers_text
from .base import ZERO, ChargeModel, Field, Priced, exact, priced, quantity, register, req


@exact
def price_allowance(quantity_: Decimal, included_units: Decimal, overage_price: Decimal | None = None,
                    overage_tiers: Sequence[Tier] = (), included_fee: Decimal | None = None) -> Priced:
    """First included_units are included; the rest at overage_price or graduated overage_tiers
    (overage tier bounds count overage units: the first unit over the allowance is unit 1)."""
    q = quantity(quantity_)
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
    return priced(amount, items)


@register
class Allowance(ChargeModel):
    name = "allowance"
    title = "Allowance, then overage"
    summary = "A number of units is included; units above it are charged at an overage price or overage tiers."
    order = 50
    fields = (Field("included_units", "Included units", "quantity"),
              Field("overage_price", "Price per unit over the allowance", "money", required=False,
                    help="or overage tiers below"),
              Field("overage_tiers", "Overage tiers", "tiers", required=False,
                    help="bounds count units over the allowance (the first unit over is 1)"),
              Field("included_fee", "Fee for the allowance", "money", required=False))
    alternatives = (("overage_price", "overage_tiers"),)
    templates = {
        "en": {"included": "{used:q} of {included:q} included", "included_fee": " (included fee {fee:p})",
               "over_head": "{over:q} over: ", "over_price": "{over:q} over × {price:p}"},
        "de": {"included": "{used:q} von {included:q} inklusive", "included_fee": " (Inklusivgebühr {fee:p})",
               "over_head": "{over:q} darüber: ", "over_price": "{over:q} darüber × {price:p}"},
        "nb": {"included": "{used:q} av {included:q} inkludert", "included_fee": " (inkludert gebyr {fee:p})",
               "over_head": "{over:q} over: ", "over_price": "{over:q} over × {price:p}"},
    }

    def check(self, c: ChargeSpec, p: Problems, path: str, need: bool) -> None:
        if need:
            has_price = c.overage_price is not None
            has_tiers = isinstance(c.overage_tiers, tuple) and len(c.overage_tiers) > 0
            if has_price == has_tiers:
                p.add(f"{path}.overage_price", "an allowance needs exactly one of overage_price or overage_tiers")

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_allowance(q, req(c.included_units, "included units"), c.overage_price, c.overage_tiers,
                               c.included_fee)

    def describe(self, c: ChargeSpec) -> str:
        txt = f"{format_quantity(req(c.included_units, 'included units'))} included, then "
        txt += (f"{format_price(c.overage_price)} each" if c.overage_price is not None
                else "graduated " + tiers_text(c.overage_tiers))
        if c.included_fee is not None:
            txt += f" (included fee {format_price(c.included_fee)})"
        return txt

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        inc = c.included_units or ZERO
        return [inc, inc + 1, *tier_breakpoints(c.overage_tiers, inc)]
