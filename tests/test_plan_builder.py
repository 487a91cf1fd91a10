"""core.billing.plan_builder: a charge from the builder's form, the calculator, overrides from the same fields
and in words (pure functions: no database)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from core.billing import plan_builder as pb
from core.errors import ValidationError
from core.pricing import plan_from_dict

PLAN = {"currency": "EUR", "charges": [
    {"id": "pages", "metric": "pages", "model": "graduated", "label": "Pages",
     "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"}, {"first": 1001, "last": None, "unit_price": "0.08"}]},
    {"id": "sms", "metric": "messages", "model": "per_unit", "unit_price": "0.08", "dimension": "country",
     "dimension_prices": [{"value": "NO", "label": "Norway", "unit_price": "0.05"}]}],
    "fees": [{"id": "base", "kind": "base", "amount": "90"}],
    "discounts": [{"id": "loyal", "percent": "10", "applies_to": "all"}]}


def test_a_charge_from_the_form_keeps_only_the_models_fields():
    charge = pb.charge_from_form(cid=" pay ", metric="documents", model="percentage",
                                 values={"rate": "1.2", "fixed_fee": " ", "unit_price": "9"}, unit="",
                                 label="Payments", dimension="type",
                                 dimension_rows=[{"value": "card", "label": None, "rate": "2.9"}, {"value": " "}])
    assert charge == {"id": "pay", "metric": "documents", "model": "percentage", "settle": "money", "unit": None,
                      "label": "Payments", "credit_rate": None, "min_amount": None, "rate": "1.2",
                      "dimension": "type", "dimension_prices": [{"value": "card", "label": None, "rate": "2.9"}]}
    plan_from_dict({"currency": "EUR", "charges": [charge]})


def test_tier_rows_from_the_editor_by_label_blank_rows_dropped():
    rows = [{"From": "1", "To (empty = and above)": "1000", "Price": "0.10", "Flat fee": None,
             "Block size (optional)": ""}, {"From": None, "Price": float("nan")}, {"From": "1001", "Price": "0.08"}]
    assert pb.tier_rows(rows) == [{"first": "1", "last": "1000", "unit_price": "0.10", "flat_fee": "0"},
                                  {"first": "1001", "last": None, "unit_price": "0.08", "flat_fee": "0"}]


def test_the_calculator_prices_the_plan_line_by_line():
    r = pb.calculate(PLAN, pb.CalculatorInput({"pages": "1200", "messages": "300"},
                                              per_value={"messages": {"NO": "100"}}))
    assert [(ln.label, ln.amount) for ln in r.lines] == [
        ("Pages", D("116.00")), ("sms – Norway", D("5.00")), ("sms – other values", D("16.00")), ("base", D("90.00")),
        ("Discount", D("-22.70"))]
    assert r.total == D("204.30")
    with pytest.raises(ValidationError) as exc:
        pb.calculate(PLAN, pb.CalculatorInput({"pages": "lots"}))
    assert exc.value.errors == {"quantities.pages": "Quantity of pages: not a number: 'lots'"}


def test_overrides_from_the_same_fields_only_what_changed():
    spec = plan_from_dict(PLAN)
    out = pb.overrides_from_form(
        spec, {"sms": {"unit_price": "0.080"}, "pages": {}},
        tier_edits={"pages": [{"From": "1", "To (empty = and above)": "1000", "Price": "0.09"},
                              {"From": "1001", "Price": "0.08"}]},
        fee_edits={"base": "79"}, discount_edits={"loyal": "10"})
    assert out == {"charges.pages.tiers.0.unit_price": "0.09", "fees.base.amount": "79"}
    assert pb.describe_overrides(spec, {**out, "charges.sms.dimension_prices.NO.unit_price": "0.04",
                                        "charges.sms.unit_price": "0.07", "minimum_spend": None}) == [
        "Pages – tier 1 unit price: 0.09", "base amount: 79", "sms – NO: price per unit: 0.04",
        "sms – price per unit: 0.07", "minimum spend: (removed)"]


def test_describe_draft_says_what_is_wrong_with_an_item():
    rows = pb.describe_draft({**PLAN, "fees": [{"id": "base", "kind": "base", "amount": "-1"}]})
    assert {"item": "base", "metric": "", "model": "base",
            "price": "not valid: fee amount must not be negative, got -1"} in rows
    assert rows[0]["price"] == "graduated: 1–1,000: 0.10; 1,001+: 0.08"
