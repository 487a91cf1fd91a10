"""The models and options peers have (issue 13), with the peers' documented worked examples priced to the cent.

Sources (read for semantics only):
  [LAGO-PCT]  https://getlago.com/docs/guide/plans/charges/charge-models/percentage
  [LAGO-PCT2] https://getlago.com/docs/v2/guide/rate-cards/pricing-models/percentage
  [LAGO-STRIPE] https://getlago.com/docs/templates/per-transaction/stripe
  [LAGO-FILTERS] https://getlago.com/docs/api-reference/plans/charges/filters/object
  [KB-TUTORIAL] https://docs.killbill.io/latest/consumable_in_arrear.html
  [KB-CATALOG] https://docs.killbill.io/latest/catalog-examples.html
  [KB-TIERS]  Kill Bill's tiered-block cases, invoice/src/test/java/org/killbill/billing/invoice/usage/
              TestContiguousIntervalConsumableInArrear.java (https://github.com/killbill/killbill): ALL_TIERS is our
              graduated, TOP_TIER our volume; a tier of N blocks of size S spans N × S units.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from core.pricing import (
    ChargeSpec,
    DimensionPrice,
    PlanSpec,
    PlanValidationError,
    RatingError,
    Tier,
    Usage,
    apply_overrides,
    explain,
    explain_label,
    plan_from_dict,
    plan_to_dict,
    rate_plan,
    validate_plan,
)

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)


def one(charge: ChargeSpec, currency: str = "USD") -> PlanSpec:
    return validate_plan(PlanSpec(currency, charges=(charge,)))


def pct(**params) -> PlanSpec:
    return one(ChargeSpec(id="pay", metric="payments", model="percentage", params=params))


# ------------------------------------------------------------------ percentage


def test_lago_percentage_example_first_3_events_or_500_free():
    """[LAGO-PCT]: 1.2 %, 0.10 per transaction, the first 3 events or $500 free; transactions 200, 100, 100, 50:
    the fourth is charged 0.10 × 1 event + 1.2 % of 50 = 0.70."""
    spec = pct(rate="1.2", fixed_fee="0.10", free_events="3", free_amount="500")
    events = (D(200), D(100), D(100), D(50))
    r = rate_plan(spec, {"payments": Usage(sum(events), events=events)}, APR1, APR30)
    assert r.total == D("0.70")
    assert r.lines[0].explanation == ("450 payments: 1.2% of 50.00 (400.00 free) + 1 × 0.10 per transaction "
                                      "(3 free)")
    assert explain(r.lines[0], "de") == ("450 payments: 1,2 % von 50,00 (400,00 frei) + 1 × 0,10 pro Transaktion "
                                         "(3 frei)")


def test_lago_percentage_example_2_percent_of_1000():
    """[LAGO-PCT2]: 1,000 USD of transactions at 2 % = 20 USD."""
    assert rate_plan(pct(rate="2"), {"payments": D(1000)}, APR1, APR30).total == D("20.00")


def test_stripe_like_card_pricing_from_the_lago_template():
    """[LAGO-STRIPE]: online card payments 2.9 % + 0.30 per transaction; 40 payments worth 2,000.00 in total."""
    spec = pct(rate="2.9", fixed_fee="0.30")
    r = rate_plan(spec, {"payments": Usage(D("2000.00"), count=40)}, APR1, APR30)
    assert r.total == D("70.00")  # 58.00 + 12.00


def test_free_events_alone_exempt_only_the_fixed_fee_and_free_amount_only_the_rate():
    spec = pct(rate="1", fixed_fee="0.25", free_events="2")
    assert rate_plan(spec, {"payments": Usage(D(1000), count=5)}, APR1, APR30).total == D("10.75")  # 10 + 3×0.25
    spec = pct(rate="1", fixed_fee="0.25", free_amount="400")
    assert rate_plan(spec, {"payments": Usage(D(1000), count=5)}, APR1, APR30).total == D("7.25")  # 6 + 5×0.25


def test_per_transaction_minimum_and_maximum():
    """Each transaction's fee (rate + fixed fee) is raised to the minimum and lowered to the maximum [LAGO-PCT]."""
    spec = pct(rate="2", fixed_fee="0.10", event_min="0.50", event_max="5")
    events = (D(10), D(100), D(1000))  # fees 0.30 -> 0.50, 2.10, 20.10 -> 5.00
    r = rate_plan(spec, {"payments": Usage(D(1110), events=events)}, APR1, APR30)
    assert r.total == D("7.60")
    assert r.lines[0].explanation.endswith("+ per-transaction minimum/maximum -14.90")


def test_the_event_that_crosses_the_free_amount_pays_the_fee_and_the_rate_on_its_part_above_it():
    spec = pct(rate="10", fixed_fee="1", free_events="5", free_amount="100")
    events = (D(60), D(60), D(10))  # event 2 crosses 100: fee 1 + 10 % of 20; event 3: fee 1 + 10 % of 10
    assert rate_plan(spec, {"payments": Usage(D(130), events=events)}, APR1, APR30).total == D("5.00")


def test_percentage_needs_the_detail_it_prices_with():
    with pytest.raises(RatingError, match="number of transactions"):
        rate_plan(pct(rate="1", fixed_fee="0.1"), {"payments": D(100)}, APR1, APR30)
    with pytest.raises(RatingError, match="each transaction's amount"):
        rate_plan(pct(rate="1", event_max="1"), {"payments": Usage(D(100), count=2)}, APR1, APR30)
    with pytest.raises(RatingError, match="add up to"):
        rate_plan(pct(rate="1", event_max="1"), {"payments": Usage(D(100), events=(D(1),))}, APR1, APR30)


def test_percentage_validation():
    def problems(**params):
        with pytest.raises(PlanValidationError) as exc:
            pct(**params)
        return exc.value.problems

    assert problems() == [("charges[0].rate", "rate is required for this model")]
    assert problems(rate="101") == [("charges[0].rate", "rate must be at most 100, got 101")]
    assert problems(rate="1", free_events="1.5") == [("charges[0].free_events",
                                                      "free events must be a whole number, got 1.5")]
    assert problems(rate="1", event_min="5", event_max="1") == [
        ("charges[0].event_min", "the minimum per transaction (5) is above the maximum (1)")]
    assert problems(rate="1", unknown="1") == [("charges[0].unknown", "unknown field 'unknown' for the percentage "
                                                                     "model")]


def test_percentage_round_trips_through_the_stored_form_and_overrides():
    d = {"currency": "EUR", "charges": [{"id": "pay", "metric": "payments", "model": "percentage", "rate": "1.4",
                                         "fixed_fee": "0.25"}]}
    spec = plan_from_dict(d)
    stored = plan_to_dict(spec)
    assert stored["charges"][0]["rate"] == "1.4" and "event_min" not in stored["charges"][0]
    assert plan_from_dict(stored) == spec
    cheaper = apply_overrides(spec, {"charges.pay.rate": "1.2", "charges.pay.event_max": "5"})
    assert cheaper.charges[0].param("rate") == D("1.2") and cheaper.charges[0].param("event_max") == D(5)


# ------------------------------------------------------------------ blocks in tiers


def test_kill_bill_tutorial_first_5_videos_at_2_then_1():
    """[KB-TUTORIAL]: first 5 videos $2 each, the next ones $1 (tiers of blocks of size 1)."""
    spec = one(ChargeSpec(id="v", metric="videos", model="graduated",
                          tiers=(Tier(1, 5, D(2), block_size=D(1)), Tier(6, None, D(1), block_size=D(1)))))
    assert rate_plan(spec, {"videos": D(8)}, APR1, APR30).total == D("13.00")


def test_kill_bill_catalog_example_1000_at_1_5_then_2():
    """[KB-CATALOG]: 1,200 units, first 1,000 at $1.5 and the next 200 at $2.0 = 1,900 (+ $30 recurring)."""
    spec = one(ChargeSpec(id="u", metric="liters", model="graduated",
                          tiers=(Tier(1, 1000, D("1.5")), Tier(1001, None, D("2.0")))))
    assert rate_plan(spec, {"liters": D(1200)}, APR1, APR30).total == D("1900.00")


def test_kill_bill_all_tiers_blocks_of_100_then_1000():
    """[KB-TIERS] testComputeBilledUsageWith_ALL_TIERS: 10 blocks of 100 at 1, then 100 blocks of 1,000 at 1;
    5,325 units = 10 (1,000 units) + 5 (4,325 units in started blocks of 1,000) = 15."""
    spec = one(ChargeSpec(id="u", metric="unit", model="graduated", tiers=(
        Tier(1, 1000, D(1), block_size=D(100)), Tier(1001, 101000, D(1), block_size=D(1000)))))
    r = rate_plan(spec, {"unit": D(5325)}, APR1, APR30)
    assert r.total == D("15.00")
    assert r.lines[0].explanation == ("5,325 unit: 1,000 in blocks of 100 → 10 × 1.00 + 4,325 in blocks of 1,000 → "
                                      "5 × 1.00")


def test_kill_bill_all_tiers_and_top_tier_size_one():
    """[KB-TIERS] testComputeBilledUsageSizeOneWith_ALL_TIERS / _TOP_TIER: 10 at 1.5, 100 at 1.0, 1,000 at 0.5;
    111 units = 15.0 + 100.0 + 0.5 = 115.5 graduated, and 111 × 0.5 = 55.5 at the top tier (volume)."""
    tiers = (Tier(1, 10, D("1.5"), block_size=D(1)), Tier(11, 110, D("1.0"), block_size=D(1)),
             Tier(111, 1110, D("0.5"), block_size=D(1)))
    graduated = one(ChargeSpec(id="u", metric="unit", model="graduated", tiers=tiers))
    assert rate_plan(graduated, {"unit": D(111)}, APR1, APR30).total == D("115.50")
    volume = one(ChargeSpec(id="u", metric="unit", model="volume", tiers=tiers))
    assert rate_plan(volume, {"unit": D(111)}, APR1, APR30).total == D("55.50")


def test_kill_bill_top_tier_blocks():
    """[KB-TIERS] testComputeBilledUsageWith_TOP_TIER: every unit at the tier the total falls in, per started
    block: 1,000 → 10; 101,000 → 101; 101,001 → 102 blocks × 0.5 = 51; 300,000 → 150."""
    spec = one(ChargeSpec(id="u", metric="unit", model="volume", tiers=(
        Tier(1, 1000, D(1), block_size=D(100)), Tier(1001, 101000, D(1), block_size=D(1000)),
        Tier(101001, None, D("0.5"), block_size=D(1000)))))
    for units, total in ((1000, "10.00"), (101000, "101.00"), (101001, "51.00"), (300000, "150.00")):
        assert rate_plan(spec, {"unit": D(units)}, APR1, APR30).total == D(total), units


def test_graduated_tiers_priced_per_started_block():
    """Kill Bill's tiered blocks: a started block in a tier is charged whole. Tier 1: blocks of 100 at 1.00
    up to 1,000; tier 2: blocks of 500 at 3.00. 1,250 units = 10 blocks + 1 started block of 500 = 13.00."""
    spec = one(ChargeSpec(id="u", metric="api", model="graduated",
                          tiers=(Tier(1, 1000, D(1), block_size=D(100)), Tier(1001, None, D(3), block_size=D(500)))))
    r = rate_plan(spec, {"api": D(1250)}, APR1, APR30)
    assert r.total == D("13.00")
    assert r.lines[0].explanation == ("1,250 api: 1,000 in blocks of 100 → 10 × 1.00 + 250 in blocks of 500 → "
                                      "1 × 3.00")
    assert rate_plan(spec, {"api": D(1)}, APR1, APR30).total == D("1.00")
    assert rate_plan(spec, {"api": D(0)}, APR1, APR30).total == D("0.00")


def test_volume_tiers_priced_per_started_block():
    spec = one(ChargeSpec(id="u", metric="api", model="volume",
                          tiers=(Tier(1, 1000, D(2), block_size=D(100)), Tier(1001, None, D("1.5"),
                                                                                 block_size=D(100)))))
    assert rate_plan(spec, {"api": D(950)}, APR1, APR30).total == D("20.00")  # 10 blocks × 2
    r = rate_plan(spec, {"api": D(1001)}, APR1, APR30)
    assert r.total == D("16.50")  # 11 blocks × 1.5
    assert r.lines[0].explanation == "1,001 api: 1,001 in blocks of 100 → 11 × 1.50 (tier 1,001+)"


def test_block_size_must_be_positive_and_round_trips():
    with pytest.raises(PlanValidationError, match="block size must be greater than 0"):
        one(ChargeSpec(id="u", metric="api", model="volume", tiers=(Tier(0, None, D(1), block_size=D(0)),)))
    d = {"currency": "EUR", "charges": [{"id": "u", "metric": "api", "model": "graduated", "tiers": [
        {"first": 0, "last": None, "unit_price": "1", "block_size": "100"}]}]}
    assert plan_to_dict(plan_from_dict(d))["charges"][0]["tiers"][0]["block_size"] == "100"


# ------------------------------------------------------------------ fractional bounds


@pytest.mark.parametrize("model", ["graduated", "volume"])
def test_fractional_tier_bounds(model):
    """Storage priced by the GB: the first 0.5 GB at 2.00, up to 10 GB at 1.00, above at 0.50."""
    tiers = (Tier(0, D("0.5"), D(2)), Tier(D("0.5"), 10, D(1)), Tier(10, None, D("0.5")))
    spec = one(ChargeSpec(id="s", metric="storage", model=model, tiers=tiers))
    expected = {"graduated": {D("0.25"): "0.50", D("0.5"): "1.00", D("0.51"): "1.01", D("12.5"): "11.75"},
                "volume": {D("0.25"): "0.50", D("0.5"): "1.00", D("0.51"): "0.51", D("12.5"): "6.25"}}[model]
    for q, total in expected.items():
        assert rate_plan(spec, {"storage": q}, APR1, APR30).total == D(total), q


def test_fractional_bounds_in_allowance_overage_tiers_and_the_stored_form():
    d = {"currency": "EUR", "charges": [{"id": "s", "metric": "storage", "model": "allowance",
                                         "included_units": "1", "overage_tiers": [
                                             {"first": 0, "last": "0.25", "unit_price": "4"},
                                             {"first": "0.25", "last": None, "unit_price": "1"}]}]}
    spec = plan_from_dict(d)
    assert rate_plan(spec, {"storage": D("2.5")}, APR1, APR30).total == D("2.25")  # 0.25×4 + 1.25×1
    assert plan_to_dict(spec)["charges"][0]["overage_tiers"][1]["first"] == "0.25"
    assert plan_from_dict(plan_to_dict(spec)) == spec


def test_fractional_tiers_must_chain_end_to_start():
    with pytest.raises(PlanValidationError) as exc:
        one(ChargeSpec(id="s", metric="storage", model="graduated",
                       tiers=(Tier(0, D("0.5"), D(2)), Tier(D("1.5"), None, D(1)))))
    assert exc.value.problems == [("charges[0].tiers[1]", "tier starts at 1.5 but the previous tier ends at 0.5: gap")]
    with pytest.raises(PlanValidationError, match="must start at 0"):
        one(ChargeSpec(id="s", metric="storage", model="graduated", tiers=(Tier(1, D("1.5"), D(2)),
                                                                          Tier(D("1.5"), None, D(1)))))


# ------------------------------------------------------------------ dimensions


def sms_plan() -> PlanSpec:
    return one(ChargeSpec(id="sms", metric="messages", model="per_unit", unit_price=D("0.08"), label="SMS",
                          unit="messages", dimension="country",
                          dimension_prices=(DimensionPrice("NO", (("unit_price", D("0.05")),), "Norway"),
                                            DimensionPrice("SE", (("unit_price", D("0.06")),), "Sweden"))), "NOK")


def test_a_price_per_country_with_a_default_price_one_line_per_value():
    """[LAGO-FILTERS]: a charge priced per value of an event property, other values at the default price."""
    usage = Usage(D(2000), by_value={"country": {"NO": D(1200), "SE": D(500), "DK": D(300)}})
    r = rate_plan(sms_plan(), {"messages": usage}, APR1, APR30)
    assert [(ln.label, ln.explanation, ln.amount, ln.dimension_value) for ln in r.lines] == [
        ("SMS – Norway", "1,200 messages: 1,200 × 0.05", D("60.00"), "NO"),
        ("SMS – Sweden", "500 messages: 500 × 0.06", D("30.00"), "SE"),
        ("SMS – other values", "300 messages: 300 × 0.08", D("24.00"), ""),
    ]
    assert r.total == D("114.00")
    assert explain_label(r.lines[2], "nb") == "SMS – andre verdier"
    assert explain(r.lines[0], "nb") == "1 200 meldinger: 1 200 × 0,05"


def test_usage_without_the_property_is_priced_at_the_default_and_no_usage_gives_one_zero_line():
    r = rate_plan(sms_plan(), {"messages": D(100)}, APR1, APR30)
    assert [(ln.label, ln.amount) for ln in r.lines] == [("SMS – other values", D("8.00"))]
    r = rate_plan(sms_plan(), {}, APR1, APR30)
    assert [(ln.label, ln.amount) for ln in r.lines] == [("SMS – other values", D("0.00"))]
    with pytest.raises(RatingError, match="adds up to more"):
        rate_plan(sms_plan(), {"messages": Usage(D(10), by_value={"country": {"NO": D(11)}})}, APR1, APR30)


def test_dimension_prices_with_tiers_a_minimum_and_a_discount():
    spec = one(ChargeSpec(id="docs", metric="documents", model="graduated", min_amount=D(50), dimension="type",
                          tiers=(Tier(1, 100, D(1)), Tier(101, None, D("0.5"))),
                          dimension_prices=(DimensionPrice("invoice", (("tiers", (Tier(0, None, D("0.2")),)),)),)))
    usage = Usage(D(300), by_value={"type": {"invoice": D(100), "contract": D(200)}})
    r = rate_plan(spec, {"documents": usage}, APR1, APR30)
    assert [ln.amount for ln in r.lines] == [D("20.00"), D("150.00")]
    r = rate_plan(spec, {"documents": Usage(D(10), by_value={"type": {"invoice": D(10)}})}, APR1, APR30)
    assert [(ln.kind, ln.amount) for ln in r.lines] == [("usage", D("2.00")), ("minimum", D("48.00"))]


def test_dimensions_stored_validated_and_overridden_by_value():
    spec = sms_plan()
    stored = plan_to_dict(spec)
    assert stored["charges"][0]["dimension"] == "country"
    assert stored["charges"][0]["dimension_prices"][0] == {"value": "NO", "label": "Norway", "unit_price": "0.05"}
    assert plan_from_dict(stored) == spec
    cheaper = apply_overrides(spec, {"charges.sms.dimension_prices.NO.unit_price": "0.04"})
    usage = Usage(D(100), by_value={"country": {"NO": D(100)}})
    assert rate_plan(cheaper, {"messages": usage}, APR1, APR30).total == D("4.00")
    bad = {**stored, "charges": [{**stored["charges"][0], "dimension_prices": [
        {"value": "NO", "unit_price": "x"}, {"value": "NO", "tiers": []}, {"value": "SE", "rate": "1"}]}]}
    with pytest.raises(PlanValidationError) as exc:
        plan_from_dict(bad)
    assert ("charges[0].dimension_prices[0].unit_price", "not a decimal number: 'x'") in exc.value.problems
    assert ("charges[0].dimension_prices[1].value", "duplicate value 'NO'") in exc.value.problems
    assert ("charges[0].dimension_prices[2].rate", "unknown field 'rate' for the per_unit model") in exc.value.problems


def test_percentage_per_payment_method():
    """[LAGO-STRIPE] with filters: card online 2.9 % + 0.30, in person 2.7 % + 0.05."""
    spec = one(ChargeSpec(id="pay", metric="payments", model="percentage", params={"rate": "2.9", "fixed_fee": "0.30"},
                          dimension="type", dimension_prices=(
                              DimensionPrice("in-person", (("rate", D("2.7")), ("fixed_fee", D("0.05")))),)))
    usage = Usage(D(3000), count=30, by_value={"type": {"in-person": Usage(D(1000), count=10)}})
    r = rate_plan(spec, {"payments": usage}, APR1, APR30)
    assert [ln.amount for ln in r.lines] == [D("27.50"), D("64.00")]  # 27 + 0.50; 58 + 6.00
