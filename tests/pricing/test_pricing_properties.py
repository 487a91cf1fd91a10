"""Property-based tests (hypothesis) for the pricing engine."""

import json
from datetime import date, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.pricing import (
    MODELS,
    ChargeSpec,
    DimensionPrice,
    FeeSpec,
    PlanSpec,
    Segment,
    Tier,
    Usage,
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
def tier_lists(draw, min_size=1, max_size=4, falling=False, flat=True, blocks=False):
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
        block = D(draw(st.integers(1, 500))) if blocks and draw(st.booleans()) else None
        tiers.append(Tier(first, last, ps[i], draw(fees) if flat else D(0), block))
        if last is None:
            break
        first = last + 1
    return tuple(tiers)


def _per_unit(draw):
    return {"unit_price": draw(prices)}


def _tiered(draw):
    return {"tiers": draw(tier_lists(blocks=True) | fractional_tiers())}


def _package(draw):
    return {"package_size": D(draw(st.integers(1, 1000))), "unit_price": draw(fees),
            "free_units": D(draw(st.integers(0, 100)))}


def _allowance(draw):
    kw = {"included_units": D(draw(st.integers(0, 10_000))), "included_fee": draw(st.none() | fees)}
    if draw(st.booleans()):
        kw["overage_price"] = draw(prices)
    else:
        kw["overage_tiers"] = draw(tier_lists())
    return kw


def _threshold(draw):
    return {"threshold": D(draw(st.integers(0, 50_000))), "threshold_price": draw(prices)}


def _percentage(draw):
    params = {"rate": draw(st.decimals(min_value=0, max_value=100, places=2))}
    for name in ("fixed_fee", "free_amount", "event_min"):
        if draw(st.booleans()):
            params[name] = draw(fees)
    if draw(st.booleans()):
        params["free_events"] = D(draw(st.integers(0, 10)))
    if draw(st.booleans()):
        params["event_max"] = params.get("event_min", D(0)) + draw(fees)
    return {"params": params}


# one strategy per registered charge model (a new model adds its own here: test_every_model_has_a_strategy)
MODEL_FIELDS = {"per_unit": _per_unit, "graduated": _tiered, "volume": _tiered, "package": _package,
                "allowance": _allowance, "threshold": _threshold, "percentage": _percentage}


def test_every_registered_model_has_a_strategy():
    assert set(MODEL_FIELDS) == set(MODELS)


@st.composite
def fractional_tiers(draw, max_size=4):
    """Tiers with fractional bounds: each starts where the previous ends."""
    n = draw(st.integers(1, max_size))
    lo, tiers = D(0), []
    for i in range(n):
        last = None if i == n - 1 and draw(st.booleans()) else lo + draw(
            st.decimals(min_value=D("0.01"), max_value=50, places=2))
        if last is not None and last == last.to_integral_value():
            last += D("0.5")
        tiers.append(Tier(lo, last, draw(prices), draw(fees)))
        if last is None:
            break
        lo = last
    return tuple(tiers)


@st.composite
def charges(draw, idx, models=None):
    model = draw(st.sampled_from(models or MODELS))
    metric = draw(st.sampled_from(["pages", "api", "mb", "recipients"]))
    kw = MODEL_FIELDS[model](draw)
    settle = "money"
    if model != "percentage" and draw(st.booleans()):
        kw["credit_rate"] = draw(st.decimals(min_value=D("0.01"), max_value=10, places=2))
        settle = draw(st.sampled_from(["money", "wallet"]))
    if settle == "money":
        kw["min_amount"] = draw(st.none() | fees)
        if draw(st.booleans()):
            values = draw(st.lists(st.sampled_from(["NO", "SE", "DK"]), unique=True, max_size=2))
            kw["dimension"] = "country"
            kw["dimension_prices"] = tuple(
                DimensionPrice(v, tuple(sorted(_flat(MODEL_FIELDS[model](draw)).items()))) for v in values)
    return ChargeSpec(id=f"c{idx}", metric=metric, model=model, settle=settle, **kw)


def _flat(kw):
    """Model fields as dimension prices take them (params flattened)."""
    out = {k: v for k, v in kw.items() if k != "params" and v is not None}
    # a value inherits the fields it does not set: keep percentage's per-value price to rate and fixed fee so that
    # an inherited minimum never exceeds a per-value maximum
    out.update({k: v for k, v in kw.get("params", {}).items() if k in ("rate", "fixed_fee")})
    return out


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


@st.composite
def usage_detail(draw):
    """A metric's usage with its events and its quantities per country (what every model may need)."""
    events = draw(st.lists(st.tuples(st.sampled_from(["NO", "SE", "DK", None]),
                                     st.decimals(min_value=0, max_value=5000, places=3)), max_size=12))
    by_country: dict = {}
    for country, q in events:
        if country is not None:
            by_country.setdefault(country, []).append(q)
    values = tuple(q for _, q in events)
    return Usage(sum(values, D(0)), events=values, event_props={"country": tuple(c for c, _ in events)},
                 by_value={"country": {c: Usage(sum(qs, D(0)), events=tuple(qs)) for c, qs in by_country.items()}})


usages = st.fixed_dictionaries({m: usage_detail() for m in ["pages", "api", "mb", "recipients"]})
APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)


@FAST
@given(plans(), usages)
def test_amounts_never_negative_and_total_is_sum_of_rounded_lines(spec, usage):
    r = rate_plan(spec, usage, APR1, APR30)
    for ln in r.lines:
        assert ln.amount >= 0
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
