"""Plan specification: frozen dataclasses, validation, JSON (de)serialisation, overrides.

Pure: stdlib only. Money and quantities are Decimal; floats are rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .money import is_known_currency

__all__ = [
    "MODELS",
    "SETTLE_MODES",
    "FEE_KINDS",
    "TIMINGS",
    "MAX_DECIMALS",
    "Tier",
    "ChargeSpec",
    "FeeSpec",
    "DiscountSpec",
    "DISCOUNT_TARGETS",
    "PlanSpec",
    "PlanValidationError",
    "validate_plan",
    "plan_from_dict",
    "plan_to_dict",
    "apply_overrides",
]

MODELS = ("per_unit", "graduated", "volume", "package", "allowance", "threshold")
SETTLE_MODES = ("money", "wallet")
FEE_KINDS = ("base", "feature", "access", "flat")
TIMINGS = ("in_advance", "in_arrears")
DISCOUNT_TARGETS = ("usage", "fees", "all")
MAX_DECIMALS = 10  # prices/quantities in a plan may carry at most 10 decimal places

ZERO = Decimal(0)


class PlanValidationError(ValueError):
    """A plan (or override) is invalid. `.problems` is a list of (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        text = "; ".join(f"{p or '<plan>'}: {m}" for p, m in self.problems)
        super().__init__(f"invalid plan: {text}")


def _coerce_dec(v: Any) -> Any:
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
    """Inclusive whole-unit bounds. [first, last] covers the quantity interval (first-1, last];
    a tier starting at 0 covers [0, last]. last=None means open-ended (only the last tier)."""

    first: int
    last: int | None
    unit_price: Decimal
    flat_fee: Decimal = ZERO

    def __post_init__(self) -> None:
        _set(self, "unit_price", _coerce_dec(self.unit_price))
        _set(self, "flat_fee", _coerce_dec(self.flat_fee))


def _tiers(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(Tier(**t) if isinstance(t, Mapping) else t for t in v)
    return v


@dataclass(frozen=True)
class ChargeSpec:
    """One usage charge: prices one metric over one billing period.

    Model-specific fields:
      per_unit:  unit_price
      graduated: tiers
      volume:    tiers
      package:   package_size (>=1), unit_price (= price per block), free_units (optional)
      allowance: included_units, overage_price XOR overage_tiers (bounds count overage units),
                 included_fee (optional, charged on this line)
      threshold: threshold, threshold_price (per unit above the threshold; alert when crossed)
    credit_rate: usage -> credits (credits = quantity x credit_rate); the model then prices credits.
    settle: "money" (price it) or "wallet" (amount 0, credits reported for a wallet to draw).
    min_amount: the charge is topped up to this (separate "minimum" line).
    unit: noun used in explanations (defaults to the metric key), e.g. "pages".
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

    def __post_init__(self) -> None:
        for name in _CHARGE_DECIMALS:
            _set(self, name, _coerce_dec(getattr(self, name)))
        _set(self, "tiers", _tiers(self.tiers))
        _set(self, "overage_tiers", _tiers(self.overage_tiers))


_CHARGE_DECIMALS = (
    "unit_price", "package_size", "free_units", "included_units", "included_fee", "overage_price",
    "threshold", "threshold_price", "credit_rate", "min_amount",
)


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
        _set(self, "amount", _coerce_dec(self.amount))
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
        _set(self, "percent", _coerce_dec(self.percent))
        _set(self, "amount", _coerce_dec(self.amount))
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
        _set(self, "minimum_spend", _coerce_dec(self.minimum_spend))
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


# --------------------------------------------------------------------------- validation


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, msg: str) -> None:
        self.items.append((path, msg))


def _places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def _check_dec(p: _Problems, path: str, v: Any, *, required: bool, what: str = "value",
               positive: bool = False, model: bool = True) -> bool:
    """Check an (optional) Decimal field. Returns True if it is a usable Decimal."""
    if v is None:
        if required:
            p.add(path, f"{what} is required" + (" for this model" if model else ""))
        return False
    if isinstance(v, float):
        p.add(path, f"{what} must be a Decimal or a string, not a float ({v!r})")
        return False
    if not isinstance(v, Decimal):
        p.add(path, f"{what} must be a decimal number, got {v!r}")
        return False
    if not v.is_finite():
        p.add(path, f"{what} must be a finite number, got {v}")
        return False
    if v < 0:
        p.add(path, f"{what} must not be negative, got {v}")
        return False
    if positive and v == 0:
        p.add(path, f"{what} must be greater than 0")
        return False
    if _places(v) > MAX_DECIMALS:
        p.add(path, f"{what} has {_places(v)} decimal places; at most {MAX_DECIMALS} are allowed")
        return False
    return True


def _check_tiers(p: _Problems, path: str, tiers: Any, *, required: bool) -> None:
    if not isinstance(tiers, tuple) or not all(isinstance(t, Tier) for t in tiers):
        p.add(path, "tiers must be a list of tiers")
        return
    if not tiers:
        if required:
            p.add(path, "at least one tier is required for this model")
        return
    prev_last: int | None = None
    for i, t in enumerate(tiers):
        tp = f"{path}[{i}]"
        ok_first = isinstance(t.first, int) and not isinstance(t.first, bool)
        ok_last = t.last is None or (isinstance(t.last, int) and not isinstance(t.last, bool))
        if not ok_first:
            p.add(tp, f"tier start must be a whole number, got {t.first!r}")
        if not ok_last:
            p.add(tp, f"tier end must be a whole number or open (null), got {t.last!r}")
        _check_dec(p, f"{tp}.unit_price", t.unit_price, required=True, what="unit price", model=False)
        _check_dec(p, f"{tp}.flat_fee", t.flat_fee, required=True, what="flat fee", model=False)
        if not (ok_first and ok_last):
            prev_last = None
            continue
        if t.first < 0:
            p.add(tp, f"tier starts at {t.first}: must not be negative")
        if t.last is not None and t.last < t.first:
            p.add(tp, f"tier ends at {t.last}, before it starts at {t.first}")
        if i == 0:
            if t.first not in (0, 1):
                p.add(tp, f"first tier starts at {t.first}; it must start at 0 or 1")
        elif prev_last is not None:
            expected = prev_last + 1
            if t.first > expected:
                p.add(tp, f"tier starts at {t.first} but the previous tier ends at {prev_last}: gap")
            elif t.first < expected:
                p.add(tp, f"tier starts at {t.first} but the previous tier ends at {prev_last}: overlap")
        if t.last is None and i != len(tiers) - 1:
            p.add(tp, "only the last tier may be open-ended (last = null)")
        prev_last = t.last


def _check_str(p: _Problems, path: str, v: Any, what: str) -> bool:
    if not isinstance(v, str) or not v.strip():
        p.add(path, f"{what} must be a non-empty string")
        return False
    return True


def _validate(spec: PlanSpec, p: _Problems, known_metrics: set[str] | None,
              expected_currency: str | None) -> None:
    if not is_known_currency(spec.currency):
        p.add("currency", f"unknown currency {spec.currency!r}")
    elif expected_currency is not None and spec.currency != expected_currency:
        p.add("currency", f"plan currency is {spec.currency} but {expected_currency} is expected")
    if spec.timing not in TIMINGS:
        p.add("timing", f"timing must be one of {', '.join(TIMINGS)}, got {spec.timing!r}")
    _check_dec(p, "minimum_spend", spec.minimum_spend, required=False, what="minimum spend")

    if not isinstance(spec.charges, tuple) or not all(isinstance(c, ChargeSpec) for c in spec.charges):
        p.add("charges", "charges must be a list of ChargeSpec")
    else:
        seen: dict[str, int] = {}
        for i, c in enumerate(spec.charges):
            cp = f"charges[{i}]"
            _check_id(p, cp, c.id, "charge", "charges", i, seen)
            if _check_str(p, f"{cp}.metric", c.metric, "metric") and known_metrics is not None \
                    and c.metric not in known_metrics:
                p.add(f"{cp}.metric", f"unknown metric {c.metric!r}")
            _validate_charge(p, cp, c)

    if not isinstance(spec.fees, tuple) or not all(isinstance(f, FeeSpec) for f in spec.fees):
        p.add("fees", "fees must be a list of FeeSpec")
    else:
        seen = {}
        for i, f in enumerate(spec.fees):
            fp = f"fees[{i}]"
            _check_id(p, fp, f.id, "fee", "fees", i, seen)
            if f.kind not in FEE_KINDS:
                p.add(f"{fp}.kind", f"fee kind must be one of {', '.join(FEE_KINDS)}, got {f.kind!r}")
            _check_dec(p, f"{fp}.amount", f.amount, required=True, what="fee amount", model=False)
            if f.kind == "feature":
                if _check_str(p, f"{fp}.metric", f.metric, "metric (required for a feature fee)") \
                        and known_metrics is not None and f.metric not in known_metrics:
                    p.add(f"{fp}.metric", f"unknown metric {f.metric!r}")
            elif f.metric is not None:
                p.add(f"{fp}.metric", f"only feature fees take a metric (kind is {f.kind!r})")
            if f.timing is not None and f.timing not in TIMINGS:
                p.add(f"{fp}.timing", f"timing must be one of {', '.join(TIMINGS)} or null, got {f.timing!r}")
            for name in ("start", "end"):
                v = getattr(f, name)
                if v is not None and not isinstance(v, date):
                    p.add(f"{fp}.{name}", f"{name} must be a date (YYYY-MM-DD), got {v!r}")
            if isinstance(f.start, date) and isinstance(f.end, date) and f.end < f.start:
                p.add(f"{fp}.end", f"fee ends {f.end.isoformat()} before it starts {f.start.isoformat()}")
            if f.label is not None and not isinstance(f.label, str):
                p.add(f"{fp}.label", "label must be a string")
    _validate_discounts(p, spec)


def _check_id(p: _Problems, path: str, value: Any, what: str, collection: str, index: int,
              seen: dict[str, int]) -> None:
    """A charge, fee or discount id: a non-empty string without '.' (overrides address it by
    dotted path), unique in its list."""
    if not _check_str(p, f"{path}.id", value, f"{what} id"):
        return
    if "." in value:
        p.add(f"{path}.id", f"{what} id {value!r} must not contain '.'")
    if value in seen:
        p.add(f"{path}.id", f"duplicate {what} id {value!r} (also {collection}[{seen[value]}])")
    else:
        seen[value] = index


def _validate_discounts(p: _Problems, spec: PlanSpec) -> None:
    if not isinstance(spec.discounts, tuple) or not all(isinstance(d, DiscountSpec) for d in spec.discounts):
        p.add("discounts", "discounts must be a list of DiscountSpec")
        return
    charge_ids = {c.id for c in spec.charges} if isinstance(spec.charges, tuple) else set()
    seen: dict[str, int] = {}
    for i, d in enumerate(spec.discounts):
        dp = f"discounts[{i}]"
        _check_id(p, dp, d.id, "discount", "discounts", i, seen)
        if (d.percent is None) == (d.amount is None):
            p.add(f"{dp}.percent", "a discount needs exactly one of percent or amount")
        if _check_dec(p, f"{dp}.percent", d.percent, required=False, what="discount percent", positive=True) \
                and d.percent > 100:
            p.add(f"{dp}.percent", f"discount percent must be at most 100, got {d.percent}")
        _check_dec(p, f"{dp}.amount", d.amount, required=False, what="discount amount", positive=True)
        if d.applies_to not in DISCOUNT_TARGETS:
            p.add(f"{dp}.applies_to", f"applies_to must be one of {', '.join(DISCOUNT_TARGETS)}, got {d.applies_to!r}")
        if not isinstance(d.charges, tuple) or not all(isinstance(c, str) for c in d.charges):
            p.add(f"{dp}.charges", "charges must be a list of charge ids")
        else:
            if d.charges and d.applies_to != "usage":
                p.add(f"{dp}.charges", "only a discount that applies to usage can be restricted to charges")
            for cid in d.charges:
                if cid not in charge_ids:
                    p.add(f"{dp}.charges", f"unknown charge id {cid!r}")
        for name in ("start", "end"):
            v = getattr(d, name)
            if v is not None and not isinstance(v, date):
                p.add(f"{dp}.{name}", f"{name} must be a date (YYYY-MM-DD), got {v!r}")
        if isinstance(d.start, date) and isinstance(d.end, date) and d.end < d.start:
            p.add(f"{dp}.end", f"discount ends {d.end.isoformat()} before it starts {d.start.isoformat()}")
        if d.label is not None and not isinstance(d.label, str):
            p.add(f"{dp}.label", "label must be a string")


def _validate_charge(p: _Problems, cp: str, c: ChargeSpec) -> None:
    if c.model not in MODELS:
        p.add(f"{cp}.model", f"model must be one of {', '.join(MODELS)}, got {c.model!r}")
    if c.settle not in SETTLE_MODES:
        p.add(f"{cp}.settle", f"settle must be 'money' or 'wallet', got {c.settle!r}")
    wallet = c.settle == "wallet"
    _check_dec(p, f"{cp}.credit_rate", c.credit_rate, required=False, what="credit rate", positive=True)
    if wallet and c.credit_rate is None:
        p.add(f"{cp}.credit_rate", "credit rate is required when settle is 'wallet'")
    _check_dec(p, f"{cp}.min_amount", c.min_amount, required=False, what="minimum amount")
    if wallet and c.min_amount is not None:
        p.add(f"{cp}.min_amount", "a minimum amount cannot be combined with settle 'wallet'")
    for name in ("label", "unit"):
        if getattr(c, name) is not None and not isinstance(getattr(c, name), str):
            p.add(f"{cp}.{name}", f"{name} must be a string")
    # Model fields are not needed for wallet charges (nothing is priced), but they are checked if given.
    need = not wallet
    m = c.model
    _check_dec(p, f"{cp}.unit_price", c.unit_price, required=need and m in ("per_unit", "package"),
               what="unit price")
    _check_tiers(p, f"{cp}.tiers", c.tiers, required=need and m in ("graduated", "volume"))
    _check_dec(p, f"{cp}.package_size", c.package_size, required=need and m == "package",
               what="package size")
    if isinstance(c.package_size, Decimal) and c.package_size.is_finite() and c.package_size < 1:
        p.add(f"{cp}.package_size", f"package size must be at least 1, got {c.package_size}")
    _check_dec(p, f"{cp}.free_units", c.free_units, required=True, what="free units")
    _check_dec(p, f"{cp}.included_units", c.included_units, required=need and m == "allowance",
               what="included units")
    _check_dec(p, f"{cp}.included_fee", c.included_fee, required=False, what="included fee")
    _check_dec(p, f"{cp}.overage_price", c.overage_price, required=False, what="overage price")
    _check_tiers(p, f"{cp}.overage_tiers", c.overage_tiers, required=False)
    if need and m == "allowance":
        has_price = c.overage_price is not None
        has_tiers = isinstance(c.overage_tiers, tuple) and len(c.overage_tiers) > 0
        if has_price == has_tiers:
            p.add(f"{cp}.overage_price", "an allowance needs exactly one of overage_price or overage_tiers")
    _check_dec(p, f"{cp}.threshold", c.threshold, required=need and m == "threshold", what="threshold")
    _check_dec(p, f"{cp}.threshold_price", c.threshold_price, required=need and m == "threshold",
               what="threshold price")


def validate_plan(spec_or_dict: PlanSpec | Mapping[str, Any], known_metrics: set[str] | None = None,
                  expected_currency: str | None = None) -> PlanSpec:
    """Validate a PlanSpec (or a stored dict) and return the PlanSpec.

    Raises PlanValidationError with every problem found (not just the first).
    """
    p = _Problems()
    if isinstance(spec_or_dict, PlanSpec):
        spec = spec_or_dict
    elif isinstance(spec_or_dict, Mapping):
        spec = _parse_plan(spec_or_dict, p)
        if spec is None:
            raise PlanValidationError(p.items)
    else:
        raise PlanValidationError([("", f"expected a PlanSpec or a dict, got {type(spec_or_dict).__name__}")])
    parsed_paths = {path for path, _ in p.items}
    before = len(p.items)
    _validate(spec, p, known_metrics, expected_currency)
    # a value that could not be parsed is reported once (not again as "missing")
    p.items[before:] = [(path, m) for path, m in p.items[before:] if path not in parsed_paths]
    if p.items:
        raise PlanValidationError(p.items)
    return spec


# --------------------------------------------------------------------------- dict <-> spec

_TIER_KEYS = ("first", "last", "unit_price", "flat_fee")
_CHARGE_KEYS = tuple(f.name for f in fields(ChargeSpec))
_FEE_KEYS = tuple(f.name for f in fields(FeeSpec))
_DISCOUNT_KEYS = tuple(f.name for f in fields(DiscountSpec))
_PLAN_KEYS = ("currency", "timing", "minimum_spend", "charges", "fees", "discounts")


def _parse_dec(p: _Problems, path: str, v: Any) -> Any:
    if v is None or isinstance(v, Decimal):
        return v
    if isinstance(v, bool):
        p.add(path, f"expected a decimal number, got {v!r}")
        return None
    if isinstance(v, float):
        p.add(path, f"must be a decimal string such as \"0.10\", not a float ({v!r})")
        return None
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, str):
        try:
            return Decimal(v.strip())
        except InvalidOperation:
            p.add(path, f"not a decimal number: {v!r}")
            return None
    p.add(path, f"expected a decimal number, got {v!r}")
    return None


def _parse_int(p: _Problems, path: str, v: Any, allow_none: bool) -> Any:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or v is None:
        p.add(path, f"expected a whole number, got {v!r}")
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    if isinstance(v, Decimal) and v.is_finite() and v == v.to_integral_value():
        return int(v)
    p.add(path, f"expected a whole number, got {v!r}")
    return 0


def _parse_date(p: _Problems, path: str, v: Any) -> Any:
    if v is None or isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    p.add(path, f"expected a date YYYY-MM-DD, got {v!r}")
    return None


def _unknown_keys(p: _Problems, path: str, d: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for k in d:
        if k not in allowed:
            p.add(f"{path}.{k}" if path else str(k), f"unknown field {k!r}")


def _parse_tiers(p: _Problems, path: str, v: Any) -> tuple[Tier, ...]:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)):
        p.add(path, "tiers must be a list")
        return ()
    out = []
    for i, t in enumerate(v):
        tp = f"{path}[{i}]"
        if not isinstance(t, Mapping):
            p.add(tp, "tier must be an object")
            continue
        _unknown_keys(p, tp, t, _TIER_KEYS)
        if "first" not in t or "unit_price" not in t:
            p.add(tp, "tier needs 'first' and 'unit_price'")
            continue
        flat = _parse_dec(p, f"{tp}.flat_fee", t.get("flat_fee", "0"))
        out.append(Tier(
            first=_parse_int(p, f"{tp}.first", t.get("first"), False),
            last=_parse_int(p, f"{tp}.last", t.get("last"), True),
            unit_price=_parse_dec(p, f"{tp}.unit_price", t.get("unit_price")),
            flat_fee=ZERO if flat is None else flat,
        ))
    return tuple(out)


def _parse_plan(d: Mapping[str, Any], p: _Problems) -> PlanSpec | None:
    _unknown_keys(p, "", d, _PLAN_KEYS)
    if "currency" not in d:
        p.add("currency", "currency is required")
    charges = []
    for cp, c in _objects(p, d, "charges", "charge", _CHARGE_KEYS, ("id", "metric", "model")):
        kw: dict[str, Any] = {k: c.get(k) for k in ("id", "metric", "model", "label", "unit")}
        kw["settle"] = c.get("settle") or "money"
        for k in _CHARGE_DECIMALS:
            kw[k] = _parse_dec(p, f"{cp}.{k}", c.get(k))
        if kw["free_units"] is None:
            kw["free_units"] = ZERO
        kw["tiers"] = _parse_tiers(p, f"{cp}.tiers", c.get("tiers"))
        kw["overage_tiers"] = _parse_tiers(p, f"{cp}.overage_tiers", c.get("overage_tiers"))
        charges.append(ChargeSpec(**kw))
    fees = []
    for fp, f in _objects(p, d, "fees", "fee", _FEE_KEYS, ("id", "kind", "amount")):
        fees.append(FeeSpec(
            id=f.get("id"), kind=f.get("kind"),
            amount=_parse_dec(p, f"{fp}.amount", f.get("amount")),
            metric=f.get("metric"), timing=f.get("timing"),
            start=_parse_date(p, f"{fp}.start", f.get("start")),
            end=_parse_date(p, f"{fp}.end", f.get("end")),
            label=f.get("label"),
        ))
    return PlanSpec(
        currency=d.get("currency"),
        timing=d.get("timing") or "in_arrears",
        charges=tuple(charges),
        fees=tuple(fees),
        minimum_spend=_parse_dec(p, "minimum_spend", d.get("minimum_spend")),
        discounts=_parse_discounts(p, d),
    )


def _objects(p: _Problems, d: Mapping[str, Any], key: str, what: str, allowed: Any,
             required: tuple[str, ...]) -> Any:
    """Yield (path, object) for each entry of the list `d[key]`, reporting with their paths a value that is
    not a list, entries that are not objects, unknown keys and missing required keys."""
    raw = d.get(key) or []
    if not isinstance(raw, (list, tuple)):
        p.add(key, f"{key} must be a list")
        return
    for i, obj in enumerate(raw):
        path = f"{key}[{i}]"
        if not isinstance(obj, Mapping):
            p.add(path, f"{what} must be an object")
            continue
        _unknown_keys(p, path, obj, allowed)
        for k in required:
            if k not in obj:
                p.add(f"{path}.{k}", f"{k} is required")
        yield path, obj


def _parse_discounts(p: _Problems, d: Mapping[str, Any]) -> tuple[DiscountSpec, ...]:
    out = []
    for dp, x in _objects(p, d, "discounts", "discount", _DISCOUNT_KEYS, ("id",)):
        charges = x.get("charges") or ()
        out.append(DiscountSpec(
            id=x.get("id"), label=x.get("label"), applies_to=x.get("applies_to") or "all",
            percent=_parse_dec(p, f"{dp}.percent", x.get("percent")),
            amount=_parse_dec(p, f"{dp}.amount", x.get("amount")),
            charges=tuple(charges) if isinstance(charges, (list, tuple)) else charges,
            start=_parse_date(p, f"{dp}.start", x.get("start")),
            end=_parse_date(p, f"{dp}.end", x.get("end")),
        ))
    return tuple(out)


def plan_from_dict(d: Mapping[str, Any], known_metrics: set[str] | None = None,
                   expected_currency: str | None = None) -> PlanSpec:
    """Parse a stored (JSON) plan and validate it. Raises PlanValidationError."""
    return validate_plan(d, known_metrics=known_metrics, expected_currency=expected_currency)


def _s(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _tiers_to_list(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    return [{"first": t.first, "last": t.last, "unit_price": _s(t.unit_price), "flat_fee": _s(t.flat_fee)}
            for t in tiers]


def plan_to_dict(spec: PlanSpec) -> dict[str, Any]:
    """JSON-safe dict (Decimals as strings, dates ISO, every field present). Exact round trip."""
    charges = []
    for c in spec.charges:
        cd: dict[str, Any] = {}
        for name in _CHARGE_KEYS:
            v = getattr(c, name)
            cd[name] = _tiers_to_list(v) if name in ("tiers", "overage_tiers") else _s(v)
        charges.append(cd)
    fees = [{name: _s(getattr(f, name)) for name in _FEE_KEYS} for f in spec.fees]
    discounts = [{name: (list(getattr(x, name)) if name == "charges" else _s(getattr(x, name)))
                  for name in _DISCOUNT_KEYS} for x in spec.discounts]
    return {
        "currency": spec.currency,
        "timing": spec.timing,
        "minimum_spend": _s(spec.minimum_spend),
        "charges": charges,
        "fees": fees,
        "discounts": discounts,
    }


# --------------------------------------------------------------------------- overrides


def _override_value(v: Any) -> Any:
    if isinstance(v, (Decimal, date)):
        return _s(v)
    if isinstance(v, tuple):
        return [_override_value(x) for x in v]
    if isinstance(v, Tier):
        return _tiers_to_list((v,))[0]
    if isinstance(v, list):
        return [_override_value(x) for x in v]
    return v


def apply_overrides(spec: PlanSpec, overrides: Mapping[str, Any] | None,
                    known_metrics: set[str] | None = None) -> PlanSpec:
    """Return a new validated spec with customer-specific values.

    Paths are dotted; charges and fees are addressed by id, tiers by 0-based index:
      {"charges.pages.unit_price": "0.09", "charges.pages.tiers.1.unit_price": "0.07",
       "fees.base.amount": "99", "minimum_spend": "500", "discounts.loyal.percent": "15"}
    Values may be strings, ints, Decimals, dates or None (floats are rejected).
    Raises PlanValidationError (path, message) for a bad path or value.
    """
    if not overrides:
        return spec
    d = plan_to_dict(spec)
    problems: list[tuple[str, str]] = []
    for path, value in overrides.items():
        err = _apply_one(d, path, value)
        if err:
            problems.append((path, err))
    if problems:
        raise PlanValidationError(problems)
    try:
        return plan_from_dict(d, known_metrics=known_metrics)
    except PlanValidationError as e:
        raise PlanValidationError([(f"override → {pth}", msg) for pth, msg in e.problems]) from None


def _apply_one(d: dict[str, Any], path: Any, value: Any) -> str | None:
    if not isinstance(path, str) or not path:
        return "override path must be a non-empty string"
    if isinstance(value, float):
        return f"value must be a string or Decimal, not a float ({value!r})"
    parts = path.split(".")
    node: Any = d
    i = 0
    while i < len(parts) - 1:
        key = parts[i]
        if isinstance(node, dict) and key in ("charges", "fees", "discounts") and node is d:
            wanted = parts[i + 1]
            match = [x for x in node[key] if x.get("id") == wanted]
            if not match:
                known = ", ".join(repr(x.get("id")) for x in node[key]) or "none"
                return f"no {key[:-1]} with id {wanted!r} (known: {known})"
            node = match[0]
            i += 2
            continue
        if isinstance(node, dict):
            if key not in node:
                return f"unknown field {key!r}"
            node = node[key]
        elif isinstance(node, list):
            try:
                idx = int(key)
            except ValueError:
                return f"expected a list index, got {key!r}"
            if not 0 <= idx < len(node):
                return f"index {idx} out of range (0..{len(node) - 1})"
            node = node[idx]
        else:
            return f"cannot descend into {key!r}"
        i += 1
    if i >= len(parts):
        return "path must end with a field name"
    last = parts[-1]
    if isinstance(node, dict):
        if last not in node or (node is d and last in ("charges", "fees", "discounts") and not isinstance(value, list)):
            return f"unknown field {last!r}"
        if last == "id":
            return "ids cannot be overridden"
        node[last] = _override_value(value)
        return None
    if isinstance(node, list):
        try:
            idx = int(last)
        except ValueError:
            return f"expected a list index, got {last!r}"
        if not 0 <= idx < len(node):
            return f"index {idx} out of range (0..{len(node) - 1})"
        node[idx] = _override_value(value)
        return None
    return f"cannot set {last!r} here"
