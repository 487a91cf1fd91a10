"""percentage: a rate on a summed amount (payment volume), with a fixed fee per event (transaction), free events,
a free amount and a per-transaction minimum and maximum.

Semantics follow Lago's percentage charge model (https://getlago.com/docs/guide/plans/charges/charge-models/
percentage), see docs/pricing.md "percentage":
  * rate: percent of the metric's quantity (the sum of the events' amounts);
  * fixed_fee: per event; free_events: the first N events pay no fixed fee;
  * free_amount: the first X of the amount is not subject to the rate;
  * both free_events and free_amount: "the first N events or X amount are free, whichever comes first": an
    event is free (no fee, no rate) while it is among the first N and the running amount stays within X; the
    event that crosses X pays the fixed fee and the rate on its part above X; after that nothing is free;
  * event_min / event_max: each event's fee (rate on its chargeable amount + fixed fee) is raised to the
    minimum / lowered to the maximum, except for events that are entirely free. The adjustment is its own
    part of the explanation.
Free events alone exempt only the fixed fee, a free amount alone only the rate (as Lago documents them).
Rules that look at single events (minimum/maximum, both free limits) need the events' amounts (Usage.events);
the others need only the sum and the number of events (Usage.count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from ..checks import Problems
from ..explain import Part, part
from ..money import format_price, format_quantity
from ..spec import ChargeSpec
from ..usage import RatingError, Usage
from .base import ZERO, ChargeModel, Field, Priced, exact, priced, register, req

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Terms:
    rate: Decimal
    fixed_fee: Decimal = ZERO
    free_events: int | None = None
    free_amount: Decimal | None = None
    event_min: Decimal | None = None
    event_max: Decimal | None = None

    @property
    def per_event(self) -> bool:
        both_free = self.free_events is not None and self.free_amount is not None
        return both_free or self.event_min is not None or self.event_max is not None


@dataclass
class _Tally:
    base: Decimal = ZERO  # amount the rate applies to
    fee_events: int = 0  # events paying the fixed fee
    adjust: Decimal = ZERO  # minimum / maximum adjustment


def _clamp(fee: Decimal, t: Terms) -> Decimal:
    if t.event_min is not None and fee < t.event_min:
        return t.event_min
    if t.event_max is not None and fee > t.event_max:
        return t.event_max
    return fee


def _event_share(t: Terms, i: int, before: Decimal, a: Decimal) -> tuple[bool, Decimal]:
    """(pays the fixed fee, amount subject to the rate) of the i-th event (1-based), `before` = running total."""
    n, x = t.free_events, t.free_amount
    after = before + a
    if n is not None and x is not None:
        if i <= n and after <= x:
            return False, ZERO
        if i <= n and before < x:
            return True, after - x
        return True, a
    if n is not None:
        return i > n, a
    if x is not None:
        return True, after - max(x, before) if after > x else ZERO
    return True, a


def _per_event(t: Terms, events: Sequence[Decimal]) -> _Tally:
    tally = _Tally()
    running = ZERO
    for i, a in enumerate(events, start=1):
        pays_fee, share = _event_share(t, i, running, a)
        running += a
        tally.base += share
        tally.fee_events += pays_fee
        fee = share * t.rate / HUNDRED + (t.fixed_fee if pays_fee else ZERO)
        if pays_fee or share:
            tally.adjust += _clamp(fee, t) - fee
    return tally


def _aggregate(t: Terms, total: Decimal, count: int | None) -> _Tally:
    base = total if t.free_amount is None else max(ZERO, total - t.free_amount)
    fee_events = 0
    if t.fixed_fee:
        if count is None:
            raise RatingError("a percentage charge with a fixed fee needs the number of transactions")
        fee_events = max(0, count - (t.free_events or 0))
    return _Tally(base=base, fee_events=fee_events)


def _events(usage: Usage) -> tuple[Decimal, ...]:
    if usage.events is None:
        raise RatingError("this percentage charge (per-transaction minimum/maximum, or both free transactions "
                          "and a free amount) needs each transaction's amount")
    for a in usage.events:
        if not isinstance(a, Decimal) or not a.is_finite() or a < 0:
            raise RatingError(f"transaction amounts must be Decimals >= 0, got {a!r}")
    if sum(usage.events, ZERO) != usage.quantity:
        raise RatingError(f"the transactions add up to {sum(usage.events, ZERO)}, not to the quantity "
                          f"{usage.quantity}")
    return usage.events


@exact
def price_percentage(t: Terms, usage: Usage) -> Priced:
    total = usage.quantity + 0
    tally = _per_event(t, _events(usage)) if t.per_event else _aggregate(t, total, usage.event_count)
    count = usage.event_count
    amount = tally.base * t.rate / HUNDRED + tally.fee_events * t.fixed_fee + tally.adjust
    rate_part: list[Part] = [part("pct_of", rate=t.rate, base=tally.base)]
    if total != tally.base:
        rate_part.append(part("pct_free_amount", free=total - tally.base))
    items = [rate_part]
    if t.fixed_fee:
        fixed: list[Part] = [part("pct_fixed", events=tally.fee_events, fee=t.fixed_fee)]
        if count is not None and count > tally.fee_events:
            fixed.append(part("pct_free_events", free=count - tally.fee_events))
        items.append(fixed)
    if tally.adjust:
        items.append([part("pct_adjust", amount=tally.adjust)])
    return priced(amount, items)


def terms_of(c: ChargeSpec) -> Terms:
    free_events = c.param("free_events")
    return Terms(rate=req(c.param("rate"), "rate"), fixed_fee=c.param("fixed_fee") or ZERO,
                 free_events=None if free_events is None else int(free_events),
                 free_amount=c.param("free_amount"), event_min=c.param("event_min"),
                 event_max=c.param("event_max"))


@register
class Percentage(ChargeModel):
    name = "percentage"
    title = "Percentage of an amount"
    summary = ("A percentage of the amounts (e.g. payment volume), optionally with a fixed fee per transaction, "
               "free transactions or a free amount, and a minimum and maximum per transaction.")
    order = 70
    credits_allowed = False
    fields = (Field("rate", "Percentage rate", "percent", help="e.g. 1.2 for 1.2 %"),
              Field("fixed_fee", "Fixed fee per transaction", "money", required=False),
              Field("free_events", "Free transactions", "count", required=False,
                    help="the first transactions pay no fixed fee"),
              Field("free_amount", "Free amount", "money", required=False,
                    help="the first part of the amount is not subject to the rate"),
              Field("event_min", "Minimum per transaction", "money", required=False),
              Field("event_max", "Maximum per transaction", "money", required=False))
    templates = {
        "en": {"pct_of": "{rate:q}% of {base:p}", "pct_free_amount": " ({free:p} free)",
               "pct_fixed": "{events:q} × {fee:p} per transaction", "pct_free_events": " ({free:q} free)",
               "pct_adjust": "per-transaction minimum/maximum {amount:p}"},
        "de": {"pct_of": "{rate:q} % von {base:p}", "pct_free_amount": " ({free:p} frei)",
               "pct_fixed": "{events:q} × {fee:p} pro Transaktion", "pct_free_events": " ({free:q} frei)",
               "pct_adjust": "Minimum/Maximum pro Transaktion {amount:p}"},
        "nb": {"pct_of": "{rate:q} % av {base:p}", "pct_free_amount": " ({free:p} gratis)",
               "pct_fixed": "{events:q} × {fee:p} per transaksjon", "pct_free_events": " ({free:q} gratis)",
               "pct_adjust": "minimum/maksimum per transaksjon {amount:p}"},
    }

    def check(self, c: ChargeSpec, p: Problems, path: str, need: bool) -> None:
        lo, hi = c.param("event_min"), c.param("event_max")
        if isinstance(lo, Decimal) and isinstance(hi, Decimal) and lo.is_finite() and hi.is_finite() and lo > hi:
            p.add(f"{path}.event_min", f"the minimum per transaction ({lo}) is above the maximum ({hi})")

    def needs_count(self, c: ChargeSpec) -> bool:
        return bool(c.param("fixed_fee"))

    def needs_events(self, c: ChargeSpec) -> bool:
        return terms_of(c).per_event

    def price(self, c: ChargeSpec, q: Decimal, usage: Usage) -> Priced:
        return price_percentage(terms_of(c), usage if usage.quantity == q else Usage(q, usage.count, usage.events))

    def describe(self, c: ChargeSpec) -> str:
        t = terms_of(c)
        txt = f"{format_quantity(t.rate)}% of the amount"
        if t.fixed_fee:
            txt += f" + {format_price(t.fixed_fee)} per transaction"
        if t.free_events is not None:
            txt += f"; first {t.free_events} transactions free"
        if t.free_amount is not None:
            txt += f"; first {format_price(t.free_amount)} free"
        if t.event_min is not None:
            txt += f"; at least {format_price(t.event_min)} per transaction"
        if t.event_max is not None:
            txt += f"; at most {format_price(t.event_max)} per transaction"
        return txt

    def breakpoints(self, c: ChargeSpec) -> list[Decimal]:
        x = c.param("free_amount")
        return [] if x is None else [x, x + 1]
