"""The worker's periodic jobs and its command line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
from sqlalchemy import text

from core.billing import wallet
from core.worker import jobs
from tests.api.cycle_helpers import NOV_1

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("kind,fn", [("wallet.retry_auto_purchases", "retry_due_auto_purchases"),
                                     ("wallet.expire_lots", "expire_lots"),
                                     ("wallet.reconcile_intents", "reconcile")])
def test_wallet_jobs_call_the_wallets_functions(world, db, kind, fn, monkeypatch):
    calls = []
    real = getattr(wallet, fn)
    monkeypatch.setattr(wallet, fn, lambda *a, **k: calls.append(fn) or real(*a, **k))
    result = jobs.run_periodic(db, kind, NOV_1)
    assert result is not None and result.startswith("done:"), result
    with db.connect() as c:
        row = c.execute(text("SELECT next_run_at, last_result FROM worker_schedule WHERE kind = :k"),
                        {"k": kind}).one()
    assert row.next_run_at == NOV_1 + jobs.PERIODIC[kind][0] and row.last_result == result
    assert calls == [fn]


def test_a_failing_job_is_recorded_and_the_round_goes_on(db, monkeypatch):
    def boom(engine, now):
        raise RuntimeError("no luck")

    monkeypatch.setitem(jobs.PERIODIC, "api.idempotency_cleanup", (timedelta(hours=1), boom))
    out = jobs.run_once(db, NOV_1)
    assert out["api.idempotency_cleanup"] == "failed: RuntimeError: no luck"
    assert "billing.cycle" in out  # the other jobs ran


def test_old_idempotency_answers_are_removed(world, db):
    with db.begin() as c:
        c.execute(text("INSERT INTO api_idempotency (partner_id, idem_key, request_hash, created_at) VALUES "
                       "(:p, 'old', 'h', :old), (:p, 'new', 'h', :new)"),
                  {"p": world.a.partner_id, "old": NOV_1 - timedelta(days=2), "new": NOV_1 - timedelta(hours=2)})
    assert jobs.run_periodic(db, "api.idempotency_cleanup", NOV_1) == "removed 1"
    with db.connect() as c:
        assert c.execute(text("SELECT idem_key FROM api_idempotency")).scalars().all() == ["new"]


def test_python_m_core_worker_once(world, db, database_url):
    with db.begin() as c:
        c.execute(text("INSERT INTO outbox (partner_id, kind, recipient, subject, body) "
                       "VALUES (:p, 'low_balance', 'ops@example.com', 'Low', 'Buy')"), {"p": world.a.partner_id})
    env = {k: v for k, v in os.environ.items() if not k.startswith("RC_SMTP")}
    env["DATABASE_URL"] = database_url
    out = subprocess.run([sys.executable, "-m", "core.worker", "--once"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "worker started" in out.stderr and "worker stopped" in out.stderr
    with db.connect() as c:
        assert c.execute(text("SELECT error FROM outbox")).scalar() == "not sent: no SMTP"
        kinds = set(c.execute(text("SELECT kind FROM worker_schedule WHERE last_run_at IS NOT NULL")).scalars())
    assert kinds == set(jobs.PERIODIC)
