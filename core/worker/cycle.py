"""The automatic billing cycle, per partner (tenant) and month.

1. Open: on the 1st (or the first run after it) every active partner whose cycle is enabled gets a
   ``billing_cycles`` row for the month just ended (status pending; INSERT ... ON CONFLICT DO NOTHING).
2. Drafts: a worker claims a pending row (FOR UPDATE SKIP LOCKED), generates the partner's drafts for the
   month (core.statements.lifecycle.generate_month: both issuers, the platform's and the partner's) and
   moves it to review, in one transaction. Audited as ``cycle.drafts``.
3. Finalise: once the *issuer's* review window (``billing_cycle_settings.review_days``, default 3) has
   passed since the drafts, a worker claims each remaining draft of the month (FOR UPDATE SKIP LOCKED on the
   statement) and finalises it (core.statements.lifecycle.finalise, audited, numbered once). Drafts the
   partner already finalised or voided by hand during the review are left alone.
4. Close: a cycle in review with no drafts left and its window passed is closed (``cycle.closed``).

E-mailing the final statements is core.worker.mail. Every step is idempotent: run it again and nothing
changes; two workers never do the same step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, literal, not_, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import SYSTEM, Actor
from core.accounts.permissions import authorize
from core.errors import DomainError, ValidationError
from core.statements import lifecycle
from db.engine import platform_scope, scoped_session
from db.models import Partner
from db.models.integration import BillingCycle, BillingCycleSettings
from db.models.statements import Statement

log = logging.getLogger("core.worker")
DEFAULT_REVIEW_DAYS = 3
C = BillingCycle.__table__
CS = BillingCycleSettings.__table__


# ---------------------------------------------------------------- settings (a page edits them)


@dataclass(frozen=True)
class CycleSettings:
    enabled: bool
    review_days: int


def get_settings(session: Session, actor: Actor, partner_id: int) -> CycleSettings:
    authorize(actor, "billing.manage", partner_id)
    row = session.get(BillingCycleSettings, partner_id)
    return CycleSettings(row.enabled, row.review_days) if row else CycleSettings(True, DEFAULT_REVIEW_DAYS)


def save_settings(session: Session, actor: Actor, partner_id: int, *, enabled: bool, review_days: Any) -> CycleSettings:
    """Turn the automatic cycle on or off and set the review window (0 to 28 days). Audited."""
    authorize(actor, "billing.manage", partner_id)
    try:
        days = int(review_days)
    except (TypeError, ValueError):
        raise ValidationError({"review_days": "Enter a whole number of days."}) from None
    if not 0 <= days <= 28:
        raise ValidationError({"review_days": "The review window is 0 to 28 days."})
    before = get_settings(session, actor, partner_id)
    values = {"enabled": bool(enabled), "review_days": days, "updated_by": actor.user_id or None,
              "updated_at": func.now()}
    session.execute(insert(CS).values(partner_id=partner_id, **values)
                    .on_conflict_do_update(index_elements=["partner_id"], set_=values))
    after = CycleSettings(bool(enabled), days)
    if after != before:
        audit.record(session, actor, partner_id=partner_id, action="update", entity="billing_cycle_settings",
                     entity_id=partner_id, before=before.__dict__, after=after.__dict__)
    return after


def list_cycles(session: Session, actor: Actor, partner_id: int, limit: int = 24) -> list[BillingCycle]:
    authorize(actor, "billing.manage", partner_id)
    return list(session.scalars(select(BillingCycle).where(BillingCycle.partner_id == partner_id)
                                .order_by(BillingCycle.period_start.desc()).limit(limit)))


# ---------------------------------------------------------------- the steps


def previous_month(today: date) -> date:
    first = today.replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def _open_cycles(session: Session, now: datetime) -> int:
    """Step 1: a pending cycle for last month for every active partner with the cycle enabled."""
    month = previous_month(now.astimezone(UTC).date())
    enabled = or_(CS.c.enabled.is_(None), CS.c.enabled)
    partners = (select(Partner.id, literal(month), literal("pending"))
                .select_from(Partner).outerjoin(CS, CS.c.partner_id == Partner.id)
                .where(Partner.active, enabled))
    res = session.execute(insert(C).from_select(["partner_id", "period_start", "status"], partners)
                          .on_conflict_do_nothing().returning(C.c.partner_id))
    return len(res.all())


def _generate_one(session: Session, now: datetime, skip: set[tuple[int, date]] | None = None) -> bool | None:
    """Step 2 for one claimed pending cycle (the caller's transaction): True when its drafts were made,
    False when the core refused (logged, added to `skip`, tried again next round), None when none is pending."""
    q = select(C).where(C.c.status == "pending").order_by(C.c.period_start, C.c.partner_id).limit(1)
    if skip:
        q = q.where(not_(tuple_(C.c.partner_id, C.c.period_start).in_(list(skip))))
    cyc = session.execute(q.with_for_update(skip_locked=True)).first()
    if cyc is None:
        return None
    try:
        with session.begin_nested():
            outcomes = lifecycle.generate_month(session, SYSTEM, cyc.partner_id, cyc.period_start)
    except DomainError as exc:
        log.warning("billing cycle: drafts of partner %s for %s not generated: %s", cyc.partner_id,
                    cyc.period_start, exc)
        if skip is not None:
            skip.add((cyc.partner_id, cyc.period_start))
        return False
    drafts = sum(1 for o in outcomes if o.action in ("created", "updated", "unchanged"))
    session.execute(update(C).where(C.c.partner_id == cyc.partner_id, C.c.period_start == cyc.period_start)
                    .values(status="review", drafts_at=now, drafts=drafts))
    audit.record(session, SYSTEM, partner_id=cyc.partner_id, action="cycle.drafts", entity="billing_cycle",
                 entity_id=cyc.period_start.isoformat(), after={"drafts": drafts, "statements": len(outcomes)})
    return True


def _window_passed(now: datetime, issuer_col: Any) -> Any:
    """SQL: the issuer's review window has passed since the cycle's drafts (and its cycle is enabled)."""
    days = (select(func.coalesce(func.max(CS.c.review_days), DEFAULT_REVIEW_DAYS))
            .where(CS.c.partner_id == issuer_col).scalar_subquery())
    disabled = select(CS.c.partner_id).where(CS.c.partner_id == issuer_col, not_(CS.c.enabled)).exists()
    return and_(C.c.drafts_at + func.make_interval(0, 0, 0, days) <= now, not_(disabled))


def _finalise_one(session: Session, now: datetime, skip: set[tuple[int, int]]) -> bool | None:
    """Step 3 for one claimed draft whose issuer's review window has passed: True when finalised, False when
    the core refused (logged, added to `skip`, left for a person), None when none is due."""
    S = Statement.__table__
    q = (select(S.c.partner_id, S.c.id)
         .join(C, and_(C.c.partner_id == S.c.partner_id, C.c.period_start == S.c.period_start))
         .where(C.c.status == "review", S.c.status == "draft", S.c.kind != "credit_note",
                _window_passed(now, S.c.issuer_partner_id))
         .order_by(S.c.partner_id, S.c.id).limit(1).with_for_update(of=S, skip_locked=True))
    if skip:
        q = q.where(not_(tuple_(S.c.partner_id, S.c.id).in_(list(skip))))
    row = session.execute(q).first()
    if row is None:
        return None
    try:
        with session.begin_nested():
            lifecycle.finalise(session, SYSTEM, row.partner_id, row.id, today=now.astimezone(UTC).date())
    except DomainError as exc:  # e.g. nothing left to bill
        log.warning("billing cycle: statement %s of partner %s not finalised: %s", row.id, row.partner_id, exc)
        skip.add((row.partner_id, row.id))
        return False
    return True


def _close_due(session: Session, now: datetime) -> int:
    """Step 4: close the cycles in review that have no drafts left and whose own window has passed."""
    S = Statement.__table__
    drafts_left = select(S.c.id).where(S.c.partner_id == C.c.partner_id, S.c.period_start == C.c.period_start,
                                       S.c.status == "draft", S.c.kind != "credit_note").exists()
    due = session.execute(select(C.c.partner_id, C.c.period_start).where(
        C.c.status == "review", not_(drafts_left), _window_passed(now, C.c.partner_id))
        .with_for_update(skip_locked=True)).all()
    for partner_id, period_start in due:
        finals = session.scalar(select(func.count()).select_from(S).where(
            S.c.partner_id == partner_id, S.c.period_start == period_start, S.c.status == "final",
            S.c.kind != "credit_note"))
        session.execute(update(C).where(C.c.partner_id == partner_id, C.c.period_start == period_start)
                        .values(status="closed", closed_at=now, finalised=finals))
        audit.record(session, SYSTEM, partner_id=partner_id, action="cycle.closed", entity="billing_cycle",
                     entity_id=period_start.isoformat(), after={"final_statements": finals})
    return len(due)


def run(engine: Any, now: datetime | None = None) -> dict[str, int]:
    """All the steps that are due, each claimed unit in its own transaction."""
    now = now or clock.now()
    out = {"opened": 0, "generated": 0, "finalised": 0, "failed": 0, "closed": 0}
    scope = platform_scope("worker: billing cycle")  # every partner's cycle (row-level security), logged
    with scoped_session(engine, scope) as s, s.begin():
        out["opened"] = _open_cycles(s, now)
    not_generated: set[tuple[int, date]] = set()
    while True:
        with scoped_session(engine, scope) as s, s.begin():
            made = _generate_one(s, now, not_generated)
        if made is None:
            break
        out["generated" if made else "failed"] += 1
    skip: set[tuple[int, int]] = set()
    while True:
        with scoped_session(engine, scope) as s, s.begin():
            done = _finalise_one(s, now, skip)
        if done is None:
            break
        out["finalised" if done else "failed"] += 1
    with scoped_session(engine, scope) as s, s.begin():
        out["closed"] = _close_due(s, now)
    return out
