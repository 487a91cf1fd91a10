"""The partner's margin: what it bills its clients − what the platform charges it for them (issue 10).

For every client, month (clipped to any date range) and billing-mode piece of it:

- *partner prepaid / partner on demand / agency*: the partner's **revenue** is the price of the plan the partner
  put the client on (its own plan, or a platform plan it resells; core.billing.rating, fees prorated by the
  days covered) and its
  **cost** is the rate card's price of the same usage (prepaid: the card's credits valued at the card's
  credit price; otherwise the card's money amount). A client without a plan in force has an **unknown**
  revenue and margin (None), never zero.
- *customer pays*: the platform bills the client itself; the partner's revenue is its revenue share (the
  card's percentage of what the platform billed), its cost is zero.

The partner-level fees of the card (client bands, access fees) are a cost of the partner as a whole: one row
per month without a client. A partner that no card prices has an unknown cost (None).

Platform admins see every partner, and the platform's revenue per partner (rate-card charges + partner
fees + what it billed customer-pays clients − revenue shares). Partner staff see their own partner's
margins (`margin.view`); Managers never see the platform's charges or margins.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing import ratecards
from core.billing.margin_data import MarginData
from core.billing.modes import mode_at
from core.billing.rating import segments_for
from core.billing.usage_detail import with_detail
from core.errors import PermissionDenied, ValidationError
from core.export import csv_text
from core.pricing import PlanSpec, rate, rate_plan, round_money
from core.usage import aggregates as usage_store
from db.models import CustomerAccount, Partner

ZERO = Decimal(0)
PARTNER_BILLS = ("partner_prepaid", "partner_on_demand", "agency")
MAX_DAYS = 3 * 366


@dataclass(frozen=True)
class MarginRow:
    partner_id: int
    account_id: int | None  # None: the partner-level fees of the card
    customer: str
    month: date  # first day of the month
    mode: str  # billing mode of the piece ("partner_fees" for the partner-level row)
    currency: str
    revenue: Decimal | None  # what the partner earns from it (None: unknown, no plan in force)
    cost: Decimal | None  # what the platform charges the partner for it (None: no rate card)
    platform_billed: Decimal = ZERO  # customer pays: what the platform billed the client

    @property
    def margin(self) -> Decimal | None:
        if self.revenue is None or self.cost is None:
            return None
        return self.revenue - self.cost

    @property
    def below_cost(self) -> bool:
        m = self.margin
        return m is not None and m < 0


@dataclass(frozen=True)
class Totals:
    key: Any
    label: str
    revenue: Decimal
    cost: Decimal
    margin: Decimal
    unknown: int  # rows whose margin is unknown (left out of the sums)
    count: int = 0  # rows summed or left out

    @property
    def known(self) -> bool:
        """At least one row's margin is known (else the sums mean nothing: show "unknown")."""
        return self.count > self.unknown or self.count == 0

    @property
    def below_cost(self) -> bool:
        return self.known and self.margin < 0


@dataclass(frozen=True)
class MarginReport:
    partner_id: int
    currency: str
    start: date
    end: date
    rows: list[MarginRow]

    def _totals(self, rows: Iterable[MarginRow], key: Any, label: str) -> Totals:
        rows = list(rows)
        known = [r for r in rows if r.margin is not None]
        return Totals(key, label, sum((r.revenue or ZERO for r in known), ZERO),
                      sum((r.cost or ZERO for r in known), ZERO), sum((r.margin or ZERO for r in known), ZERO),
                      len(rows) - len(known), len(rows))

    @property
    def total(self) -> Totals:
        return self._totals(self.rows, None, "Total")

    def by_customer(self) -> list[Totals]:
        """Per client over the whole range (the partner-level fees last); margin None rows only count as
        unknown."""
        keys: dict[int | None, str] = {}
        for r in self.rows:
            keys.setdefault(r.account_id, r.customer)
        out = [self._totals([r for r in self.rows if r.account_id == k], k, name)
               for k, name in keys.items() if k is not None]
        out.sort(key=lambda t: t.label.lower())
        if None in keys:
            out.append(self._totals([r for r in self.rows if r.account_id is None], None, keys[None]))
        return out

    def monthly(self) -> list[Totals]:
        months = sorted({r.month for r in self.rows})
        return [self._totals([r for r in self.rows if r.month == m], m, m.strftime("%Y-%m")) for m in months]

    def top_customers(self, n: int = 5) -> list[Totals]:
        """The clients with the highest known margin."""
        rows = [t for t in self.by_customer() if t.key is not None and t.known and (t.revenue or t.cost)]
        return sorted(rows, key=lambda t: (-t.margin, t.label.lower()))[:n]

    def below_cost(self) -> list[MarginRow]:
        """Every client month sold below cost (negative margin)."""
        return [r for r in self.rows if r.account_id is not None and r.below_cost]

    def unknown(self) -> list[MarginRow]:
        return [r for r in self.rows if r.account_id is not None and r.margin is None]


# ---------------------------------------------------------------- computing


def _months(start: date, end: date) -> list[tuple[date, date, date]]:
    """[(month start, clipped from, clipped to)] for the months overlapping start..end."""
    out = []
    m = start.replace(day=1)
    while m <= end:
        last = m.replace(day=calendar.monthrange(m.year, m.month)[1])
        out.append((m, max(m, start), min(last, end)))
        m = last + timedelta(days=1)
    return out


def _check_range(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date):
        raise ValidationError({"period": "A range needs a start and an end date."})
    if end < start:
        raise ValidationError({"period": "The range ends before it starts."})
    if (end - start).days > MAX_DAYS:
        raise ValidationError({"period": "Pick a range of at most three years."})


def _plan_on(data: MarginData, account_id: int, day: date) -> bool:
    """Does a plan price the client on `day` (the partner's own, or a platform plan it resells)?"""
    return any(r.effective_from <= day for r in data.assignments(data.partner_id, account_id))


def _billed(session: Session, data: MarginData, account_id: int, s: date, e: date, m_start: date,
            m_end: date) -> Decimal | None:
    segs = segments_for(session, data.partner_id, account_id, s, e, source=data)
    if not segs:
        return None
    return rate(segs, m_start, m_end).total


def _client_rows(session: Session, data: MarginData, acc: CustomerAccount, src: ratecards.CardSource,
                 m_start: date, s: date, e: date) -> list[MarginRow]:
    m_end = m_start.replace(day=calendar.monthrange(m_start.year, m_start.month)[1])
    out = []
    partner_id = data.partner_id
    currency = src.partner.currency
    for p_start, p_end, mode in data.pieces(acc.id, s, e):
        if mode in PARTNER_BILLS:
            own = _plan_on(data, acc.id, p_end)
            revenue = _billed(session, data, acc.id, p_start, p_end, m_start, m_end) if own else None
            cost_ = ratecards.platform_cost(session, partner_id, acc.id, p_start, p_end, source=src)
            cost = cost_.value(mode) if cost_ is not None else None
            out.append(MarginRow(partner_id, acc.id, acc.name, m_start, mode, currency, revenue, cost))
        else:  # customer pays: the platform bills; the partner earns its revenue share
            billed = _billed(session, data, acc.id, p_start, p_end, m_start, m_end) or ZERO
            rc = src.on(p_end)
            pct = rc.card.revenue_share_percent if rc is not None else None
            share = round_money(billed * pct / 100, currency) if pct else ZERO
            out.append(MarginRow(partner_id, acc.id, acc.name, m_start, mode, currency, share, ZERO, billed))
    return out


def _accounts(session: Session, partner_id: int, start: date, end: date) -> list[CustomerAccount]:
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    return list(session.scalars(select(CustomerAccount).where(
        CustomerAccount.partner_id == partner_id,
        (CustomerAccount.deleted_at.is_(None)) | (CustomerAccount.deleted_at >= t0))
        .order_by(CustomerAccount.name, CustomerAccount.id)))


def compute_margins(session: Session, partner_id: int, start: date, end: date,
                    account_ids: set[int] | None = None) -> MarginReport:
    """Internal (no actor): every client's margin rows for the months overlapping start..end."""
    _check_range(start, end)
    # everything per client (modes, plans, usage, the partner's totals) read once for the range
    data = MarginData(session, partner_id, start, end)
    src = ratecards.CardSource(session, partner_id, usage_source=data)
    rows: list[MarginRow] = []
    accounts = [a for a in _accounts(session, partner_id, start, end)
                if account_ids is None or a.id in account_ids]
    for m_start, s, e in _months(start, end):
        for acc in accounts:
            rows += _client_rows(session, data, acc, src, m_start, s, e)
        if account_ids is None:
            fees = ratecards.partner_fees(session, partner_id, s, e, source=src)
            if fees is not None and fees.total:
                rows.append(MarginRow(partner_id, None, "Partner fees (rate card)", m_start, "partner_fees",
                                      src.partner.currency, ZERO, fees.total))
    return MarginReport(partner_id, src.partner.currency, start, end, rows)


def margins(session: Session, actor: Actor, partner_id: int, start: date, end: date) -> MarginReport:
    """The partner's margins by client and month over start..end (platform admins, the partner's staff)."""
    authorize(actor, "margin.view", partner_id)
    if not (actor.is_admin or actor.is_staff):
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see margins.")
    return compute_margins(session, partner_id, start, end)


def client_month(session: Session, actor: Actor, partner_id: int, account_id: int, month: date) -> MarginRow | None:
    """One client's margin for one month (pieces of several modes summed; unknown if any piece is)."""
    authorize(actor, "margin.view", partner_id)
    start = month.replace(day=1)
    end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
    rows = [r for r in compute_margins(session, partner_id, start, end, {account_id}).rows]
    if not rows:
        return None
    unknown_rev = any(r.revenue is None for r in rows)
    unknown_cost = any(r.cost is None for r in rows)
    first = rows[0]
    return MarginRow(partner_id, account_id, first.customer, start, first.mode if len(rows) == 1 else "mixed",
                     first.currency, None if unknown_rev else sum((r.revenue or ZERO for r in rows), ZERO),
                     None if unknown_cost else sum((r.cost or ZERO for r in rows), ZERO),
                     sum((r.platform_billed for r in rows), ZERO))


# ---------------------------------------------------------------- platform view


@dataclass(frozen=True)
class PartnerRevenue:
    partner_id: int
    partner: str
    currency: str
    usage_charges: Decimal  # rate-card charges for partner-paid and agency clients
    partner_fees: Decimal
    customer_billed: Decimal  # what the platform billed customer-pays clients
    revenue_share: Decimal  # paid back to the partner
    unknown: int  # partner-paid client months no card prices

    @property
    def total(self) -> Decimal:
        return self.usage_charges + self.partner_fees + self.customer_billed - self.revenue_share


def platform_revenue(session: Session, actor: Actor, start: date, end: date) -> list[PartnerRevenue]:
    """The platform's revenue per partner over start..end (platform admins only)."""
    if not actor.is_admin:
        raise PermissionDenied(f"{actor.role_label} {actor.email} may not see the platform's revenue.")
    authorize(actor, "margin.view")
    out = []
    for p in session.scalars(select(Partner).where(~Partner.is_house).order_by(Partner.name)):
        rep = compute_margins(session, p.id, start, end)
        usage_rows = [r for r in rep.rows if r.account_id is not None and r.mode in PARTNER_BILLS]
        cp_rows = [r for r in rep.rows if r.account_id is not None and r.mode not in PARTNER_BILLS]
        out.append(PartnerRevenue(
            p.id, p.name, p.currency, sum((r.cost or ZERO for r in usage_rows), ZERO),
            sum((r.cost or ZERO for r in rep.rows if r.account_id is None), ZERO),
            sum((r.platform_billed for r in cp_rows), ZERO), sum((r.revenue or ZERO for r in cp_rows), ZERO),
            sum(1 for r in usage_rows if r.cost is None)))
    return out


# ---------------------------------------------------------------- pricing-page preview


@dataclass(frozen=True)
class PricePreview:
    start: date
    end: date
    currency: str
    usage: Mapping[str, Decimal]
    client_price: Decimal
    platform_charge: Decimal | None  # None: no rate card prices this partner
    mode: str

    @property
    def margin(self) -> Decimal | None:
        return None if self.platform_charge is None else self.client_price - self.platform_charge

    @property
    def below_cost(self) -> bool:
        m = self.margin
        return m is not None and m < 0


def preview(session: Session, actor: Actor, partner_id: int, account_id: int, spec: PlanSpec,
            today: date) -> PricePreview:
    """For a plan being edited or assigned: at this customer's usage of the last full month, the client's
    price, the platform's charge to the partner and the margin (a plan below cost gets a warning on the
    page, never a refusal)."""
    authorize(actor, "margin.view", partner_id, account_id)
    authorize(actor, "plan.manage", partner_id, account_id)
    end = today.replace(day=1) - timedelta(days=1)
    start = end.replace(day=1)
    used = {k: v for k, v in usage_store.period_usage(session, partner_id, account_id, start, end).items() if v}
    # charges priced per property value or per transaction need the detail of the usage (core.billing.usage_detail)
    client = rate_plan(spec, with_detail(session, spec, used, partner_id, account_id, start, end), start, end).total
    mode = mode_at(session, partner_id, account_id, today)[0]
    mode = mode if mode in PARTNER_BILLS else "partner_on_demand"  # what it would cost the partner
    cost = ratecards.platform_cost(session, partner_id, account_id, start, end, usage=used)
    return PricePreview(start, end, spec.currency, used, client, cost.value(mode) if cost else None, mode)


# ---------------------------------------------------------------- export


def table_csv(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A CSV of what a page shows, through core.export (the one writer: formula-safe cells, numbers kept)."""
    return csv_text(header, ([*r] for r in rows))


def report_csv(report: MarginReport) -> str:
    """Every row of a report (client, month, mode, revenue, cost, margin; empty = unknown)."""
    return table_csv(["customer", "month", "mode", "currency", "revenue", "platform_charge", "margin", "below_cost"],
                  [[r.customer, r.month.strftime("%Y-%m"), r.mode, r.currency, r.revenue, r.cost, r.margin,
                    "yes" if r.below_cost else ""] for r in report.rows])
