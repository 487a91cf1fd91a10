"""Rating engine: prices usage + fees for a billing period, possibly across plan segments.

Pure: stdlib only, no I/O, no clock. Every spec is validated first (an invalid spec is refused however it was
built). Every statement line is rounded ONCE (half up, currency minor unit) from an exactly computed amount;
the total is the sum of the rounded lines. Charge models come from the registry (core.pricing.models); a
charge with a dimension gives one line per value of the event property (e.g. "SMS – Norway").
"""

from __future__ import annotations

import calendar
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from decimal import Decimal, localcontext
from typing import Any

from .dimensions import dimension_buckets
from .explain import Part, part, parts_to_json, render_parts
from .models import Priced, get_model
from .models.base import CTX
from .money import format_quantity, minor_unit, round_money
from .spec import ChargeSpec, DiscountSpec, PlanSpec
from .usage import MAX_DIGITS, RatingError, Usage
from .validate import validate_checked

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
    "rating_to_dict",
    "usage_of",
]

ZERO = Decimal(0)


@dataclass(frozen=True)
class Segment:
    """A part of the billing period priced under one plan version.

    usage: metric key -> quantity aggregated over [start, end] (missing metric = 0), or a `Usage` with the
    number of events, the events' values and quantities per property value where charges need them.
    """

    spec: PlanSpec
    start: date
    end: date
    usage: Mapping[str, Decimal | Usage] = field(default_factory=dict)


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
    dimension_value: str | None = None  # charges with a dimension: the property value of this line ("" = other)


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


def _number(v: object, what: str) -> Decimal:
    if v is None:
        return ZERO
    if isinstance(v, (float, bool)):
        raise RatingError(f"usage for {what} must be a Decimal, not {type(v).__name__}")
    if not isinstance(v, Decimal):
        try:
            v = Decimal(v)  # type: ignore[arg-type]  # int or str
        except Exception:  # noqa: BLE001
            raise RatingError(f"usage for {what} is not a number: {v!r}") from None
    if not v.is_finite() or v < 0:
        raise RatingError(f"usage for {what} must be a finite number >= 0, got {v}")
    if len(v.as_tuple().digits) > MAX_DIGITS:
        raise RatingError(f"usage for {what} has more than {MAX_DIGITS} significant digits")
    return v + 0  # -0 -> 0


def usage_of(v: object, what: str) -> Usage:
    """A usage value (Decimal / int / str / Usage / None) checked and normalised to a Usage."""
    if isinstance(v, Usage):
        if v.count is not None and (isinstance(v.count, bool) or not isinstance(v.count, int) or v.count < 0):
            raise RatingError(f"event count for {what} must be a whole number >= 0, got {v.count!r}")
        if v.events is not None and any(len(vals) != len(v.events) for vals in v.event_props.values()):
            raise RatingError(f"usage for {what}: event_props must give one value per event")
        return Usage(_number(v.quantity, what), v.count, v.events, v.by_value, v.event_props)
    return Usage(_number(v, what))


def _usage_value(usage: Mapping[str, object], metric: str) -> Decimal:
    return usage_of(usage.get(metric), repr(metric)).quantity


def price_charge(charge: ChargeSpec, quantity: Decimal | Usage) -> Priced:
    """Price one charge's model on a quantity (already converted to credits if applicable)."""
    try:
        model = get_model(charge.model)
    except KeyError:
        raise RatingError(f"unknown charge model {charge.model!r}") from None
    u = usage_of(quantity, repr(charge.metric))
    with localcontext(CTX):
        return model.price(charge, u.quantity, u)


def _prorated(covered: int, total: int) -> list[Part]:
    return [part("prorated", covered=covered, total=total)] if covered != total else []


def _round(amount: Decimal, currency: str) -> Decimal:
    return round_money(amount, currency) + 0  # once, half up; -0.00 -> 0.00


# --------------------------------------------------------------------------- rating

_VALID: dict[int, weakref.ref[PlanSpec]] = {}


def _validated(spec: PlanSpec) -> None:
    """validate_plan once per spec object (specs are frozen): the lab rates one spec thousands of times."""
    ref = _VALID.get(id(spec))
    if ref is not None and ref() is spec:
        return
    validate_checked(spec)
    key = id(spec)
    _VALID[key] = weakref.ref(spec, lambda _r: _VALID.pop(key, None))


def _check_segments(segments: Sequence[Segment], period_start: date, period_end: date) -> list[Segment]:
    if period_end < period_start:
        raise RatingError("period_end is before period_start")
    if not segments:
        raise RatingError("at least one segment is required")
    segs = sorted(segments, key=lambda s: (s.start, s.end))
    currency = segs[0].spec.currency
    prev_end: date | None = None
    for s in segs:
        _validated(s.spec)
        if s.spec.currency != currency:
            raise RatingError(f"segments mix currencies {currency} and {s.spec.currency}")
        if s.end < s.start:
            raise RatingError(f"segment {s.start}–{s.end} ends before it starts")
        if s.start < period_start or s.end > period_end:
            raise RatingError(f"segment {s.start}–{s.end} is outside the period {period_start}–{period_end}")
        if prev_end is not None and s.start <= prev_end:
            raise RatingError(f"segment starting {s.start} overlaps the previous segment (ends {prev_end})")
        prev_end = s.end
    minor_unit(currency)  # unknown currency -> error
    return segs


def rate(segments: Sequence[Segment], period_start: date, period_end: date) -> Rating:
    """Rate a billing period [period_start, period_end] (inclusive) from one or more segments.

    Segments must lie inside the period and not overlap (gaps are allowed: no plan = no charge). Every spec is
    validated (PlanValidationError); they all need the same currency.
    """
    segs = _check_segments(segments, period_start, period_end)
    currency = segs[0].spec.currency
    multi = len(segs) > 1
    lines: list[Line] = []
    alerts: list[Alert] = []
    credits: dict[str, Decimal] = {}
    with localcontext(CTX):
        for s in segs:
            _SegmentRater(s, currency, period_start, period_end, multi, lines, alerts, credits).run()
        total = sum((ln.amount for ln in lines), ZERO)
    return Rating(currency=currency, period_start=period_start, period_end=period_end,
                  lines=tuple(lines), total=total, alerts=tuple(alerts), credits=credits)


def rate_plan(spec: PlanSpec, usage: Mapping[str, Decimal | Usage], period_start: date,
              period_end: date) -> Rating:
    """Single-segment convenience: the plan covers the whole period."""
    return rate([Segment(spec, period_start, period_end, usage)], period_start, period_end)


_FEE_KINDS = ("base", "access", "flat", "feature")


class _SegmentRater:
    """Prices one segment: usage charges, recurring fees, discounts, then the plan minimum."""

    def __init__(self, s: Segment, currency: str, period_start: date, period_end: date, multi: bool,
                 lines: list[Line], alerts: list[Alert], credits: dict[str, Decimal]) -> None:
        self.s, self.spec, self.currency = s, s.spec, currency
        self.period_start, self.period_end = period_start, period_end
        self.lines, self.alerts, self.credits = lines, alerts, credits
        self.suffix = [part("segment", start=s.start.isoformat(), end=s.end.isoformat())] if multi else []
        self.period_days = _days(period_start, period_end)
        self.seg_days = _days(s.start, s.end)
        self.start = len(lines)

    def add(self, kind: str, label: Sequence[Part], unrounded: Decimal, explanation: Sequence[Part],
            amount: Decimal | None = None, **kw: Any) -> Line:
        label_parts = (*label, *self.suffix)
        ln = Line(kind=kind, label=render_parts(label_parts, "en"),
                  amount=_round(unrounded, self.currency) if amount is None else amount + 0,
                  unrounded=unrounded, explanation=render_parts(explanation, "en"), segment_start=self.s.start,
                  segment_end=self.s.end, explanation_parts=tuple(explanation), label_parts=label_parts, **kw)
        self.lines.append(ln)
        return ln

    def run(self) -> None:
        for c in self.spec.charges:
            self.charge(c)
        self.fees()
        charged = self.lines[self.start:]
        for d in self.spec.discounts:
            _discount(d, self.s, self.currency, self.period_days, charged, self.lines, self.start, self.add)
        self.plan_minimum()

    # ---- usage charges

    def charge(self, c: ChargeSpec) -> None:
        u = usage_of(self.s.usage.get(c.metric), repr(c.metric))
        label = c.label or c.id
        if c.settle == "wallet":
            self.wallet_line(c, u.quantity, label)
            return
        first = len(self.lines)
        if c.dimension is None:
            self.priced_line(c, c, u, [part("text", text=label)], None)
        else:
            for variant, vu, title, value in dimension_buckets(c, u, usage_of):
                self.priced_line(c, variant, vu, [part("text", text=label), title], value)
        charged = sum((ln.amount for ln in self.lines[first:]), ZERO)
        if c.min_amount is not None:
            minimum = c.min_amount * self.seg_days / self.period_days
            if charged < round_money(minimum, self.currency):
                self.add("minimum", [part("label_charge_minimum", label=label)], minimum - charged,
                         [part("charge_minimum", minimum=c.min_amount),
                          *_prorated(self.seg_days, self.period_days), part("charged", amount=charged)],
                         metric=c.metric, charge_id=c.id)

    def wallet_line(self, c: ChargeSpec, q: Decimal, label: str) -> None:
        unit = c.unit or c.metric
        rate_ = c.credit_rate if c.credit_rate is not None else Decimal(1)
        cq = q * rate_
        self.credits[c.metric] = self.credits.get(c.metric, ZERO) + cq
        head = [part("usage_head", qty=q, unit=unit), part("credit_conversion", credits=cq, rate=rate_, unit=unit)]
        self.add("usage", [part("text", text=label)], ZERO, [*head, part("wallet_drawn")], quantity=q,
                 metric=c.metric, charge_id=c.id, credits=cq, settle="wallet")

    def priced_line(self, c: ChargeSpec, priced_as: ChargeSpec, u: Usage, label: list[Part],
                    value: str | None) -> None:
        unit = c.unit or c.metric
        q = u.quantity
        head: list[Part] = [part("usage_head", qty=q, unit=unit)]
        cq: Decimal | None = None
        if c.credit_rate is not None:
            cq = q * c.credit_rate
            head.append(part("credit_conversion", credits=cq, rate=c.credit_rate, unit=unit))
        pq = cq if cq is not None else q  # the quantity the model prices
        model = get_model(c.model)
        priced = model.price(priced_as, pq, u if cq is None else Usage(pq, u.count))
        expl = [*head, part("semi" if cq is not None else "colon")]
        for k, item in enumerate(priced.items):
            if k:
                expl.append(part("plus"))
            expl.extend(item)
        self.add("usage", label, priced.amount, expl, quantity=q, metric=c.metric, charge_id=c.id, credits=cq,
                 dimension_value=value)
        threshold = model.alert_threshold(priced_as)
        if threshold is not None and pq > threshold:
            what = "credits" if cq is not None else unit
            name = render_parts(label, "en")
            self.alerts.append(Alert(
                charge_id=c.id, metric=c.metric, threshold=threshold, quantity=pq,
                message=(f"{name}: {format_quantity(pq)} {what} exceeds the threshold of "
                         f"{format_quantity(threshold)} by {format_quantity(pq - threshold)}"),
                segment_start=self.s.start, segment_end=self.s.end))

    # ---- recurring fees

    def fee_window(self, timing: str, start: date | None, end: date | None) -> tuple[date, date, int] | None:
        if timing == "in_advance":
            if self.s.end != self.period_end:
                return None  # the plan is no longer in effect at period end: nothing to bill ahead
            win_start, win_end = next_period(self.period_start, self.period_end)
            basis = _days(win_start, win_end)
        else:
            win_start, win_end = self.s.start, self.s.end
            basis = self.period_days
        if start is not None and start > win_start:
            win_start = start
        if end is not None and end < win_end:
            win_end = end
        if win_end < win_start:
            return None  # fee not active in this window
        return win_start, win_end, basis

    def fees(self) -> None:
        for f in self.spec.fees:
            timing = f.timing or self.spec.timing
            window = self.fee_window(timing, f.start, f.end)
            if window is None:
                continue
            win_start, win_end, basis = window
            covered = _days(win_start, win_end)
            name = part("text", text=f.label) if f.label else part(
                f"fee_name_{f.kind}" if f.kind in _FEE_KINDS else "fee_name_flat")
            qty = ZERO
            if f.kind == "feature":
                qty = _usage_value(self.s.usage, f.metric or "")
                base = qty * f.amount
                expl = [name, part("fee_feature", qty=qty, unit=f.metric or "", amount=f.amount)]
            else:
                base = f.amount
                expl = [name, part("fee_amount", amount=f.amount)]
            unrounded = base if covered == basis else base * covered / basis
            expl += _prorated(covered, basis)
            if timing == "in_advance":
                expl.append(part("in_advance", start=win_start.isoformat(), end=win_end.isoformat()))
            self.add("fee", [part("text", text=f.label or f.id)], unrounded, expl, quantity=qty, metric=f.metric,
                     fee_id=f.id, covers_start=win_start, covers_end=win_end)

    # ---- plan minimum spend (compared with the total after discounts)

    def plan_minimum(self) -> None:
        if self.spec.minimum_spend is None:
            return
        spent = sum((ln.amount for ln in self.lines[self.start:]), ZERO)
        minimum = self.spec.minimum_spend * self.seg_days / self.period_days
        if spent < round_money(minimum, self.currency):
            self.add("minimum", [part("label_plan_minimum")], minimum - spent,
                     [part("plan_minimum", minimum=self.spec.minimum_spend),
                      *_prorated(self.seg_days, self.period_days), part("lines_total", amount=spent)])


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
              lines: list[Line], seg_lines_start: int, add: Callable[..., Line]) -> None:
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
