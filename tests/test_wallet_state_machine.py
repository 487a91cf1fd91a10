"""Property-based state machine: random purchases, draws (with repeated idempotency keys), adjustments,
promotional grants with expiry and priority, expiry days passing, refunds (money sent by reconcile),
settings changes, the automatic purchases they trigger, and draws while a purchase is still pending at a
held gateway. Checked against a small reference model after every step: balance == model == sum(ledger),
never below the floor, lots (kind, remaining, expiry, priority) equal to the model's, one automatic
purchase per depletion, one reminder per dip."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM
from core.billing import payments, wallet
from core.errors import ValidationError
from db.engine import unit_of_work
from db.models.wallet import OutboxMessage, PartnerCreditPriceStep, WalletLedgerEntry, WalletLot, WalletRefund
from tests.wallet_helpers import RecordingGateway, wait_purchases

D = Decimal
START = date(2026, 1, 1)


@dataclass
class Lot:
    kind: str
    credits: Decimal
    remaining: Decimal
    expires_on: date | None = None
    priority: int = 50
    entry_id: int | None = None


@dataclass
class Model:
    balance: Decimal = D(0)
    policy: str = "refuse"
    limit: Decimal = D(0)
    auto: Decimal | None = None
    auto_armed: bool = True
    threshold: Decimal | None = None
    reminder_armed: bool = True
    auto_purchases: int = 0
    reminders: int = 0
    keys: list[str] = field(default_factory=list)
    lots: list[Lot] = field(default_factory=list)

    @property
    def floor(self) -> Decimal:
        return -self.limit if self.policy == "overdraft" else D(0)

    def top_up(self) -> None:
        if self.threshold is not None and self.balance >= self.threshold:
            self.reminder_armed = True
        if self.balance > 0:
            self.auto_armed = True

    def remind(self) -> None:
        if self.threshold is not None and self.reminder_armed and self.balance < self.threshold:
            self.reminders += 1
            self.reminder_armed = False

    def credit(self, c: Decimal, kind: str, **kw) -> None:
        self.balance += c
        self.lots.append(Lot(kind, c, min(c, max(self.balance, D(0))), **kw))

    def take(self, c: Decimal) -> None:
        order = sorted(((i, lot) for i, lot in enumerate(self.lots) if lot.remaining > 0),
                       key=lambda p: (p[1].priority, p[1].kind == "paid", p[1].expires_on or date.max, p[0]))
        for _, lot in order:
            t = min(c, lot.remaining)
            lot.remaining -= t
            c -= t

    def triggers(self, c: Decimal) -> bool:
        return self.auto is not None and self.auto_armed and self.balance - c <= 0

    def draw(self, c: Decimal) -> str:
        if self.balance - c < self.floor:
            return "refused"
        self.take(c)
        self.balance -= c
        self.remind()
        return "applied"

    def auto_purchase(self) -> None:
        self.credit(self.auto, "paid")
        self.auto_purchases += 1
        self.auto_armed = self.balance > 0
        if self.threshold is not None and self.balance >= self.threshold:
            self.reminder_armed = True


class WalletMachine(RuleBasedStateMachine):
    engine = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.m = Model()
        self.today = START
        payments.set_gateway(payments.DemoGateway())
        with unit_of_work(self.engine) as s:
            p = accounts.create_partner(s, SYSTEM, name=f"SM {uuid.uuid4().hex[:12]}", currency="EUR")
            acc = accounts.create_account(s, SYSTEM, partner_id=p.id, name="SM customer", country="NO")
            self.partner_id, self.account_id = p.id, acc.id
            wallet.get_or_create_wallet(s, SYSTEM, p.id)
            s.add(PartnerCreditPriceStep(partner_id=p.id, currency="EUR", min_credits=D(0),
                                         price_per_credit=D("0.01")))
            payments.add_card(s, SYSTEM, p.id, number="4242424242424242", exp_month=12, exp_year=2099)

    @initialize(credits=st.integers(0, 3000), threshold=st.none() | st.integers(0, 1500),
                auto=st.none() | st.integers(1, 1500), policy=st.sampled_from(["refuse", "overdraft"]),
                limit=st.integers(0, 1500))
    def start(self, credits, threshold, auto, policy, limit):
        """Start from a random funded and configured wallet, so every feature is exercised early."""
        if credits:
            self.buy(credits)
        self.configure(threshold, auto, policy, limit)

    @rule(credits=st.integers(1, 5000))
    def buy(self, credits):
        with unit_of_work(self.engine) as s:
            entry = wallet.buy_credits(s, SYSTEM, self.partner_id, credits)
        self.m.credit(D(credits), "paid", entry_id=entry)
        self.m.top_up()

    def _draw(self, credits: int) -> None:
        key = uuid.uuid4().hex
        c = D(credits)
        buys = self.m.triggers(c)
        with unit_of_work(self.engine) as s:
            r = wallet.draw(s, self.partner_id, self.account_id, c, key)
        wait_purchases()
        expected = self.m.draw(c)
        assert r.status == expected, (r, self.m)
        assert (r.auto_purchase == "pending") == buys, (r, self.m)
        if buys:
            self.m.auto_purchase()
        if r.status == "applied":
            self.m.keys.append(key)

    @rule(credits=st.integers(1, 800))
    def draw(self, credits):
        self._draw(credits)

    @rule(credits=st.integers(1, 150))
    def draw_small(self, credits):
        self._draw(credits)

    @rule(first=st.integers(1, 3000), second=st.integers(1, 300))
    def draws_while_purchase_pending(self, first, second):
        """The gateway is held: the first draw starts a purchase, the second finds it pending; both follow
        the policy at once, without the purchase; then the gateway answers and the purchase is credited."""
        c1, c2 = D(first), D(second)
        if not self.m.triggers(c1):
            return
        gate = threading.Event()
        payments.set_gateway(RecordingGateway(gate=gate))
        try:
            results = []
            for c in (c1, c2):
                with unit_of_work(self.engine) as s:
                    results.append(wallet.draw(s, self.partner_id, self.account_id, c, uuid.uuid4().hex))
        finally:
            gate.set()
            wait_purchases()
            payments.set_gateway(payments.DemoGateway())
        for r, c in zip(results, (c1, c2), strict=True):
            assert r.status == self.m.draw(c), (r, self.m)
        assert results[0].auto_purchase == "pending"
        assert results[1].auto_purchase in (None, "pending")
        assert results[1].auto_purchase is None or results[1].auto_purchase_intent_id == results[0].auto_purchase_intent_id
        self.m.auto_purchase()

    @rule(pick=st.integers(0, 1000), credits=st.integers(1, 800))
    def draw_again(self, pick, credits):
        """A retried draw (same idempotency key and figures) changes nothing."""
        if not self.m.keys:
            return
        key = self.m.keys[pick % len(self.m.keys)]
        with Session(self.engine) as s:
            c = -s.scalar(select(WalletLedgerEntry.credits).where(WalletLedgerEntry.partner_id == self.partner_id,
                                                                   WalletLedgerEntry.idempotency_key == key))
        with unit_of_work(self.engine) as s:
            r = wallet.draw(s, self.partner_id, self.account_id, c, key)
        assert r.status == "duplicate"

    @rule(credits=st.integers(-2000, 2000).filter(bool))
    def adjust(self, credits):
        c = D(credits)
        if self.m.balance + c < self.m.floor:
            try:
                with unit_of_work(self.engine) as s:
                    wallet.adjust(s, SYSTEM, self.partner_id, c, "state machine")
            except ValidationError:
                return
            raise AssertionError("an adjustment below the floor was accepted")
        with unit_of_work(self.engine) as s:
            wallet.adjust(s, SYSTEM, self.partner_id, c, "state machine")
        if c > 0:
            self.m.credit(c, "promotional")
            self.m.top_up()
        else:
            self.m.take(-c)
            self.m.balance += c
            self.m.remind()

    @rule(credits=st.integers(1, 2000), days=st.none() | st.integers(1, 5), priority=st.sampled_from([10, 50, 90]))
    def grant(self, credits, days, priority):
        expires = self.today + timedelta(days=days) if days else None
        with unit_of_work(self.engine) as s:
            wallet.grant_credits(s, SYSTEM, self.partner_id, credits, "promotion", expires_on=expires,
                                 priority=priority, today=self.today)
        self.m.credit(D(credits), "promotional", expires_on=expires, priority=priority)
        self.m.top_up()

    @rule(days=st.integers(1, 4))
    def days_pass(self, days):
        """Lots whose expiry day has come expire by themselves (the periodic job), oldest lot first."""
        self.today += timedelta(days=days)
        with unit_of_work(self.engine) as s:
            wallet.expire_lots(s, self.today)
        for lot in self.m.lots:
            if lot.expires_on is not None and lot.expires_on <= self.today and lot.remaining > 0:
                self.m.balance -= lot.remaining
                lot.remaining = D(0)
                self.m.remind()

    @rule(pick=st.integers(0, 100), credits=st.integers(1, 5000))
    def refund(self, pick, credits):
        """Only unused paid credits of a purchase, at the price paid; the money goes out through reconcile."""
        bought = [lot for lot in self.m.lots if lot.entry_id is not None]
        if not bought:
            return
        lot = bought[pick % len(bought)]
        c = D(credits)
        try:
            with unit_of_work(self.engine) as s:
                wallet.refund(s, SYSTEM, self.partner_id, lot.entry_id, c, "state machine")
        except ValidationError:
            assert c > lot.remaining
            return
        assert c <= lot.remaining
        lot.remaining -= c
        self.m.balance -= c
        self.m.remind()
        with unit_of_work(self.engine) as s:
            wallet.reconcile(s, wallet.utcnow())
        with Session(self.engine) as s:
            statuses = set(s.scalars(select(WalletRefund.status).where(WalletRefund.partner_id == self.partner_id)))
        assert statuses == {"refunded"}

    @rule(threshold=st.none() | st.integers(0, 3000), auto=st.none() | st.integers(1, 4000),
          policy=st.sampled_from(["refuse", "overdraft"]), limit=st.integers(0, 2000))
    def configure(self, threshold, auto, policy, limit):
        new_limit = D(limit) if policy == "overdraft" else D(0)
        new_floor = -new_limit if policy == "overdraft" else D(0)
        try:
            with unit_of_work(self.engine) as s:
                wallet.configure(s, SYSTEM, self.partner_id, low_balance_threshold=threshold, auto_buy_credits=auto,
                                 overdraft_policy=policy, overdraft_limit=limit)
        except ValidationError:
            assert self.m.balance < new_floor
            return
        assert self.m.balance >= new_floor
        t = D(threshold) if threshold is not None else None
        a = D(auto) if auto is not None else None
        if t != self.m.threshold:
            self.m.reminder_armed = True
        if a != self.m.auto:
            self.m.auto_armed = True
        self.m.threshold, self.m.auto, self.m.policy, self.m.limit = t, a, policy, new_limit

    @invariant()
    def ledger_and_lots_match_model(self):
        with Session(self.engine) as s:
            bal = wallet.verify_ledger(s, self.partner_id)  # also: lots hold exactly max(balance, 0)
            autos = s.scalar(select(func.count()).select_from(WalletLedgerEntry).where(
                WalletLedgerEntry.partner_id == self.partner_id, WalletLedgerEntry.kind == "auto_purchase"))
            reminders = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.partner_id == self.partner_id, OutboxMessage.kind == "low_balance"))
            lots = s.execute(select(WalletLot.kind, WalletLot.remaining, WalletLot.expires_on, WalletLot.priority)
                             .where(WalletLot.partner_id == self.partner_id).order_by(WalletLot.id)).all()
        assert bal == self.m.balance
        assert bal >= self.m.floor
        assert autos == self.m.auto_purchases
        assert reminders == self.m.reminders
        assert [tuple(r) for r in lots] == [(lot.kind, lot.remaining, lot.expires_on, lot.priority)
                                            for lot in self.m.lots]


def test_wallet_state_machine(db):
    WalletMachine.engine = db
    try:
        run_state_machine_as_test(WalletMachine, settings=settings(
            max_examples=40, stateful_step_count=30, deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
    finally:
        payments.set_gateway(None)
