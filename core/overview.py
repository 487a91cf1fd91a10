"""The landing page's figures for one actor, gathered in one call (so the page stays thin).

Partner staff: money first (billed this month so far, last month, unbilled usage, open statements, the
credit wallet and how many days it lasts at the current burn rate), then their customers, this month's
usage against the previous period and open threshold alerts. Platform admins: counts and usage across all
partners. A Manager: their account's usage this month and what it would cost so far. Users and
Annotators: their account's usage, never prices.

Counts come from counting queries (never from a capped list). Amounts are summed per currency: a partner's
customers may be billed in several currencies, and amounts in different currencies are never added.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts.actor import CUSTOMER_ROLES, Actor
from core.accounts.permissions import allowed, authorize
from core.billing import alerts, modes, plans, rating, wallet
from core.pricing import Rating, rate
from core.statements.planning import MonthData
from core.usage import reports as usage_reports
from db.engine import bind_scope, partner_scope
from db.models import CustomerAccount, Partner, User
from db.models.billing import Plan, PlanAssignment
from db.models.statements import Statement, StatementSettings

BURN_DAYS = 30  # the burn rate is the average daily draw over this many days


@dataclass(frozen=True)
class MetricFigure:
    key: str
    label: str
    value: Decimal
    previous: Decimal

    @property
    def change(self) -> Decimal | None:
        """Relative change against the previous period of the same length (None when it was 0)."""
        return None if not self.previous else (self.value - self.previous) / self.previous


@dataclass(frozen=True)
class WalletFigures:
    balance: Decimal
    burn_per_day: Decimal  # average credits drawn per day over the last BURN_DAYS days
    days_left: int | None  # None: nothing drawn lately (the balance lasts "indefinitely")


@dataclass
class Money:
    """The partner's money at a glance; every amount is {currency: amount}."""
    billed_this_month: dict[str, Decimal] = field(default_factory=dict)  # final statements issued this month
    billed_last_month: dict[str, Decimal] = field(default_factory=dict)  # final statements issued last month
    unbilled: dict[str, Decimal] = field(default_factory=dict)  # this month so far, not on a statement yet
    open_statements: int = 0  # drafts waiting to be finalised
    open_amount: dict[str, Decimal] = field(default_factory=dict)
    currency: str = "EUR"  # the partner's own currency (shown first)


@dataclass
class Overview:
    period: tuple[date, date]
    customers_active: int | None = None
    customers_suspended: int | None = None
    active_users: int | None = None
    usage: list[MetricFigure] = field(default_factory=list)
    open_alerts: list = field(default_factory=list)
    open_alerts_total: int = 0
    wallet: wallet.WalletView | None = None
    wallet_figures: WalletFigures | None = None
    plan_name: str | None = None
    month_to_date: Rating | None = None
    money: Money | None = None


# ---------------------------------------------------------------- counts


def account_counts(session: Session, actor: Actor, partner_id: int | None = None) -> tuple[int, int, int]:
    """(active accounts, suspended accounts, active users of those accounts) for the actor's scope, counted
    by the database (a list would be capped)."""
    if not actor.is_admin:
        partner_id = actor.partner_id
    authorize(actor, "account.list", partner_id)
    status = select(CustomerAccount.status, func.count()).group_by(CustomerAccount.status)
    users = (select(func.count()).select_from(User).join(
        CustomerAccount, (CustomerAccount.partner_id == User.partner_id) & (CustomerAccount.id == User.account_id))
        .where(User.active, CustomerAccount.status.in_(("active", "suspended"))))
    if partner_id is not None:
        status = status.where(CustomerAccount.partner_id == partner_id)
        users = users.where(CustomerAccount.partner_id == partner_id)
    by_status = dict(session.execute(status).tuples().all())
    return by_status.get("active", 0), by_status.get("suspended", 0), int(session.scalar(users) or 0)


# ---------------------------------------------------------------- money


def _add(into: dict[str, Decimal], currency: str, amount: Decimal) -> None:
    into[currency] = into.get(currency, Decimal(0)) + amount


def month_to_date_by_account(session: Session, actor: Actor, partner_id: int, today: date) -> dict[int, Rating]:
    """What each of the partner's customers with a plan would pay for this month at the usage so far (the
    whole month's fees and the usage from the 1st to `today`), rated from one prefetch of the month."""
    authorize(actor, "plan.view", partner_id)
    start, end = rating.month_of(today)
    data = MonthData(session, partner_id, start)
    out: dict[int, Rating] = {}
    for account_id, _name in data.accounts:
        segs = rating.segments_for(session, partner_id, account_id, start, end, usage_until=today, source=data)
        if segs:
            out[account_id] = rate(segs, start, end)
    return out


def _issued_totals(session: Session, partner_id: int, first: date, last: date) -> dict[str, Decimal]:
    """Final customer statements and credit notes of the partner's customers issued in [first, last]."""
    q = (select(Statement.currency, func.sum(Statement.total)).where(
        Statement.partner_id == partner_id, Statement.status == "final",
        Statement.kind.in_(("statement", "credit_note")), Statement.account_id.is_not(None),
        Statement.issued_on.between(first, last)).group_by(Statement.currency))
    return {c: Decimal(t) for c, t in session.execute(q)}


def partner_money(session: Session, actor: Actor, partner_id: int, today: date,
                  month_to_date: dict[int, Rating] | None = None) -> Money:
    authorize(actor, "statement.view", partner_id)
    partner = session.get(Partner, partner_id)
    out = Money(currency=partner.currency if partner else "EUR")
    start = today.replace(day=1)
    last_end = start - timedelta(days=1)
    out.billed_this_month = _issued_totals(session, partner_id, start, today)
    out.billed_last_month = _issued_totals(session, partner_id, last_end.replace(day=1), last_end)
    mtd = month_to_date if month_to_date is not None else month_to_date_by_account(session, actor, partner_id, today)
    for r in mtd.values():
        _add(out.unbilled, r.currency, r.total)
    drafts = session.execute(select(Statement.currency, func.count(), func.sum(Statement.total)).where(
        Statement.partner_id == partner_id, Statement.status == "draft", Statement.kind != "collective")
        .group_by(Statement.currency)).all()
    for currency, n, total in drafts:
        out.open_statements += n
        _add(out.open_amount, currency, Decimal(total))
    return out


def wallet_figures(session: Session, actor: Actor, partner_id: int, today: date,
                   view: wallet.WalletView | None = None) -> WalletFigures | None:
    """The balance and how long it lasts at the average daily draw of the last BURN_DAYS days."""
    view = view or wallet.wallet_view(session, actor, partner_id)
    if view is None:
        return None
    drawn = sum((d.credits for d in wallet.draws_by_customer(
        session, actor, partner_id, today - timedelta(days=BURN_DAYS - 1), today)), Decimal(0))
    burn = drawn / BURN_DAYS
    if burn <= 0:
        return WalletFigures(view.balance, Decimal(0), None)
    days = max(0, int((view.balance - view.floor) / burn)) if view.balance > view.floor else 0
    return WalletFigures(view.balance, burn, days)


# ---------------------------------------------------------------- the customers list


@dataclass(frozen=True)
class CustomerFigures:
    plan: str | None
    mode: str
    usage: dict[str, Decimal]  # metric -> this month's usage so far
    spend: Decimal | None  # this month so far (None: no plan)
    currency: str | None


def customer_figures(session: Session, actor: Actor, partner_id: int, today: date | None = None
                     ) -> dict[int, CustomerFigures]:
    """Per customer account of the partner: current plan, billing mode, usage and spend this month so far.
    (The partner's margin comes with the two price layers; it will be added here.)"""
    today = today or clock.today()
    authorize(actor, "plan.view", partner_id)
    start = today.replace(day=1)
    mtd = month_to_date_by_account(session, actor, partner_id, today)
    plan_names = _current_plan_names(session, partner_id, today)
    current_modes = {r.account_id: r.mode for r in modes.list_modes(session, actor, partner_id)} \
        if allowed(actor, "billing.manage", partner_id) else {}
    usage: dict[int, dict[str, Decimal]] = defaultdict(dict)
    scope = usage_reports.resolve_scope(actor, partner_id)
    for r in usage_reports._values(session, scope, start, today, level="account"):
        usage[r.account_id][r.metric] = r.value
    ids = session.scalars(select(CustomerAccount.id).where(CustomerAccount.partner_id == partner_id)).all()
    return {a: CustomerFigures(plan_names.get(a), current_modes.get(a, modes.DEFAULT_MODE), usage.get(a, {}),
                               mtd[a].total if a in mtd else None, mtd[a].currency if a in mtd else None)
            for a in ids}


def _current_plan_names(session: Session, partner_id: int, today: date) -> dict[int, str]:
    q = (select(PlanAssignment.account_id, Plan.name).join(
        Plan, (Plan.partner_id == PlanAssignment.plan_partner_id) & (Plan.id == PlanAssignment.plan_id))
        .where(PlanAssignment.partner_id == partner_id, PlanAssignment.subject == "account",
               PlanAssignment.effective_from <= today)
        .order_by(PlanAssignment.account_id, PlanAssignment.effective_from, PlanAssignment.id))
    return {a: name for a, name in session.execute(q) if a is not None}  # the latest in force wins


# ---------------------------------------------------------------- the landing page


def overview(session: Session, actor: Actor, today: date | None = None, *, top_metrics: int = 4,
             alerts_shown: int = 50) -> Overview:
    today = today or clock.today()
    start = today.replace(day=1)
    out = Overview(period=(start, today))
    if allowed(actor, "account.list") and actor.role not in CUSTOMER_ROLES:
        out.customers_active, out.customers_suspended, out.active_users = account_counts(session, actor)
    if allowed(actor, "usage.view"):
        summary = usage_reports.usage_summary(session, actor, start=start, end=today, top=1)
        labels = usage_reports.metric_names(session)
        ranked = sorted((m for m, v in summary.totals.items() if v), key=lambda m: -summary.totals[m])
        out.usage = [MetricFigure(m, labels.get(m, m), summary.totals[m], summary.previous_totals.get(m, Decimal(0)))
                     for m in ranked[:top_metrics]]
    if actor.role not in CUSTOMER_ROLES and allowed(actor, "plan.view"):
        open_alerts = alerts.list_alerts(session, actor, open_only=True)
        out.open_alerts_total = len(open_alerts)
        out.open_alerts = open_alerts[:alerts_shown]
    if not actor.is_admin and actor.role not in CUSTOMER_ROLES and allowed(actor, "wallet.view", actor.partner_id):
        out.wallet = wallet.wallet_view(session, actor, actor.partner_id)
        if out.wallet is not None:
            out.wallet_figures = wallet_figures(session, actor, actor.partner_id, today, out.wallet)
    if actor.is_staff and not actor.is_admin and allowed(actor, "statement.view", actor.partner_id):
        out.money = partner_money(session, actor, actor.partner_id, today)
    if actor.account_id is not None and allowed(actor, "plan.view", actor.partner_id, actor.account_id):
        current = plans.current_assignment(session, actor, actor.partner_id, actor.account_id)
        if current is not None:
            out.plan_name = current.assignment.plan_name
            out.month_to_date = rating.preview_month_to_date(session, actor, actor.partner_id, actor.account_id,
                                                             today)
    return out


# ---------------------------------------------------------------- white label


PLATFORM_NAME = "Reseller Console"


@dataclass(frozen=True)
class Brand:
    """What the app shows as its name and logo: the partner's, for the partner's clients (white label)."""
    name: str
    logo_text: str
    partner_slug: str | None = None
    white_label: bool = False
    primary_colour: str | None = None  # the partner's colours (#rrggbb), None = the platform's theme
    sidebar_colour: str | None = None


def _partner_brand(session: Session, partner: Partner) -> Brand:
    row = session.get(StatementSettings, partner.id)
    name = (row.display_name if row and row.display_name else None) or partner.name
    return Brand(name=name, logo_text=(row.logo_text if row and row.logo_text else None) or name,
                 partner_slug=partner.slug, white_label=True, primary_colour=row.primary_colour if row else None,
                 sidebar_colour=row.sidebar_colour if row else None)


def brand_for(session: Session, actor: Actor | None, partner_slug: str | None = None) -> Brand:
    """The brand a user sees. A partner's clients (Managers, Users, Annotators of its customer accounts)
    see their partner's name, logo and colours, set with the partner's statement branding, never the platform's;
    staff and admins see the platform. Before login, a partner's login link (?brand=<slug>) shows its
    brand. Reading branding needs no permission: it is what the user's own partner shows them."""
    platform = Brand(PLATFORM_NAME, PLATFORM_NAME)
    partner = None
    if actor is not None:
        if actor.role not in CUSTOMER_ROLES:
            return platform
        partner = session.get(Partner, actor.partner_id)
    elif partner_slug:
        partner = session.scalar(select(Partner).where(Partner.slug == partner_slug[:80], Partner.active))
    if partner is None or partner.is_house:
        return platform
    if actor is None:
        bind_scope(session, partner_scope(partner.id))  # row-level security: that partner's published brand
    return _partner_brand(session, partner)
