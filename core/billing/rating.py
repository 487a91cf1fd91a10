"""Rating against the database: plan assignments × plan versions → segments → `core.pricing.rate`.

The money maths is the pure engine's (`core.pricing.rate`); this module only finds out which plan version
(with which customer overrides) was in force on which days of a period, and what the usage was on those
days. Statements, previews and what-if comparisons all go through `rate_account` / `rate_partner`.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.plans import assignments_in_force, versions_of
from core.billing.usage_detail import needs, with_detail
from core.errors import Conflict, NotFound, ValidationError
from core.pricing import PlanValidationError, Rating, Segment, Usage, apply_overrides, plan_from_dict, rate
from core.usage import aggregates as usage
from db.models import CustomerAccount, Partner

# Usage that never makes a customer an "active client" for partner client-count bands, besides metrics
# whose catalogue entry does not count (metrics.counts_as_active = false): events carrying one of these
# property values, e.g. the always-included year-end integration.
NEVER_COUNTS_PROPERTIES: dict[str, tuple[str, ...]] = {"integration": ("year_end",)}

ACTIVE_CLIENTS = "active_clients"


# ---------------------------------------------------------------- periods


def month_of(day: date) -> tuple[date, date]:
    """The calendar month containing `day`, as (first day, last day)."""
    return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _check_period(period_start: date, period_end: date) -> None:
    if not isinstance(period_start, date) or not isinstance(period_end, date):
        raise ValidationError({"period": "A period needs a start and an end date."})
    if period_end < period_start:
        raise ValidationError({"period": "The period ends before it starts."})


# ---------------------------------------------------------------- usage


def _period_usage(session: Session, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
    return dict(usage.period_usage(session, partner_id, account_id, start, end))


def active_clients(session: Session, actor: Actor, partner_id: int, period_start: date, period_end: date) -> int:
    """The partner's active clients in the period, for the partner's own staff or an admin (Pricing page)."""
    authorize(actor, "plan.manage", partner_id)
    return partner_active_clients(session, partner_id, period_start, period_end)


def partner_active_clients(session: Session, partner_id: int, period_start: date, period_end: date, *,
                           exclude_metrics: Iterable[str] = (),
                           exclude_properties: Mapping[str, Iterable[str]] | None = None) -> int:
    """How many of the partner's customer accounts were active clients in the period.

    An account counts when it was not deleted before the period ended and it has at least one usage event
    in the period of a metric that counts (catalogue flag `counts_as_active`, minus `exclude_metrics`),
    leaving out events whose properties carry an excluded value (default NEVER_COUNTS_PROPERTIES, e.g.
    integration = year_end). Corrections to finalised periods do not count.
    """
    from db.models.usage import Metric, UsageEvent

    _check_period(period_start, period_end)
    excluded = set(exclude_metrics)
    metrics = [k for k in session.scalars(select(Metric.key).where(Metric.counts_as_active)) if k not in excluded]
    if not metrics:
        return 0
    props = NEVER_COUNTS_PROPERTIES if exclude_properties is None else exclude_properties
    t1 = datetime.combine(period_end + timedelta(days=1), time.min, tzinfo=UTC)
    cond = [UsageEvent.partner_id == CustomerAccount.partner_id, UsageEvent.account_id == CustomerAccount.id,
            UsageEvent.day.between(period_start, period_end), UsageEvent.metric.in_(metrics),
            not_(UsageEvent.correction)]
    for prop, values in props.items():
        for value in values:
            cond.append(or_(UsageEvent.properties.is_(None), not_(UsageEvent.properties.contains({prop: value}))))
    q = (select(func.count()).select_from(CustomerAccount)
         .where(CustomerAccount.partner_id == partner_id,
                or_(CustomerAccount.deleted_at.is_(None), CustomerAccount.deleted_at >= t1),
                exists().where(and_(*cond))))
    return int(session.scalar(q) or 0)


# ---------------------------------------------------------------- segments


class RatingSource:
    """Where rating reads assignments, plan versions and usage: the database by default. Batch callers (the
    monthly statement run) pass a prefetched source with the same answers, to rate thousands of accounts
    without three queries each."""

    def __init__(self, session: Session):
        self.session = session

    def assignments(self, partner_id: int, account_id: int | None) -> list:
        return assignments_in_force(self.session, partner_id, account_id)

    def versions(self, plan_partner_id: int, plan_id: int) -> list:
        return versions_of(self.session, plan_partner_id, plan_id)

    def usage(self, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
        return _period_usage(self.session, partner_id, account_id, start, end)

    def plan_spec(self, version: Any, overrides: Mapping) -> Any:
        """The version's spec with an assignment's overrides (a batch source may reuse it: specs are frozen)."""
        return apply_overrides(plan_from_dict(version.spec), overrides)


class PrefetchedSource(RatingSource):
    """A RatingSource whose subclass prefetched one partner's assignments (`assignment_rows`, by account; None:
    the partner's own) and plan versions (`_versions`): answered from memory, other partners from the database."""

    partner_id: int
    assignment_rows: dict[int | None, list]
    _versions: dict[tuple[int, int], list]
    _daily: dict[int, list]
    _distinct: dict[int, list]
    _metrics: dict[str, Any]

    def assignments(self, partner_id: int, account_id: int | None) -> list:
        if partner_id != self.partner_id:
            return super().assignments(partner_id, account_id)
        by_day: dict[date, Any] = {}
        for r in self.assignment_rows.get(account_id, []):
            by_day[r.effective_from] = r  # of several on one day the newest counts
        return sorted(by_day.values(), key=lambda r: r.effective_from)

    def versions(self, plan_partner_id: int, plan_id: int) -> list:
        got = self._versions.get((plan_partner_id, plan_id))
        return got if got is not None else super().versions(plan_partner_id, plan_id)

    def _fold(self, account_id: int, start: date, end: date) -> dict[str, Decimal]:
        """One account's quantity per metric over start..end from the prefetched daily rows (`_daily`) and distinct
        values (`_distinct`), by account: exactly what core.usage.aggregates.period_usage answers."""
        out = {k: Decimal(0) for k in self._metrics}
        stats: dict[str, list] = {}
        for r in self._daily.get(account_id, []):
            if start <= r.day <= end:
                st = stats.setdefault(r.metric, [Decimal(0), 0, None, None])
                st[0] += r.qty_sum
                st[1] += r.events
                st[2] = r.qty_max if st[2] is None else max(st[2], r.qty_max)
                if st[3] is None or (r.last_at, r.last_event_id) > (st[3].last_at, st[3].last_event_id):
                    st[3] = r
        distinct: dict[str, set] = {}
        for r in self._distinct.get(account_id, []):
            if start <= r.day <= end:
                distinct.setdefault(r.metric, set()).add(r.value)
        for metric, (qsum, n, qmax, last) in stats.items():
            m = self._metrics.get(metric)
            if m is not None:
                out[metric] = usage.value_for(m.aggregation, qsum, n, qmax, last.last_qty, len(distinct.get(metric, ())))
        return out


def _segments(session: Session, partner_id: int, account_id: int | None, period_start: date, period_end: date,
              usage_until: date | None, source: RatingSource | None = None) -> list[Segment]:
    src = source or RatingSource(session)
    rows = src.assignments(partner_id, account_id)
    out: list[Segment] = []
    for i, a in enumerate(rows):
        a_end = rows[i + 1].effective_from - timedelta(days=1) if i + 1 < len(rows) else period_end
        start, end = max(a.effective_from, period_start), min(a_end, period_end)
        if end < start:
            continue
        versions = src.versions(a.plan_partner_id, a.plan_id)
        # version boundaries inside [start, end]: the first version also covers days before its date
        cuts = sorted({start, *(v.effective_from for v in versions if start < v.effective_from <= end)})
        for j, s_start in enumerate(cuts):
            s_end = cuts[j + 1] - timedelta(days=1) if j + 1 < len(cuts) else end
            version = max((v for v in versions if v.effective_from <= s_start), key=lambda v: v.version,
                          default=versions[0])
            try:
                spec = src.plan_spec(version, a.overrides)
            except PlanValidationError as exc:
                raise Conflict(f"Plan {a.plan_name} version {version.version} cannot be priced with this "
                               f"customer's overrides: {exc}") from None
            u_end = s_end if usage_until is None else min(s_end, usage_until)
            if u_end < s_start:  # nothing recorded yet: zero events, for charges that count them
                usage: dict[str, Decimal | Usage] = {
                    m: Usage(Decimal(0), 0, () if n.events else None) for m, n in needs(spec).items()}
            elif account_id is None:
                usage = {ACTIVE_CLIENTS: Decimal(partner_active_clients(session, partner_id, s_start, u_end))}
            else:
                usage = with_detail(session, spec, src.usage(partner_id, account_id, s_start, u_end), partner_id,
                                    account_id, s_start, u_end)
            out.append(Segment(spec, s_start, s_end, usage))
    return out


def segments_for(session: Session, partner_id: int, account_id: int | None, period_start: date,
                 period_end: date, usage_until: date | None = None,
                 source: RatingSource | None = None) -> list[Segment]:
    """The parts of the period priced under one plan version each (assignment changes and new versions
    split the period), each with its own usage. account_id None = the partner's own partner-level plan.
    `usage_until` stops usage at that day (month-to-date previews); fees still cover the whole period."""
    _check_period(period_start, period_end)
    return _segments(session, partner_id, account_id, period_start, period_end, usage_until, source)


def _empty(currency: str, period_start: date, period_end: date) -> Rating:
    return Rating(currency=currency, period_start=period_start, period_end=period_end, lines=(), total=Decimal(0))


def rate_account(session: Session, actor: Actor, partner_id: int, account_id: int, period_start: date,
                 period_end: date, usage_until: date | None = None) -> Rating:
    """Rate a customer account's period with its plan(s) and overrides. No plan = no lines, total 0."""
    authorize(actor, "plan.view", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None:
        raise NotFound(f"Customer account {account_id} does not exist.")
    segs = segments_for(session, partner_id, account_id, period_start, period_end, usage_until)
    return rate(segs, period_start, period_end) if segs else _empty(acc.currency, period_start, period_end)


def preview_month_to_date(session: Session, actor: Actor, partner_id: int, account_id: int,
                          today: date | None = None) -> Rating:
    """'At this month's usage so far, this customer would pay …': the whole month's fees and the usage
    from the 1st up to today."""
    day = today or clock.today()
    start, end = month_of(day)
    return rate_account(session, actor, partner_id, account_id, start, end, usage_until=day)


def rate_partner(session: Session, actor: Actor, partner_id: int, period_start: date, period_end: date,
                 usage_until: date | None = None) -> Rating:
    """Rate a partner's partner-level plan (client-count bands ...): the usage is `active_clients`."""
    authorize(actor, "plan.view", partner_id)
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    segs = segments_for(session, partner_id, None, period_start, period_end, usage_until)
    return rate(segs, period_start, period_end) if segs else _empty(partner.currency, period_start, period_end)
