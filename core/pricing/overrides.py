"""Customer-specific price overrides: dotted paths applied to a plan's stored form, then validated again.

Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from .serialize import param_kinds, plan_to_dict, tiers_to_list, to_json_value
from .spec import PlanSpec, PlanValidationError, Tier
from .validate import plan_from_dict

__all__ = ["apply_overrides"]


def _override_value(v: Any) -> Any:
    if isinstance(v, (Decimal, date)):
        return to_json_value(v)
    if isinstance(v, tuple):
        return [_override_value(x) for x in v]
    if isinstance(v, Tier):
        return tiers_to_list((v,))[0]
    if isinstance(v, list):
        return [_override_value(x) for x in v]
    return v


def apply_overrides(spec: PlanSpec, overrides: Mapping[str, Any] | None,
                    known_metrics: set[str] | None = None) -> PlanSpec:
    """Return a new validated spec with customer-specific values.

    Paths are dotted; charges and fees are addressed by id, tiers by 0-based index, dimension prices by index
    or by value:
      {"charges.pages.unit_price": "0.09", "charges.pages.tiers.1.unit_price": "0.07",
       "charges.sms.dimension_prices.NO.unit_price": "0.04",
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


def _by_value(node: list[Any], key: str) -> Any:
    """A dimension price addressed by its value instead of its index."""
    match = [x for x in node if isinstance(x, dict) and x.get("value") == key]
    return match[0] if match else None


def _descend(d: dict[str, Any], parts: list[str]) -> tuple[Any, int, str | None]:
    """Walk all but the last path element: (node, index reached, error)."""
    node: Any = d
    i = 0
    while i < len(parts) - 1:
        key = parts[i]
        if isinstance(node, dict) and key in ("charges", "fees", "discounts") and node is d:
            wanted = parts[i + 1]
            match = [x for x in node[key] if x.get("id") == wanted]
            if not match:
                known = ", ".join(repr(x.get("id")) for x in node[key]) or "none"
                return node, i, f"no {key[:-1]} with id {wanted!r} (known: {known})"
            node = match[0]
            i += 2
            continue
        if isinstance(node, dict):
            if key not in node:
                return node, i, f"unknown field {key!r}"
            node = node[key]
        elif isinstance(node, list):
            found = _by_value(node, key)
            if found is not None:
                node = found
            else:
                try:
                    idx = int(key)
                except ValueError:
                    return node, i, f"expected a list index, got {key!r}"
                if not 0 <= idx < len(node):
                    return node, i, f"index {idx} out of range (0..{len(node) - 1})"
                node = node[idx]
        else:
            return node, i, f"cannot descend into {key!r}"
        i += 1
    return node, i, None


def _apply_one(d: dict[str, Any], path: Any, value: Any) -> str | None:
    if not isinstance(path, str) or not path:
        return "override path must be a non-empty string"
    if isinstance(value, float):
        return f"value must be a string or Decimal, not a float ({value!r})"
    parts = path.split(".")
    node, i, err = _descend(d, parts)
    if err:
        return err
    if i >= len(parts):
        return "path must end with a field name"
    last = parts[-1]
    if isinstance(node, dict):
        if last not in node and node is not d and (("model" in node and last in param_kinds())
                                                    or ("first" in node and last == "block_size")):
            node[last] = None  # a field that is not set yet (e.g. percentage's fixed_fee): validated below
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
