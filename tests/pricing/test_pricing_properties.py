"""Property-based tests (hypothesis) for the pricing engine."""

import json
from datetime import date, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.pricing import (
    ChargeSpec,
    FeeSpec,
    PlanSpec,
    Segment,
    Tier,
    plan_from_dict,
    plan_to_dict,
    price_graduated,
    price_volume,
    rate,
    rate_plan,
    validate_plan,
)

FAST = settings(max_examples=60, deadline=None)  # local, does not change the global profile

prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
fees = st.decimals(min_value=0, max_value=500, places=2, allow_nan=False, allow_infinity=False)
quantities = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)
currencies = st.sampled_from(["EUR", "NOK", "JPY", "BHD", "USD"])


@st.composite
def tier_lists(draw, min_size=1, max_size=4, falling=False, flat=True):
    n = draw(st.integers(min_size, max_size))
    first = draw(st.sampled_from([0, 1]))
    ps = [draw(prices) for _ in range(n)]
    if falling:
        ps.sort(reverse=True)
    tiers = []
    for i in range(n):
        last_open = i == n - 1 and draw(st.booleans())
        width = draw(st.integers(1, 5000))
        last = None if last_open else first + width - 1 if first > 0 else width
        tiers.append(Tier(first, last, ps[i], draw(fees) if flat else D(0)))
        if last is None:
            break
        first = last + 1
    return tuple(tiers)


@st.composite
def charges(draw, idx):
    model = draw(st.sampled_from(["per_unit", "graduated", "volume", "package", "allowance", "threshold"]))
    metric = draw(st.sampled_from(["pages", "api", "mb", "recipients"]))
    kw = {}
    if model == "per_unit":
        kw["unit_price"] = draw(prices)
    elif model in ("graduated", "volume"):
        kw["tiers"] = draw(tier_lists())
    elif model == "package":
        kw.update(package_size=D(draw(st.integers(1, 1000))), unit_price=draw(fees),
                  free_units=D(draw(st.integers(0, 100))))
    elif model == "allowance":
        kw["included_units"] = D(draw(st.integers(0, 10_000)))
        if draw(st.booleans()):
            kw["overage_price"] = draw(prices)
        else:
            kw["overage_tiers"] = draw(tier_lists())
        kw["included_fee"] = draw(st.none() | fees)
    else:
        kw.update(threshold=D(draw(st.integers(0, 50_000))), threshold_price=draw(prices))
    settle = "money"
    if draw(st.booleans()):
        kw["credit_rate"] = draw(st.decimals(min_value=D("0.01"), max_value=10, places=2))
        settle = draw(st.sampled_from(["money", "wallet"]))
    if settle == "money":
        kw["min_amount"] = draw(st.none() | fees)
    return ChargeSpec(id=f"c{idx}", metric=metric, model=model, settle=settle, **kw)


@st.composite
def plans(draw, currency=None):
    n = draw(st.integers(0, 5))
    cs = tuple(draw(charges(i)) for i in range(n))
    fs = []
    for i in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["base", "feature", "access", "flat"]))
        start = draw(st.none() | st.dates(date(2024, 3, 1), date(2024, 5, 31)))
        fs.append(FeeSpec(f"f{i}", kind, draw(fees), metric="pages" if kind == "feature" else None,
                          timing=draw(st.none() | st.sampled_from(["in_advance", "in_arrears"])), start=start))
    spec = PlanSpec(currency=currency or draw(currencies), timing=draw(st.sampled_from(["in_advance", "in_arrears"])),
                    charges=cs, fees=tuple(fs), minimum_spend=draw(st.none() | fees))
    return validate_plan(spec)


usages = st.fixed_dictionaries({m: quantities for m in ["pages", "api", "mb", "recipients"]})
APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)


@FAST
@given(plans(), usages)
def test_amounts_never_negative_and_total_is_sum_of_rounded_lines(spec, usage):
    r = rate_plan(spec, usage, APR1, APR30)
    for ln in r.lines:
        assert ln.amount >= 0 and ln.unrounded >= 0
        assert abs(ln.amount - ln.unrounded) <= D("0.5")
    assert r.total == sum((ln.amount for ln in r.lines), D(0))
    assert r.total >= 0


@FAST
@given(plans(), usages)
def test_rating_is_deterministic(spec, usage):
    assert rate_plan(spec, usage, APR1, APR30) == rate_plan(spec, dict(usage), APR1, APR30)


@FAST
@given(plans())
def test_plan_dict_round_trip(spec):
    d = plan_to_dict(spec)
    text = json.dumps(d, sort_keys=True)
    back = plan_from_dict(json.loads(text))
    assert back == spec
    assert json.dumps(plan_to_dict(back), sort_keys=True) == text


@FAST
@given(tier_lists(falling=True, flat=False), quantities)
def test_graduated_never_more_than_first_tier_per_unit_when_prices_fall(tiers, q):
    assert price_graduated(q, tiers).amount <= q * tiers[0].unit_price


@FAST
@given(prices, fees, st.sampled_from([0, 1]), quantities)
def test_volume_equals_graduated_with_one_tier(price, flat, first, q):
    tiers = (Tier(first, None, price, flat),)
    assert price_volume(q, tiers).amount == price_graduated(q, tiers).amount


@FAST
@given(plans(currency="EUR"), plans(currency="EUR"), usages, usages, st.integers(1, 29))
def test_two_segments_equal_sum_of_parts(a, b, ua, ub, split):
    mid = APR1 + timedelta(days=split - 1)
    r = rate([Segment(a, APR1, mid, ua), Segment(b, mid + timedelta(days=1), APR30, ub)], APR1, APR30)
    assert r.total == sum((ln.amount for ln in r.lines), D(0))
    assert all(ln.segment_end <= mid for ln in r.lines if ln.segment_start == APR1)
