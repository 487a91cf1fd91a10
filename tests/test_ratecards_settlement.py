"""Partner-paid usage is settled at the rate card, not at the partner's own plan for its client (issue 10):
prepaid draws the card's credits, on demand charges the card's money amount."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import modes as billing_modes
from core.billing import plans, ratecard_admin
from core.billing.rating import month_of
from core.billing.settlement import month_to_date_cost
from core.usage import ingest as usage
from db.engine import unit_of_work
from db.models.wallet import PaymentCharge
from tests.billing_factories import make_plan
from tests.test_ratecards import LEGACY_WALLET_PLAN, MAIL_PLAN, STANDARD, standard
from tests.wallet_helpers import balance_of, setup_wallet
from tests.when import MID_MONTH, TODAY

# The app's clock on a fixed day (tests/when.py). On the run's own clock, a run in the first minutes after
# midnight recorded its events (5 minutes earlier) on the day before the billing mode took effect: nothing settled.
pytestmark = pytest.mark.usefixtures("on_day")
NOW = MID_MONTH
SMS_CARD = {"currency": "EUR", "credit_price_steps": [{"min_credits": "0", "price_per_credit": "0.01"}],
            "usage": {"charges": [{"id": "sms", "metric": "messages", "model": "per_unit", "unit_price": "0.004"}]}}
SMS_PLAN = {"currency": "EUR", "charges": [{"id": "sms", "metric": "messages", "model": "per_unit",
                                            "unit_price": "0.0241666"}]}


def _assign(engine, staff, pid, aid, spec, code):
    _, plan_id = make_plan(engine, staff, code=code, spec_=spec, effective_from=month_of(TODAY)[0])
    with unit_of_work(engine) as s:
        plans.assign_plan(s, staff, pid, aid, plan_id=plan_id, effective_from=month_of(TODAY)[0])


def _mode(engine, staff, pid, aid, mode, on_decline=None):
    with unit_of_work(engine) as s:
        billing_modes.set_mode(s, staff, pid, aid, mode, TODAY, on_decline, today=TODAY)


def _record(engine, staff, pid, aid, metric, qty, event_id):
    with unit_of_work(engine) as s:
        return usage.record_events(s, staff, pid, [{
            "account_id": aid, "metric": metric, "quantity": str(qty), "event_id": event_id,
            "occurred_at": (NOW - timedelta(minutes=5)).isoformat()}], now=NOW)


def _approved(engine, pid):
    with Session(engine) as s:
        return s.scalars(select(PaymentCharge.amount).where(PaymentCharge.partner_id == pid,
                                                            PaymentCharge.status == "approved",
                                                            PaymentCharge.reason == "usage_on_demand")
                         .order_by(PaymentCharge.id)).all()


def test_prepaid_draws_the_cards_credits_whatever_the_clients_plan_says(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    # a plan written before the card, with the partner's own (cut) credit rate: no longer what is drawn
    cut = {**LEGACY_WALLET_PLAN, "charges": [{**LEGACY_WALLET_PLAN["charges"][0], "credit_rate": "0.01"}]}
    _assign(engine, a.staff, a.partner_id, a.account_id, cut, "cut")
    standard(engine, world.admin)
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "mailing-1")
    assert balance_of(engine, a.partner_id) == D("44750")  # 5,000 × 1.05 at the card's rate


def test_prepaid_usage_priced_in_money_on_the_card_is_drawn_at_its_credit_price(world, engine):
    """The issue's TextWave bug: 5,000 messages drew no credits. Now 5,000 × 0.004 = 20.00 → 2,000 credits."""
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 1, 1), card=SMS_CARD)
    _assign(engine, a.staff, a.partner_id, a.account_id, SMS_PLAN, "sms")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    _record(engine, a.staff, a.partner_id, a.account_id, "messages", 5000, "sms-1")
    assert balance_of(engine, a.partner_id) == D("48000")


def test_on_demand_charges_the_rate_card_amount_not_the_clients_price(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id)
    standard(engine, world.admin)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAIL_PLAN, "mail")  # the client pays 0.02 each
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_on_demand", "block")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "m-1")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "m-2")
    # 5,000 × 1.05 = 5,250 credits × 0.01 = 52.50; then 1,050 credits = 10.50
    assert _approved(engine, a.partner_id) == [D("52.50"), D("10.50")]
    with Session(engine) as s:
        cost, currency = month_to_date_cost(s, a.partner_id, a.account_id, TODAY)
    assert (cost.amount, cost.credits, currency) == (D("63.00"), D("6300"), "EUR")


def test_on_demand_with_partner_tier_basis_charges_each_client_its_share(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id)
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 1, 1),
                                   card={**STANDARD, "tier_basis": "partner"})
    for aid in (a.account_id, a.other_account_id):
        _assign(engine, a.staff, a.partner_id, aid, {"currency": "EUR", "charges": [
            {"id": "p", "metric": "pages", "model": "per_unit", "unit_price": "0.10"}]}, f"p{aid}")
        _mode(engine, a.staff, a.partner_id, aid, "partner_on_demand", "block")
    _record(engine, a.staff, a.partner_id, a.account_id, "pages", 800, "a-1")
    _record(engine, a.staff, a.partner_id, a.other_account_id, "pages", 800, "b-1")
    # A alone: 800 × 0.05 = 40.00. Then the partner's 1,600 pages: 1,000 × 0.05 + 600 × 0.04 = 74.00,
    # half of it B's: 37.00 (A's share fell to 37.00 too; it is not refunded as usage arrives)
    assert _approved(engine, a.partner_id) == [D("40.00"), D("37.00")]


def test_customer_pays_and_agency_settle_nothing_at_once(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=10_000)
    standard(engine, world.admin)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAIL_PLAN, "mail")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "cp-1")
    _mode(engine, a.staff, a.partner_id, a.account_id, "agency")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "ag-1")
    assert balance_of(engine, a.partner_id) == D("10000")
    assert _approved(engine, a.partner_id) == []


def test_credit_purchases_are_priced_at_the_cards_steps(world, engine):
    from core.billing import wallet

    a = world.a
    setup_wallet(engine, a.staff, a.partner_id)  # the partner's old price list: 0.01 a credit
    with Session(engine) as s:
        assert wallet.price_for(s, a.partner_id, 10_000).amount == D("100.00")
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 1, 1), card={
            **STANDARD, "credit_price_steps": [{"min_credits": "0", "price_per_credit": "0.012"},
                                               {"min_credits": "10000", "price_per_credit": "0.009"}]})
    with Session(engine) as s:
        assert wallet.price_for(s, a.partner_id, 9_999).amount == D("119.99")
        assert wallet.price_for(s, a.partner_id, 10_000).amount == D("90.00")
    with unit_of_work(engine) as s:
        wallet.buy_credits(s, a.staff, a.partner_id, 10_000)
    assert balance_of(engine, a.partner_id) == D("10000")
