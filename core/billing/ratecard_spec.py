"""Rate cards, the pure part: the card (validation, JSON, negotiated overrides) and what a client's usage
costs its partner at a card (credits and money). No database: core.billing.ratecards reads cards and
usage; see its docstring (and docs/pricing.md, "Two price layers") for the semantics.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from core.errors import ValidationError
from core.pricing import (
    PlanSpec,
    PlanValidationError,
    Rating,
    Segment,
    apply_overrides,
    plan_from_dict,
    plan_to_dict,
    rate,
    round_money,
)
from core.validation import Checker

TIER_BASES = ("client", "partner")
ACTIVE_CLIENTS = "active_clients"
CREDIT_PLACES = Decimal("0.000001")  # credits are stored with 6 decimals (QUANTITY)
ZERO = Decimal(0)

# ---------------------------------------------------------------- the card (pure)


@dataclass(frozen=True)
class CreditStep:
    min_credits: Decimal
    price_per_credit: Decimal


@dataclass(frozen=True)
class RateCardSpec:
    currency: str
    tier_basis: str = "client"
    usage: PlanSpec | None = None
    credit_rates: Mapping[str, Decimal] = field(default_factory=dict)
    credit_price_steps: tuple[CreditStep, ...] = ()
    partner_fees: PlanSpec | None = None
    revenue_share_percent: Decimal | None = None

    @property
    def credit_price(self) -> Decimal | None:
        """The price of one credit at the smallest purchase step: how credits are valued in money."""
        if not self.credit_price_steps:
            return None
        return min(self.credit_price_steps, key=lambda s: s.min_credits).price_per_credit

    def priced_metrics(self) -> set[str]:
        out = set(self.credit_rates)
        if self.usage is not None:
            out.update(c.metric for c in self.usage.charges)
        return out


def _dec(c: Checker, path: str, raw: Any, label: str, *, positive: bool = False, maximum: Decimal | None = None
         ) -> Decimal | None:
    if isinstance(raw, float) or isinstance(raw, bool):
        c.fail(path, f"{label} must be a decimal number written as text (e.g. \"1.05\"), not {raw!r}.")
        return None
    try:
        value = Decimal(str(raw).strip()) if not isinstance(raw, Decimal) else raw
    except (InvalidOperation, ValueError):
        c.fail(path, f"{label} must be a number, got {raw!r}.")
        return None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        c.fail(path, f"{label} must be {'greater than 0' if positive else 'zero or more'}, got {raw}.")
        return None
    if maximum is not None and value > maximum:
        c.fail(path, f"{label} must be at most {maximum}, got {raw}.")
        return None
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and -exp > 10:
        c.fail(path, f"{label} may have at most 10 decimal places.")
        return None
    return value


def _sub_plan(c: Checker, path: str, raw: Any, currency: str | None, known: set[str] | None) -> PlanSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        c.fail(path, "Must be a plan spec (charges, fees ...).")
        return None
    data = dict(raw)
    data.setdefault("currency", currency)
    try:
        spec = plan_from_dict(data, known_metrics=known, expected_currency=currency)
    except PlanValidationError as exc:
        for p, msg in exc.problems:
            c.fail(f"{path}.{p}" if p else path, msg)
        return None
    return spec


def _card_currency(c: Checker, d: Mapping[str, Any], expected: str | None) -> str | None:
    unknown = set(d) - {"currency", "tier_basis", "usage", "credit_rates", "credit_price_steps", "partner_fees",
                        "revenue_share_percent"}
    for k in sorted(unknown):
        c.fail(f"card.{k}", f"Unknown field {k!r}.")
    currency = d.get("currency") or expected
    if not isinstance(currency, str) or len(currency) != 3:
        c.fail("card.currency", "Currency is required (3 letters).")
        return None
    if expected and currency != expected:
        c.fail("card.currency", f"The card is in {currency} but must be in {expected}.")
    return currency


def _card_plans(c: Checker, d: Mapping[str, Any], currency: str | None,
                known: set[str] | None) -> tuple[PlanSpec | None, PlanSpec | None]:
    usage = _sub_plan(c, "card.usage", d.get("usage"), currency, known)
    for i, ch in enumerate(usage.charges if usage is not None else ()):
        if ch.settle != "money":
            c.fail(f"card.usage.charges[{i}].settle", "Rate-card charges are priced in money; credits are "
                                                      "set with credit_rates.")
    fees = _sub_plan(c, "card.partner_fees", d.get("partner_fees"), currency, None)
    for i, ch in enumerate(fees.charges if fees is not None else ()):
        if ch.metric != ACTIVE_CLIENTS:
            c.fail(f"card.partner_fees.charges[{i}].metric",
                   f"Partner-level charges count {ACTIVE_CLIENTS!r} (the partner's active clients).")
    return usage, fees


def _card_rates(c: Checker, raw_rates: Any, known: set[str] | None) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    if not isinstance(raw_rates, Mapping):
        c.fail("card.credit_rates", "Credit rates must map a metric to credits per unit.")
        return rates
    for metric, raw in raw_rates.items():
        if known is not None and metric not in known:
            c.fail(f"card.credit_rates.{metric}", f"Unknown metric {metric!r}.")
            continue
        v = _dec(c, f"card.credit_rates.{metric}", raw, "Credits per unit", positive=True)
        if v is not None:
            rates[str(metric)] = v
    return rates


def _card_steps(c: Checker, raw_steps: Any) -> list[CreditStep]:
    steps: list[CreditStep] = []
    if not isinstance(raw_steps, (list, tuple)):
        c.fail("card.credit_price_steps", "Credit price steps must be a list.")
        return steps
    for i, s in enumerate(raw_steps):
        if not isinstance(s, Mapping):
            c.fail(f"card.credit_price_steps[{i}]", "A step needs min_credits and price_per_credit.")
            continue
        mn = _dec(c, f"card.credit_price_steps[{i}].min_credits", s.get("min_credits"), "From credits")
        pr = _dec(c, f"card.credit_price_steps[{i}].price_per_credit", s.get("price_per_credit"),
                  "Price per credit", positive=True)
        if mn is not None and pr is not None:
            steps.append(CreditStep(mn, pr))
    mins = [s.min_credits for s in steps]
    if len(set(mins)) != len(mins):
        c.fail("card.credit_price_steps", "Two credit price steps start at the same number of credits.")
    return sorted(steps, key=lambda s: s.min_credits)


def card_from_dict(d: Mapping[str, Any], *, known_metrics: set[str] | None = None,
                   expected_currency: str | None = None) -> RateCardSpec:
    """Parse and validate a card; every problem at once as a ValidationError keyed `card.<path>`."""
    if not isinstance(d, Mapping):
        raise ValidationError({"card": "A rate card must be a mapping."})
    c = Checker()
    currency = _card_currency(c, d, expected_currency)
    basis = d.get("tier_basis") or "client"
    if basis not in TIER_BASES:
        c.fail("card.tier_basis", "Tier basis must be 'client' (each client's own quantity) or 'partner' "
                                  "(the partner's total across its clients).")
    usage, fees = _card_plans(c, d, currency, known_metrics)
    rates = _card_rates(c, d.get("credit_rates") or {}, known_metrics)
    steps = _card_steps(c, d.get("credit_price_steps") or [])
    if (rates or (usage is not None and usage.charges)) and not steps:
        c.fail("card.credit_price_steps", "A card that prices usage needs a credit price (at least one step): "
                                          "credits are valued, and money prices converted, at it.")
    share = d.get("revenue_share_percent")
    share_v = None
    if share not in (None, ""):
        share_v = _dec(c, "card.revenue_share_percent", share, "Revenue share %", maximum=Decimal(100))
    c.done()
    assert currency is not None
    return RateCardSpec(currency=currency, tier_basis=basis, usage=usage, credit_rates=rates,
                        credit_price_steps=tuple(steps), partner_fees=fees, revenue_share_percent=share_v)


def card_to_dict(card: RateCardSpec) -> dict[str, Any]:
    """JSON-safe dict (Decimals as strings). Exact round trip with card_from_dict."""
    return {
        "currency": card.currency,
        "tier_basis": card.tier_basis,
        "usage": plan_to_dict(card.usage) if card.usage is not None else None,
        "credit_rates": {k: str(v) for k, v in sorted(card.credit_rates.items())},
        "credit_price_steps": [{"min_credits": str(s.min_credits), "price_per_credit": str(s.price_per_credit)}
                               for s in card.credit_price_steps],
        "partner_fees": plan_to_dict(card.partner_fees) if card.partner_fees is not None else None,
        "revenue_share_percent": None if card.revenue_share_percent is None else str(card.revenue_share_percent),
    }


def parse_steps_text(text: str) -> list[dict[str, str]]:
    """`0: 0.010, 100000: 0.008` → credit price steps (from credits: price per credit)."""
    out = []
    for n, part in enumerate(p.strip() for p in (text or "").replace(";", ",").split(",")):
        if not part:
            continue
        mn, sep, pr = part.partition(":")
        if not sep:
            raise ValidationError({"credit_price_steps": f"step {n + 1}: expected 'from credits: price', e.g. "
                                                         "0: 0.010"})
        out.append({"min_credits": mn.strip(), "price_per_credit": pr.strip()})
    return out


def apply_card_overrides(card: RateCardSpec, overrides: Mapping[str, Any] | None,
                         known_metrics: set[str] | None = None) -> RateCardSpec:
    """A negotiated card: the standard card with some values changed. Paths:

    - ``tier_basis``, ``revenue_share_percent`` (None removes the share);
    - ``credit_rates.<metric>`` (None removes the rate);
    - ``credit_price_steps`` = ``"0: 0.010, 100000: 0.008"`` (replaces every step);
    - ``usage.<plan path>`` / ``partner_fees.<plan path>``: core.pricing.apply_overrides paths, e.g.
      ``usage.charges.pages.unit_price``.
    """
    if not overrides:
        return card
    d = card_to_dict(card)
    usage_ov: dict[str, Any] = {}
    fees_ov: dict[str, Any] = {}
    c = Checker()
    for path, value in overrides.items():
        if isinstance(value, float):
            c.fail(f"overrides.{path}", "Values must be decimal strings, not floats.")
        elif path in ("tier_basis", "revenue_share_percent"):
            d[path] = value
        elif path == "credit_price_steps":
            try:
                d[path] = parse_steps_text(str(value or ""))
            except ValidationError as exc:
                c.fail(f"overrides.{path}", "; ".join(exc.errors.values()))
        elif path.startswith("credit_rates.") and len(path) > len("credit_rates."):
            metric = path[len("credit_rates."):]
            if value is None:
                d["credit_rates"].pop(metric, None)
            else:
                d["credit_rates"][metric] = value
        elif path.startswith("usage."):
            usage_ov[path[len("usage."):]] = value
        elif path.startswith("partner_fees."):
            fees_ov[path[len("partner_fees."):]] = value
        else:
            c.fail(f"overrides.{path}", f"Unknown rate-card path {path!r}.")
    c.done()
    for key, ov in (("usage", usage_ov), ("partner_fees", fees_ov)):
        if not ov:
            continue
        base = getattr(card, key)
        if base is None:
            raise ValidationError({f"overrides.{key}": f"The standard card has no {key} to override."})
        try:
            d[key] = plan_to_dict(apply_overrides(base, ov, known_metrics=known_metrics if key == "usage" else None))
        except PlanValidationError as exc:
            raise ValidationError({f"overrides.{key}.{p}" if p else f"overrides.{key}": m
                                   for p, m in exc.problems}) from None
    return card_from_dict(d, known_metrics=known_metrics, expected_currency=card.currency)


# ---------------------------------------------------------------- what the usage costs the partner (pure)


@dataclass(frozen=True)
class MetricCost:
    metric: str
    quantity: Decimal
    credits: Decimal  # drawn from a prepaid wallet
    amount: Decimal  # charged on demand / the platform's money price (rounded)


@dataclass(frozen=True)
class PlatformCost:
    """What a client's usage costs its partner at the rate card, in credits (prepaid) and in money."""

    currency: str
    credits: Decimal
    amount: Decimal
    credit_price: Decimal | None
    metrics: tuple[MetricCost, ...] = ()

    @property
    def credits_value(self) -> Decimal:
        """The credits valued at the card's credit price (rounded once)."""
        if self.credit_price is None:
            return ZERO
        return round_money(self.credits * self.credit_price, self.currency)

    def value(self, mode: str) -> Decimal:
        """The money the platform charges for it in a billing mode: prepaid credits at the credit price,
        otherwise the card's money amount."""
        return self.credits_value if mode == "partner_prepaid" else self.amount


@dataclass(frozen=True)
class CardSegment:
    """Part of a period priced under one card version: the client's usage and (partner basis) the
    partner's total usage over the same days."""

    card: RateCardSpec
    start: date
    end: date
    usage: Mapping[str, Decimal]
    partner_usage: Mapping[str, Decimal] | None = None


def _money_by_metric(segs: list[CardSegment], period_start: date, period_end: date) -> dict[str, Decimal]:
    """Unrounded money per metric of the card's usage charges (allocated to the client on partner basis)."""
    out: dict[str, Decimal] = {}
    for s in segs:
        if s.card.usage is None or not s.card.usage.charges:
            continue
        partner = s.card.tier_basis == "partner" and s.partner_usage is not None
        basis = s.partner_usage if partner else s.usage
        assert basis is not None
        spec = replace(s.card.usage, fees=(), discounts=(), minimum_spend=None)
        r: Rating = rate([Segment(spec, s.start, s.end, dict(basis))], period_start, period_end)
        for line in r.lines:
            if line.kind not in ("usage", "minimum") or not line.metric:
                continue
            amount = line.unrounded
            if partner:
                total = Decimal(basis.get(line.metric, 0) or 0)
                mine = Decimal(s.usage.get(line.metric, 0) or 0)
                amount = amount * mine / total if total else ZERO
            out[line.metric] = out.get(line.metric, ZERO) + amount
    return out


def cost_of(segs: list[CardSegment], period_start: date, period_end: date) -> PlatformCost | None:
    """The rate-card cost of a client's usage over card segments (pure). None without segments."""
    if not segs:
        return None
    card = segs[-1].card
    price = card.credit_price
    money = _money_by_metric(segs, period_start, period_end)
    qty: dict[str, Decimal] = {}
    credits: dict[str, Decimal] = {}
    for s in segs:
        for metric, q in s.usage.items():
            q = Decimal(q or 0)
            if metric not in s.card.priced_metrics():
                continue
            qty[metric] = qty.get(metric, ZERO) + q
            if metric in s.card.credit_rates:
                credits[metric] = credits.get(metric, ZERO) + q * s.card.credit_rates[metric]
    rows: list[MetricCost] = []
    for metric in sorted(set(qty) | set(money)):
        if metric in money:
            amount = round_money(money[metric], card.currency)
            cr = credits.get(metric)
            if cr is None:  # money-priced only: drawn as amount / credit price
                cr = (money[metric] / price) if price else ZERO
        else:
            cr = credits.get(metric, ZERO)
            amount = round_money(cr * price, card.currency) if price else ZERO
        cr = cr.quantize(CREDIT_PLACES, rounding=ROUND_HALF_UP)
        if qty.get(metric, ZERO) == 0 and amount == 0 and cr == 0:
            continue
        rows.append(MetricCost(metric, qty.get(metric, ZERO), cr, amount))
    return PlatformCost(card.currency, sum((r.credits for r in rows), ZERO), sum((r.amount for r in rows), ZERO),
                        price, tuple(rows))


def cost_plan(card: RateCardSpec) -> PlanSpec:
    """The card's usage prices as one plan spec, for what-if comparisons (billing-model lab): its money
    charges, plus each credit-rated metric without one as `credit_rate × credit price` per unit. Tiers count the
    client's own quantity (a partner-basis card is compared as if the client were the partner's only one)."""
    charges = list(card.usage.charges) if card.usage is not None else []
    priced = {c.metric for c in charges}
    price = card.credit_price or ZERO
    for metric, r in sorted(card.credit_rates.items()):
        if metric not in priced:
            charges.append(plan_from_dict({"currency": card.currency, "charges": [
                {"id": f"credits_{metric}", "metric": metric, "model": "per_unit", "unit_price": str(r * price)}]}
            ).charges[0])
    return PlanSpec(currency=card.currency, charges=tuple(charges))
