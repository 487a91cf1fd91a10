"""Property-based state machine: random purchases, draws (with repeated idempotency keys), adjustments,
refunds, settings changes and the automatic purchases they trigger, checked against a small reference
model after every step: balance == model == sum(ledger), never below the floor, one automatic purchase
per depletion, one reminder per dip."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
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
from db.models.wallet import OutboxMessage, PartnerCreditPriceStep, WalletLedgerEntry

D = Decimal


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
    purchases: list[list] = field(default_factory=list)  # [entry_id, credits, refunded]

    @property
    def floor(self) -> Decimal:
        return -self.limit if self.policy == "overdraft" else D(0)

    def top_up(self) -> None:
        if self.threshold is not None and self.balance >= self.threshold:
            self.reminder_armed = True
        if self.balance > 0:
            self.auto_armed = True

    def remind(self, armed: bool) -> bool:
        if self.threshold is not None and armed and self.balance < self.threshold:
            self.reminders += 1
            return False
        return armed

    def draw(self, c: Decimal) -> str:
        purchased = False
        if self.auto is not None and self.auto_armed and self.balance - c <= 0:
            self.balance += self.auto
            self.auto_purchases += 1
            purchased = True
        armed = self.reminder_armed
        if purchased and self.threshold is not None and self.balance >= self.threshold:
            armed = True
        if self.balance - c < self.floor:
            if purchased:
                self.auto_armed = self.balance > 0
            self.reminder_armed = armed
            return "refused"
        self.balance -= c
        if purchased:
            self.auto_armed = self.balance > 0
        self.reminder_armed = self.remind(armed)
        return "applied"


class WalletMachine(RuleBasedStateMachine):
    engine = None  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.m = Model()
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
        self.m.balance += credits
        self.m.purchases.append([entry, D(credits), D(0)])
        self.m.top_up()

    def _draw(self, credits: int) -> None:
        key = uuid.uuid4().hex
        with unit_of_work(self.engine) as s:
            r = wallet.draw(s, self.partner_id, self.account_id, D(credits), key)
        expected = self.m.draw(D(credits))
        assert r.status == expected, (r, self.m)
        if r.status == "applied":
            self.m.keys.append(key)

    @rule(credits=st.integers(1, 800))
    def draw(self, credits):
        self._draw(credits)

    @rule(credits=st.integers(1, 150))
    def draw_small(self, credits):
        self._draw(credits)

    @rule(pick=st.integers(0, 1000), credits=st.integers(1, 800))
    def draw_again(self, pick, credits):
        """A retried draw (same idempotency key) changes nothing, whatever the credits say."""
        if not self.m.keys:
            return
        with unit_of_work(self.engine) as s:
            r = wallet.draw(s, self.partner_id, self.account_id, D(credits), self.m.keys[pick % len(self.m.keys)])
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
        self.m.balance += c
        if c > 0:
            self.m.top_up()
        else:
            self.m.reminder_armed = self.m.remind(self.m.reminder_armed)

    @rule(pick=st.integers(0, 100), credits=st.integers(1, 5000))
    def refund(self, pick, credits):
        open_ = [p for p in self.m.purchases if p[1] > p[2]]
        if not open_:
            return
        p = open_[pick % len(open_)]
        c = min(D(credits), p[1] - p[2])
        ok = self.m.balance - c >= self.m.floor
        try:
            with unit_of_work(self.engine) as s:
                wallet.refund(s, SYSTEM, self.partner_id, p[0], c, "state machine")
        except ValidationError:
            assert not ok
            return
        assert ok
        p[2] += c
        self.m.balance -= c

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
    def ledger_matches_model(self):
        with Session(self.engine) as s:
            bal = wallet.verify_ledger(s, self.partner_id)
            autos = s.scalar(select(func.count()).select_from(WalletLedgerEntry).where(
                WalletLedgerEntry.partner_id == self.partner_id, WalletLedgerEntry.kind == "auto_purchase"))
            reminders = s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.partner_id == self.partner_id, OutboxMessage.kind == "low_balance"))
        assert bal == self.m.balance
        assert bal >= self.m.floor
        assert autos == self.m.auto_purchases
        assert reminders == self.m.reminders


def test_wallet_state_machine(db):
    WalletMachine.engine = db
    run_state_machine_as_test(WalletMachine, settings=settings(
        max_examples=40, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
