"""package: a price per started block of `package_size` units, after optional free units
(Lago: package, with free units)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from ..checks import Problems
from ..explain import part
from ..money import format_price, format_quantity
from ..spec import ChargeSpec
from ..usage import Usage
from .base import ZERO, ChargeModel, Field, Priced, exact, priced, quantity, register, req


@exact
def price_package(quantity_: Decimal, package_size: Decimal, block_price: Decimal,
                  free_units: Decimal = ZERO) -> Priced:
    """Price per block of package_size units; a partial block counts as a whole; free units first."""
    q = quantity(quantity_)
    if package_size < 1:
        raise ValueError("package size must be at least 1")
    billable = q - free_units if q > free_units else ZERO
    blocks = (billable / package_size).to_integral_value(rounding=ROUND_CEILING)
    head = part("package_billable", billable=billable)
    if free_units:
        head = part("package_free", free=min(q, free_units), billable=billable)
    tail = part("package_block" if blocks == 1 else "package_blocks", blocks=blocks, size=package_size,
                price=block_price)
    return priced(blocks * block_price, [[head, tail]])


@register
class Package(ChargeModel):
    name = "package"
    title = "Package (per block)"
    summary = "Usage is sold in blocks of a fixed size; a started block counts as a whole one."
    order = 40
    fields = (Field("package_size", "Units per block", "quantity", help="e.g. 1000 messages per block"),
              Field("unit_price", "Price per block", "money"),
              Field("free_units", "Free units", "quantity", required=False, help="free before the first block"))
    templates = {
        "en": {"package_billable": "{billable:q}", "package_free": "{free:q} free, {billable:q} billable",
               "package_block": " → {blocks:q} block of {size:q} × {price:p}",
               "package_blocks": " → {blocks:q} blocks of {size:q} × {price:p}"},
        "de": {"package_billable": "{billable:q}", "package_free": "{free:q} frei, {billable:q} abrechenbar",
               "package_block": " → {blocks:q} Paket zu {size:q} × {price:p}",
               "package_blocks": " → {blocks:q} Pakete zu {size:q} × {price:p}"},
        "nb": {"package_billable": "{billable:q}", "package_free": "{free:q} gratis, {billable:q} fakturerbare",
               "package_block": " → {blocks:q} blokk à {size:q} × {price:p}",
               "package_blocks": " → {blocks:q} blokker à {size:q} × {price:p}"},
    }

    def check(self, c: ChargeSpec, p: Problems, path: str, need: bool) -> None:
        size = c.package_size
        if isinstance(size, Decimal) and size.is_finite() and size < 1:
            p.add(f"{path}.package_size", f"package size must be at least 1, got {size}")

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_package(q, req(c.package_size, "package size"), req(c.unit_price, "block price"),
                             c.free_units or ZERO)

    def describe(self, c: ChargeSpec) -> str:
        txt = f"{format_price(req(c.unit_price, 'block price'))} per block of " \
              f"{format_quantity(req(c.package_size, 'package size'))}"
        if c.free_units:
            txt += f", first {format_quantity(c.free_units)} free"
        return txt

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        return [c.free_units, c.free_units + 1]
