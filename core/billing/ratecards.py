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
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.accounts.accounts import get_partner, house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.describe import describe_spec
from core.billing.ratecard_spec import (  # noqa: F401  (re-exported: the card and its costs)
    ACTIVE_CLIENTS,
    TIER_BASES,
    ZERO,
    CardSegment,
    CreditStep,
    MetricCost,
    PlatformCost,
    RateCardSpec,
    apply_card_overrides,
    card_from_dict,
    card_to_dict,
    cost_of,
    parse_steps_text,
)
from core.billing.rating import partner_active_clients
from core.errors import PermissionDenied
from core.pricing import Rating, Segment, format_price, format_quantity, rate
from core.usage import aggregates as usage_store
from core.usage.metrics import metric_keys
from db.models import CustomerAccount, Partner
from db.models.ratecards import RateCard, RateCardVersion

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

    def __init__(self, session: Session, partner_id: int, usage_source: Any = None):
        self.session = session
        self.usage_source = usage_source  # prefetched usage (core.billing.margin_data.MarginData), else queries
        self.partner = get_partner(session, partner_id)
        house = house_partner(session)
        self.standard = _card(session, house.id, "standard", self.partner.currency)
        self.own = _card(session, partner_id, "partner", self.partner.currency)
        self.standard_versions = _versions(session, self.standard) if self.standard else []
        self.own_versions = _versions(session, self.own) if self.own else []
        self._known = metric_keys(session)
        self._partner_usage: dict[tuple[date, date], dict[str, Decimal]] = {}

    def partner_usage(self, start: date, end: date) -> dict[str, Decimal]:
        """The partner's total usage over start..end, read once per range (partner-basis tiers)."""
        if (start, end) not in self._partner_usage:
            self._partner_usage[(start, end)] = (
                self.usage_source.partner_usage(start, end) if self.usage_source is not None
                else partner_usage(self.session, self.partner.id, start, end))
        return self._partner_usage[(start, end)]

    def client_usage(self, account_id: int, start: date, end: date) -> Mapping[str, Decimal]:
        if self.usage_source is not None:
            return self.usage_source.usage(self.partner.id, account_id, start, end)
        return usage_store.period_usage(self.session, self.partner.id, account_id, start, end)

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
            q = usage if usage is not None else src.client_usage(account_id, s, u_end)
            pq = dict(src.partner_usage(s, u_end)) if rc.card.tier_basis == "partner" else None
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


def credit_steps(session: Session, partner_id: int, currency: str,
                 day: date | None = None) -> list[tuple[Decimal, Decimal]] | None:
    """The credit purchase price steps of the card in force (default today), or None when no card prices
    the partner in `currency` or the card has no steps (then the wallet's own price list applies)."""
    rc = card_in_force(session, partner_id, day or clock.today())
    if rc is None or rc.card.currency != currency or not rc.card.credit_price_steps:
        return None
    return [(s.min_credits, s.price_per_credit) for s in rc.card.credit_price_steps]


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
    return card_in_force(session, partner_id, on or clock.today())


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
    v = _on(_versions(session, row), on or clock.today())
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
