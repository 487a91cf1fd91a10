"""graduated: each unit priced by the tier it falls in, plus a tier's flat fee once usage enters it
(Lago: graduated; Kill Bill: tiered usage with ALL_TIERS). Tiers may price per started block and may have
fractional bounds (see _tiers)."""

from __future__ import annotations

from decimal import Decimal

from ..spec import ChargeSpec
from ..usage import Usage
from ._tiers import price_graduated, tier_breakpoints, tiers_text
from .base import ChargeModel, Field, Priced, register, req_tiers


@register
class Graduated(ChargeModel):
    name = "graduated"
    title = "Graduated tiers"
    summary = "Each unit is priced by the tier it falls in: the first units at the first tier's price, the next ones at the next tier's."
    order = 20
    fields = (Field("tiers", "Tiers", "tiers", help="From, to (empty = and above), price per unit (or per block), "
                                                     "flat fee, block size (optional)"),)

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_graduated(q, req_tiers(c.tiers))

    def describe(self, c: ChargeSpec) -> str:
        return "graduated: " + tiers_text(c.tiers)

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        return tier_breakpoints(c.tiers)
