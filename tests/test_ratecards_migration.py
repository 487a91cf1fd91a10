"""Migration 0012 moves existing data forward: partner-level plans and the credit rates inside client plans
become partner rate-card versions; plans, assignments and final statements stay exactly as they were."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.billing import ratecards
from core.errors import ValidationError
from db.engine import unit_of_work
from db.migrate import alembic_config, upgrade
from db.models.wallet import PartnerCreditPriceStep
from tests.billing_factories import BANDS_SPEC, make_plan
from tests.statements_helpers import assign, assign_partner, generate, record

PREPAID = {"currency": "EUR", "charges": [
    {"id": "mail", "metric": "recipients", "model": "per_unit", "unit_price": "0", "credit_rate": "1.05",
     "settle": "wallet"}]}
PER_CREDIT = {"currency": "EUR", "charges": [
    {"id": "mail", "metric": "recipients", "model": "per_unit", "unit_price": "0.009", "credit_rate": "1.05"}]}
PAGES = {"currency": "EUR", "charges": [{"id": "p", "metric": "pages", "model": "per_unit", "unit_price": "0.05"}]}


def _snapshot(engine) -> list:
    with engine.connect() as c:
        return [c.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).all()
                for t in ("statements", "statement_lines", "plans", "plan_versions", "plan_assignments")]


def _downgrade(engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_partner_plans_and_credit_rates_become_rate_cards_and_statements_stay(world, engine):
    a, b = world.a, world.b
    # partner A: a partner-level band plan, a prepaid client plan (1.05 credits), a negotiated credit price
    assign_partner(engine, world.admin, a.partner_id, BANDS_SPEC)
    assign(engine, a.staff, a.partner_id, a.account_id, PREPAID, "prepaid", effective_from=date(2026, 3, 1))
    with unit_of_work(engine) as s:
        s.add(PartnerCreditPriceStep(partner_id=a.partner_id, currency="EUR", min_credits=D(0),
                                     price_per_credit=D("0.012")))
    # partner B: money per credit (on demand) from May, and a plain money plan for another client
    assign(engine, b.staff, b.partner_id, b.account_id, PER_CREDIT, "percredit", effective_from=date(2026, 5, 1))
    assign(engine, b.staff, b.partner_id, b.other_account_id, PAGES, "pages")
    # a final statement from before the migration
    record(engine, b.staff, b.partner_id, b.other_account_id, "pages", 100, "p-1")
    generate(engine, world.admin, b.partner_id, finalise=True)
    before = _snapshot(engine)
    assert before[0], "the set-up should have a final statement"

    _downgrade(engine, "0012-1")  # the revision before 0012 (and what follows it), whatever the chain
    try:
        upgrade(engine)
    finally:
        upgrade(engine)  # whatever happens, the next tests get the head schema

    assert _snapshot(engine) == before  # plans, versions, assignments and statements untouched
    with Session(engine) as s:
        rc = ratecards.card_in_force(s, a.partner_id, date(2026, 6, 1))
        assert rc.source == "partner" and rc.card.credit_rates == {"recipients": D("1.05")}
        assert rc.card.credit_price == D("0.012")
        assert rc.card.partner_fees.charge("bands").tiers[0].flat_fee == D("200")
        # only the band plan before March; from March the credit rate too
        early = ratecards.card_in_force(s, a.partner_id, date(2024, 1, 1)).card
        assert early.credit_rates == {} and early.partner_fees is not None
        rb = ratecards.card_in_force(s, b.partner_id, date(2026, 5, 1)).card
        assert rb.credit_rates == {"recipients": D("1.05")}
        assert rb.usage.charge("recipients").unit_price == D("0.009")
        # the default price list of the platform (no partner override for B)
        assert rb.credit_price is not None
        assert ratecards.card_in_force(s, b.partner_id, date(2026, 4, 30)) is None
        # on demand, B is charged what it was charged before: 5,000 × 1.05 × 0.009 = 47.25
        cost = ratecards.cost_of([ratecards.CardSegment(rb, date(2026, 5, 1), date(2026, 5, 31),
                                                        {"recipients": D(5000)})], date(2026, 5, 1),
                                 date(2026, 5, 31))
        assert cost.amount == D("47.25") and cost.credits == D("5250")
    # and the partner's staff can no longer put credit rates in their plans (money prices are theirs)
    with pytest.raises(ValidationError):
        make_plan(engine, a.staff, code="cut", spec_={**PREPAID, "charges": [{**PREPAID["charges"][0],
                                                                            "credit_rate": "0.01"}]})
    assert make_plan(engine, a.staff, code="money", spec_=PAGES)[1]
