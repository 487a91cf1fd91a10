"""Plan validation: every problem of a plan (or a stored dict) with its path, before anything uses it.

The charge models check their own fields (core.pricing.models); this module checks the plan around them.
`rate()` validates too, so a spec built in code is refused however it was built. Pure: stdlib only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from .checks import Problems, check_dec, check_str, check_tiers
from .models import ChargeModel, get_model, registered
from .money import is_known_currency
from .serialize import parse_plan
from .spec import (
    DISCOUNT_TARGETS,
    FEE_KINDS,
    LEGACY_CHARGE_DECIMALS,
    LEGACY_CHARGE_FIELDS,
    SETTLE_MODES,
    TIMINGS,
    ChargeSpec,
    DimensionPrice,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    PlanValidationError,
)

__all__ = ["validate_plan", "plan_from_dict", "dimension_variant", "validate_checked"]


def validate_plan(spec_or_dict: PlanSpec | Mapping[str, Any], known_metrics: set[str] | None = None,
                  expected_currency: str | None = None) -> PlanSpec:
    """Validate a PlanSpec (or a stored dict) and return the PlanSpec.

    Raises PlanValidationError with every problem found (not just the first).
    """
    p = Problems()
    if isinstance(spec_or_dict, PlanSpec):
        spec = spec_or_dict
    elif isinstance(spec_or_dict, Mapping):
        spec = parse_plan(spec_or_dict, p)
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


def plan_from_dict(d: Mapping[str, Any], known_metrics: set[str] | None = None,
                   expected_currency: str | None = None) -> PlanSpec:
    """Parse a stored (JSON) plan and validate it. Raises PlanValidationError."""
    return validate_plan(d, known_metrics=known_metrics, expected_currency=expected_currency)


def validate_checked(spec: PlanSpec) -> None:
    """validate_plan for the engine: raises PlanValidationError for an invalid spec (however it was built)."""
    validate_plan(spec)


def _validate(spec: PlanSpec, p: Problems, known_metrics: set[str] | None,
              expected_currency: str | None) -> None:
    if not is_known_currency(spec.currency):
        p.add("currency", f"unknown currency {spec.currency!r}")
    elif expected_currency is not None and spec.currency != expected_currency:
        p.add("currency", f"plan currency is {spec.currency} but {expected_currency} is expected")
    if spec.timing not in TIMINGS:
        p.add("timing", f"timing must be one of {', '.join(TIMINGS)}, got {spec.timing!r}")
    check_dec(p, "minimum_spend", spec.minimum_spend, required=False, what="minimum spend")

    if not isinstance(spec.charges, tuple) or not all(isinstance(c, ChargeSpec) for c in spec.charges):
        p.add("charges", "charges must be a list of ChargeSpec")
    else:
        seen: dict[str, int] = {}
        for i, c in enumerate(spec.charges):
            cp = f"charges[{i}]"
            _check_id(p, cp, c.id, "charge", "charges", i, seen)
            if check_str(p, f"{cp}.metric", c.metric, "metric") and known_metrics is not None \
                    and c.metric not in known_metrics:
                p.add(f"{cp}.metric", f"unknown metric {c.metric!r}")
            _validate_charge(p, cp, c)
    _validate_fees(p, spec, known_metrics)
    _validate_discounts(p, spec)


def _validate_fees(p: Problems, spec: PlanSpec, known_metrics: set[str] | None) -> None:
    if not isinstance(spec.fees, tuple) or not all(isinstance(f, FeeSpec) for f in spec.fees):
        p.add("fees", "fees must be a list of FeeSpec")
        return
    seen: dict[str, int] = {}
    for i, f in enumerate(spec.fees):
        fp = f"fees[{i}]"
        _check_id(p, fp, f.id, "fee", "fees", i, seen)
        if f.kind not in FEE_KINDS:
            p.add(f"{fp}.kind", f"fee kind must be one of {', '.join(FEE_KINDS)}, got {f.kind!r}")
        check_dec(p, f"{fp}.amount", f.amount, required=True, what="fee amount", model=False)
        if f.kind == "feature":
            if check_str(p, f"{fp}.metric", f.metric, "metric (required for a feature fee)") \
                    and known_metrics is not None and f.metric not in known_metrics:
                p.add(f"{fp}.metric", f"unknown metric {f.metric!r}")
        elif f.metric is not None:
            p.add(f"{fp}.metric", f"only feature fees take a metric (kind is {f.kind!r})")
        if f.timing is not None and f.timing not in TIMINGS:
            p.add(f"{fp}.timing", f"timing must be one of {', '.join(TIMINGS)} or null, got {f.timing!r}")
        _check_dates(p, fp, f.start, f.end, "fee")
        if f.label is not None and not isinstance(f.label, str):
            p.add(f"{fp}.label", "label must be a string")


def _check_dates(p: Problems, path: str, start: Any, end: Any, what: str) -> None:
    for name, v in (("start", start), ("end", end)):
        if v is not None and not isinstance(v, date):
            p.add(f"{path}.{name}", f"{name} must be a date (YYYY-MM-DD), got {v!r}")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        p.add(f"{path}.end", f"{what} ends {end.isoformat()} before it starts {start.isoformat()}")


def _check_id(p: Problems, path: str, value: Any, what: str, collection: str, index: int,
              seen: dict[str, int]) -> None:
    """A charge, fee or discount id: a non-empty string without '.' (overrides address it by
    dotted path), unique in its list."""
    if not check_str(p, f"{path}.id", value, f"{what} id"):
        return
    if "." in value:
        p.add(f"{path}.id", f"{what} id {value!r} must not contain '.'")
    if value in seen:
        p.add(f"{path}.id", f"duplicate {what} id {value!r} (also {collection}[{seen[value]}])")
    else:
        seen[value] = index
def _validate_discounts(p: Problems, spec: PlanSpec) -> None:
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
        check_dec(p, f"{dp}.percent", d.percent, required=False, what="discount percent", positive=True,
                  maximum=Decimal(100))
        check_dec(p, f"{dp}.amount", d.amount, required=False, what="discount amount", positive=True)
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
        _check_dates(p, dp, d.start, d.end, "discount")
        if d.label is not None and not isinstance(d.label, str):
            p.add(f"{dp}.label", "label must be a string")


def _validate_charge(p: Problems, cp: str, c: ChargeSpec) -> None:
    try:
        model: ChargeModel | None = get_model(c.model)
    except KeyError:
        p.add(f"{cp}.model", f"model must be one of {', '.join(m.name for m in registered())}, got {c.model!r}")
        model = None
    if c.settle not in SETTLE_MODES:
        p.add(f"{cp}.settle", f"settle must be 'money' or 'wallet', got {c.settle!r}")
    wallet = c.settle == "wallet"
    check_dec(p, f"{cp}.credit_rate", c.credit_rate, required=False, what="credit rate", positive=True)
    if wallet and c.credit_rate is None:
        p.add(f"{cp}.credit_rate", "credit rate is required when settle is 'wallet'")
    check_dec(p, f"{cp}.min_amount", c.min_amount, required=False, what="minimum amount")
    if wallet and c.min_amount is not None:
        p.add(f"{cp}.min_amount", "a minimum amount cannot be combined with settle 'wallet'")
    for name in ("label", "unit"):
        if getattr(c, name) is not None and not isinstance(getattr(c, name), str):
            p.add(f"{cp}.{name}", f"{name} must be a string")
    own = set(model.field_names()) if model is not None else set()
    _check_unused_fields(p, cp, c, own, model is not None)
    if model is not None:
        # model fields are not needed for wallet charges (nothing is priced), but they are checked if given
        model.validate(c, p, cp, need=not wallet)
        _validate_dimension(p, cp, c, own)


def _check_unused_fields(p: Problems, cp: str, c: ChargeSpec, own: set[str], known_model: bool) -> None:
    """Fields of the original models that this model does not use are still checked if given (as before the
    registry); a `params` entry this model does not declare is refused."""
    for name in LEGACY_CHARGE_DECIMALS:
        if name not in own and name not in ("credit_rate", "min_amount"):
            check_dec(p, f"{cp}.{name}", getattr(c, name), required=name == "free_units",
                      what=name.replace("_", " "))
    for name in ("tiers", "overage_tiers"):
        if name not in own:
            check_tiers(p, f"{cp}.{name}", getattr(c, name), required=False)
    if not isinstance(c.params, tuple):
        p.add(f"{cp}.params", "params must be a list of (name, value) pairs")
        return
    for name, _ in c.params:
        if known_model and name not in own:
            p.add(f"{cp}.{name}", f"unknown field {name!r} for the {c.model} model")


def dimension_variant(c: ChargeSpec, d: DimensionPrice) -> ChargeSpec:
    """The charge as priced for one dimension value: its own fields with the value's prices on top."""
    given = {k for k, _ in d.prices}
    legacy: dict[str, Any] = {}
    for group in get_model(c.model).alternatives:
        if given & set(group):
            legacy.update({k: () if k in ("tiers", "overage_tiers") else None for k in group})
    legacy.update({k: v for k, v in d.prices if k in LEGACY_CHARGE_FIELDS})
    params = dict(c.params)
    params.update({k: v for k, v in d.prices if k not in LEGACY_CHARGE_FIELDS})
    return dataclasses.replace(c, **legacy, params=tuple(sorted(params.items())), dimension=None,
                               dimension_prices=(), label=None)


def _validate_dimension(p: Problems, cp: str, c: ChargeSpec, own: set[str]) -> None:
    if c.dimension is None:
        if c.dimension_prices:
            p.add(f"{cp}.dimension", "prices per value need a dimension (the event property they depend on)")
        return
    if not check_str(p, f"{cp}.dimension", c.dimension, "dimension (an event property)"):
        return
    if not isinstance(c.dimension_prices, tuple) or not all(isinstance(d, DimensionPrice)
                                                           for d in c.dimension_prices):
        p.add(f"{cp}.dimension_prices", "dimension prices must be a list")
        return
    seen: set[str] = set()
    for k, d in enumerate(c.dimension_prices):
        dp = f"{cp}.dimension_prices[{k}]"
        if not check_str(p, f"{dp}.value", d.value, "dimension value"):
            continue
        if d.value in seen:
            p.add(f"{dp}.value", f"duplicate value {d.value!r}")
        seen.add(d.value)
        if d.label is not None and not isinstance(d.label, str):
            p.add(f"{dp}.label", "label must be a string")
        if not isinstance(d.prices, tuple):
            p.add(dp, "prices must be a list of (field, value) pairs")
            continue
        bad = [name for name, _ in d.prices if name not in own]
        for name in bad:
            p.add(f"{dp}.{name}", f"unknown field {name!r} for the {c.model} model")
        if not bad:
            get_model(c.model).validate(dimension_variant(c, d), p, dp, need=c.settle != "wallet")


