"""Threshold alerts: recorded once per account, charge and month when usage crosses a charge's threshold.

`check_thresholds` re-rates the month to date of the accounts that just received usage (it runs on the
usage engine's `core.usage.ingest.on_events_recorded` hook, in the same transaction as the events) and stores
each alert the pure engine reports with INSERT … ON CONFLICT DO NOTHING, so a crossing is recorded once
however often usage arrives afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import CUSTOMER_ROLES, SYSTEM, Actor
from core.accounts.permissions import authorize
from core.billing.rating import month_of, rate_account
from core.errors import Conflict, NotFound, PermissionDenied
from core.notify import outbox as notify
from db.models import CustomerAccount
from db.models.billing import BillingAlert, PlanAssignment, PlanVersion


def check_thresholds(session: Session, partner_id: int, account_ids: Iterable[int], day: date) -> int:
    """Re-rate the month to date (of `day`) for these accounts and record new threshold alerts.

    Returns how many alerts were new. Accounts without a plan produce nothing.
    """
    start, end = month_of(day)
    new = 0
    for account_id in sorted(set(account_ids)):
        rating = rate_account(session, SYSTEM, partner_id, account_id, start, end, usage_until=day)
        for alert in rating.alerts:
            stmt = (insert(BillingAlert)
                    .values(partner_id=partner_id, account_id=account_id, metric=alert.metric,
                            charge_id=alert.charge_id, period_start=start, threshold=alert.threshold,
                            quantity=alert.quantity, message=alert.message)
                    .on_conflict_do_nothing(constraint="uq_billing_alerts_once")
                    .returning(BillingAlert.id))
            alert_id = session.execute(stmt).scalar()
            if alert_id is not None:
                new += 1
                # the partner hears of it: outbox e-mail and the usage.threshold_crossed webhook event
                notify.notify(session, partner_id, "threshold_crossed", f"Usage threshold crossed: {alert.metric}",
                              alert.message, data={"alert_id": alert_id, "account_id": account_id,
                                                   "metric": alert.metric, "threshold": alert.threshold,
                                                   "quantity": alert.quantity, "period_start": start,
                                                   "message": alert.message})
    return new


def threshold_accounts(session: Session, partner_id: int, account_ids: Iterable[int], metrics: set[str],
                       month_start: date, month_end: date) -> set[int]:
    """Of these accounts, those with a plan in force in the month that has a threshold charge on one of
    the metrics: the only ones worth re-rating when usage arrives (two queries, whatever the batch size)."""
    ids = set(account_ids)
    if not ids or not metrics:
        return set()
    rows = session.execute(
        select(PlanAssignment.account_id, PlanAssignment.effective_from, PlanVersion.spec)
        .join(PlanVersion, (PlanVersion.partner_id == PlanAssignment.plan_partner_id)
              & (PlanVersion.plan_id == PlanAssignment.plan_id))
        .where(PlanAssignment.partner_id == partner_id, PlanAssignment.subject == "account",
               PlanAssignment.account_id.in_(ids), PlanAssignment.effective_from <= month_end))
    # Coarse on purpose (any version of any assignment up to the month's end): check_thresholds decides.
    return {acc for acc, _, spec in rows
            if any(c.get("model") == "threshold" and c.get("metric") in metrics for c in spec.get("charges") or [])}


def on_events_recorded(session: Session, partner_id: int, groups: list) -> None:
    """core.usage.ingest hook (fn(session, partner_id, groups: list[UsageGroup])): for every touched month
    (usually one), re-rate the accounts whose plan has a threshold on a touched metric, up to the latest
    day that received usage."""
    touched: dict[date, tuple[set[int], set[str], date]] = {}
    for g in groups:
        month = g.day.replace(day=1)
        ids, metrics, last = touched.get(month, (set(), set(), g.day))
        ids.add(g.account_id)
        metrics.add(g.metric)
        touched[month] = (ids, metrics, max(last, g.day))
    for month, (ids, metrics, last) in touched.items():
        candidates = threshold_accounts(session, partner_id, ids, metrics, month, month_of(month)[1])
        if candidates:
            check_thresholds(session, partner_id, candidates, last)



@dataclass(frozen=True)
class AlertRow:
    partner_id: int
    id: int
    account_id: int
    account_name: str
    metric: str
    charge_id: str
    period_start: date
    threshold: Decimal
    quantity: Decimal
    message: str
    created_at: datetime
    acknowledged_at: datetime | None


def list_alerts(session: Session, actor: Actor, partner_id: int | None = None, account_id: int | None = None,
                start: date | None = None, end: date | None = None, *, open_only: bool = False) -> list[AlertRow]:
    """Threshold alerts visible to the actor (staff: their tenant; admins: all; a Manager: their own
    account; nobody else), optionally for one account and for periods starting in [start, end]."""
    if actor.role in CUSTOMER_ROLES:
        partner_id, account_id = actor.partner_id, actor.account_id
    elif not actor.is_admin:
        partner_id = actor.partner_id
    if partner_id is None:
        authorize(actor, "plan.view")
        if not actor.is_admin:
            raise PermissionDenied("Only platform admins see every partner's alerts.")
    else:
        authorize(actor, "plan.view", partner_id, account_id)
    q = (select(BillingAlert, CustomerAccount.name)
         .join(CustomerAccount, (CustomerAccount.partner_id == BillingAlert.partner_id)
               & (CustomerAccount.id == BillingAlert.account_id)))
    if partner_id is not None:
        q = q.where(BillingAlert.partner_id == partner_id)
    if account_id is not None:
        q = q.where(BillingAlert.account_id == account_id)
    if start is not None:
        q = q.where(BillingAlert.period_start >= start.replace(day=1))
    if end is not None:
        q = q.where(BillingAlert.period_start <= end)
    if open_only:
        q = q.where(BillingAlert.acknowledged_at.is_(None))
    q = q.order_by(BillingAlert.created_at.desc(), BillingAlert.id.desc()).limit(1000)
    return [AlertRow(a.partner_id, a.id, a.account_id, name, a.metric, a.charge_id, a.period_start, a.threshold,
                     a.quantity, a.message, a.created_at, a.acknowledged_at) for a, name in session.execute(q)]


def acknowledge_alert(session: Session, actor: Actor, partner_id: int, alert_id: int) -> BillingAlert:
    """Mark an alert as seen (staff of the tenant, admins, or the account's Manager)."""
    alert = session.get(BillingAlert, (partner_id, alert_id))
    if alert is None:
        authorize(actor, "plan.view", partner_id)  # a foreign tenant's id is a permission error, not "missing"
        raise NotFound(f"Alert {alert_id} does not exist.")
    authorize(actor, "plan.view", partner_id, alert.account_id)
    if alert.acknowledged_at is not None:
        raise Conflict("This alert is already acknowledged.")
    alert.acknowledged_at = func.now()
    alert.acknowledged_by = actor.user_id or None
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="acknowledge", entity="billing_alert",
                 entity_id=alert_id, account_id=alert.account_id, after={"acknowledged": True})
    return alert
