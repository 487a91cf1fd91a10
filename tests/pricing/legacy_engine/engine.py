"""Rating engine: prices usage + fees for a billing period, possibly across plan segments.

Pure: stdlib only, no I/O, no clock. Every statement line is rounded ONCE (half up, currency
minor unit); the total is the sum of the rounded lines.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Context, Decimal, localcontext

from .explain import Part, part, parts_to_json, render_parts
from .models import (
    Priced,
    price_allowance,
    price_graduated,
    price_package,
    price_per_unit,
    price_threshold,
    price_volume,
)
from .money import format_quantity, minor_unit, round_money
from .spec import ChargeSpec, DiscountSpec, PlanSpec

__all__ = [
    "RatingError",
    "Segment",
    "Line",
    "Alert",
    "Rating",
    "rate",
    "rate_plan",
    "price_charge",
    "next_period",
    "break_even",
    "rating_to_dict",
]

ZERO = Decimal(0)
_CTX = Context(prec=40)


class RatingError(ValueError):
    """Bad input to rate(): segments outside the period, overlapping, mixed currencies, bad usage."""


@dataclass(frozen=True)
class Segment:
    """A part of the billing period priced under one plan version.

    usage: metric key -> quantity aggregated over [start, end] (missing metric = 0).
    """

    spec: PlanSpec
    start: date
    end: date
    usage: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Alert:
    charge_id: str
    metric: str
    threshold: Decimal
    quantity: Decimal
    message: str
    segment_start: date | None = None
    segment_end: date | None = None


@dataclass(frozen=True)
class Line:
    kind: str  # "usage" | "fee" | "discount" | "minimum"
    label: str
    amount: Decimal  # rounded once, half up, to the currency's minor unit
    unrounded: Decimal
    explanation: str
    quantity: Decimal = ZERO
    metric: str | None = None
    charge_id: str | None = None
    fee_id: str | None = None
    credits: Decimal | None = None  # credits computed from usage (if the charge converts to credits)
    settle: str = "money"  # "wallet": amount is 0, credits are to be drawn from the wallet
    segment_start: date | None = None
    segment_end: date | None = None
    covers_start: date | None = None  # fees: the dates the fee covers (next period for in-advance)
    covers_end: date | None = None
    discount_id: str | None = None
    # structured forms of explanation / label for other languages: [(template key, params), ...]
    # (core.pricing.explain.explain / explain_label render them; English = explanation / label)
    explanation_parts: tuple[Part, ...] = ()
    label_parts: tuple[Part, ...] = ()


@dataclass(frozen=True)
class Rating:
    currency: str
    period_start: date
    period_end: date
    lines: tuple[Line, ...]
    total: Decimal  # sum of the rounded line amounts
    alerts: tuple[Alert, ...] = ()
    credits: dict[str, Decimal] = field(default_factory=dict)  # metric -> credits to draw from wallet

    def lines_for(self, kind: str) -> tuple[Line, ...]:
        return tuple(ln for ln in self.lines if ln.kind == kind)


# --------------------------------------------------------------------------- helpers


def _days(start: date, end: date) -> int:
    return (end - start).days + 1


def next_period(period_start: date, period_end: date) -> tuple[date, date]:
    """The period an in-advance fee covers: the next calendar month(s) if the period is whole
    calendar months, otherwise the same number of days right after period_end."""
    last_day = calendar.monthrange(period_end.year, period_end.month)[1]
    if period_start.day == 1 and period_end.day == last_day:
        months = (period_end.year * 12 + period_end.month) - (period_start.year * 12 + period_start.month) + 1
        ns = period_end + timedelta(days=1)
        idx = ns.year * 12 + (ns.month - 1) + months - 1
        y, m = divmod(idx, 12)
        m += 1
        return ns, date(y, m, calendar.monthrange(y, m)[1])
    n = _days(period_start, period_end)
    return period_end + timedelta(days=1), period_end + timedelta(days=n)


def _usage_value(usage: Mapping[str, object], metric: str) -> Decimal:
    v = usage.get(metric, ZERO)
    if v is None:
        return ZERO
    if isinstance(v, float) or isinstance(v, bool):
        raise RatingError(f"usage for {metric!r} must be a Decimal, not {type(v).__name__}")
    if not isinstance(v, Decimal):
        try:
            v = Decimal(v)  # int or str
        except Exception:  # noqa: BLE001
            raise RatingError(f"usage for {metric!r} is not a number: {v!r}") from None
    if not v.is_finite() or v < 0:
        raise RatingError(f"usage for {metric!r} must be a finite number >= 0, got {v}")
    return v


def price_charge(charge: ChargeSpec, quantity: Decimal) -> Priced:
    """Price one charge's model on a quantity (already converted to credits if applicable)."""
    m = charge.model
    if m == "per_unit":
        return price_per_unit(quantity, charge.unit_price)
    if m == "graduated":
        return price_graduated(quantity, charge.tiers)
    if m == "volume":
        return price_volume(quantity, charge.tiers)
    if m == "package":
        return price_package(quantity, charge.package_size, charge.unit_price, charge.free_units or ZERO)
    if m == "allowance":
        return price_allowance(quantity, charge.included_units, charge.overage_price, charge.overage_tiers,
                               charge.included_fee)
    if m == "threshold":
        return price_threshold(quantity, charge.threshold, charge.threshold_price)
    raise RatingError(f"unknown charge model {m!r}")


def _prorated(covered: int, total: int) -> list[Part]:
    return [part("prorated", covered=covered, total=total)] if covered != total else []


# --------------------------------------------------------------------------- rating


def rate(segments: Sequence[Segment], period_start: date, period_end: date) -> Rating:
    """Rate a billing period [period_start, period_end] (inclusive) from one or more segments.

    Segments must lie inside the period and not overlap (gaps are allowed: no plan = no charge).
    Specs are assumed valid (plan_from_dict/validate_plan); they all need the same currency.
    """
    if period_end < period_start:
        raise RatingError("period_end is before period_start")
    if not segments:
        raise RatingError("at least one segment is required")
    segs = sorted(segments, key=lambda s: (s.start, s.end))
    currency = segs[0].spec.currency
    minor_unit(currency)  # unknown currency -> error
    prev_end: date | None = None
    for s in segs:
        if s.spec.currency != currency:
            raise RatingError(f"segments mix currencies {currency} and {s.spec.currency}")
        if s.end < s.start:
            raise RatingError(f"segment {s.start}–{s.end} ends before it starts")
        if s.start < period_start or s.end > period_end:
            raise RatingError(f"segment {s.start}–{s.end} is outside the period {period_start}–{period_end}")
        if prev_end is not None and s.start <= prev_end:
            raise RatingError(f"segment starting {s.start} overlaps the previous segment (ends {prev_end})")
        prev_end = s.end

    multi = len(segs) > 1
    lines: list[Line] = []
    alerts: list[Alert] = []
    credits: dict[str, Decimal] = {}
    with localcontext(_CTX):
        for s in segs:
            _rate_segment(s, currency, period_start, period_end, multi, lines, alerts, credits)
        total = sum((ln.amount for ln in lines), ZERO)
    return Rating(currency=currency, period_start=period_start, period_end=period_end,
                  lines=tuple(lines), total=total, alerts=tuple(alerts), credits=credits)


def rate_plan(spec: PlanSpec, usage: Mapping[str, Decimal], period_start: date, period_end: date) -> Rating:
    """Single-segment convenience: the plan covers the whole period."""
    return rate([Segment(spec, period_start, period_end, usage)], period_start, period_end)


def _rate_segment(s: Segment, currency: str, period_start: date, period_end: date, multi: bool,
                  lines: list[Line], alerts: list[Alert], credits: dict[str, Decimal]) -> None:
    spec = s.spec
    suffix = [part("segment", start=s.start.isoformat(), end=s.end.isoformat())] if multi else []
    period_days = _days(period_start, period_end)
    seg_days = _days(s.start, s.end)
    seg_lines_start = len(lines)

    def add(kind: str, label: Sequence[Part], unrounded: Decimal, explanation: Sequence[Part],
            amount: Decimal | None = None, **kw: object) -> Line:
        label_parts = (*label, *suffix)
        ln = Line(kind=kind, label=render_parts(label_parts, "en"),
                  amount=round_money(unrounded, currency) if amount is None else amount,
                  unrounded=unrounded, explanation=render_parts(explanation, "en"), segment_start=s.start,
                  segment_end=s.end, explanation_parts=tuple(explanation), label_parts=label_parts, **kw)
        lines.append(ln)
        return ln

    # ---- usage charges
    for c in spec.charges:
        q = _usage_value(s.usage, c.metric)
        unit = c.unit or c.metric
        label = c.label or c.id
        head: list[Part] = [part("usage_head", qty=q, unit=unit)]
        cq: Decimal | None = None
        if c.credit_rate is not None:
            cq = q * c.credit_rate
            head.append(part("credit_conversion", credits=cq, rate=c.credit_rate, unit=unit))
        if c.settle == "wallet":
            assert cq is not None
            credits[c.metric] = credits.get(c.metric, ZERO) + cq
            add("usage", [part("text", text=label)], ZERO, [*head, part("wallet_drawn")], quantity=q,
                metric=c.metric, charge_id=c.id, credits=cq, settle="wallet")
            continue
        priced = price_charge(c, cq if cq is not None else q)
        expl = [*head, part("semi" if cq is not None else "colon")]
        for k, item in enumerate(priced.items):
            if k:
                expl.append(part("plus"))
            expl.extend(item)
        ln = add("usage", [part("text", text=label)], priced.amount, expl, quantity=q, metric=c.metric,
                 charge_id=c.id, credits=cq)
        pq = cq if cq is not None else q  # the quantity the model priced
        if c.model == "threshold" and pq > c.threshold:
            over = pq - c.threshold
            what = "credits" if cq is not None else unit
            alerts.append(Alert(
                charge_id=c.id, metric=c.metric, threshold=c.threshold, quantity=pq,
                message=(f"{label}: {format_quantity(pq)} {what} exceeds the threshold of "
                         f"{format_quantity(c.threshold)} by {format_quantity(over)}"),
                segment_start=s.start, segment_end=s.end))
        if c.min_amount is not None:
            minimum = c.min_amount * seg_days / period_days
            if ln.amount < round_money(minimum, currency):
                add("minimum", [part("label_charge_minimum", label=label)], minimum - ln.amount,
                    [part("charge_minimum", minimum=c.min_amount), *_prorated(seg_days, period_days),
                     part("charged", amount=ln.amount)], metric=c.metric, charge_id=c.id)

    # ---- recurring fees
    nxt: tuple[date, date] | None = None
    for f in spec.fees:
        timing = f.timing or spec.timing
        if timing == "in_advance":
            if s.end != period_end:
                continue  # the plan is no longer in effect at period end: nothing to bill ahead
            if nxt is None:
                nxt = next_period(period_start, period_end)
            win_start, win_end = nxt
            basis = _days(*nxt)
        else:
            win_start, win_end = s.start, s.end
            basis = period_days
        if f.start is not None and f.start > win_start:
            win_start = f.start
        if f.end is not None and f.end < win_end:
            win_end = f.end
        if win_end < win_start:
            continue  # fee not active in this window
        covered = _days(win_start, win_end)
        name = part("text", text=f.label) if f.label else part(f"fee_name_{f.kind}" if f.kind in _FEE_KINDS
                                                               else "fee_name_flat")
        qty = ZERO
        if f.kind == "feature":
            qty = _usage_value(s.usage, f.metric or "")
            base = qty * f.amount
            expl = [name, part("fee_feature", qty=qty, unit=f.metric or "", amount=f.amount)]
        else:
            base = f.amount
            expl = [name, part("fee_amount", amount=f.amount)]
        unrounded = base if covered == basis else base * covered / basis
        expl += _prorated(covered, basis)
        if timing == "in_advance":
            expl.append(part("in_advance", start=win_start.isoformat(), end=win_end.isoformat()))
        add("fee", [part("text", text=f.label or f.id)], unrounded, expl, quantity=qty, metric=f.metric,
            fee_id=f.id, covers_start=win_start, covers_end=win_end)

    # ---- discounts (from the segment's rounded usage / fee lines; before the plan minimum)
    charged = lines[seg_lines_start:]
    for d in spec.discounts:
        _discount(d, s, currency, period_days, charged, lines, seg_lines_start, add)

    # ---- plan minimum spend (compared with the total after discounts)
    if spec.minimum_spend is not None:
        spent = sum((ln.amount for ln in lines[seg_lines_start:]), ZERO)
        minimum = spec.minimum_spend * seg_days / period_days
        if spent < round_money(minimum, currency):
            add("minimum", [part("label_plan_minimum")], minimum - spent,
                [part("plan_minimum", minimum=spec.minimum_spend), *_prorated(seg_days, period_days),
                 part("lines_total", amount=spent)])


_FEE_KINDS = ("base", "access", "flat", "feature")


def _discount_base(d: DiscountSpec, charged: Sequence[Line]) -> Decimal:
    """Sum of the rounded lines a discount applies to: usage lines (and their charge minimum top-ups) for
    "usage" (only `d.charges` when given), fee lines for "fees", both for "all"."""
    total = ZERO
    for ln in charged:
        is_usage = ln.kind == "usage" or (ln.kind == "minimum" and ln.charge_id is not None)
        if d.applies_to in ("usage", "all") and is_usage and (not d.charges or ln.charge_id in d.charges):
            total += ln.amount
        elif d.applies_to in ("fees", "all") and ln.kind == "fee":
            total += ln.amount
    return total


def _discount(d: DiscountSpec, s: Segment, currency: str, period_days: int, charged: Sequence[Line],
              lines: list[Line], seg_lines_start: int, add) -> None:  # type: ignore[no-untyped-def]
    """One discount line: percent of the base, or a fixed amount prorated by days; capped so that neither the
    base nor the segment's running total goes below zero; rounded once, half up."""
    win_start = max(s.start, d.start) if d.start is not None else s.start
    win_end = min(s.end, d.end) if d.end is not None else s.end
    if win_end < win_start:
        return  # not active in this segment
    covered, seg_days = _days(win_start, win_end), _days(s.start, s.end)
    base = _discount_base(d, charged)
    scope = part("discount_on_charges", charges=", ".join(d.charges)) if d.charges else \
        part(f"discount_on_{d.applies_to}")
    if d.percent is not None:
        raw = base * d.percent / 100
        if covered != seg_days:
            raw = raw * covered / seg_days
        expl = [part("discount_percent", percent=d.percent, base=base), scope, *_prorated(covered, seg_days)]
    else:
        assert d.amount is not None
        raw = d.amount if covered == period_days else d.amount * covered / period_days
        expl = [part("discount_fixed", amount=d.amount), scope, *_prorated(covered, period_days)]
    running = sum((ln.amount for ln in lines[seg_lines_start:]), ZERO)
    cap = max(ZERO, min(base, running))
    amount = round_money(raw, currency)
    unrounded = raw
    if amount > cap:
        amount, unrounded = cap, cap
        expl.append(part("discount_capped", amount=cap))
    if amount == 0:
        return  # nothing to discount (no line of -0.00)
    label = [part("text", text=d.label)] if d.label else [part("label_discount")]
    add("discount", label, -unrounded, expl, amount=-amount, discount_id=d.id)


def _js(v: object) -> object:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def rating_to_dict(rating: Rating) -> dict[str, object]:
    """JSON-safe snapshot of a rating (Decimals as strings, dates ISO) for storing a statement."""
    return {
        "currency": rating.currency,
        "period_start": rating.period_start.isoformat(),
        "period_end": rating.period_end.isoformat(),
        "total": str(rating.total),
        "lines": [{f.name: (parts_to_json(getattr(ln, f.name)) if f.name.endswith("_parts")
                            else _js(getattr(ln, f.name))) for f in fields(Line)} for ln in rating.lines],
        "alerts": [{f.name: _js(getattr(a, f.name)) for f in fields(Alert)} for a in rating.alerts],
        "credits": {k: str(v) for k, v in rating.credits.items()},
    }


# --------------------------------------------------------------------------- what-if


_LAB_START = date(2001, 1, 1)  # nominal 31-day month: fees are unprorated
_LAB_END = date(2001, 1, 31)


def break_even(spec_a: PlanSpec, spec_b: PlanSpec, metric: str, lo: int, hi: int,
               base_usage: Mapping[str, Decimal] | None = None,
               period_start: date = _LAB_START, period_end: date = _LAB_END) -> int | None:
    """Smallest integer quantity q in [lo, hi] of `metric` where the ordering of the two plans'
    totals differs from the ordering at lo (a: cheaper/equal/dearer than b), or None.

    Other metrics are taken from base_usage. Totals are rated over one nominal full month.
    Exact scan for ranges up to 20,000 quantities; larger ranges are bisected between the
    plans' price breakpoints (exact for piecewise-linear prices, i.e. all models except
    package steps and minimum top-ups, where a flip inside a breakpoint interval may be missed).
    """
    if hi < lo:
        return None
    base = dict(base_usage or {})

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
    points = {lo, hi}
    for spec in (spec_a, spec_b):
        for c in spec.charges:
            if c.metric != metric:
                continue
            r = c.credit_rate or Decimal(1)
            raw: list[Decimal] = []
            for t in (*c.tiers, *c.overage_tiers):
                raw += [Decimal(t.first - 1), Decimal(t.first)]
                if t.last is not None:
                    raw += [Decimal(t.last), Decimal(t.last + 1)]
            for v in (c.threshold, c.included_units, c.free_units):
                if v is not None:
                    raw += [v, v + 1]
            if c.included_units is not None:
                for t in c.overage_tiers:
                    raw += [c.included_units + t.first - 1, c.included_units + t.first]
                    if t.last is not None:
                        raw += [c.included_units + t.last, c.included_units + t.last + 1]
            for v in raw:
                qv = int((v / r).to_integral_value())
                for d in (-1, 0, 1):
                    if lo <= qv + d <= hi:
                        points.add(qv + d)
    pts = sorted(points)
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
