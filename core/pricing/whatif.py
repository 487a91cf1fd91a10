"""What-if: where two plans' totals cross (the lab's break-even search). Pure: stdlib only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from .engine import rate_plan
from .models import get_model
from .spec import PlanSpec
from .usage import Usage
from .validate import dimension_variant

__all__ = ["break_even"]

_LAB_START = date(2001, 1, 1)  # nominal 31-day month: fees are unprorated
_LAB_END = date(2001, 1, 31)


def _breakpoints(spec: PlanSpec, metric: str, lo: int, hi: int) -> set[int]:
    """Integer quantities of `metric` around which a charge's price changes slope (from each model)."""
    points: set[int] = set()
    for c in spec.charges:
        if c.metric != metric:
            continue
        r = c.credit_rate or Decimal(1)
        model = get_model(c.model)
        raw = list(model.breakpoints(c))
        for d in c.dimension_prices:
            raw += model.breakpoints(dimension_variant(c, d))
        for v in raw:
            qv = int((v / r).to_integral_value())
            for step in (-1, 0, 1):
                if lo <= qv + step <= hi:
                    points.add(qv + step)
    return points


def break_even(spec_a: PlanSpec, spec_b: PlanSpec, metric: str, lo: int, hi: int,
               base_usage: Mapping[str, Decimal | Usage] | None = None,
               period_start: date = _LAB_START, period_end: date = _LAB_END) -> int | None:
    """Smallest integer quantity q in [lo, hi] of `metric` where the ordering of the two plans'
    totals differs from the ordering at lo (a: cheaper/equal/dearer than b), or None.

    Other metrics are taken from base_usage. Totals are rated over one nominal full month.
    Exact scan for ranges up to 20,000 quantities; larger ranges are bisected between the
    plans' price breakpoints (exact for piecewise-linear prices, i.e. all models except
    package steps, blocks and minimum top-ups, where a flip inside a breakpoint interval may be missed).
    """
    if hi < lo:
        return None
    base: dict[str, Decimal | Usage] = dict(base_usage or {})

    def sign(q: int) -> int:
        base[metric] = Decimal(q)
        a = rate_plan(spec_a, base, period_start, period_end).total
        b = rate_plan(spec_b, base, period_start, period_end).total
        return (a > b) - (a < b)

    s0 = sign(lo)
    if hi - lo <= 20000:
        for q in range(lo + 1, hi + 1):
            if sign(q) != s0:
                return q
        return None
    pts = sorted({lo, hi} | _breakpoints(spec_a, metric, lo, hi) | _breakpoints(spec_b, metric, lo, hi))
    prev = pts[0]
    for p in pts[1:]:
        if sign(p) != s0:
            a, b = prev, p  # sign(a) == s0, sign(b) != s0
            while b - a > 1:
                mid = (a + b) // 2
                if sign(mid) == s0:
                    a = mid
                else:
                    b = mid
            return b
        prev = p
    return None
