"""Partner-paid usage is settled as it is recorded: prepaid credits drawn, on-demand charges made — and the
sum of the settlements equals the month's rated usage exactly, also with tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import modes as billing_modes
from core.billing import plans
from core.billing.modes import UsageBlocked
from core.billing.rating import month_of
from core.billing.settlement import month_to_date_cost
from core.usage import aggregates
from core.usage import ingest as usage
from db.engine import unit_of_work
from db.models.wallet import PaymentCharge, WalletLedgerEntry
from tests.billing_factories import PAGES_SPEC, make_plan
from tests.wallet_helpers import DECLINING_CARD, balance_of, setup_wallet

MAILING_SPEC = {
    "currency": "EUR",
    "charges": [{"id": "mail", "metric": "recipients", "model": "per_unit", "unit_price": "0", "unit": "recipients",
                 "credit_rate": "1.05", "settle": "wallet"}],
    "fees": [{"id": "base", "kind": "base", "amount": "10"}],
}
# An injected clock, in the middle of a month (never date.today(): the tests must not depend on the run day).
TODAY = date(2026, 3, 18)
NOW = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)


def _assign(engine, staff, pid, aid, spec, code):
    _, plan_id = make_plan(engine, staff, code=code, spec_=spec, effective_from=month_of(TODAY)[0])
    with unit_of_work(engine) as s:
        plans.assign_plan(s, staff, pid, aid, plan_id=plan_id, effective_from=month_of(TODAY)[0])


def _mode(engine, staff, pid, aid, mode, on_decline=None, effective_from=TODAY):
    with unit_of_work(engine) as s:
        billing_modes.set_mode(s, staff, pid, aid, mode, effective_from, on_decline, today=TODAY)


def _record(engine, staff, pid, aid, metric, qty, event_id, when=None):
    with unit_of_work(engine) as s:
        return usage.record_events(s, staff, pid, [{
            "account_id": aid, "metric": metric, "quantity": str(qty), "event_id": event_id,
            "occurred_at": (when or NOW - timedelta(minutes=5)).isoformat()}], now=NOW)


def _draws(engine, pid) -> list[tuple[int | None, Decimal, str, str]]:
    """The wallet's usage draws: (customer, credits drawn, month, first event id of the batch)."""
    with Session(engine) as s:
        rows = s.execute(select(WalletLedgerEntry.account_id, WalletLedgerEntry.credits, WalletLedgerEntry.event_ref)
                         .where(WalletLedgerEntry.partner_id == pid, WalletLedgerEntry.kind == "usage_draw")
                         .order_by(WalletLedgerEntry.id)).all()
    return [(a, -c, ref["period"], ref["first_event_id"]) for a, c, ref in rows]


def test_prepaid_mailing_draws_5250_credits_from_50000(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "mailing-1")
    assert balance_of(engine, a.partner_id) == Decimal("44750")
    # the same batch again: a duplicate, nothing drawn twice
    res = _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "mailing-1")
    assert res.duplicates == 1
    assert balance_of(engine, a.partner_id) == Decimal("44750")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "mailing-2")
    assert balance_of(engine, a.partner_id) == Decimal("43700")


def test_prepaid_refused_when_credits_do_not_cover_and_nothing_written(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=1000)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    with pytest.raises(UsageBlocked):
        _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "too-big")
    assert balance_of(engine, a.partner_id) == Decimal("1000")
    with Session(engine) as s:
        assert aggregates.period_usage(s, a.partner_id, a.account_id, *month_of(TODAY)).get("recipients", 0) == 0


def test_customer_pays_draws_nothing_while_a_prepaid_customer_draws(world, engine):
    """Same plan, same usage, same moment: the customer-pays account draws nothing, the prepaid one draws
    exactly its credits (so the test fails if nothing is ever drawn, too)."""
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    _assign(engine, a.staff, a.partner_id, a.other_account_id, MAILING_SPEC, "mail-2")
    _mode(engine, a.staff, a.partner_id, a.other_account_id, "partner_prepaid")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "m1")
    assert _draws(engine, a.partner_id) == []
    _record(engine, a.staff, a.partner_id, a.other_account_id, "recipients", 5000, "m2")
    assert _draws(engine, a.partner_id) == [(a.other_account_id, Decimal("5250"), "2026-03-01", "m2")]
    assert balance_of(engine, a.partner_id) == Decimal("44750")


def test_on_demand_charges_sum_to_the_tiered_month_exactly(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id)
    _assign(engine, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "pages")  # 1..1000 at 0.10, then 0.08
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_on_demand", "block")
    for i, qty in enumerate((800, 400, 333)):
        _record(engine, a.staff, a.partner_id, a.account_id, "pages", qty, f"doc-{i}")
    with Session(engine) as s:
        charges = s.scalars(select(PaymentCharge.amount).where(PaymentCharge.partner_id == a.partner_id,
                                                               PaymentCharge.status == "approved")
                            .order_by(PaymentCharge.id)).all()
        cost, _ = month_to_date_cost(s, a.partner_id, a.account_id, TODAY)
    # 800 × 0.10 = 80.00; then 1,200 pages: 1,000 × 0.10 + 200 × 0.08 = 116.00 → +36.00;
    # then 1,533: 100 + 533 × 0.08 = 142.64 → +26.64
    assert charges == [Decimal("80.00"), Decimal("36.00"), Decimal("26.64")]
    assert sum(charges) == cost.amount == Decimal("142.64")


def test_on_demand_decline_blocks_the_batch(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, card=DECLINING_CARD)
    _assign(engine, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "pages")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_on_demand", "block")
    with pytest.raises(UsageBlocked):
        _record(engine, a.staff, a.partner_id, a.account_id, "pages", 10, "declined-1")
    with Session(engine) as s:
        assert aggregates.period_usage(s, a.partner_id, a.account_id, *month_of(TODAY)).get("pages", 0) == 0


def test_on_demand_decline_flags_but_keeps_usage(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, card=DECLINING_CARD)
    _assign(engine, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "pages")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_on_demand", "flag")
    _record(engine, a.staff, a.partner_id, a.account_id, "pages", 10, "flagged-1")
    with Session(engine) as s:
        assert aggregates.period_usage(s, a.partner_id, a.account_id, *month_of(TODAY))["pages"] == Decimal(10)
        assert s.scalar(select(func.count()).select_from(PaymentCharge).where(
            PaymentCharge.partner_id == a.partner_id, PaymentCharge.status == "declined")) == 1


def test_mode_started_mid_month_settles_only_its_own_days(world, engine):
    a = world.a
    start = month_of(TODAY)[0]  # the 1st; TODAY is the 18th (injected clock, so this never skips)
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    _assign(engine, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    # usage before the switch is the customer's own (customer pays)
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 2000, "before",
            when=datetime.combine(start, datetime.min.time(), UTC) + timedelta(hours=1))
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    _record(engine, a.staff, a.partner_id, a.account_id, "recipients", 1000, "after")
    # one draw, for the 1,000 recipients after the switch only (× 1.05 credits), in March
    assert _draws(engine, a.partner_id) == [(a.account_id, Decimal("1050"), "2026-03-01", "after")]
    assert balance_of(engine, a.partner_id) == Decimal("50000") - Decimal("1050")


def test_on_demand_charges_are_net_of_usage_discounts(world, engine):
    a = world.a
    setup_wallet(engine, a.staff, a.partner_id)
    spec = {**PAGES_SPEC, "discounts": [{"id": "loyal", "percent": "10", "applies_to": "usage"}]}
    _assign(engine, a.staff, a.partner_id, a.account_id, spec, "pages-disc")
    _mode(engine, a.staff, a.partner_id, a.account_id, "partner_on_demand", "block")
    _record(engine, a.staff, a.partner_id, a.account_id, "pages", 1200, "d-1")
    with Session(engine) as s:
        charges = s.scalars(select(PaymentCharge.amount).where(PaymentCharge.partner_id == a.partner_id,
                                                               PaymentCharge.status == "approved")).all()
    # 1,000 × 0.10 + 200 × 0.08 = 116.00, less 10 % = 11.60 → 104.40
    assert charges == [Decimal("104.40")]
