"""Rate cards: the platform's price list for each partner (the first of the two price layers).

Two price layers (docs/pricing.md, "Two price layers"):

- a **rate card** (platform → partner) prices what the platform charges a partner for its clients' usage;
- a **plan** (partner → client, core.billing.plans) prices what the partner charges its client.

A card holds, in one currency:

- ``usage``: charges priced in money with any of the pricing engine's charge models (a core.pricing plan
  spec; only its charges are used, `settle` must stay "money");
- ``tier_basis``: ``"client"`` — tiers count each client's own quantity — or ``"partner"`` — tiers count the
  partner's total across all its clients (volume discounts on the partner's whole volume); a client's
  share of a partner-basis price is the total price × the client's share of the quantity, per metric;
- ``credit_rates``: credits per unit of a metric (e.g. 1.05 credits per mailing recipient);
- ``credit_price_steps``: what a credit costs the partner, by purchase size (all-units volume steps);
  the first step's price (the smallest purchase) is the card's **credit price**, used to value credits;
- ``partner_fees``: partner-level fees, a plan spec rated with the usage ``active_clients`` (client-count
  bands, per-client access fees, a monthly platform fee);
- ``revenue_share_percent``: the partner's share of what the platform bills the partner's
  customer-pays clients.

Converting between credits and money (one rule, both directions, at the card's credit price):
a metric with a credit rate costs ``quantity × credit_rate`` credits, worth that × credit price in money;
a metric priced in money only costs ``amount / credit price`` credits when drawn from a prepaid wallet.

Kinds of card: the platform's **standard** card per currency (owned by the house partner) and a partner's
negotiated **partner** card, whose versions hold a whole card or overrides on the standard card in force
(dotted paths, see :func:`apply_card_overrides`). A partner is priced by its own card when it has one in
force, else by the standard card of its currency. Versions are immutable and take effect from a date.

Who may do what: platform admins create and change cards (`ratecard.manage`, platform only); partner staff
read their own partner's card (`ratecard.view`); customers never see a card. Nothing here lets a partner
change what the platform charges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.accounts import get_partner, house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.plans import describe_spec
from core.billing.rating import partner_active_clients
from core.errors import NotFound, PermissionDenied, ValidationError
from core.pricing import (
    PlanSpec,
    PlanValidationError,
    Rating,
    Segment,
    apply_overrides,
    format_price,
    format_quantity,
    plan_from_dict,
    plan_to_dict,
    rate,
    round_money,
)
from core.usage import ingest as usage_store
from core.usage.metrics import metric_keys
from core.validation import Checker
from db.models import CustomerAccount, Partner
from db.models.ratecards import RateCard, RateCardVersion

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


def card_from_dict(d: Mapping[str, Any], *, known_metrics: set[str] | None = None,
                   expected_currency: str | None = None) -> RateCardSpec:
    """Parse and validate a card; every problem at once as a ValidationError keyed `card.<path>`."""
    c = Checker()
    if not isinstance(d, Mapping):
        raise ValidationError({"card": "A rate card must be a mapping."})
    unknown = set(d) - {"currency", "tier_basis", "usage", "credit_rates", "credit_price_steps", "partner_fees",
                        "revenue_share_percent"}
    for k in sorted(unknown):
        c.fail(f"card.{k}", f"Unknown field {k!r}.")
    currency = d.get("currency") or expected_currency
    if not isinstance(currency, str) or len(currency) != 3:
        c.fail("card.currency", "Currency is required (3 letters).")
        currency = None
    elif expected_currency and currency != expected_currency:
        c.fail("card.currency", f"The card is in {currency} but must be in {expected_currency}.")
    basis = d.get("tier_basis") or "client"
    if basis not in TIER_BASES:
        c.fail("card.tier_basis", "Tier basis must be 'client' (each client's own quantity) or 'partner' "
                                  "(the partner's total across its clients).")
    usage = _sub_plan(c, "card.usage", d.get("usage"), currency, known_metrics)
    if usage is not None:
        for i, ch in enumerate(usage.charges):
            if ch.settle != "money":
                c.fail(f"card.usage.charges[{i}].settle", "Rate-card charges are priced in money; credits are "
                                                          "set with credit_rates.")
    fees = _sub_plan(c, "card.partner_fees", d.get("partner_fees"), currency, None)
    if fees is not None:
        for i, ch in enumerate(fees.charges):
            if ch.metric != ACTIVE_CLIENTS:
                c.fail(f"card.partner_fees.charges[{i}].metric",
                       f"Partner-level charges count {ACTIVE_CLIENTS!r} (the partner's active clients).")
    rates: dict[str, Decimal] = {}
    raw_rates = d.get("credit_rates") or {}
    if not isinstance(raw_rates, Mapping):
        c.fail("card.credit_rates", "Credit rates must map a metric to credits per unit.")
        raw_rates = {}
    for metric, raw in raw_rates.items():
        if known_metrics is not None and metric not in known_metrics:
            c.fail(f"card.credit_rates.{metric}", f"Unknown metric {metric!r}.")
            continue
        v = _dec(c, f"card.credit_rates.{metric}", raw, "Credits per unit", positive=True)
        if v is not None:
            rates[str(metric)] = v
    steps: list[CreditStep] = []
    raw_steps = d.get("credit_price_steps") or []
    if not isinstance(raw_steps, (list, tuple)):
        c.fail("card.credit_price_steps", "Credit price steps must be a list.")
        raw_steps = []
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
    steps.sort(key=lambda s: s.min_credits)
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


# ---------------------------------------------------------------- reading cards from the database


@dataclass(frozen=True)
class CardVersionRef:
    source: str  # "standard" | "partner"
    card_id: int
    card_partner_id: int
    version: int
    effective_from: date


@dataclass(frozen=True)
class ResolvedCard:
    """The card in force for a partner on a day, with where it came from."""

    card: RateCardSpec
    name: str
    source: str  # "standard" (the platform's list price) or "partner" (negotiated)
    refs: tuple[CardVersionRef, ...]
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective_from(self) -> date:
        return max(r.effective_from for r in self.refs)


def _card(session: Session, partner_id: int, kind: str, currency: str) -> RateCard | None:
    return session.scalar(select(RateCard).where(RateCard.partner_id == partner_id, RateCard.kind == kind,
                                                 RateCard.currency == currency))


def _versions(session: Session, card: RateCard) -> list[RateCardVersion]:
    return list(session.scalars(select(RateCardVersion).where(
        RateCardVersion.partner_id == card.partner_id, RateCardVersion.card_id == card.id)
        .order_by(RateCardVersion.version)))


def _on(versions: list[RateCardVersion], day: date) -> RateCardVersion | None:
    """The newest version effective on or before `day` (a card does not apply before its first version)."""
    current = None
    for v in versions:
        if v.effective_from <= day and (current is None or v.version > current.version):
            current = v
    return current


class CardSource:
    """Cards and their versions for one partner, read once (rating a month asks for many days)."""

    def __init__(self, session: Session, partner_id: int):
        self.session = session
        self.partner = get_partner(session, partner_id)
        house = house_partner(session)
        self.standard = _card(session, house.id, "standard", self.partner.currency)
        self.own = _card(session, partner_id, "partner", self.partner.currency)
        self.standard_versions = _versions(session, self.standard) if self.standard else []
        self.own_versions = _versions(session, self.own) if self.own else []
        self._known = metric_keys(session)

    def boundaries(self) -> list[date]:
        return sorted({v.effective_from for v in self.standard_versions + self.own_versions})

    def on(self, day: date) -> ResolvedCard | None:
        std = _on(self.standard_versions, day)
        own = _on(self.own_versions, day)
        if own is None and std is None:
            return None
        refs = []
        base: RateCardSpec | None = None
        if std is not None and self.standard is not None:
            refs.append(CardVersionRef("standard", self.standard.id, self.standard.partner_id, std.version,
                                       std.effective_from))
            base = card_from_dict(std.spec["card"], expected_currency=self.partner.currency)
        if own is None or self.own is None:
            assert base is not None and self.standard is not None
            return ResolvedCard(base, self.standard.name, "standard", tuple(refs))
        refs.append(CardVersionRef("partner", self.own.id, self.own.partner_id, own.version, own.effective_from))
        if own.spec.get("card") is not None:
            base = card_from_dict(own.spec["card"], expected_currency=self.partner.currency)
            refs = refs[-1:]
        if base is None:  # overrides on a standard card that does not exist (yet) on this day
            return None
        overrides = dict(own.spec.get("overrides") or {})
        card = apply_card_overrides(base, overrides, self._known)
        return ResolvedCard(card, self.own.name, "partner", tuple(refs), overrides)

    def segments(self, start: date, end: date) -> list[tuple[date, date, ResolvedCard]]:
        """[(from, to, card)] for the days of start..end that a card covers."""
        cuts = sorted({start, *(d for d in self.boundaries() if start < d <= end)})
        out = []
        for i, s in enumerate(cuts):
            e = cuts[i + 1] - timedelta(days=1) if i + 1 < len(cuts) else end
            rc = self.on(s)
            if rc is not None:
                out.append((s, e, rc))
        return out


def card_in_force(session: Session, partner_id: int, day: date) -> ResolvedCard | None:
    """Internal (no actor): the card pricing a partner on a day, or None when the platform has none."""
    return CardSource(session, partner_id).on(day)


def has_card(session: Session, partner_id: int) -> bool:
    """Does a card (own or the standard one of its currency) price this partner on some day?"""
    src = CardSource(session, partner_id)
    return bool(src.own_versions or src.standard_versions)


def partner_usage(session: Session, partner_id: int, start: date, end: date) -> dict[str, Decimal]:
    """The partner's total usage per metric over all its client accounts (for partner-basis tiers)."""
    out: dict[str, Decimal] = {}
    ids = session.scalars(select(CustomerAccount.id).where(CustomerAccount.partner_id == partner_id))
    for aid in ids:
        for metric, q in usage_store.period_usage(session, partner_id, aid, start, end).items():
            out[metric] = out.get(metric, ZERO) + Decimal(q or 0)
    return out


def platform_cost(session: Session, partner_id: int, account_id: int, start: date, end: date, *,
                  usage_until: date | None = None, source: CardSource | None = None,
                  usage: Mapping[str, Decimal] | None = None) -> PlatformCost | None:
    """Internal (no actor): what a client's usage over start..end (up to `usage_until`) costs its partner at
    the rate card(s) in force. None when no card prices the partner. `usage` replaces the recorded usage
    (for a period covered by a single card version)."""
    src = source or CardSource(session, partner_id)
    segs: list[CardSegment] = []
    for s, e, rc in src.segments(start, end):
        u_end = e if usage_until is None else min(e, usage_until)
        if u_end < s:
            q: Mapping[str, Decimal] = {}
            pq: Mapping[str, Decimal] | None = {}
        else:
            q = usage if usage is not None else usage_store.period_usage(session, partner_id, account_id, s, u_end)
            pq = partner_usage(session, partner_id, s, u_end) if rc.card.tier_basis == "partner" else None
            if pq is not None and usage is not None:  # a what-if: the client's own usage replaces its share
                actual = usage_store.period_usage(session, partner_id, account_id, s, u_end)
                pq = {m: pq.get(m, ZERO) - Decimal(actual.get(m, 0) or 0) + Decimal(usage.get(m, 0) or 0)
                      for m in set(pq) | set(usage)}
        segs.append(CardSegment(rc.card, s, e, q, pq))
    return cost_of(segs, start, end)


def partner_fees(session: Session, partner_id: int, start: date, end: date,
                 source: CardSource | None = None) -> Rating | None:
    """Internal: the card's partner-level fees for a period (client bands priced by active clients)."""
    src = source or CardSource(session, partner_id)
    segs = []
    for s, e, rc in src.segments(start, end):
        if rc.card.partner_fees is None:
            continue
        n = partner_active_clients(session, partner_id, s, e)
        segs.append(Segment(rc.card.partner_fees, s, e, {ACTIVE_CLIENTS: Decimal(n)}))
    return rate(segs, start, end) if segs else None


def revenue_share_percent(session: Session, partner_id: int, day: date) -> Decimal | None:
    rc = card_in_force(session, partner_id, day)
    return rc.card.revenue_share_percent if rc else None


# ---------------------------------------------------------------- services (actor-checked)


@dataclass(frozen=True)
class CardRow:
    partner_id: int
    id: int
    kind: str
    name: str
    currency: str
    owner: str
    version: int
    effective_from: date


def _house_id(session: Session) -> int:
    return house_partner(session).id


def _check_version_input(session: Session, c: Checker, *, currency: str, card: Mapping[str, Any] | None,
                         overrides: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    known = metric_keys(session)
    spec: dict[str, Any] = {}
    if kind == "standard" and card is None:
        c.fail("card", "A standard card needs its prices.")
    if kind == "standard" and overrides:
        c.fail("overrides", "Overrides belong on a partner's card, not on the standard card.")
    if kind == "partner" and card is None and not overrides:
        c.fail("card", "Give the partner's card its own prices, or overrides of the standard card.")
    if overrides is not None and not isinstance(overrides, Mapping):
        c.fail("overrides", "Overrides must map a path to a value.")
        overrides = None
    if card is not None:
        try:
            parsed = card_from_dict(card, known_metrics=known, expected_currency=currency)
            spec["card"] = card_to_dict(parsed)
        except ValidationError as exc:
            c.errors.update(exc.errors)
    if overrides:
        clean = {str(k): (v if v is None or isinstance(v, str) else str(v)) for k, v in overrides.items()}
        if any(isinstance(v, float) for v in overrides.values()):
            c.fail("overrides", "Override values must be decimal strings such as \"0.09\", not floats.")
        spec["overrides"] = clean
    return spec


def _check_overrides_apply(session: Session, partner_id: int, currency: str, spec: dict[str, Any],
                           day: date) -> None:
    """A partner card of overrides must apply to the standard card in force from its date on."""
    if spec.get("card") is not None:
        base = card_from_dict(spec["card"], expected_currency=currency)
        apply_card_overrides(base, spec.get("overrides"), metric_keys(session))
        return
    std = _card(session, _house_id(session), "standard", currency)
    versions = _versions(session, std) if std else []
    relevant = [v for v in versions if v.effective_from > day]
    first = _on(versions, day)
    if first is None:
        raise ValidationError({"overrides": f"There is no standard {currency} card in force on {day.isoformat()} "
                                            "to apply overrides to: give the partner's card its own prices."})
    for v in [first, *relevant]:
        apply_card_overrides(card_from_dict(v.spec["card"]), spec.get("overrides"), metric_keys(session))


def create_standard_card(session: Session, actor: Actor, *, currency: str, name: str, card: Mapping[str, Any],
                         effective_from: date, note: str | None = None) -> RateCard:
    """The platform's standard card in a currency (one per currency) and its version 1."""
    house = _house_id(session)
    authorize(actor, "ratecard.manage", house)
    c = Checker()
    name_v = c.text("name", name, "Card name")
    cur = c.currency("currency", currency)
    eff = effective_from if isinstance(effective_from, date) else None
    if eff is None:
        c.fail("effective_from", "Effective date is required (a date).")
    if cur and _card(session, house, "standard", cur) is not None:
        c.fail("currency", f"The platform already has a standard {cur} card: save a new version of it.")
    spec = _check_version_input(session, c, currency=cur or "", card=card, overrides=None, kind="standard")
    c.done()
    assert cur is not None and eff is not None and name_v is not None
    row = RateCard(partner_id=house, kind="standard", name=name_v, currency=cur, created_by=actor.user_id or None)
    session.add(row)
    session.flush()
    session.add(RateCardVersion(partner_id=house, card_id=row.id, version=1, effective_from=eff, spec=spec,
                                note=note, created_by=actor.user_id or None))
    session.flush()
    audit.record(session, actor, partner_id=house, action="create", entity="rate_card", entity_id=row.id,
                 after={"kind": "standard", "name": name_v, "currency": cur, "effective_from": eff, "spec": spec})
    return row


def set_partner_card(session: Session, actor: Actor, partner_id: int, *, effective_from: date,
                     card: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                     name: str | None = None, note: str | None = None) -> RateCardVersion:
    """Negotiated prices for one partner from a date: a whole card, or overrides of the standard card.
    Creates the partner's card on first use, else saves a new version (never before the latest one)."""
    authorize(actor, "ratecard.manage", partner_id)
    partner = get_partner(session, partner_id)
    if partner.is_house:
        raise ValidationError({"partner": "The platform does not charge itself: pick a partner."})
    c = Checker()
    eff = effective_from if isinstance(effective_from, date) else None
    if eff is None:
        c.fail("effective_from", "Effective date is required (a date).")
    row = _card(session, partner_id, "partner", partner.currency)
    latest = _versions(session, row)[-1] if row is not None else None
    if latest is not None and eff is not None and eff < latest.effective_from:
        c.fail("effective_from", f"A new version cannot take effect before the latest one (version "
                                 f"{latest.version}, from {latest.effective_from.isoformat()}).")
    spec = _check_version_input(session, c, currency=partner.currency, card=card, overrides=overrides,
                                kind="partner")
    c.done()
    assert eff is not None
    _check_overrides_apply(session, partner_id, partner.currency, spec, eff)
    if row is None:
        label = (name or "").strip() or f"{partner.name} rate card"
        row = RateCard(partner_id=partner_id, kind="partner", name=label[:200], currency=partner.currency,
                       created_by=actor.user_id or None)
        session.add(row)
        session.flush()
    ver = RateCardVersion(partner_id=partner_id, card_id=row.id, version=(latest.version + 1) if latest else 1,
                          effective_from=eff, spec=spec, note=note, created_by=actor.user_id or None)
    session.add(ver)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="new_version" if latest else "create",
                 entity="rate_card", entity_id=row.id,
                 before={"version": latest.version, "spec": latest.spec} if latest else None,
                 after={"version": ver.version, "effective_from": eff, "spec": spec})
    return ver


def new_standard_version(session: Session, actor: Actor, currency: str, *, card: Mapping[str, Any],
                         effective_from: date, note: str | None = None) -> RateCardVersion:
    """New list prices on the standard card of a currency from a date (not before the latest version)."""
    house = _house_id(session)
    authorize(actor, "ratecard.manage", house)
    row = _card(session, house, "standard", currency)
    if row is None:
        raise NotFound(f"The platform has no standard {currency} card yet.")
    latest = _versions(session, row)[-1]
    c = Checker()
    if not isinstance(effective_from, date):
        c.fail("effective_from", "Effective date is required (a date).")
    elif effective_from < latest.effective_from:
        c.fail("effective_from", f"A new version cannot take effect before the latest one (version "
                                 f"{latest.version}, from {latest.effective_from.isoformat()}).")
    spec = _check_version_input(session, c, currency=currency, card=card, overrides=None, kind="standard")
    c.done()
    ver = RateCardVersion(partner_id=house, card_id=row.id, version=latest.version + 1,
                          effective_from=effective_from, spec=spec, note=note, created_by=actor.user_id or None)
    session.add(ver)
    session.flush()
    # every partner card of overrides must still apply
    for other in session.scalars(select(RateCard).where(RateCard.kind == "partner", RateCard.currency == currency)):
        for v in _versions(session, other):
            if v.spec.get("card") is None and v.spec.get("overrides"):
                try:
                    apply_card_overrides(card_from_dict(spec["card"]), v.spec["overrides"], metric_keys(session))
                except ValidationError as exc:
                    raise ValidationError({"card": f"The overrides of {other.name} (version {v.version}) would no "
                                                   f"longer apply: {'; '.join(exc.errors.values())}"}) from None
    audit.record(session, actor, partner_id=house, action="new_version", entity="rate_card", entity_id=row.id,
                 before={"version": latest.version, "spec": latest.spec},
                 after={"version": ver.version, "effective_from": effective_from, "spec": spec})
    return ver


def list_cards(session: Session, actor: Actor) -> list[CardRow]:
    """Admins: every card. Partner staff: their own partner's card and the standard card of its currency."""
    if not actor.is_staff:
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see rate cards.")
    authorize(actor, "ratecard.view", actor.partner_id)
    q = select(RateCard, Partner.name).join(Partner, Partner.id == RateCard.partner_id)
    if not actor.is_admin:
        partner = get_partner(session, actor.partner_id)
        q = q.where(((RateCard.partner_id == actor.partner_id) & (RateCard.kind == "partner"))
                    | ((RateCard.kind == "standard") & (RateCard.currency == partner.currency)))
    out = []
    for card, pname in session.execute(q.order_by(RateCard.kind.desc(), RateCard.currency, Partner.name)):
        latest = _versions(session, card)[-1]
        out.append(CardRow(card.partner_id, card.id, card.kind, card.name, card.currency,
                           "Platform (standard)" if card.kind == "standard" else pname, latest.version,
                           latest.effective_from))
    return out


def get_card(session: Session, actor: Actor, partner_id: int, on: date | None = None) -> ResolvedCard | None:
    """The card pricing a partner on a day (default today): platform admins and the partner's own staff."""
    authorize(actor, "ratecard.view", partner_id)
    if not actor.is_admin and not actor.is_staff:
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see rate cards.")
    return card_in_force(session, partner_id, on or date.today())


@dataclass(frozen=True)
class VersionRow:
    card: str
    kind: str
    version: int
    effective_from: date
    spec: dict
    note: str | None


def card_history(session: Session, actor: Actor, partner_id: int) -> list[VersionRow]:
    """Every version of the partner's own card and of the standard card of its currency, newest first."""
    authorize(actor, "ratecard.view", partner_id)
    src = CardSource(session, partner_id)
    rows = []
    for card, versions in ((src.own, src.own_versions), (src.standard, src.standard_versions)):
        if card is None:
            continue
        rows += [VersionRow(card.name, card.kind, v.version, v.effective_from, dict(v.spec), v.note)
                 for v in versions]
    return sorted(rows, key=lambda r: (r.effective_from, r.kind == "partner", r.version), reverse=True)


def standard_card(session: Session, actor: Actor, currency: str, on: date | None = None) -> RateCardSpec | None:
    """The standard card of a currency in force on a day (admins; partner staff for their own currency)."""
    authorize(actor, "ratecard.view", actor.partner_id)
    if not actor.is_admin:
        if get_partner(session, actor.partner_id).currency != currency:
            raise PermissionDenied("Partner staff see the standard card of their own currency only.")
    row = _card(session, _house_id(session), "standard", currency)
    if row is None:
        return None
    v = _on(_versions(session, row), on or date.today())
    return card_from_dict(v.spec["card"]) if v else None


def describe_card(card: RateCardSpec) -> list[dict[str, str]]:
    """The card as plain-language rows, for staff."""

    rows = [{"item": "Tier basis", "metric": "", "price": "each client's own quantity" if card.tier_basis == "client"
             else "the partner's total across all its clients"}]
    for metric, r in sorted(card.credit_rates.items()):
        rows.append({"item": "Credit rate", "metric": metric, "price": f"{format_quantity(r)} credits per unit"})
    for s in card.credit_price_steps:
        rows.append({"item": "Credit price", "metric": "",
                     "price": f"from {format_quantity(s.min_credits)} credits: {format_price(s.price_per_credit)} "
                              f"{card.currency} per credit"})
    if card.usage is not None:
        rows += [{"item": r["item"], "metric": r["metric"], "price": r["price"]} for r in describe_spec(card.usage)]
    if card.partner_fees is not None:
        rows += [{"item": f"Partner fee: {r['item']}", "metric": r["metric"], "price": r["price"]}
                 for r in describe_spec(card.partner_fees)]
    if card.revenue_share_percent is not None:
        rows.append({"item": "Revenue share", "metric": "",
                     "price": f"{format_quantity(card.revenue_share_percent)}% of what the platform bills the "
                              "partner's customer-pays clients"})
    return rows
