"""Plans as stored JSON: parse a dict into a PlanSpec (reporting every bad value with its path) and back.

The stored form is unchanged for the original charge models: every charge carries all their fields, tiers
carry first/last/unit_price/flat_fee. Fields added later appear only when set: a tier's block_size, a model's
own fields (e.g. percentage's rate), a charge's dimension and dimension_prices. Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from .checks import Problems
from .models import registered
from .spec import (
    LEGACY_CHARGE_DECIMALS,
    LEGACY_CHARGE_FIELDS,
    ChargeSpec,
    DimensionPrice,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    Tier,
)

__all__ = ["parse_plan", "plan_to_dict", "to_json_value", "tiers_to_list"]

ZERO = Decimal(0)
_TIER_KEYS = ("first", "last", "unit_price", "flat_fee", "block_size")
_BASE_CHARGE_KEYS = ("id", "metric", "model", *LEGACY_CHARGE_DECIMALS, "tiers", "overage_tiers", "settle",
                     "label", "unit")
_FEE_KEYS = tuple(f.name for f in fields(FeeSpec))
_DISCOUNT_KEYS = tuple(f.name for f in fields(DiscountSpec))
_PLAN_KEYS = ("currency", "timing", "minimum_spend", "charges", "fees", "discounts")


def param_kinds() -> dict[str, str]:
    """Model fields kept in ChargeSpec.params, by name -> kind (from the registry)."""
    return {f.name: f.kind for m in registered() for f in m.fields if f.name not in LEGACY_CHARGE_FIELDS}


def _get(m: Mapping[str, Any], key: str) -> Any:
    """A value as stored (its type is checked by validation)."""
    return m.get(key)


def _parse_dec(p: Problems, path: str, v: Any) -> Any:
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


def _parse_bound(p: Problems, path: str, v: Any, allow_none: bool) -> Any:
    """A tier bound: a whole number (kept as int) or a decimal such as "0.5"."""
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or v is None or isinstance(v, float):
        p.add(path, f"expected a number, got {v!r}")
        return 0
    if isinstance(v, int):
        return v
    d = _parse_dec(p, path, v)
    if d is None:
        return 0
    if not d.is_finite():
        p.add(path, f"expected a finite number, got {v!r}")
        return 0
    return int(d) if d == d.to_integral_value() else d


def _parse_date(p: Problems, path: str, v: Any) -> Any:
    if v is None or isinstance(v, date):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    p.add(path, f"expected a date YYYY-MM-DD, got {v!r}")
    return None


def _unknown_keys(p: Problems, path: str, d: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    for k in d:
        if k not in allowed:
            p.add(f"{path}.{k}" if path else str(k), f"unknown field {k!r}")


def _parse_tiers(p: Problems, path: str, v: Any) -> tuple[Tier, ...]:
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
            first=_parse_bound(p, f"{tp}.first", t.get("first"), False),
            last=_parse_bound(p, f"{tp}.last", t.get("last"), True),
            unit_price=_parse_dec(p, f"{tp}.unit_price", t.get("unit_price")),
            flat_fee=ZERO if flat is None else flat,
            block_size=_parse_dec(p, f"{tp}.block_size", t.get("block_size")),
        ))
    return tuple(out)


def _parse_model_fields(p: Problems, path: str, c: Mapping[str, Any], kinds: Mapping[str, str],
                        legacy: bool) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """(attribute values, params) of the model fields present in `c` (legacy: every original field)."""
    attrs: dict[str, Any] = {}
    for k in (*LEGACY_CHARGE_DECIMALS, "tiers", "overage_tiers"):
        if k in ("credit_rate", "min_amount") or (not legacy and k not in c):
            continue
        attrs[k] = _parse_tiers(p, f"{path}.{k}", c.get(k)) if k in ("tiers", "overage_tiers") \
            else _parse_dec(p, f"{path}.{k}", c.get(k))
    params = [(k, _parse_dec(p, f"{path}.{k}", c[k])) for k in kinds if k in c and c[k] is not None]
    return attrs, params


def _parse_dimension_prices(p: Problems, path: str, v: Any, kinds: Mapping[str, str]) -> tuple[DimensionPrice, ...]:
    if v is None:
        return ()
    if not isinstance(v, (list, tuple)):
        p.add(path, "dimension prices must be a list")
        return ()
    allowed = ("value", "label", *LEGACY_CHARGE_DECIMALS, "tiers", "overage_tiers", *kinds)
    out = []
    for k, x in enumerate(v):
        xp = f"{path}[{k}]"
        if not isinstance(x, Mapping):
            p.add(xp, "a dimension price must be an object")
            continue
        _unknown_keys(p, xp, x, allowed)
        attrs, params = _parse_model_fields(p, xp, x, kinds, legacy=False)
        prices = tuple(sorted([(n, val) for n, val in attrs.items() if val not in (None, ())] + params))
        value: Any = x.get("value")
        out.append(DimensionPrice(value=str(value) if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else value,
                                  prices=prices, label=x.get("label")))
    return tuple(out)


def _parse_charge(p: Problems, cp: str, c: Mapping[str, Any], kinds: Mapping[str, str]) -> ChargeSpec:
    attrs, params = _parse_model_fields(p, cp, c, kinds, legacy=True)
    if attrs["free_units"] is None:
        attrs["free_units"] = ZERO
    return ChargeSpec(
        id=_get(c, "id"), metric=_get(c, "metric"), model=_get(c, "model"), label=c.get("label"), unit=c.get("unit"),
        settle=c.get("settle") or "money", credit_rate=_parse_dec(p, f"{cp}.credit_rate", c.get("credit_rate")),
        min_amount=_parse_dec(p, f"{cp}.min_amount", c.get("min_amount")), params=tuple(sorted(params)),
        dimension=c.get("dimension"),
        dimension_prices=_parse_dimension_prices(p, f"{cp}.dimension_prices", c.get("dimension_prices"), kinds),
        **attrs)


def parse_plan(d: Mapping[str, Any], p: Problems) -> PlanSpec:
    _unknown_keys(p, "", d, _PLAN_KEYS)
    if "currency" not in d:
        p.add("currency", "currency is required")
    kinds = param_kinds()
    charge_keys = (*_BASE_CHARGE_KEYS, *kinds, "dimension", "dimension_prices")
    charges = [_parse_charge(p, cp, c, kinds)
               for cp, c in _objects(p, d, "charges", "charge", charge_keys, ("id", "metric", "model"))]
    fees = []
    for fp, f in _objects(p, d, "fees", "fee", _FEE_KEYS, ("id", "kind", "amount")):
        fees.append(FeeSpec(
            id=_get(f, "id"), kind=_get(f, "kind"),
            amount=_parse_dec(p, f"{fp}.amount", f.get("amount")),
            metric=_get(f, "metric"), timing=f.get("timing"),
            start=_parse_date(p, f"{fp}.start", f.get("start")),
            end=_parse_date(p, f"{fp}.end", f.get("end")),
            label=f.get("label"),
        ))
    return PlanSpec(
        currency=d.get("currency"),  # type: ignore[arg-type]  # a missing or bad one is reported by validation
        timing=d.get("timing") or "in_arrears",
        charges=tuple(charges),
        fees=tuple(fees),
        minimum_spend=_parse_dec(p, "minimum_spend", d.get("minimum_spend")),
        discounts=_parse_discounts(p, d),
    )


def _objects(p: Problems, d: Mapping[str, Any], key: str, what: str, allowed: Any,
             required: tuple[str, ...]) -> Iterator[tuple[str, Mapping[str, Any]]]:
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


def _parse_discounts(p: Problems, d: Mapping[str, Any]) -> tuple[DiscountSpec, ...]:
    out = []
    for dp, x in _objects(p, d, "discounts", "discount", _DISCOUNT_KEYS, ("id",)):
        charges = x.get("charges") or ()
        out.append(DiscountSpec(
            id=_get(x, "id"), label=x.get("label"), applies_to=x.get("applies_to") or "all",
            percent=_parse_dec(p, f"{dp}.percent", x.get("percent")),
            amount=_parse_dec(p, f"{dp}.amount", x.get("amount")),
            charges=tuple(charges) if isinstance(charges, (list, tuple)) else charges,
            start=_parse_date(p, f"{dp}.start", x.get("start")),
            end=_parse_date(p, f"{dp}.end", x.get("end")),
        ))
    return tuple(out)


def to_json_value(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _bound(b: Any) -> Any:
    return str(b) if isinstance(b, Decimal) else b


def tiers_to_list(tiers: tuple[Tier, ...]) -> list[dict[str, Any]]:
    out = []
    for t in tiers:
        td: dict[str, Any] = {"first": _bound(t.first), "last": _bound(t.last),
                              "unit_price": to_json_value(t.unit_price), "flat_fee": to_json_value(t.flat_fee)}
        if t.block_size is not None:
            td["block_size"] = to_json_value(t.block_size)
        out.append(td)
    return out


def _field_value(name: str, v: Any) -> Any:
    return tiers_to_list(v) if name in ("tiers", "overage_tiers") else to_json_value(v)


def charge_to_dict(c: ChargeSpec) -> dict[str, Any]:
    cd: dict[str, Any] = {}
    for name in _BASE_CHARGE_KEYS:
        cd[name] = _field_value(name, getattr(c, name))
    for name, v in c.params:
        cd[name] = to_json_value(v)
    if c.dimension is not None or c.dimension_prices:
        cd["dimension"] = c.dimension
        cd["dimension_prices"] = [{"value": d.value, "label": d.label,
                                   **{k: _field_value(k, v) for k, v in d.prices}} for d in c.dimension_prices]
    return cd


def plan_to_dict(spec: PlanSpec) -> dict[str, Any]:
    """JSON-safe dict (Decimals as strings, dates ISO, every original field present). Exact round trip."""
    fees = [{name: to_json_value(getattr(f, name)) for name in _FEE_KEYS} for f in spec.fees]
    discounts = [{name: (list(getattr(x, name)) if name == "charges" else to_json_value(getattr(x, name)))
                  for name in _DISCOUNT_KEYS} for x in spec.discounts]
    return {
        "currency": spec.currency,
        "timing": spec.timing,
        "minimum_spend": to_json_value(spec.minimum_spend),
        "charges": [charge_to_dict(c) for c in spec.charges],
        "fees": fees,
        "discounts": discounts,
    }
