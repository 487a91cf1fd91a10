"""Reconciliation: settle every purchase intent left `pending` by asking the gateway by its key, and send the
money refunds recorded with refund entries. Plain functions taking a session (or engine) and the clock, for
`python -m core.billing.wallet reconcile` and the periodic job (see docs/wallet.md "Reconciliation")."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.billing.payments import engine_of, get_gateway
from core.billing.purchases import CH, RF, I, intent_row, run_intent, settle
from db.engine import Scope, partner_scope, scoped_session, tenant_session

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    credited: int = 0
    declined: int = 0
    still_pending: int = 0
    refunds_sent: int = 0
    refunds_failed: int = 0


def reconcile(session: Session, now: datetime, *, older_than_seconds: float = 0) -> ReconcileReport:
    """Settle every open purchase intent by asking the gateway by its key (a key the gateway never saw is
    charged now, with that same key: the attempt is retried, never doubled), then send pending refunds.
    Internal (no actor): for `python -m core.billing.wallet reconcile` and the periodic job."""
    engine = engine_of(session)
    report = ReconcileReport()
    cutoff = now.timestamp() - older_than_seconds
    rows = session.execute(select(I.c.partner_id, I.c.id, I.c.requested_at).where(I.c.status == "pending")
                           .order_by(I.c.partner_id, I.c.id)).all()
    for partner_id, intent_id, requested_at in rows:
        if requested_at.timestamp() > cutoff:
            report.still_pending += 1
            continue
        with tenant_session(engine, partner_id) as s:
            intent = intent_row(s, (partner_id, intent_id))
        result = get_gateway().status(intent.idempotency_key)
        try:
            status = (settle(engine, (partner_id, intent_id), result, now) if result is not None
                      else run_intent(engine, (partner_id, intent_id), now))
        except Exception:  # noqa: BLE001 - one bad intent must not stop the others
            log.exception("reconcile: intent %s still pending", intent_id)
            status = "pending"
        report.credited += status == "credited"
        report.declined += status == "declined"
        report.still_pending += status == "pending"
    sent, failed = send_refunds(engine, now)
    report.refunds_sent, report.refunds_failed = sent, failed
    return report


def send_refunds(engine: Engine, now: datetime, partner_id: int | None = None) -> tuple[int, int]:
    """Send the pending money refunds to the gateway (by key), after the refund entries committed."""
    scope = Scope(platform="refunds: every partner") if partner_id is None else partner_scope(partner_id)
    with scoped_session(engine, scope) as s:
        q = select(RF.c.partner_id, RF.c.id).where(RF.c.status == "pending").order_by(RF.c.partner_id, RF.c.id)
        todo = s.execute(q if partner_id is None else q.where(RF.c.partner_id == partner_id)).all()
    sent = failed = 0
    for pid, refund_id in todo:
        with tenant_session(engine, pid) as s, s.begin():
            rf = s.execute(select(RF).where(RF.c.partner_id == pid, RF.c.id == refund_id).with_for_update()).one()
            if rf.status != "pending":
                continue
            ref = s.scalar(select(CH.c.gateway_ref).where(CH.c.partner_id == pid, CH.c.id == rf.charge_id))
            res = get_gateway().refund(ref or "", rf.amount, rf.currency, rf.idempotency_key)
            s.execute(update(RF).where(RF.c.partner_id == pid, RF.c.id == refund_id).values(
                status="refunded" if res.ok else "failed", gateway_ref=res.refund_ref, error=res.error,
                settled_at=now))
        sent += res.ok
        failed += not res.ok
    return sent, failed
