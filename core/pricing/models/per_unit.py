"""per_unit: every unit at the same price ("0.10 each"). Lago: standard; Kill Bill: a single tier."""

from __future__ import annotations

from decimal import Decimal

from ..explain import part
from ..money import format_price
from ..spec import ChargeSpec
from ..usage import Usage
from .base import ChargeModel, Field, Priced, exact, priced, quantity, register, req


@exact
def price_per_unit(quantity_: Decimal, unit_price: Decimal) -> Priced:
    q = quantity(quantity_)
    return priced(q * unit_price, [[part("times", qty=q, price=unit_price)]])


@register
class PerUnit(ChargeModel):
    name = "per_unit"
    title = "Per unit"
    summary = "Every unit costs the same."
    order = 10
    fields = (Field("unit_price", "Price per unit", "money", help="e.g. 0.10 per page"),)

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_per_unit(q, req(c.unit_price, "unit price"))

    def describe(self, c: ChargeSpec) -> str:
        return f"{format_price(req(c.unit_price, 'unit price'))} each"
