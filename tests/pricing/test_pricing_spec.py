"""Validation, (de)serialisation and overrides."""

import json
from datetime import date
from decimal import Decimal as D

import pytest

from core.pricing import (
    ChargeSpec,
    FeeSpec,
    PlanSpec,
    PlanValidationError,
    Tier,
    apply_overrides,
    plan_from_dict,
    plan_to_dict,
    rate_plan,
    validate_plan,
)

GOOD = {
    "currency": "EUR",
    "timing": "in_arrears",
    "minimum_spend": "100",
    "charges": [
        {"id": "pages", "metric": "pages", "model": "graduated", "unit": "pages",
         "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"},
                   {"first": 1001, "last": None, "unit_price": "0.08"}]},
        {"id": "api", "metric": "api_requests", "model": "threshold", "threshold": "500000",
         "threshold_price": "0.017"},
    ],
    "fees": [{"id": "base", "kind": "base", "amount": "99.00"},
             {"id": "kw", "kind": "feature", "amount": "2.00", "metric": "keywords", "start": "2024-04-21"}],
}


def problems(d, **kw):
    with pytest.raises(PlanValidationError) as ei:
        validate_plan(d, **kw)
    assert isinstance(ei.value, ValueError)
    return ei.value.problems


def with_charge(**charge):
    d = json.loads(json.dumps(GOOD))
    d["charges"] = [charge]
    return d


def test_good_plan_parses_and_round_trips():
    spec = plan_from_dict(GOOD)
    assert spec.charges[0].tiers[1] == Tier(1001, None, D("0.08"))
    assert spec.fees[1].start == date(2024, 4, 21)
    d = plan_to_dict(spec)
    assert json.loads(json.dumps(d)) == d  # JSON-safe
    assert plan_from_dict(json.loads(json.dumps(d))) == spec
    assert d["charges"][0]["tiers"][0]["unit_price"] == "0.10"  # scale kept exactly


def test_tier_gap_and_overlap():
    gap = with_charge(id="p", metric="pages", model="graduated",
                      tiers=[{"first": 1, "last": 999, "unit_price": "0.1"},
                             {"first": 1001, "last": None, "unit_price": "0.08"}])
    assert problems(gap) == [("charges[0].tiers[1]", "tier starts at 1001 but the previous tier ends at 999: gap")]
    overlap = with_charge(id="p", metric="pages", model="volume",
                          tiers=[{"first": 0, "last": 100, "unit_price": "0.1"},
                                 {"first": 100, "last": None, "unit_price": "0.08"}])
    assert problems(overlap) == [("charges[0].tiers[1]",
                                  "tier starts at 100 but the previous tier ends at 100: overlap")]


def test_tier_start_open_not_last_negative_price():
    bad = with_charge(id="p", metric="pages", model="graduated",
                      tiers=[{"first": 2, "last": None, "unit_price": "-0.1"},
                             {"first": 3, "last": 10, "unit_price": "0.08"}])
    got = problems(bad)
    assert ("charges[0].tiers[0]", "first tier starts at 2; it must start at 0 or 1") in got
    assert ("charges[0].tiers[0]", "only the last tier may be open-ended (last = null)") in got
    assert ("charges[0].tiers[0].unit_price", "unit price must not be negative, got -0.1") in got


def test_tier_last_before_first():
    bad = with_charge(id="p", metric="pages", model="graduated",
                      tiers=[{"first": 1, "last": 0, "unit_price": "0.1"}])
    assert problems(bad) == [("charges[0].tiers[0]", "tier ends at 0, before it starts at 1")]


def test_missing_fields_for_models():
    assert problems(with_charge(id="a", metric="m", model="per_unit")) == [
        ("charges[0].unit_price", "unit price is required for this model")]
    assert problems(with_charge(id="a", metric="m", model="volume")) == [
        ("charges[0].tiers", "at least one tier is required for this model")]
    got = problems(with_charge(id="a", metric="m", model="threshold"))
    assert ("charges[0].threshold", "threshold is required for this model") in got
    assert ("charges[0].threshold_price", "threshold price is required for this model") in got
    got = problems(with_charge(id="a", metric="m", model="allowance", included_units="10"))
    assert got == [("charges[0].overage_price", "an allowance needs exactly one of overage_price or overage_tiers")]
    assert problems(with_charge(id="a", metric="m", model="magic"))[0][0] == "charges[0].model"
    assert problems(with_charge(metric="m", model="per_unit", unit_price="1"))[0] == (
        "charges[0].id", "id is required")


def test_package_size_zero():
    got = problems(with_charge(id="a", metric="m", model="package", unit_price="5", package_size="0"))
    assert got == [("charges[0].package_size", "package size must be at least 1, got 0")]


def test_unknown_metric_currency_and_mismatch():
    got = problems(GOOD, known_metrics={"pages", "keywords"})
    assert got == [("charges[1].metric", "unknown metric 'api_requests'")]
    got = problems(GOOD, known_metrics={"pages", "api_requests"})
    assert got == [("fees[1].metric", "unknown metric 'keywords'")]
    assert problems({**GOOD, "currency": "XYZ"}) == [("currency", "unknown currency 'XYZ'")]
    assert problems(GOOD, expected_currency="NOK") == [("currency", "plan currency is EUR but NOK is expected")]
    assert validate_plan(GOOD, known_metrics={"pages", "api_requests", "keywords"}, expected_currency="EUR")


def test_duplicate_ids():
    d = json.loads(json.dumps(GOOD))
    d["charges"][1]["id"] = "pages"
    d["fees"][1]["id"] = "base"
    got = problems(d)
    assert ("charges[1].id", "duplicate charge id 'pages' (also charges[0])") in got
    assert ("fees[1].id", "duplicate fee id 'base' (also fees[0])") in got


def test_negative_fee_and_minimum_and_floats_and_decimals():
    d = json.loads(json.dumps(GOOD))
    d["fees"][0]["amount"] = "-1"
    d["minimum_spend"] = 5.5
    d["charges"][1]["threshold_price"] = "0.12345678901"
    got = problems(d)
    assert ("fees[0].amount", "fee amount must not be negative, got -1") in got
    assert ("minimum_spend", 'must be a decimal string such as "0.10", not a float (5.5)') in got
    assert ("charges[1].threshold_price",
            "threshold price has 11 decimal places; at most 10 are allowed") in got


def test_fee_problems():
    d = json.loads(json.dumps(GOOD))
    d["fees"] = [
        {"id": "f", "kind": "feature", "amount": "1"},
        {"id": "g", "kind": "weekly", "amount": "1", "timing": "sometimes"},
        {"id": "h", "kind": "base", "amount": "1", "start": "2024-05-01", "end": "2024-04-01"},
        {"id": "i.j", "kind": "base", "amount": "1", "start": "someday"},
    ]
    got = problems(d)
    assert ("fees[0].metric", "metric (required for a feature fee) must be a non-empty string") in got
    assert ("fees[1].kind", "fee kind must be one of base, feature, access, flat, got 'weekly'") in got
    assert ("fees[1].timing", "timing must be one of in_advance, in_arrears or null, got 'sometimes'") in got
    assert ("fees[2].end", "fee ends 2024-04-01 before it starts 2024-05-01") in got
    assert ("fees[3].id", "fee id 'i.j' must not contain '.'") in got
    assert ("fees[3].start", "expected a date YYYY-MM-DD, got 'someday'") in got


def test_unknown_field_and_wallet_rules():
    d = json.loads(json.dumps(GOOD))
    d["charges"][0]["unit_prize"] = "1"
    assert problems(d) == [("charges[0].unit_prize", "unknown field 'unit_prize'")]
    got = problems(with_charge(id="w", metric="recipients", model="per_unit", settle="wallet", min_amount="1"))
    assert ("charges[0].credit_rate", "credit rate is required when settle is 'wallet'") in got
    assert ("charges[0].min_amount", "a minimum amount cannot be combined with settle 'wallet'") in got
    assert problems(with_charge(id="w", metric="r", model="per_unit", unit_price="1", credit_rate="0")) == [
        ("charges[0].credit_rate", "credit rate must be greater than 0")]
    # a wallet charge needs no price
    assert validate_plan(with_charge(id="w", metric="r", model="per_unit", settle="wallet", credit_rate="1.05"))


def test_error_message_lists_all_problems():
    with pytest.raises(PlanValidationError, match="unknown currency"):
        validate_plan({**GOOD, "currency": "XYZ"})
    with pytest.raises(PlanValidationError):
        validate_plan("not a plan")


def test_dataclass_construction_coerces_strings():
    spec = PlanSpec("NOK", charges=(ChargeSpec("p", "pages", "per_unit", unit_price="0.10"),),
                    fees=(FeeSpec("b", "base", "99", start="2024-04-01"),), minimum_spend="10")
    assert spec.charges[0].unit_price == D("0.10")
    assert spec.fees[0].start == date(2024, 4, 1)
    assert validate_plan(spec) is spec
    bad = PlanSpec("NOK", charges=(ChargeSpec("p", "pages", "per_unit", unit_price=0.1),))
    with pytest.raises(PlanValidationError, match="not a float"):
        validate_plan(bad)


# ----------------------------------------------------------------- overrides


def test_overrides():
    spec = plan_from_dict(GOOD)
    new = apply_overrides(spec, {
        "charges.pages.tiers.1.unit_price": "0.07",
        "charges.api.threshold_price": D("0.02"),
        "fees.base.amount": "89",
        "fees.kw.start": date(2024, 4, 1),
        "minimum_spend": None,
    })
    assert new.charge("pages").tiers[1].unit_price == D("0.07")
    assert new.charge("api").threshold_price == D("0.02")
    assert new.fee("base").amount == D(89)
    assert new.fee("kw").start == date(2024, 4, 1)
    assert new.minimum_spend is None
    assert spec.fee("base").amount == D("99.00")  # original untouched
    r = rate_plan(new, {"pages": D(1200)}, date(2024, 4, 1), date(2024, 4, 30))
    assert r.lines[0].amount == D("114.00")  # 100 + 200 × 0.07
    assert apply_overrides(spec, {}) is spec


def test_override_unit_price_on_per_unit_charge():
    spec = PlanSpec("EUR", charges=(ChargeSpec("pages", "pages", "per_unit", unit_price=D("0.10")),))
    assert apply_overrides(spec, {"charges.pages.unit_price": "0.09"}).charge("pages").unit_price == D("0.09")


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("charges.nope.unit_price", "1", "no charge with id 'nope' (known: 'pages', 'api')"),
        ("fees.nope.amount", "1", "no fee with id 'nope' (known: 'base', 'kw')"),
        ("charges.pages.unit_prize", "1", "unknown field 'unit_prize'"),
        ("charges.pages.tiers.5.unit_price", "1", "index 5 out of range (0..1)"),
        ("charges.pages.tiers.x.unit_price", "1", "expected a list index, got 'x'"),
        ("charges.pages", "1", "path must end with a field name"),
        ("charges.pages.id", "x", "ids cannot be overridden"),
        ("fees.base.amount", 1.5, "value must be a string or Decimal, not a float (1.5)"),
        ("bogus", "1", "unknown field 'bogus'"),
    ],
)
def test_override_bad_paths(path, value, expected):
    with pytest.raises(PlanValidationError) as ei:
        apply_overrides(plan_from_dict(GOOD), {path: value})
    assert ei.value.problems == [(path, expected)]


def test_override_bad_value_is_validated():
    with pytest.raises(PlanValidationError) as ei:
        apply_overrides(plan_from_dict(GOOD), {"fees.base.amount": "-5"})
    assert ei.value.problems == [("override → fees[0].amount", "fee amount must not be negative, got -5")]
    with pytest.raises(PlanValidationError) as ei:
        apply_overrides(plan_from_dict(GOOD), {"fees.base.amount": "lots"})
    assert ei.value.problems == [("override → fees[0].amount", "not a decimal number: 'lots'")]
