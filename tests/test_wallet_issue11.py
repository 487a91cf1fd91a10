"""Issue 11: one named regression test per defect the independent wallet test found. Each fails on the code
before the fix (kept as the commit before `wallet`), and passes now."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import modes, payments, wallet
from core.errors import Conflict
from db.engine import unit_of_work
from db.models.wallet import PaymentCharge, WalletLedgerEntry
from tests.wallet_helpers import (
    DECLINING_CARD,
    GOOD_CARD,
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


@pytest.fixture(autouse=True)
def fresh_gateway():
    payments.set_gateway(payments.DemoGateway())
    yield
    wait_purchases()
    payments.set_gateway(None)


def _declining_then(db, t):
    add_card(db, t.staff, t.partner_id, DECLINING_CARD)  # the new default


def test_defect1_auto_buy_after_manual_topup_does_not_replay_the_old_decline(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    _declining_then(db, t)
    draw(db, t, 150, "a", now=NOW)  # the card declines the automatic purchase
    wait_purchases()
    add_card(db, t.staff, t.partner_id, "5555 5555 5555 4444")  # a good card ...
    with unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 500)  # ... and a manual top-up: 600
    draw(db, t, 600, "b", now=NOW + timedelta(minutes=1))  # uses it up: a NEW attempt, a new key
    wait_purchases()
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 1
    assert len(outbox(db, t.partner_id, "auto_buy_failed")) == 1  # no false second notice
    assert balance_of(db, t.partner_id) == D(1000)


def test_defect1_gave_up_automatic_purchase_recovers_after_the_card_is_fixed(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    _declining_then(db, t)
    for i, minutes in enumerate((0, 2, 8, 40)):  # four declined attempts, after each back-off
        draw(db, t, 150, f"d{i}", now=NOW + timedelta(minutes=minutes))
        wait_purchases()
    with Session(db) as s:
        assert wallet.wallet_view(s, t.staff, t.partner_id).auto_buy_gave_up
    add_card(db, t.staff, t.partner_id, "5555 5555 5555 4444")
    with unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 100)  # 200
    outcomes = []
    for i in range(3):  # three later depletions: each buys
        outcomes.append(draw(db, t, balance_of(db, t.partner_id), f"e{i}", now=NOW + timedelta(days=1 + i)))
        wait_purchases()
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 3
    assert all(r.status == "applied" for r in outcomes)
    assert balance_of(db, t.partner_id) == D(1000)


def test_defect2_approved_purchase_is_credited_although_the_batch_is_refused(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    with Session(db) as s:  # the usage batch: refused, then rolled back by the usage path
        r = wallet.draw(s, t.partner_id, t.account_id, D(5000), "batch-5000", now=NOW)
        assert r.status == "refused"
        s.rollback()
    wait_purchases()
    with Session(db) as s:
        approved = s.scalars(select(PaymentCharge).where(PaymentCharge.status == "approved",
                                                         PaymentCharge.reason == "auto_purchase")).all()
    assert len(approved) == 1  # the gateway's approval is recorded ...
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 1  # ... and credited, once
    assert balance_of(db, t.partner_id) == D(1100)


def test_defect3_decline_after_a_crash_is_recorded_once_without_asking_the_gateway_again(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    _declining_then(db, t)
    gw = RecordingGateway(crash_after=1)  # the first answer is lost: the process dies right after it
    payments.set_gateway(gw)
    with contextlib.suppress(RuntimeError):
        draw(db, t, 150, "a", now=NOW)
    wait_purchases()
    with contextlib.suppress(RuntimeError):
        draw(db, t, 150, "b", now=NOW + timedelta(minutes=2))  # the next lock holder
    wait_purchases()
    reconcile = getattr(wallet, "reconcile", None)
    if reconcile is not None:
        with unit_of_work(db) as s:
            reconcile(s, NOW + timedelta(minutes=3))
    assert len(gw.calls) == 1  # the gateway was asked once for this attempt
    assert len(outbox(db, t.partner_id, "auto_buy_failed")) == 1
    with Session(db) as s:
        assert wallet.wallet_view(s, t.staff, t.partner_id).auto_buy_failures == 1


def test_defect4_draw_returns_while_the_gateway_is_still_answering(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    gate = threading.Event()
    gw = RecordingGateway(gate=gate)
    payments.set_gateway(gw)
    threading.Timer(5, gate.set).start()  # on the old code the draw waits for this
    r = draw(db, t, 100, "a", now=NOW)
    answered_before_draw_returned = gw.answered
    with Session(db) as s:
        pending = getattr(wallet.wallet_view(s, t.staff, t.partner_id), "auto_buy_pending", False)
    gate.set()
    wait_purchases()
    assert pending  # the wallet page says a purchase is under way
    assert answered_before_draw_returned == 0 and r.status == "applied"
    assert balance_of(db, t.partner_id) == D(1000)


def test_defect5_blocked_message_writes_numbers_as_people_do(world, db, on_day):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    with unit_of_work(db) as s:
        modes.set_mode(s, t.staff, t.partner_id, t.account_id, "partner_prepaid", on_day.date())
    with unit_of_work(db) as s:
        res = modes.settle_new_usage(s, t.partner_id, t.account_id, on_day.date(), D(4000), D(0), "EUR",
                                     {"batch": 1}, raise_on_block=False)
    assert res.action == "blocked"
    assert "3,900 more" in res.message and "E+" not in res.message


def test_defect5_idempotency_key_reused_with_other_figures_is_refused(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)
    assert draw(db, t, 60, "k1").status == "applied"
    assert draw(db, t, 60, "k1").status == "duplicate"
    with pytest.raises(Conflict, match="already used"):
        draw(db, t, 70, "k1")
    with pytest.raises(Conflict, match="already used"), unit_of_work(db) as s:
        wallet.draw(s, t.partner_id, t.other_account_id, D(60), "k1")
    gw = payments.DemoGateway()
    token = gw.tokenize_card(GOOD_CARD, 12, 2099).token
    gw.charge(token, D(10), "EUR", "key-1")
    with pytest.raises(Conflict, match="already used"):
        gw.charge(token, D(11), "EUR", "key-1")
    with unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 100, idempotency_key="form-1")
    with pytest.raises(Conflict, match="already used"), unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 200, idempotency_key="form-1")
    assert balance_of(db, t.partner_id) == D(1040)


def test_defect5_configure_changes_only_what_it_is_given(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, low_balance_threshold=300, auto_buy_credits=1000,
                 overdraft_policy="overdraft", overdraft_limit=500)
    with unit_of_work(db) as s:
        wallet.configure(s, t.staff, t.partner_id, auto_buy_credits=None)
    with Session(db) as s:
        v = wallet.wallet_view(s, t.staff, t.partner_id)
    assert v.auto_buy_credits is None
    assert (v.low_balance_threshold, v.overdraft_policy, v.overdraft_limit) == (D(300), "overdraft", D(500))


def test_defect5_refund_and_expire_check_the_low_balance_reminder(world, db):
    a, b = world.a, world.b
    for t in (a, b):
        setup_wallet(db, t.staff, t.partner_id, buy=1000, low_balance_threshold=500)
    with Session(db) as s:
        purchase = s.scalar(select(WalletLedgerEntry.id).where(WalletLedgerEntry.partner_id == a.partner_id,
                                                               WalletLedgerEntry.kind == "purchase"))
    with unit_of_work(db) as s:
        wallet.refund(s, world.admin, a.partner_id, purchase, 600, "Customer left")
    with unit_of_work(db) as s:
        wallet.expire(s, world.admin, b.partner_id, 600, "Old credits")
    assert len(outbox(db, a.partner_id, "low_balance")) == 1
    assert len(outbox(db, b.partner_id, "low_balance")) == 1


def test_defect5_automatic_purchase_links_to_the_draw_that_triggered_it(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    draw(db, t, 100, "usage-batch-42", now=NOW)
    wait_purchases()
    with Session(db) as s:
        entry = s.scalars(select(WalletLedgerEntry).where(WalletLedgerEntry.kind == "auto_purchase")).one()
    assert entry.event_ref == {"trigger_key": "usage-batch-42", "account_id": t.account_id}
