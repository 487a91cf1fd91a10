"""Shared set-up for the wallet / billing-mode tests: a partner wallet with a demo card, committed so
that other connections (threads, the gateway's autonomous transactions, AppTest) see it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.billing import payments, wallet
from db.engine import partner_scope, unit_of_work
from db.models.wallet import PartnerCreditPriceStep

GOOD_CARD = "4242 4242 4242 4242"
DECLINING_CARD = "4000 0000 0000 0002"


def setup_wallet(engine: Engine, actor: Actor, partner_id: int, *, card: str | None = GOOD_CARD,
                 buy: int | None = None, simple_prices: bool = True, **settings) -> None:
    """Create the wallet; optionally a card, a flat price list (0.01 per credit), a purchase and settings."""
    with unit_of_work(engine) as s:
        wallet.get_or_create_wallet(s, actor, partner_id)
        if simple_prices:
            s.add(PartnerCreditPriceStep(partner_id=partner_id, currency="EUR", min_credits=Decimal(0),
                                         price_per_credit=Decimal("0.01")))
        if card:
            payments.add_card(s, actor, partner_id, number=card, exp_month=12, exp_year=date.today().year + 2)
    if buy:
        with unit_of_work(engine) as s:
            wallet.buy_credits(s, actor, partner_id, buy)
    if settings:
        with unit_of_work(engine) as s:
            wallet.configure(s, actor, partner_id, **settings)


def ledger_kinds(engine: Engine, partner_id: int) -> list[str]:
    from db.models.wallet import WalletLedgerEntry as E

    with Session(engine) as s:
        return list(s.scalars(select(E.kind).where(E.partner_id == partner_id).order_by(E.id)))


def balance_of(engine: Engine, partner_id: int) -> Decimal:
    with Session(engine) as s:
        return wallet.verify_ledger(s, partner_id)


def wait_purchases() -> None:
    """Let the background automatic purchases started by draws finish (no-op on code without them)."""
    getattr(wallet, "wait_for_purchases", lambda: None)()


def outbox(engine: Engine, partner_id: int, kind: str | None = None) -> list:
    from db.models.wallet import OutboxMessage

    with Session(engine) as s:
        q = select(OutboxMessage).where(OutboxMessage.partner_id == partner_id)
        if kind:
            q = q.where(OutboxMessage.kind == kind)
        return list(s.scalars(q.order_by(OutboxMessage.id)))


def draw(engine: Engine, t, credits, key: str, **kw):
    """One draw in its own committed transaction, bound to the partner (as inside its ingestion: RLS)."""
    with unit_of_work(engine, partner_scope(t.partner_id)) as s:
        return wallet.draw(s, t.partner_id, t.account_id, Decimal(credits), key, **kw)


def add_card(engine: Engine, actor: Actor, partner_id: int, number: str) -> None:
    with unit_of_work(engine) as s:
        payments.add_card(s, actor, partner_id, number=number, exp_month=1, exp_year=2099)


class RecordingGateway:
    """Wraps the demo gateway: counts charges per key; `crash_after` makes the first N charges raise AFTER the
    gateway answered (the process "dies" between the gateway's answer and the record); `gate` (an Event)
    holds every charge until set, and `answered` tells whether a charge has returned."""

    def __init__(self, crash_after: int = 0, gate=None, delay: float = 0.0):
        self.inner = payments.DemoGateway()
        self.name = self.inner.name
        self.calls: list[str] = []
        self.crash_after = crash_after
        self.gate = gate
        self.delay = delay
        self.answered = 0
        self.released_by_timeout = False

    def tokenize_card(self, *a, **k):
        return self.inner.tokenize_card(*a, **k)

    def tokenize_bank(self, *a, **k):
        return self.inner.tokenize_bank(*a, **k)

    def charge(self, token, amount, currency, idempotency_key):
        import time

        self.calls.append(idempotency_key)
        if self.delay:
            time.sleep(self.delay)
        if self.gate is not None and not self.gate.wait(30):
            self.released_by_timeout = True
        result = self.inner.charge(token, amount, currency, idempotency_key)
        self.answered += 1
        if len(self.calls) <= self.crash_after:
            raise RuntimeError("the process died right after the gateway answered")
        return result

    def status(self, idempotency_key):
        return self.inner.status(idempotency_key)

    def refund(self, *a, **k):
        return self.inner.refund(*a, **k)
