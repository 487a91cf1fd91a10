"""The billing-model lab compares models on the partner's margin too: each model's price − the platform's
charge at the rate card, and the volume where the margin turns positive."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sqlalchemy.orm import Session

from core.billing.ratecard_spec import card_from_dict, cost_plan
from core.lab import compare as lab
from core.pricing import plan_from_dict
from tests.test_ratecards import STANDARD, standard

OCT, NOV = date(2026, 10, 1), date(2026, 11, 1)


def _model(name: str, price: str) -> lab.LabModel:
    return lab.LabModel(name, plan_from_dict({"currency": "EUR", "charges": [
        {"id": "p", "metric": "pages", "model": "per_unit", "unit_price": price}]}))


def test_margin_per_model_and_margin_break_even():
    cost = cost_plan(card_from_dict(STANDARD))
    usage = {OCT: {"pages": D(1200)}, NOV: {"pages": D(3000)}}
    res = lab.reprice(usage, [_model("Low", "0.03"), _model("Fair", "0.045")], cost=cost)
    # the card: 1,200 pages → 50.00 + 8.00 = 58.00; 3,000 pages → 50.00 + 80.00 = 130.00
    assert res.platform_cost == {OCT: D("58.00"), NOV: D("130.00")}
    low, fair = res.models
    assert (low.total, low.margin) == (D("126.00"), D("-62.00"))  # 36.00 + 90.00 − 188.00
    assert fair.margin_per_month == {OCT: D("-4.00"), NOV: D("5.00")}  # 54.00 − 58.00; 135.00 − 130.00
    by_model = {be.model: be for be in res.margin_break_even}
    # 0.045 q = 50 + 0.04 (q − 1000) at q = 2,000 pages, and already at 1,999 in cents (89.955 → 89.96 =
    # 50 + 39.96); below it the model is under the platform's charge
    assert by_model["Fair"].volume == 1999 and by_model["Fair"].cheaper_below == "Fair"
    assert by_model["Low"].volume is None  # 0.03 a page never covers the card


def test_credit_rated_metrics_cost_their_credits_at_the_credit_price():
    cost = cost_plan(card_from_dict(STANDARD))
    assert cost.charge("credits_recipients").unit_price == D("0.0105")  # 1.05 credits × 0.01


def test_platform_cost_plan_only_for_staff_and_admins(world, engine):
    standard(engine, world.admin)
    with Session(engine) as s:
        assert lab.platform_cost_plan(s, world.a.staff, world.a.partner_id, OCT) is not None
        assert lab.platform_cost_plan(s, world.admin, world.a.partner_id, OCT) is not None
        assert lab.platform_cost_plan(s, world.b.staff, world.a.partner_id, OCT) is None
        assert lab.platform_cost_plan(s, world.a.users["manager"], world.a.partner_id, OCT) is None


def test_lab_page_shows_the_margin_of_each_model(world, db):
    from tests.apptest import app

    standard(db, world.admin)
    at = app(world.a.staff, "pages/lab.py")
    at.radio(key="lab_source").set_value("A synthetic profile").run()
    at.number_input(key="lab_n").set_value(2).run()
    assert not at.exception, at.exception
    assert any(s.value == "Your margin under each model" for s in at.subheader)
    table = next(d.value for d in at.dataframe if "Platform charge" in d.value.columns)
    assert list(table.columns) == ["Model", "Customer pays", "Platform charge", "Margin", "Flag"]
    margins = dict(zip(table["Model"], table["Platform charge"], strict=True))
    assert len(set(margins.values())) == 1  # the same usage costs the same at the card, whatever the model


def test_platform_charge_is_the_price_less_the_margin():
    """The lab page shows the platform's charge from core (no money arithmetic in the page)."""
    r = lab.ModelResult("M", False, {}, D("90.00"), D(0), D(0), None, None, None, (), True, {}, D("-5.00"))
    assert r.platform_charge == D("95.00")
    assert lab.ModelResult("M", False, {}, D("90.00"), D(0), D(0), None, None, None).platform_charge is None
