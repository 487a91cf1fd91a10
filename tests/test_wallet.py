"""Credit wallet: ledger, prices, purchases, reminders, automatic purchase, overdraft, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core import clock
from core.billing import payments, wallet
from core.errors import NotFound, PermissionDenied, ValidationError
from db.engine import unit_of_work
from db.models.wallet import OutboxMessage, PaymentCharge, PaymentMethod, WalletLedgerEntry
from tests.wallet_helpers import DECLINING_CARD, balance_of, ledger_kinds, setup_wallet, wait_purchases

D = Decimal


def _draw(engine, t, credits, key, **kw):
    with unit_of_work(engine) as s:
        return wallet.draw(s, t.partner_id, t.account_id, D(credits), key, **kw)


def _outbox(engine, partner_id, kind=None):
    with Session(engine) as s:
        q = select(OutboxMessage).where(OutboxMessage.partner_id == partner_id)
        if kind:
            q = q.where(OutboxMessage.kind == kind)
        return list(s.scalars(q.order_by(OutboxMessage.id)))


# ---------------------------------------------------------------- prices


def test_volume_steps_price_whole_purchase_at_reached_step():
    steps = [(D(0), D("0.0100")), (D(10000), D("0.0090")), (D(50000), D("0.0080"))]
    assert wallet.quote_from_steps(steps, D(9999), "EUR").amount == D("99.99")
    q = wallet.quote_from_steps(steps, D(10000), "EUR")
    assert (q.price_per_credit, q.amount) == (D("0.0090"), D("90.00"))
    assert wallet.quote_from_steps(steps, D(50000), "EUR").amount == D("400.00")
    assert wallet.quote_from_steps(steps, D(3), "EUR").amount == D("0.03")
    assert wallet.quote_from_steps([(D(0), D("0.0033"))], D(1), "EUR").amount == D("0.00")  # half-up to cents
    assert wallet.quote_from_steps([(D(0), D("0.005"))], D(1), "EUR").amount == D("0.01")


def test_default_price_list_and_partner_override(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, simple_prices=False)
    with Session(db) as s:
        assert wallet.price_for(s, t.partner_id, 50000).amount == D("450.00")  # shipped EUR steps
        assert wallet.price_for(s, t.partner_id, 1000).amount == D("10.00")
    setup_wallet(db, world.b.staff, world.b.partner_id)  # override: flat 0.01
    with Session(db) as s:
        assert wallet.price_for(s, world.b.partner_id, 50000).amount == D("500.00")


def test_issue_example_50000_minus_5250(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=50000)
    r = _draw(db, t, 5250, "mailing-1", event_ref={"first_event_id": 1, "last_event_id": 5000, "count": 5000})
    assert r.status == "applied" and r.balance == D(44750)
    assert balance_of(db, t.partner_id) == D(44750)
    with Session(db) as s:
        per = wallet.draws_by_customer(s, t.staff, t.partner_id, clock.today(), clock.today())
        rows, total = wallet.list_ledger(s, t.staff, t.partner_id)
    assert [(p.account_id, p.credits, p.draws) for p in per] == [(t.account_id, D(5250), 1)]
    assert total == 2 and rows[0].kind == "usage_draw" and rows[0].event_ref["count"] == 5000
    assert rows[1].kind == "purchase" and rows[1].amount == D("500.00")


# ---------------------------------------------------------------- purchases and payment methods


def test_buy_credits_declined_credits_nothing(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=DECLINING_CARD)
    with pytest.raises(payments.PaymentDeclined, match="declined"):
        with unit_of_work(db) as s:
            wallet.buy_credits(s, t.staff, t.partner_id, 1000)
    assert balance_of(db, t.partner_id) == 0
    with Session(db) as s:
        charges = s.scalars(select(PaymentCharge)).all()
    assert [(c.status, c.reason) for c in charges] == [("declined", "purchase")]


def test_buy_credits_is_idempotent_per_key(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    for _ in range(2):
        with unit_of_work(db) as s:
            wallet.buy_credits(s, t.staff, t.partner_id, 1000, idempotency_key="form-1")
    assert balance_of(db, t.partner_id) == D(1000)


def test_payment_method_stores_only_token_and_last4(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    with Session(db) as s:
        m = s.scalars(select(PaymentMethod)).one()
        assert m.last4 == "4242" and m.token.startswith("demo_") and "4242424242424242" not in m.token
        row = s.execute(text("select row_to_json(p)::text from payment_methods p")).scalar()
    assert "42424242" not in row


def test_bad_card_and_bad_input_write_nothing(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=None)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        payments.add_card(s, t.staff, t.partner_id, number="1234 5678 9012 3456", exp_month=13, exp_year=2000)
    assert set(e.value.errors) == {"number", "exp_month"}
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 100)
    assert "payment method" in e.value.errors["credits"]
    for bad in ("abc", "0", "-5", "1.5"):
        with pytest.raises(ValidationError), unit_of_work(db) as s:
            wallet.buy_credits(s, t.staff, t.partner_id, bad)
    assert ledger_kinds(db, t.partner_id) == []


def test_iban_tokenized(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=None)
    with unit_of_work(db) as s:
        m = payments.add_bank_account(s, t.staff, t.partner_id, iban="DE89 3704 0044 0532 0130 00", holder="ACME")
        assert (m.kind, m.last4, m.is_default) == ("bank", "3000", True)
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        payments.add_bank_account(s, t.staff, t.partner_id, iban="DE00 1234", holder="")


# ---------------------------------------------------------------- permissions and tenancy


def test_permissions_and_cross_tenant(world, db):
    a, b = world.a, world.b
    setup_wallet(db, a.staff, a.partner_id, buy=100)
    with pytest.raises(PermissionDenied), unit_of_work(db) as s:
        wallet.buy_credits(s, b.staff, a.partner_id, 100)
    with pytest.raises(PermissionDenied), unit_of_work(db) as s:
        wallet.adjust(s, a.staff, a.partner_id, 100, "gift to myself")  # platform only
    with pytest.raises(PermissionDenied), Session(db) as s:
        wallet.list_ledger(s, a.users["manager"], a.partner_id)
    with pytest.raises(PermissionDenied), Session(db) as s:
        wallet.balance(s, b.staff, a.partner_id)
    assert balance_of(db, a.partner_id) == D(100)


# ---------------------------------------------------------------- adjustments, refunds, expiry


def test_adjust_refund_expire(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        wallet.adjust(s, world.admin, t.partner_id, 10, "  ")
    assert "reason" in e.value.errors
    with unit_of_work(db) as s:
        wallet.adjust(s, world.admin, t.partner_id, 50, "Goodwill for outage")
        wallet.adjust(s, world.admin, t.partner_id, -20, "Correction")
    with Session(db) as s:
        purchase_id = s.scalar(select(WalletLedgerEntry.id).where(WalletLedgerEntry.kind == "purchase"))
    with unit_of_work(db) as s:
        wallet.refund(s, world.admin, t.partner_id, purchase_id, 400, "Customer left")
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        wallet.refund(s, world.admin, t.partner_id, purchase_id, 601, "Too much")
    with Session(db) as s:
        r = s.scalars(select(WalletLedgerEntry).where(WalletLedgerEntry.kind == "refund")).one()
        assert (r.credits, r.amount) == (D(-400), D("4.00"))
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        wallet.expire(s, world.admin, t.partner_id, 10000)
    with unit_of_work(db) as s:
        wallet.expire(s, world.admin, t.partner_id, 30)
    assert balance_of(db, t.partner_id) == D(600)
    assert ledger_kinds(db, t.partner_id) == ["purchase", "adjustment", "adjustment", "refund", "expiry"]
    with pytest.raises(ValidationError), unit_of_work(db) as s:  # cannot go below the floor (0)
        wallet.adjust(s, world.admin, t.partner_id, -601, "Too much")


# ---------------------------------------------------------------- database guarantees


def test_ledger_is_append_only_and_balance_guarded(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    for sql in ("UPDATE wallet_ledger SET credits = 1000", "DELETE FROM wallet_ledger",
                "UPDATE wallets SET balance = 1000000"):
        with pytest.raises(DBAPIError), db.begin() as conn:
            conn.execute(text(sql))
    with pytest.raises(DBAPIError), db.begin() as conn:  # the floor, in the database itself
        conn.execute(text("INSERT INTO wallet_ledger (partner_id, wallet_id, kind, credits, account_id) "
                          "SELECT partner_id, id, 'usage_draw', -101, :a FROM wallets"), {"a": t.account_id})
    assert balance_of(db, t.partner_id) == D(100)
    with db.begin() as conn:
        assert conn.execute(text("select count(*) from wallet_verify(null)")).scalar() == 0


def test_verify_ledger_detects_a_mismatch(world, db, owner_engine):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    with owner_engine.begin() as conn:  # simulate corruption: only the owner can disable the guard
        conn.execute(text("ALTER TABLE wallets DISABLE TRIGGER wallets_guard_balance"))
        conn.execute(text("UPDATE wallets SET balance = 99"))
        conn.execute(text("ALTER TABLE wallets ENABLE TRIGGER wallets_guard_balance"))
    with pytest.raises(wallet.LedgerMismatch), Session(db) as s:
        wallet.verify_ledger(s, t.partner_id)


# ---------------------------------------------------------------- draws


def test_draw_idempotency_and_refusal(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    assert _draw(db, t, 60, "k1").status == "applied"
    dup = _draw(db, t, 60, "k1")
    assert dup.status == "duplicate" and dup.applied
    r = _draw(db, t, 60, "k2")
    assert r.status == "refused" and r.shortfall == D(20) and not r.applied
    assert balance_of(db, t.partner_id) == D(40)
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        wallet.draw(s, t.partner_id, t.account_id, D(0), "k3")
    with pytest.raises(NotFound), unit_of_work(db) as s:
        wallet.draw(s, world.b.partner_id, world.b.account_id, D(1), "k3")


def test_overdraft_down_to_limit_never_below(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, overdraft_policy="overdraft", overdraft_limit=50)
    r = _draw(db, t, 140, "a")
    assert r.status == "applied" and r.balance == D(-40) and r.overdraft
    assert _draw(db, t, 11, "b").status == "refused"
    assert _draw(db, t, 10, "c").balance == D(-50)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:  # cannot tighten below the debt
        wallet.configure(s, t.staff, t.partner_id, overdraft_policy="refuse")
    assert "overdraft_limit" in e.value.errors
    assert balance_of(db, t.partner_id) == D(-50)


def test_low_balance_reminder_once_and_rearms_after_topup(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000, low_balance_threshold=300)
    for i in range(9):  # 1000 -> 100 in steps of 100: below 300 from the 8th draw on
        _draw(db, t, 100, f"d{i}")
    assert len(_outbox(db, t.partner_id, "low_balance")) == 1
    with unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 1000)  # 1100: re-armed
    for i in range(9):
        _draw(db, t, 100, f"e{i}")
    msgs = _outbox(db, t.partner_id, "low_balance")
    assert len(msgs) == 2 and "below your reminder threshold" in msgs[0].body


def test_configure_validation(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=None)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        wallet.configure(s, t.staff, t.partner_id, low_balance_threshold="-1", auto_buy_credits="500",
                         overdraft_policy="maybe", overdraft_limit="x")
    assert set(e.value.errors) == {"low_balance_threshold", "auto_buy_credits", "overdraft_policy", "overdraft_limit"}
    with Session(db) as s:
        v = wallet.wallet_view(s, t.staff, t.partner_id)
    assert v.low_balance_threshold is None and v.overdraft_policy == "refuse"


# ---------------------------------------------------------------- automatic purchase


def test_auto_buy_once_per_depletion(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    r = _draw(db, t, 100, "x1")  # uses it up -> the purchase starts; the draw does not wait for it
    assert (r.status, r.auto_purchase, r.balance) == ("applied", "pending", D(0))
    wait_purchases()
    assert balance_of(db, t.partner_id) == D(1000)
    r = _draw(db, t, 950, "x2")
    assert r.auto_purchase is None and r.balance == D(50)
    r = _draw(db, t, 80, "x3")  # would not cover -> buy; policy 'refuse': this draw is refused meanwhile
    assert (r.status, r.auto_purchase) == ("refused", "pending")
    wait_purchases()
    assert _draw(db, t, 80, "x3").balance == D(970)  # the retried batch
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 2
    with Session(db) as s:
        charges = s.scalars(select(PaymentCharge).where(PaymentCharge.reason == "auto_purchase")).all()
    assert [c.amount for c in charges] == [D("10.00"), D("10.00")]


def test_auto_buy_too_small_fires_once_then_waits_for_topup(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=10, auto_buy_credits=100, overdraft_policy="overdraft",
                 overdraft_limit=1000)
    assert _draw(db, t, 300, "big").balance == D(-290)  # overdraft while the purchase is pending
    wait_purchases()
    assert balance_of(db, t.partner_id) == D(-190)  # bought 100 once, still in overdraft
    assert _draw(db, t, 10, "next").auto_purchase is None  # same depletion: no second purchase
    assert ledger_kinds(db, t.partner_id).count("auto_purchase") == 1
    with unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 500)  # top-up -> 300, re-armed
    assert _draw(db, t, 300, "again").auto_purchase == "pending"


def test_declined_auto_buy_backs_off_and_gives_up(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    with unit_of_work(db) as s:  # swap the default card for one that declines
        payments.add_card(s, t.staff, t.partner_id, number=DECLINING_CARD, exp_month=1, exp_year=2099)
    now = datetime.now(UTC)

    def attempt(key, at):
        r = _draw(db, t, 150, key, now=at)
        wait_purchases()
        return r.auto_purchase

    assert attempt("a", now) == "pending"  # attempt 1, declined in the background
    for i in range(5):  # inside the back-off window: no new attempt, whatever the number of draws
        assert attempt(f"b{i}", now + timedelta(seconds=30)) == "waiting"
    assert attempt("c", now + timedelta(minutes=2)) == "pending"  # attempt 2
    assert attempt("d", now + timedelta(minutes=3)) == "waiting"
    assert attempt("e", now + timedelta(minutes=8)) == "pending"  # attempt 3
    assert attempt("f", now + timedelta(minutes=40)) == "pending"  # attempt 4: gives up
    assert attempt("g", now + timedelta(days=1)) == "gave_up"
    with Session(db) as s:
        declined = s.scalars(select(PaymentCharge).where(PaymentCharge.status == "declined")).all()
        v = wallet.wallet_view(s, t.staff, t.partner_id)
    assert len(declined) == wallet.AUTO_BUY_MAX_ATTEMPTS
    assert sorted(c.idempotency_key.rsplit(":", 1)[1] for c in declined) == ["1", "2", "3", "4"]
    assert v.auto_buy_gave_up and v.auto_buy_failures == wallet.AUTO_BUY_MAX_ATTEMPTS
    reports = _outbox(db, t.partner_id, "auto_buy_failed")
    assert len(reports) == 4 and "stopped" in reports[-1].subject.lower()  # one notice per declined attempt
    with unit_of_work(db) as s:
        payments.add_card(s, t.staff, t.partner_id, number="5555 5555 5555 4444", exp_month=1, exp_year=2099)
    with unit_of_work(db) as s:  # a manual purchase on a good card re-arms and resets
        wallet.buy_credits(s, t.staff, t.partner_id, 100)
    with Session(db) as s:
        v = wallet.wallet_view(s, t.staff, t.partner_id)
    assert not v.auto_buy_gave_up and v.auto_buy_failures == 0 and v.auto_buy_armed
    assert balance_of(db, t.partner_id) == D(200)


def test_declined_auto_buy_state_survives_rollback(world, db):
    """The usage path may roll back a refused batch; the decline must still count (no retry per draw)."""
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=10, auto_buy_credits=100)
    with unit_of_work(db) as s:
        payments.add_card(s, t.staff, t.partner_id, number=DECLINING_CARD, exp_month=1, exp_year=2099)
    with Session(db) as s:
        assert wallet.draw(s, t.partner_id, t.account_id, D(50), "r1").auto_purchase == "pending"
        s.rollback()
    wait_purchases()
    assert _draw(db, t, 50, "r2").auto_purchase == "waiting"


def test_buy_retry_with_same_form_key_after_fixing_the_card(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=DECLINING_CARD)
    with pytest.raises(payments.PaymentDeclined), unit_of_work(db) as s:
        wallet.buy_credits(s, t.staff, t.partner_id, 500, idempotency_key="form-9")
    with pytest.raises(payments.PaymentDeclined), unit_of_work(db) as s:  # the same form again: attempt 2
        wallet.buy_credits(s, t.staff, t.partner_id, 500, idempotency_key="form-9")
    with unit_of_work(db) as s:
        payments.add_card(s, t.staff, t.partner_id, number="4242424242424242", exp_month=1, exp_year=2099)
    for _ in range(2):
        with unit_of_work(db) as s:
            wallet.buy_credits(s, t.staff, t.partner_id, 500, idempotency_key="form-9")
    assert balance_of(db, t.partner_id) == D(500)
    with Session(db) as s:
        assert sorted(c.status for c in s.scalars(select(PaymentCharge))) == ["approved", "declined", "declined"]


def test_scheduler_retries_due_auto_purchase_without_a_draw(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000)
    with unit_of_work(db) as s:
        good = s.scalars(select(PaymentMethod)).one()
        payments.add_card(s, t.staff, t.partner_id, number=DECLINING_CARD, exp_month=1, exp_year=2099)
    now = datetime.now(UTC)
    r = _draw(db, t, 100, "a", now=now)  # uses the credits up: the purchase is tried, declined
    assert (r.status, r.balance, r.auto_purchase) == ("applied", D(0), "pending")
    wait_purchases()
    with unit_of_work(db) as s:
        assert wallet.retry_due_auto_purchases(s, now + timedelta(seconds=10)) == []  # not due yet
    with unit_of_work(db) as s:  # the partner removes the declining card: the good one is the default again
        payments.remove_method(s, t.staff, t.partner_id,
                               s.scalars(select(PaymentMethod).where(PaymentMethod.is_default)).one().id)
        assert payments.default_method(s, t.partner_id).id == good.id
    with unit_of_work(db) as s:
        assert wallet.retry_due_auto_purchases(s, now + timedelta(minutes=2)) == [t.partner_id]
    with unit_of_work(db) as s:
        assert wallet.retry_due_auto_purchases(s, now + timedelta(minutes=3)) == []  # done, nothing due
    assert balance_of(db, t.partner_id) == D(1000)
    assert ledger_kinds(db, t.partner_id) == ["purchase", "usage_draw", "auto_purchase"]
