"""Faults around the gateway: the backend killed (pg_terminate_backend) right after the gateway approves and
right after it declines; a gateway slow by 2 s while 8 workers draw; reconciliation settles what is left
open, exactly once; receipts for every credited purchase."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.billing import payments, purchases, wallet
from db.engine import make_engine, unit_of_work
from db.models.statements import StatementSettings
from db.models.wallet import CreditReceipt, PaymentCharge, PurchaseIntent
from tests.wallet_helpers import (
    DECLINING_CARD,
    RecordingGateway,
    add_card,
    balance_of,
    draw,
    ledger_kinds,
    outbox,
    setup_wallet,
    wait_purchases,
)

D = Decimal
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def gateway():
    gw = RecordingGateway()
    payments.set_gateway(gw)
    yield gw
    wait_purchases()
    purchases.FAULT_HOOK = None
    purchases.set_runner(None)
    payments.set_gateway(None)


def _kill_at(db, stage):
    """FAULT_HOOK: terminate the settling transaction's own backend, once, at `stage`."""
    fired = []

    def hook(at, s):
        if at != stage or fired:
            return
        fired.append(at)
        pid = s.execute(text("select pg_backend_pid()")).scalar()
        with db.connect() as killer:
            killer.execute(text("select pg_terminate_backend(:p)"), {"p": pid})
    purchases.FAULT_HOOK = hook
    return fired


def _intents(db):
    with Session(db) as s:
        return s.execute(select(PurchaseIntent.kind, PurchaseIntent.status)
                         .order_by(PurchaseIntent.id)).all()


def test_backend_killed_right_after_the_gateway_approves(world, db, gateway):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    fired = _kill_at(db, "approved")
    assert draw(db, t, 100, "a", now=NOW).auto_purchase == "pending"
    wait_purchases()
    assert fired and _intents(db)[-1] == ("auto_purchase", "pending")  # approved at the gateway, not credited
    assert balance_of(db, t.partner_id) == D(0)
    assert draw(db, t, 1, "b", now=NOW).auto_purchase == "pending"  # no second purchase meanwhile
    with unit_of_work(db) as s:
        rep = wallet.reconcile(s, NOW + timedelta(minutes=5))
    with unit_of_work(db) as s:
        again = wallet.reconcile(s, NOW + timedelta(minutes=6))
    assert (rep.credited, again.credited) == (1, 0)
    assert len([k for k in gateway.calls if k.startswith("auto-buy")]) == 1  # asked by key, not charged again
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 1
    assert balance_of(db, t.partner_id) == D(1000)


def test_backend_killed_right_after_the_gateway_declines(world, db, gateway):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    add_card(db, t.staff, t.partner_id, DECLINING_CARD)
    fired = _kill_at(db, "declined")
    draw(db, t, 150, "a", now=NOW)
    wait_purchases()
    assert fired and _intents(db)[-1] == ("auto_purchase", "pending")
    assert draw(db, t, 150, "b", now=NOW + timedelta(minutes=2)).auto_purchase == "pending"
    with unit_of_work(db) as s:
        rep = wallet.reconcile(s, NOW + timedelta(minutes=3))
    assert rep.declined == 1
    assert len([k for k in gateway.calls if k.startswith("auto-buy")]) == 1
    assert len(outbox(db, t.partner_id, "auto_buy_failed")) == 1  # one notice for the one declined attempt
    with Session(db) as s:
        v = wallet.wallet_view(s, t.staff, t.partner_id)
        declined = s.scalars(select(PaymentCharge).where(PaymentCharge.status == "declined")).all()
    assert v.auto_buy_failures == 1 and len(declined) == 1
    assert draw(db, t, 150, "c", now=NOW + timedelta(minutes=3, seconds=30)).auto_purchase == "waiting"


def test_reconcile_charges_an_intent_the_gateway_never_saw_with_its_own_key(world, db, gateway):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    purchases.set_runner(lambda engine, intent_id, now: None)  # the process dies before calling the gateway
    draw(db, t, 100, "a", now=NOW)
    with unit_of_work(db) as s:
        rep = wallet.reconcile(s, NOW + timedelta(seconds=30), older_than_seconds=60)
    assert (rep.credited, rep.still_pending) == (0, 1)  # too young: may still be in flight
    with unit_of_work(db) as s:
        rep = wallet.reconcile(s, NOW + timedelta(minutes=2), older_than_seconds=60)
    assert rep.credited == 1
    with Session(db) as s:
        key = s.scalar(select(PurchaseIntent.idempotency_key).where(PurchaseIntent.kind == "auto_purchase"))
    assert gateway.calls[-1] == key
    assert balance_of(db, t.partner_id) == D(1000)


def test_slow_gateway_while_eight_workers_draw(world, db, database_url, gateway):
    """A 2 s gateway: 8 workers keep drawing during the automatic purchase; every draw is answered before
    the gateway answers (none waits for it), the overdraft floor holds, and the purchase lands once."""
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000, overdraft_policy="overdraft",
                 overdraft_limit=200)
    gate = threading.Event()
    slow = RecordingGateway(gate=gate, delay=2.0)
    payments.set_gateway(slow)
    engine8 = make_engine(database_url, pool_size=8, max_overflow=4)
    results, errors, lock = [], [], threading.Lock()

    def worker(i):
        try:
            for j in range(10):
                r = draw(engine8, t, 5, f"w{i}-{j}", now=NOW)
                with lock:
                    results.append((r, slow.answered))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    gate.set()
    wait_purchases()
    engine8.dispose()
    assert not errors, errors
    assert not slow.released_by_timeout
    assert all(answered == 0 for _, answered in results)  # every draw returned before the gateway answered
    applied = sum(r.status == "applied" for r, _ in results)
    assert applied == 60 and sum(r.status == "refused" for r, _ in results) == 20  # 100 + 200 overdraft
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 1
    assert balance_of(db, t.partner_id) == D(100 - 300 + 1000)


def test_every_purchase_has_a_numbered_receipt_with_the_issuers_tax(world, db, gateway, on_day):
    """Both receipts in one year's series: on the run's own clock, a run across New Year's midnight started a new
    series between them."""
    t = world.a
    with unit_of_work(db) as s:
        house = s.execute(text("select id from partners where is_house")).scalar()
        s.add(StatementSettings(partner_id=house, display_name="Platform AS", address="Street 1\nOslo",
                                tax_rate=D(25)))
    setup_wallet(db, t.staff, t.partner_id, buy=1000, auto_buy_credits=500)
    draw(db, t, 1000, "a", now=NOW)
    wait_purchases()
    with Session(db) as s:
        rc = s.scalars(select(CreditReceipt).order_by(CreditReceipt.id)).all()
        assert [(r.credits, r.total, r.net_amount, r.tax_amount, r.tax_rate) for r in rc] == [
            (D(1000), D("10.00"), D("8.00"), D("2.00"), D(25)), (D(500), D("5.00"), D("4.00"), D("1.00"), D(25))]
        first, second = (int(r.number.rsplit("-", 1)[1]) for r in rc)
        assert second == first + 1 and rc[0].issuer_name == "Platform AS"
        pdf = wallet.receipt_pdf(s, t.staff, t.partner_id, rc[0].id)
        assert [r.number for r in wallet.list_receipts(s, t.staff, t.partner_id)] == [rc[1].number, rc[0].number]
    assert pdf.startswith(b"%PDF") and len(pdf) > 800


def test_reconcile_command_settles_open_intents(world, db, gateway, capsys):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    purchases.set_runner(lambda engine, intent_id, now: None)
    draw(db, t, 100, "a")
    assert wallet.main(["reconcile", "--older-than", "0"]) == 0
    assert "credited 1" in capsys.readouterr().out
    assert balance_of(db, t.partner_id) == D(1000)
