"""The billing cycle closes the month by itself, exactly once, with two workers running at once."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM
from core.worker import cycle, jobs, mail
from db.engine import make_engine
from db.models import AuditEntry
from tests.api.cycle_helpers import NOV_1, month_to_bill


def _count(db, sql: str) -> int:
    with db.connect() as c:
        return c.execute(text(sql)).scalar()


def _two_workers(database_url, step) -> list:
    """Run step(engine) in two threads with their own engines (connections), started together."""
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        engine = make_engine(database_url)
        try:
            barrier.wait()
            results.append(step(engine))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_two_workers_close_the_month_exactly_once(world, db, database_url):
    month_to_bill(world, db, review_days=2)
    with db.connect() as c:
        world.house_id = c.execute(text("SELECT id FROM partners WHERE is_house")).scalar()

    def round_(now):
        return lambda engine: (cycle.run(engine, now), mail.queue_all(engine), jobs.run_once(engine, now, force=True))

    # the 1st: drafts for every partner, once
    _two_workers(database_url, round_(NOV_1))
    assert _count(db, "SELECT count(*) FROM billing_cycles WHERE period_start = '2026-10-01' AND status = 'review'") == 3
    assert _count(db, "SELECT count(*) FROM audit_log WHERE action = 'cycle.drafts'") == 3
    assert _count(db, "SELECT count(*) FROM statements WHERE status = 'draft'") == 2
    assert _count(db, "SELECT count(*) FROM audit_log WHERE entity = 'statement' AND action = 'generate'") == 2
    # inside the review window: nothing is finalised
    _two_workers(database_url, round_(NOV_1 + timedelta(days=1, hours=23)))
    assert _count(db, "SELECT count(*) FROM statements WHERE status = 'final'") == 0
    # after it: every draft finalised once, numbered once, e-mailed once; the cycles close
    _two_workers(database_url, round_(NOV_1 + timedelta(days=2, minutes=1)))
    assert _count(db, "SELECT count(*) FROM statements WHERE status = 'final'") == 2
    assert _count(db, "SELECT count(*) FROM audit_log WHERE entity = 'statement' AND action = 'finalise'") == 2
    assert _count(db, "SELECT count(DISTINCT number) FROM statements WHERE status = 'final'") == 2
    with db.connect() as c:  # issued on the worker's day (its clock), numbered in that year
        assert set(c.execute(text("SELECT issued_on FROM statements WHERE status = 'final'")).scalars()) == {
            (NOV_1 + timedelta(days=2)).date()}
    assert _count(db, "SELECT count(*) FROM outbox WHERE kind = 'statement'") == 2
    assert _count(db, "SELECT count(*) FROM outbox_attachments") == 2
    assert _count(db, "SELECT count(*) FROM audit_log WHERE action = 'cycle.mail'") == 2
    # the platform's cycle closes after its window (2 days), the partners' after theirs (default 3)
    assert _count(db, "SELECT partner_id FROM billing_cycles WHERE status = 'closed'") == world.house_id
    # and again: idempotent, nothing more happens but the partners' cycles closing
    _two_workers(database_url, round_(NOV_1 + timedelta(days=3)))
    assert _count(db, "SELECT count(*) FROM billing_cycles WHERE status = 'closed'") == 3
    assert _count(db, "SELECT count(*) FROM audit_log WHERE action = 'cycle.closed'") == 3
    assert _count(db, "SELECT count(*) FROM audit_log WHERE entity = 'statement' AND action = 'finalise'") == 2
    assert _count(db, "SELECT count(*) FROM outbox WHERE kind = 'statement'") == 2
    assert _count(db, "SELECT count(*) FROM audit_log WHERE action LIKE 'cycle.%'") == 8  # 3 drafts, 2 mails, 3 closed
    with db.connect() as c:
        to = set(c.execute(text("SELECT recipient FROM outbox WHERE kind = 'statement'")).scalars())
    assert to == {"billing-std-a@example.com", "billing-std-b@example.com"}


def test_review_window_is_the_issuers_and_a_disabled_cycle_does_nothing(world, db):
    month_to_bill(world, db, review_days=5)
    with Session(db) as s, s.begin():
        cycle.save_settings(s, SYSTEM, world.b.partner_id, enabled=False, review_days=1)
    cycle.run(db, NOV_1)
    assert _count(db, "SELECT count(*) FROM billing_cycles") == 2  # house and A; B turned it off
    cycle.run(db, NOV_1 + timedelta(days=4))
    assert _count(db, "SELECT count(*) FROM statements WHERE status = 'final'") == 0  # the platform's 5 days
    cycle.run(db, NOV_1 + timedelta(days=5, seconds=1))
    assert _count(db, "SELECT count(*) FROM statements WHERE status = 'final'") == 1  # A's customer only
    with Session(db) as s:
        who = s.scalars(select(AuditEntry.actor_email).where(AuditEntry.action == "finalise")).all()
    assert who == ["system"]


def test_cycle_settings_are_validated_and_audited(world, db):
    import pytest

    from core.errors import PermissionDenied, ValidationError

    a = world.a
    with Session(db) as s, s.begin():
        assert cycle.get_settings(s, a.staff, a.partner_id) == cycle.CycleSettings(True, 3)
        with pytest.raises(ValidationError):
            cycle.save_settings(s, a.staff, a.partner_id, enabled=True, review_days=40)
        with pytest.raises(PermissionDenied):
            cycle.save_settings(s, a.staff, world.b.partner_id, enabled=True, review_days=4)
        cycle.save_settings(s, a.staff, a.partner_id, enabled=True, review_days=4)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "billing_cycle_settings")) == 1


def test_periodic_jobs_run_on_one_worker_at_a_time(world, db, database_url):
    results = _two_workers(database_url, lambda engine: jobs.run_periodic(engine, "api.idempotency_cleanup", NOV_1))
    assert sorted(r is None for r in results) == [False, True]  # one ran it, the other found it taken or done
    assert jobs.run_periodic(db, "api.idempotency_cleanup", NOV_1 + timedelta(minutes=5)) is None  # not due
    assert jobs.run_periodic(db, "api.idempotency_cleanup", NOV_1 + timedelta(hours=2)) == "removed 0"


def test_a_partner_whose_drafts_fail_does_not_hold_up_the_others(world, db, monkeypatch):
    from core.errors import Conflict
    from core.statements import lifecycle

    month_to_bill(world, db)
    real = lifecycle.generate_month

    def flaky(session, actor, partner_id, month, **kw):
        if partner_id == world.a.partner_id:
            raise Conflict("something is wrong with this partner's plans")
        return real(session, actor, partner_id, month, **kw)

    monkeypatch.setattr(lifecycle, "generate_month", flaky)
    out = cycle.run(db, NOV_1)
    assert (out["generated"], out["failed"]) == (2, 1)
    with db.connect() as c:
        rows = dict(c.execute(text("SELECT partner_id, status FROM billing_cycles")).all())
    assert rows[world.a.partner_id] == "pending" and rows[world.b.partner_id] == "review"
    monkeypatch.setattr(lifecycle, "generate_month", real)
    assert cycle.run(db, NOV_1 + timedelta(minutes=1))["generated"] == 1  # tried again next round
