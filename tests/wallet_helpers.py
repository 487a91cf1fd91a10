"""Shared set-up for the wallet / billing-mode tests: a partner wallet with a demo card, committed so
that other connections (threads, the gateway's autonomous transactions, AppTest) see it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.billing import payments, wallet
from db.engine import unit_of_work
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
