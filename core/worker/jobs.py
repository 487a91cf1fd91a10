"""The worker's round: webhooks, the billing cycle, statement e-mails, the outbox, periodic jobs.

Periodic jobs are rows of ``worker_schedule``: a worker claims a due row with FOR UPDATE SKIP LOCKED, runs
the job while holding it, and sets the next run, so each job runs on one worker at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core import clock
from core.billing import wallet
from core.notify import outbox, webhooks
from core.usage.partitions import ensure_partitions
from core.worker import cycle, mail
from db.engine import platform_scope, scoped_begin, scoped_session
from db.models.integration import ApiIdempotency, WorkerSchedule

log = logging.getLogger("core.worker")
W = WorkerSchedule.__table__
IDEMPOTENCY_KEEP = timedelta(days=1)


def _in_transaction(call: Callable[[Session, datetime], Any]) -> Callable[[Engine, datetime], str]:
    """A wallet job: one call of core.billing.wallet in its own transaction; its result as text."""

    def job(engine: Engine, now: datetime) -> str:
        with scoped_session(engine, platform_scope("worker: wallet job")) as s, s.begin():
            return f"done: {call(s, now)!r}"[:500]
    return job


def _idempotency_cleanup(engine: Engine, now: datetime) -> str:
    with scoped_begin(engine, platform_scope("worker: idempotency clean-up")) as conn:
        idem = ApiIdempotency.__table__
        n = conn.execute(idem.delete().where(idem.c.created_at < now - IDEMPOTENCY_KEEP)).rowcount
    return f"removed {n}"


def _cycle(engine: Engine, now: datetime) -> str:
    return repr(cycle.run(engine, now))


# kind -> (every, job(engine, now) -> result text)
PERIODIC: dict[str, tuple[timedelta, Callable[[Engine, datetime], str]]] = {
    "billing.cycle": (timedelta(minutes=1), _cycle),
    "wallet.retry_auto_purchases": (timedelta(minutes=1), _in_transaction(
        lambda s, now: wallet.retry_due_auto_purchases(s, now))),
    "wallet.expire_lots": (timedelta(hours=1), _in_transaction(lambda s, now: len(wallet.expire_lots(s, now.date())))),
    "wallet.reconcile_intents": (timedelta(minutes=5), _in_transaction(
        lambda s, now: wallet.reconcile(s, now, older_than_seconds=60))),
    "api.idempotency_cleanup": (timedelta(hours=1), _idempotency_cleanup),
    "usage.partitions": (timedelta(hours=6), lambda engine, now: f"created {ensure_partitions(engine, now.date())}"),
}


def run_periodic(engine: Engine, kind: str, now: datetime, *, force: bool = False) -> str | None:
    """Run the job if it is due and no other worker holds it. Returns its result, or None if not run."""
    every, job = PERIODIC[kind]
    with engine.begin() as conn:
        conn.execute(insert(W).values(kind=kind, next_run_at=now).on_conflict_do_nothing())
    with Session(engine) as s, s.begin():
        q = select(W.c.kind).where(W.c.kind == kind)
        if not force:
            q = q.where(W.c.next_run_at <= now)
        if s.execute(q.with_for_update(skip_locked=True)).first() is None:
            return None
        try:
            result = job(engine, now)
        except Exception as exc:  # a failing job is logged and retried next time; the worker goes on
            log.exception("worker job %s failed", kind)
            result = f"failed: {type(exc).__name__}: {exc}"[:500]
        s.execute(update(W).where(W.c.kind == kind).values(next_run_at=now + every, last_run_at=now,
                                                           last_result=result))
    return result


def run_once(engine: Engine, now: datetime | None = None, *, force: bool = False) -> dict[str, Any]:
    """One round of everything that is due."""
    now = now or clock.now()
    out: dict[str, Any] = {"webhooks": webhooks.deliver_due(engine, now)}
    for kind in PERIODIC:
        result = run_periodic(engine, kind, now, force=force)
        if result is not None:
            out[kind] = result
    out["statement_mails_queued"] = mail.queue_all(engine)
    out["mails_sent"] = outbox.deliver_pending(engine, attach=mail.attachments)
    return out
