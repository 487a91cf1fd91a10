"""Plan-level discounts: worked examples, validation, overrides, properties (docs/pricing.md, Discounts)."""

import json
from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.pricing import (
    ChargeSpec,
    DiscountSpec,
    FeeSpec,
    PlanSpec,
    PlanValidationError,
    Segment,
    Tier,
    apply_overrides,
    plan_from_dict,
    plan_to_dict,
    rate,
    rate_plan,
    rating_to_dict,
    validate_plan,
)
from tests.pricing.test_pricing_properties import plans, usages

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)
PAGES = ChargeSpec("pages", "pages", "graduated", unit="pages",
                   tiers=(Tier(1, 1000, D("0.10")), Tier(1001, None, D("0.08"))))
API = ChargeSpec("api", "api_requests", "per_unit", unit_price=D("0.01"))
BASE = FeeSpec("base", "base", D(99))


def spec(*discounts, minimum=None, charges=(PAGES, API), fees=(BASE,)):
    return validate_plan(PlanSpec("EUR", charges=charges, fees=fees, discounts=discounts, minimum_spend=minimum))


def discount_lines(r):
    return r.lines_for("discount")


def test_percent_of_all_worked_example():
    # pages 116.00 + api 10.00 + base 99.00 = 225.00; 10 % = 22.50
    r = rate_plan(spec(DiscountSpec("loyal", percent=D(10))), {"pages": D(1200), "api_requests": D(1000)},
                  APR1, APR30)
    (d,) = discount_lines(r)
    assert d.amount == D("-22.50") and d.discount_id == "loyal" and d.label == "Discount"
    assert d.explanation == "10% of 225.00 on usage and fees"
    assert r.total == D("202.50") == sum(ln.amount for ln in r.lines)


def test_percent_rounded_once_half_up_from_rounded_lines():
    # usage 0.05 (5 × 0.01); 50 % = 0.025 -> 0.03 (half up)
    r = rate_plan(spec(DiscountSpec("half", percent=D(50), applies_to="usage"), fees=()),
                  {"api_requests": D(5)}, APR1, APR30)
    (d,) = discount_lines(r)
    assert d.unrounded == D("-0.025") and d.amount == D("-0.03") and r.total == D("0.02")


def test_usage_only_and_restricted_to_charges():
    s = spec(DiscountSpec("pg", percent=D(25), applies_to="usage", charges=("pages",), label="Pages promo"))
    r = rate_plan(s, {"pages": D(1200), "api_requests": D(1000)}, APR1, APR30)
    (d,) = discount_lines(r)
    assert d.amount == D("-29.00") and d.label == "Pages promo"  # 25 % of 116.00
    assert d.explanation == "25% of 116.00 on pages"
    fees_only = rate_plan(spec(DiscountSpec("f", percent=D(100), applies_to="fees")), {"pages": D(1200)},
                          APR1, APR30)
    assert discount_lines(fees_only)[0].amount == D("-99.00") and fees_only.total == D("116.00")


def test_fixed_amount_prorated_like_a_flat_fee():
    s = spec(DiscountSpec("promo", amount=D(30), start=date(2024, 4, 21)))
    r = rate_plan(s, {"pages": D(1200)}, APR1, APR30)
    (d,) = discount_lines(r)
    assert d.amount == D("-10.00") and d.explanation == "fixed 30.00 on usage and fees, prorated 10/30 days"


def test_cap_never_makes_total_negative():
    s = spec(DiscountSpec("big", amount=D(500)), DiscountSpec("more", percent=D(100)))
    r = rate_plan(s, {"pages": D(100)}, APR1, APR30)  # 10.00 + 99.00 = 109.00
    (big,) = discount_lines(r)  # "more" is capped at what is left (0): no line
    assert big.amount == D("-109.00") and big.explanation.endswith(", capped at 109.00")
    assert r.total == D("0.00")


def test_plan_minimum_compares_against_total_after_discounts():
    s = spec(DiscountSpec("loyal", percent=D(20)), minimum=D(200))
    r = rate_plan(s, {"pages": D(1200)}, APR1, APR30)  # 116 + 99 = 215; -43.00 -> 172.00; top-up 28.00
    kinds = [ln.kind for ln in r.lines]
    assert kinds == ["usage", "usage", "fee", "discount", "minimum"]
    assert r.lines[-1].amount == D("28.00") and r.total == D("200.00")


def test_discount_outside_its_dates_gives_no_line_and_segments_are_separate():
    s = spec(DiscountSpec("may", percent=D(10), start=date(2024, 5, 1)))
    assert discount_lines(rate_plan(s, {"pages": D(1200)}, APR1, APR30)) == ()
    s2 = spec(DiscountSpec("apr", percent=D(10), end=date(2024, 4, 15)))
    r = rate([Segment(s2, APR1, date(2024, 4, 15), {"pages": D(100)}),
              Segment(s2, date(2024, 4, 16), APR30, {"pages": D(100)})], APR1, APR30)
    (d,) = discount_lines(r)
    assert d.segment_end == date(2024, 4, 15) and d.amount == D("-5.95")  # 10 % of (10.00 + 49.50)


def test_round_trip_and_overrides():
    s = spec(DiscountSpec("loyal", percent=D("12.5"), applies_to="usage", charges=("pages",), label="Loyalty"))
    d = plan_to_dict(s)
    assert d["discounts"] == [{"id": "loyal", "percent": "12.5", "amount": None, "applies_to": "usage",
                               "charges": ["pages"], "start": None, "end": None, "label": "Loyalty"}]
    assert plan_from_dict(json.loads(json.dumps(d))) == s
    o = apply_overrides(s, {"discounts.loyal.percent": "20"})
    assert o.discount("loyal").percent == D(20)
    o2 = apply_overrides(s, {"discounts.loyal.percent": None, "discounts.loyal.amount": "15"})
    assert o2.discount("loyal").amount == D(15) and o2.discount("loyal").percent is None
    with pytest.raises(PlanValidationError) as ei:
        apply_overrides(s, {"discounts.nope.percent": "5"})
    assert ei.value.problems[0][1].startswith("no discount with id 'nope'")
    with pytest.raises(PlanValidationError) as ei:
        apply_overrides(s, {"discounts.loyal.percent": "150"})
    assert ei.value.problems == [("override → discounts[0].percent", "discount percent must be at most 100, got 150")]


def test_plans_without_discounts_still_load():
    d = plan_to_dict(spec())
    d.pop("discounts")
    assert plan_from_dict(d).discounts == ()


@pytest.mark.parametrize("disc, path, message", [
    ({"id": "a", "percent": "0"}, "discounts[0].percent", "greater than 0"),
    ({"id": "a", "percent": "100.5"}, "discounts[0].percent", "at most 100"),
    ({"id": "a", "percent": "10", "amount": "5"}, "discounts[0].percent", "exactly one of percent or amount"),
    ({"id": "a"}, "discounts[0].percent", "exactly one of percent or amount"),
    ({"id": "a", "amount": "-5"}, "discounts[0].amount", "must not be negative"),
    ({"id": "a", "percent": "5", "applies_to": "usage", "charges": ["nope"]}, "discounts[0].charges",
     "unknown charge id 'nope'"),
    ({"id": "a", "percent": "5", "applies_to": "fees", "charges": ["pages"]}, "discounts[0].charges",
     "only a discount that applies to usage"),
    ({"id": "a", "percent": "5", "applies_to": "tax"}, "discounts[0].applies_to", "applies_to must be one of"),
    ({"id": "a.b", "percent": "5"}, "discounts[0].id", "must not contain '.'"),
    ({"id": "a", "percent": 5.0}, "discounts[0].percent", "not a float"),
    ({"id": "a", "percent": "5", "start": "2024-05-01", "end": "2024-04-01"}, "discounts[0].end", "before"),
    ({"id": "a", "percent": "5", "colour": "red"}, "discounts[0].colour", "unknown field"),
])
def test_bad_discounts_refused_with_paths(disc, path, message):
    d = plan_to_dict(spec())
    d["discounts"] = [disc]
    with pytest.raises(PlanValidationError) as ei:
        plan_from_dict(d)
    assert any(p == path and message in m for p, m in ei.value.problems), ei.value.problems


def test_duplicate_discount_ids_refused():
    d = plan_to_dict(spec())
    d["discounts"] = [{"id": "a", "percent": "5"}, {"id": "a", "amount": "5"}]
    with pytest.raises(PlanValidationError) as ei:
        plan_from_dict(d)
    assert ("discounts[1].id", "duplicate discount id 'a' (also discounts[0])") in ei.value.problems


def test_rating_to_dict_keeps_structured_parts():
    r = rate_plan(spec(DiscountSpec("loyal", percent=D(10))), {"pages": D(1200)}, APR1, APR30)
    d = rating_to_dict(r)
    assert json.loads(json.dumps(d)) == d
    disc = d["lines"][-1]
    assert disc["kind"] == "discount" and disc["discount_id"] == "loyal"
    assert disc["explanation_parts"][0] == ["discount_percent", {"percent": "10", "base": "215.00"}]
    assert disc["label_parts"] == [["label_discount", {}]]


@st.composite
def discounts(draw, spec):
    out = []
    for i in range(draw(st.integers(0, 3))):
        kw = {}
        if draw(st.booleans()):
            kw["percent"] = draw(st.decimals(min_value=D("0.01"), max_value=100, places=2))
        else:
            kw["amount"] = draw(st.decimals(min_value=D("0.01"), max_value=1000, places=2))
        target = draw(st.sampled_from(["usage", "fees", "all"]))
        charges = ()
        if target == "usage" and spec.charges and draw(st.booleans()):
            charges = (spec.charges[0].id,)
        start = draw(st.none() | st.dates(date(2024, 3, 1), date(2024, 5, 31)))
        out.append(DiscountSpec(f"d{i}", applies_to=target, charges=charges, start=start, **kw))
    return validate_plan(PlanSpec(spec.currency, spec.timing, spec.charges, spec.fees, spec.minimum_spend,
                                  tuple(out)))


@settings(max_examples=60, deadline=None)
@given(plans().flatmap(discounts), usages)
def test_discounted_plans_never_negative_and_total_is_sum_of_rounded_lines(spec, usage):
    r = rate_plan(spec, usage, APR1, APR30)
    for ln in r.lines:
        if ln.kind == "discount":
            assert ln.amount < 0 and ln.unrounded < 0
        else:
            assert ln.amount >= 0 and ln.unrounded >= 0
    assert r.total == sum((ln.amount for ln in r.lines), D(0))
    assert r.total >= 0
    if spec.minimum_spend is not None:
        from core.pricing import round_money
        assert r.total >= round_money(spec.minimum_spend, spec.currency)
