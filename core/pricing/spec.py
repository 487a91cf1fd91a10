"""Plan specification: frozen dataclasses (plans, charges, tiers, fees, discounts).

Validation lives in core.pricing.validate, JSON (de)serialisation in core.pricing.serialize, overrides in
core.pricing.overrides; the charge models (which fields a charge needs, how it is priced) in
core.pricing.models. Pure: stdlib only. Money and quantities are Decimal; floats are rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "SETTLE_MODES",
    "FEE_KINDS",
    "TIMINGS",
    "MAX_DECIMALS",
    "Bound",
    "Tier",
    "ChargeSpec",
    "DimensionPrice",
    "FeeSpec",
    "DiscountSpec",
    "DISCOUNT_TARGETS",
    "PlanSpec",
    "PlanValidationError",
    "LEGACY_CHARGE_DECIMALS",
]

SETTLE_MODES = ("money", "wallet")
FEE_KINDS = ("base", "feature", "access", "flat")
TIMINGS = ("in_advance", "in_arrears")
DISCOUNT_TARGETS = ("usage", "fees", "all")
MAX_DECIMALS = 10  # prices/quantities in a plan may carry at most 10 decimal places

ZERO = Decimal(0)

Bound = int | Decimal  # a tier bound: a whole number (int) or a fractional one (Decimal)


class PlanValidationError(ValueError):
    """A plan (or override) is invalid. `.problems` is a list of (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        text = "; ".join(f"{p or '<plan>'}: {m}" for p, m in self.problems)
        super().__init__(f"invalid plan: {text}")


def coerce_dec(v: Any) -> Any:
    """Best-effort coercion used by the dataclass constructors (str/int -> Decimal).

    Anything else (float, bad string) is left as-is and reported by validate_plan.
    """
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, str):
        try:
            return Decimal(v.strip())
        except InvalidOperation:
            return v
    return v


def coerce_bound(v: Any) -> Any:
    """A tier bound: whole numbers stay int (the stored form of every existing plan), fractions are Decimal."""
    if isinstance(v, str):
        v = coerce_dec(v)
    if isinstance(v, Decimal) and v.is_finite() and v == v.to_integral_value():
        return int(v)
    return v


def _coerce_date(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            return v
    return v


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Tier:
    """One tier. Whole-number tiers are inclusive: [first, last] covers (first-1, last] ("1–1,000",
    "1,001–5,000"); a tier starting at 0 covers [0, last]. With a fractional bound anywhere in the list, a tier
    [first, last] covers (first, last] and the next one starts where it ends ("0–0.5", "0.5–2"). last=None means
    open-ended (only the last tier). block_size: the tier is priced per started block of that many units and
    unit_price is the price of one block (Kill Bill's tiered blocks); None = per unit."""

    first: Bound
    last: Bound | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO
    block_size: Decimal | None = None

    def __post_init__(self) -> None:
        _set(self, "first", coerce_bound(self.first))
        _set(self, "last", coerce_bound(self.last))
        _set(self, "unit_price", coerce_dec(self.unit_price))
        _set(self, "flat_fee", coerce_dec(self.flat_fee))
        _set(self, "block_size", coerce_dec(self.block_size))


def tiers_of(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(Tier(**t) if isinstance(t, Mapping) else t for t in v)
    return v


def _pairs(v: Any) -> Any:
    """Mapping -> sorted tuple of (name, value) pairs (keeps the dataclass hashable); tuples are kept."""
    if isinstance(v, Mapping):
        return tuple(sorted(v.items()))
    if isinstance(v, list):
        return tuple(tuple(x) if isinstance(x, list) else x for x in v)
    return v


@dataclass(frozen=True)
class DimensionPrice:
    """The price of one value of a charge's dimension (an event property), e.g. country "NO".

    `prices` holds the model fields that differ from the charge's own (default) price, e.g.
    (("unit_price", Decimal("0.05")),) or (("tiers", (Tier(...), ...)),). label: shown on the statement
    ("Norway"); defaults to the value itself."""

    value: str
    prices: tuple[tuple[str, Any], ...] = ()
    label: str | None = None

    def __post_init__(self) -> None:
        prices = _pairs(self.prices)
        if isinstance(prices, tuple):
            prices = tuple((k, tiers_of(v) if k in ("tiers", "overage_tiers") else coerce_dec(v)) for k, v in prices)
        _set(self, "prices", prices)

    @property
    def title(self) -> str:
        return self.label or self.value


@dataclass(frozen=True)
class ChargeSpec:
    """One usage charge: prices one metric over one billing period with one charge model.

    The model (core.pricing.models: per_unit, graduated, volume, package, allowance, threshold, percentage,
    ...) says which fields it needs; see its `fields`. The fields of the original six models are attributes
    (unit_price, tiers, package_size, free_units, included_units, included_fee, overage_price, overage_tiers,
    threshold, threshold_price); a model added later keeps its own fields in `params` (read with `param()`).
    credit_rate: usage -> credits (credits = quantity x credit_rate); the model then prices credits.
    settle: "money" (price it) or "wallet" (amount 0, credits reported for a wallet to draw).
    min_amount: the charge is topped up to this (separate "minimum" line).
    unit: noun used in explanations (defaults to the metric key), e.g. "pages".
    dimension: an event property (e.g. "country"); the charge is then priced per value of it, with
    `dimension_prices` for listed values and the charge's own fields as the default price of other values.
    """

    id: str
    metric: str
    model: str
    unit_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    free_units: Decimal = ZERO
    included_units: Decimal | None = None
    included_fee: Decimal | None = None
    overage_price: Decimal | None = None
    overage_tiers: tuple[Tier, ...] = ()
    threshold: Decimal | None = None
    threshold_price: Decimal | None = None
    credit_rate: Decimal | None = None
    settle: str = "money"
    min_amount: Decimal | None = None
    label: str | None = None
    unit: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    dimension: str | None = None
    dimension_prices: tuple[DimensionPrice, ...] = ()

    def __post_init__(self) -> None:
        for name in LEGACY_CHARGE_DECIMALS:
            _set(self, name, coerce_dec(getattr(self, name)))
        _set(self, "tiers", tiers_of(self.tiers))
        _set(self, "overage_tiers", tiers_of(self.overage_tiers))
        params = _pairs(self.params)
        if isinstance(params, tuple):
            params = tuple((k, coerce_dec(v)) for k, v in params)
        _set(self, "params", params)
        if isinstance(self.dimension_prices, list):
            _set(self, "dimension_prices", tuple(DimensionPrice(**x) if isinstance(x, Mapping) else x
                                                 for x in self.dimension_prices))

    def param(self, name: str, default: Any = None) -> Any:
        """A model field kept in `params` (fields of models added after the original six)."""
        for k, v in self.params:
            if k == name:
                return v
        return default

    def field(self, name: str) -> Any:
        """Any model field by name: an attribute of the original models or a `params` entry."""
        if name in LEGACY_CHARGE_FIELDS:
            return getattr(self, name)
        return self.param(name)


LEGACY_CHARGE_DECIMALS = (
    "unit_price", "package_size", "free_units", "included_units", "included_fee", "overage_price",
    "threshold", "threshold_price", "credit_rate", "min_amount",
)
# model fields stored as ChargeSpec attributes (everything else a model declares lives in `params`)
LEGACY_CHARGE_FIELDS = frozenset((*LEGACY_CHARGE_DECIMALS, "tiers", "overage_tiers"))


@dataclass(frozen=True)
class FeeSpec:
    """A recurring fee. Amounts are per billing period (a calendar month in practice).

    kind: "base" (monthly base fee), "feature" (amount per unit of `metric`'s quantity),
          "access" (per-client access fee, flat), "flat" (any other flat fee).
    timing: "in_advance" | "in_arrears" | None (None = the plan's timing).
    start/end: the fee only applies on these dates (inclusive); partial coverage is prorated.
    """

    id: str
    kind: str
    amount: Decimal
    metric: str | None = None
    timing: str | None = None
    start: date | None = None
    end: date | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        _set(self, "amount", coerce_dec(self.amount))
        _set(self, "start", _coerce_date(self.start))
        _set(self, "end", _coerce_date(self.end))


@dataclass(frozen=True)
class DiscountSpec:
    """A plan-level discount: a separate negative line of kind "discount" (see docs/pricing.md, Discounts).

    Exactly one of `percent` (0 < p <= 100, of the rounded lines it applies to) or `amount` (fixed per billing
    period, prorated by days like an in-arrears flat fee). applies_to: "usage" | "fees" | "all"; `charges`
    restricts a usage discount to these charge ids. start/end: the discount only applies on these dates.
    """

    id: str
    percent: Decimal | None = None
    amount: Decimal | None = None
    applies_to: str = "all"
    charges: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        _set(self, "percent", coerce_dec(self.percent))
        _set(self, "amount", coerce_dec(self.amount))
        _set(self, "start", _coerce_date(self.start))
        _set(self, "end", _coerce_date(self.end))
        if isinstance(self.charges, list):
            _set(self, "charges", tuple(self.charges))


@dataclass(frozen=True)
class PlanSpec:
    """A plan template in one currency."""

    currency: str
    timing: str = "in_arrears"
    charges: tuple[ChargeSpec, ...] = ()
    fees: tuple[FeeSpec, ...] = ()
    minimum_spend: Decimal | None = None
    discounts: tuple[DiscountSpec, ...] = ()

    def __post_init__(self) -> None:
        _set(self, "minimum_spend", coerce_dec(self.minimum_spend))
        for name in ("charges", "fees", "discounts"):
            if isinstance(getattr(self, name), list):
                _set(self, name, tuple(getattr(self, name)))

    def discount(self, discount_id: str) -> DiscountSpec:
        for d in self.discounts:
            if d.id == discount_id:
                return d
        raise KeyError(discount_id)

    def charge(self, charge_id: str) -> ChargeSpec:
        for c in self.charges:
            if c.id == charge_id:
                return c
        raise KeyError(charge_id)

    def fee(self, fee_id: str) -> FeeSpec:
        for f in self.fees:
            if f.id == fee_id:
                return f
        raise KeyError(fee_id)

    @property
    def metrics(self) -> set[str]:
        out = {c.metric for c in self.charges}
        out.update(f.metric for f in self.fees if f.metric)
        return out
