"""Concurrent draws from 8 connections, and a draw killed half-way (pg_terminate_backend)."""

from __future__ import annotations

import queue
import threading
import time
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from core.billing import wallet
from db.engine import make_engine, partner_scope, scoped_session, unit_of_work
from db.models.wallet import OutboxMessage, PurchaseIntent, WalletLedgerEntry
from tests.wallet_helpers import balance_of, ledger_kinds, setup_wallet, wait_purchases

D = Decimal
THREADS = 8


def _run_threads(engine, t, per_thread: int, credits: Decimal, key=lambda i, j: f"t{i}-{j}"):
    barrier = threading.Barrier(THREADS)
    results: list[wallet.DrawResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait()
            for j in range(per_thread):
                with unit_of_work(engine, partner_scope(t.partner_id)) as s:  # as inside its ingestion (RLS)
                    r = wallet.draw(s, t.partner_id, t.account_id, credits, key(i, j))
                with lock:
                    results.append(r)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    return results


@pytest.fixture
def engine8(database_url):
    eng = make_engine(database_url, pool_size=THREADS, max_overflow=4)
    yield eng
    eng.dispose()


def test_concurrent_draws_refuse_policy_floor_zero(world, db, engine8):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)
    results = _run_threads(engine8, t, 30, D(5))  # 1,200 credits demanded, 1,000 available
    applied = [r for r in results if r.status == "applied"]
    assert len(applied) == 200 and sum(r.status == "refused" for r in results) == 40
    assert balance_of(db, t.partner_id) == 0
    assert len({r.entry_id for r in applied}) == 200


def test_concurrent_draws_overdraft_floor_never_crossed(world, db, engine8):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000, overdraft_policy="overdraft", overdraft_limit=97)
    results = _run_threads(engine8, t, 30, D(5))
    assert sum(r.status == "applied" for r in results) == 219  # 1000 + 97 = 1097 -> 219 draws of 5
    assert balance_of(db, t.partner_id) == D(-95)
    with Session(db) as s:
        lowest = s.scalar(select(WalletLedgerEntry.balance_after).order_by(WalletLedgerEntry.balance_after).limit(1))
    assert lowest >= D(-97)


def test_concurrent_draws_auto_purchase_one_open_at_a_time(world, db, engine8):
    """8 threads deplete the wallet again and again: each depletion starts one purchase (never two open at
    once: a partial unique index backs it), draws go on under the policy meanwhile, every purchase is
    credited exactly once and linked to the draw that started it."""
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000, auto_buy_credits=1000)
    results = _run_threads(engine8, t, 50, D(7))
    wait_purchases()
    started = {r.auto_purchase_intent_id for r in results if r.auto_purchase == "pending"}
    applied = sum(r.status == "applied" for r in results)
    kinds = ledger_kinds(db, t.partner_id)
    with Session(db) as s:
        intents = s.execute(select(PurchaseIntent.id, PurchaseIntent.status, PurchaseIntent.trigger_key)
                            .where(PurchaseIntent.kind == "auto_purchase")).all()
    assert intents and all(status == "credited" for _, status, _ in intents)
    assert {i for i, _, _ in intents} == started
    assert kinds.count("auto_purchase") == len(intents) and kinds.count("usage_draw") == applied
    assert balance_of(db, t.partner_id) == D(1000 + 1000 * len(intents)) - 7 * applied


def test_concurrent_same_keys_apply_once(world, db, engine8):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=10000)
    results = _run_threads(engine8, t, 20, D(3), key=lambda i, j: f"shared-{j}")  # every thread, same 20 keys
    assert sum(r.status == "applied" for r in results) == 20
    assert sum(r.status == "duplicate" for r in results) == 20 * (THREADS - 1)
    assert balance_of(db, t.partner_id) == D(10000 - 60)


@pytest.mark.parametrize("path", ["fast", "slow"])
def test_killed_connection_mid_draw_leaves_nothing_and_retry_applies_once(world, db, database_url, path):
    """fast: killed right after the one-round-trip SQL draw; slow (reminder due): after the ledger insert,
    before the reminder and the wallet update. Either way nothing is left and the retry applies once."""
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000, low_balance_threshold=2000 if path == "slow" else None)
    marker = "INSERT INTO WALLET_LEDGER" if path == "slow" else "SELECT STATUS, ENTRY_ID, BALANCE"
    victim_engine = make_engine(database_url, poolclass=NullPool)
    pids: queue.Queue[int] = queue.Queue()
    outcome: queue.Queue[BaseException | None] = queue.Queue()

    def victim() -> None:
        try:
            with scoped_session(victim_engine, partner_scope(t.partner_id)) as s, s.begin():
                conn = s.connection()
                pids.put(conn.exec_driver_sql("select pg_backend_pid()").scalar())

                @event.listens_for(conn, "after_cursor_execute")
                def pause(c, cursor, statement, *args):  # after the ledger insert, before the rest + commit
                    if statement.lstrip().upper().startswith(marker):
                        c.connection.dbapi_connection.cursor().execute("select pg_advisory_lock(424242)")

                wallet.draw(s, t.partner_id, t.account_id, D(300), "usage-batch-7", {"count": 3})
            outcome.put(None)
        except BaseException as exc:  # noqa: BLE001
            outcome.put(exc)

    with db.connect() as holder:
        holder.execute(text("select pg_advisory_lock(424242)"))
        th = threading.Thread(target=victim)
        th.start()
        pid = pids.get(timeout=30)
        for _ in range(300):  # wait until the victim is blocked inside the draw
            waiting = holder.execute(text("select wait_event_type from pg_stat_activity where pid = :p"),
                                     {"p": pid}).scalar()
            if waiting == "Lock":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the draw never reached the pause point")
        # the ledger row exists inside the victim's transaction, invisible to everyone else
        assert holder.execute(text("select pg_terminate_backend(:p)"), {"p": pid}).scalar()
        holder.execute(text("select pg_advisory_unlock(424242)"))
        holder.commit()
        th.join(timeout=30)
    assert isinstance(outcome.get(timeout=5), DBAPIError)
    victim_engine.dispose()

    assert ledger_kinds(db, t.partner_id) == ["purchase"]
    assert balance_of(db, t.partner_id) == D(1000)
    with Session(db) as s:
        assert wallet.wallet_view(s, t.staff, t.partner_id).reminder_armed  # the reminder state rolled back too
        assert not s.scalar(select(func.count()).select_from(OutboxMessage))
    with unit_of_work(db) as s:
        first = wallet.draw(s, t.partner_id, t.account_id, D(300), "usage-batch-7", {"count": 3})
    with unit_of_work(db) as s:
        second = wallet.draw(s, t.partner_id, t.account_id, D(300), "usage-batch-7", {"count": 3})
    assert (first.status, second.status) == ("applied", "duplicate")
    assert balance_of(db, t.partner_id) == D(700)
    assert ledger_kinds(db, t.partner_id) == ["purchase", "usage_draw"]
