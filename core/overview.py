"""The landing page's figures for one actor, gathered in one call (so the page stays thin).

Partner staff: their customers, this month's usage against the previous period, open threshold alerts,
the credit wallet. Platform admins: the same across all partners. A Manager: their account's usage this
month and what it would cost so far. Users and Annotators: their account's usage, never prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import CUSTOMER_ROLES, Actor
from core.accounts.permissions import allowed
from core.billing import alerts, plans, rating, wallet
from core.pricing import Rating
from core.usage import reports as usage_reports


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


@dataclass
class Overview:
    period: tuple[date, date]
    customers_active: int | None = None
    customers_suspended: int | None = None
    active_users: int | None = None
    usage: list[MetricFigure] = field(default_factory=list)
    open_alerts: list = field(default_factory=list)
    wallet: wallet.WalletView | None = None
    plan_name: str | None = None
    month_to_date: Rating | None = None


def overview(session: Session, actor: Actor, today: date | None = None, *, top_metrics: int = 4) -> Overview:
    today = today or date.today()
    start = today.replace(day=1)
    out = Overview(period=(start, today))
    if allowed(actor, "account.list"):
        rows = accounts.list_accounts(session, actor)
        out.customers_active = sum(1 for r in rows if r.status == "active")
        out.customers_suspended = sum(1 for r in rows if r.status == "suspended")
        out.active_users = sum(r.users for r in rows)
    if allowed(actor, "usage.view"):
        summary = usage_reports.usage_summary(session, actor, start=start, end=today, top=1)
        labels = usage_reports.metric_labels(session)
        ranked = sorted((m for m, v in summary.totals.items() if v), key=lambda m: -summary.totals[m])
        out.usage = [MetricFigure(m, labels.get(m, m), summary.totals[m], summary.previous_totals.get(m, Decimal(0)))
                     for m in ranked[:top_metrics]]
    if actor.role not in CUSTOMER_ROLES and allowed(actor, "plan.view"):
        out.open_alerts = alerts.list_alerts(session, actor, open_only=True)[:10]
    if not actor.is_admin and allowed(actor, "wallet.view", actor.partner_id):
        out.wallet = wallet.wallet_view(session, actor, actor.partner_id)
    if actor.account_id is not None and allowed(actor, "plan.view", actor.partner_id, actor.account_id):
        current = plans.current_assignment(session, actor, actor.partner_id, actor.account_id)
        if current is not None:
            out.plan_name = current.assignment.plan_name
            out.month_to_date = rating.preview_month_to_date(session, actor, actor.partner_id, actor.account_id,
                                                             today)
    return out
