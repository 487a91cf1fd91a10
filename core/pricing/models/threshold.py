"""threshold: nothing up to the threshold (inclusive), then a price per unit above it; crossing the threshold
raises an alert."""

from __future__ import annotations

from decimal import Decimal

from ..explain import part
from ..money import format_price, format_quantity
from ..spec import ChargeSpec
from ..usage import Usage
from .base import ZERO, ChargeModel, Field, Priced, exact, priced, quantity, register, req


def threshold_crossed(quantity_: Decimal, threshold: Decimal) -> bool:
    return quantity(quantity_) > threshold


@exact
def price_threshold(quantity_: Decimal, threshold: Decimal, price: Decimal) -> Priced:
    """Nothing up to the threshold (inclusive), then price per unit on what exceeds it."""
    q = quantity(quantity_)
    over = q - threshold if q > threshold else ZERO
    if over == 0:
        return priced(ZERO, [[part("within_threshold", threshold=threshold)]])
    return priced(over * price, [[part("above_threshold", over=over, threshold=threshold, price=price)]])


@register
class Threshold(ChargeModel):
    name = "threshold"
    title = "Free up to a threshold (with alert)"
    summary = "Free up to a threshold; above it each unit is charged and an alert is raised."
    order = 60
    fields = (Field("threshold", "Free up to", "quantity"),
              Field("threshold_price", "Price per unit above", "money"))
    templates = {
        "en": {"within_threshold": "within the threshold of {threshold:q}",
               "above_threshold": "{over:q} above the threshold of {threshold:q} × {price:p}"},
        "de": {"within_threshold": "innerhalb der Schwelle von {threshold:q}",
               "above_threshold": "{over:q} über der Schwelle von {threshold:q} × {price:p}"},
        "nb": {"within_threshold": "innenfor terskelen på {threshold:q}",
               "above_threshold": "{over:q} over terskelen på {threshold:q} × {price:p}"},
    }

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_threshold(q, req(c.threshold, "threshold"), req(c.threshold_price, "threshold price"))

    def describe(self, c: ChargeSpec) -> str:
        return (f"free up to {format_quantity(req(c.threshold, 'threshold'))}, then "
                f"{format_price(req(c.threshold_price, 'threshold price'))} each (alert when crossed)")

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        t = c.threshold or ZERO
        return [t, t + 1]

    def alert_threshold(self, c: ChargeSpec) -> Decimal | None:
        return c.threshold
