"""volume: the tier reached by the whole quantity prices every unit (or every started block), plus that tier's
flat fee (Lago: volume; Kill Bill: tiered usage with TOP_TIER). A tier with only a flat fee is a band."""

from __future__ import annotations

from decimal import Decimal

from ..spec import ChargeSpec
from ..usage import Usage
from ._tiers import price_volume, tier_breakpoints, tiers_text
from .base import ChargeModel, Field, Priced, register, req_tiers


@register
class Volume(ChargeModel):
    name = "volume"
    title = "Volume tiers"
    summary = "The tier the total reaches sets the price of every unit."
    order = 30
    fields = (Field("tiers", "Tiers", "tiers", help="From, to (empty = and above), price per unit (or per block), "
                                                     "flat fee, block size (optional)"),)

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_volume(q, req_tiers(c.tiers))

    def describe(self, c: ChargeSpec) -> str:
        return "volume: " + tiers_text(c.tiers)

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        return tier_breakpoints(c.tiers)
