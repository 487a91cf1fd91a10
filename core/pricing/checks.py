"""Field checks shared by plan validation (core.pricing.validate) and the charge models (core.pricing.models).

Every check adds (path, message) problems instead of raising, so a plan reports all its problems at once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .spec import MAX_DECIMALS, Tier

__all__ = ["Problems", "places", "check_dec", "check_str", "check_tiers", "is_whole", "tiers_fractional"]


class Problems:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, msg: str) -> None:
        self.items.append((path, msg))


def places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    return max(0, -exp) if isinstance(exp, int) else 0


def check_dec(p: Problems, path: str, v: Any, *, required: bool, what: str = "value",
              positive: bool = False, model: bool = True, maximum: Decimal | None = None) -> bool:
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
    if places(v) > MAX_DECIMALS:
        p.add(path, f"{what} has {places(v)} decimal places; at most {MAX_DECIMALS} are allowed")
        return False
    if maximum is not None and v > maximum:
        p.add(path, f"{what} must be at most {maximum}, got {v}")
        return False
    return True


def check_str(p: Problems, path: str, v: Any, what: str) -> bool:
    if not isinstance(v, str) or not v.strip():
        p.add(path, f"{what} must be a non-empty string")
        return False
    return True


def is_whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_bound(v: Any) -> bool:
    return is_whole(v) or (isinstance(v, Decimal) and v.is_finite())


def tiers_fractional(tiers: tuple[Tier, ...]) -> bool:
    """True when a bound of the list is fractional: tiers then cover (first, last] and chain end to start."""
    return any(isinstance(b, Decimal) for t in tiers for b in (t.first, t.last))


def _check_bound(p: Problems, tp: str, t: Tier) -> bool:
    ok_first = _is_bound(t.first)
    ok_last = t.last is None or _is_bound(t.last)
    if not ok_first:
        p.add(tp, f"tier start must be a number, got {t.first!r}")
    if not ok_last:
        p.add(tp, f"tier end must be a number or open (null), got {t.last!r}")
    for b in (t.first, t.last):
        if isinstance(b, Decimal) and b.is_finite() and places(b) > MAX_DECIMALS:
            p.add(tp, f"tier bound {b} has more than {MAX_DECIMALS} decimal places")
    return ok_first and ok_last


def _check_chain(p: Problems, tp: str, i: int, t: Tier, prev_last: Any, fractional: bool) -> None:
    """The tier starts where the previous one ends: at its end + 1 (whole-number tiers) or at its end
    (tiers with a fractional bound)."""
    if i == 0:
        starts = (0,) if fractional else (0, 1)
        if t.first not in starts:
            p.add(tp, f"first tier starts at {t.first}; it must start at " + (
                "0 (tiers with fractional bounds cover amounts above their start)" if fractional else "0 or 1"))
        return
    if prev_last is None:
        return
    expected = prev_last if fractional else prev_last + 1
    if t.first > expected:
        p.add(tp, f"tier starts at {t.first} but the previous tier ends at {prev_last}: gap")
    elif t.first < expected:
        p.add(tp, f"tier starts at {t.first} but the previous tier ends at {prev_last}: overlap")


def check_tiers(p: Problems, path: str, tiers: Any, *, required: bool) -> None:
    if not isinstance(tiers, tuple) or not all(isinstance(t, Tier) for t in tiers):
        p.add(path, "tiers must be a list of tiers")
        return
    if not tiers:
        if required:
            p.add(path, "at least one tier is required for this model")
        return
    fractional = tiers_fractional(tiers)
    prev_last: Any = None
    for i, t in enumerate(tiers):
        tp = f"{path}[{i}]"
        check_dec(p, f"{tp}.unit_price", t.unit_price, required=True, what="unit price", model=False)
        check_dec(p, f"{tp}.flat_fee", t.flat_fee, required=True, what="flat fee", model=False)
        check_dec(p, f"{tp}.block_size", t.block_size, required=False, what="block size", positive=True)
        if not _check_bound(p, tp, t):
            prev_last = None
            continue
        if t.first < 0:
            p.add(tp, f"tier starts at {t.first}: must not be negative")
        if t.last is not None and (t.last < t.first or (fractional and t.last == t.first)):
            p.add(tp, f"tier ends at {t.last}, before it starts at {t.first}" if t.last < t.first
                  else f"tier {t.first}–{t.last} is empty")
        _check_chain(p, tp, i, t, prev_last, fractional)
        if t.last is None and i != len(tiers) - 1:
            p.add(tp, "only the last tier may be open-ended (last = null)")
        prev_last = t.last
