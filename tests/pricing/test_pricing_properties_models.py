"""Property tests of the charge models against brute-force references (hypothesis).

* graduated / volume / allowance overage tiers agree with a unit-by-unit (or slice-by-slice for fractional
  bounds) reference, with and without blocks and flat fees;
* adding usage never lowers a graduated total;
* percentage: the per-event path agrees with the sum-and-count path where both apply.
"""

from __future__ import annotations

from decimal import ROUND_CEILING
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from core.pricing import Tier, Usage, price_allowance, price_graduated, price_percentage, price_volume
from core.pricing.models.percentage import Terms
from tests.pricing.test_pricing_properties import fees, fractional_tiers, tier_lists

FAST = settings(max_examples=80, deadline=None)


def _bounds(tiers) -> list[tuple[D, D | None]]:
    """(lower, upper) per tier as the reference sees it: a unit/slice u belongs to the tier with lower < u <= upper;
    the last tier has no upper bound."""
    out = []
    for i, t in enumerate(tiers):
        lower = D(0) if i == 0 else D(tiers[i - 1].last)
        upper = None if i == len(tiers) - 1 or t.last is None else D(t.last)
        out.append((lower, upper))
    return out


def _tier_of(u: D, tiers) -> int:
    for i, (lower, upper) in enumerate(_bounds(tiers)):
        if u > lower and (upper is None or u <= upper):
            return i
    raise AssertionError(u)


def _entered(q: D, tiers) -> list[int]:
    return [i for i, (lower, _) in enumerate(_bounds(tiers)) if q > lower or (i == 0 and tiers[0].first == 0)]


def brute_graduated(q: D, tiers, step: D) -> D:
    """Count the units (slices of `step`) of q tier by tier, one at a time; then price each tier's count."""
    counts = [D(0)] * len(tiers)
    u = step
    while u <= q:
        counts[_tier_of(u, tiers)] += step
        u += step
    total = D(0)
    for i, t in enumerate(tiers):
        if counts[i]:
            if t.block_size is None:
                total += counts[i] * t.unit_price
            else:
                total += (counts[i] / t.block_size).to_integral_value(rounding=ROUND_CEILING) * t.unit_price
    return total + sum((tiers[i].flat_fee for i in _entered(q, tiers)), D(0))


def brute_volume(q: D, tiers) -> D:
    if q == 0:
        if tiers[0].first != 0:
            return D(0)
        t = tiers[0]
    else:
        t = tiers[_tier_of(q, tiers)]
    units = q if t.block_size is None else (q / t.block_size).to_integral_value(rounding=ROUND_CEILING)
    return units * t.unit_price + t.flat_fee


@FAST
@given(tier_lists(blocks=True), st.integers(0, 3000))
def test_graduated_agrees_with_unit_by_unit(tiers, q):
    assert price_graduated(D(q), tiers).amount == brute_graduated(D(q), tiers, D(1))


@FAST
@given(fractional_tiers(), st.decimals(min_value=0, max_value=60, places=2))
def test_graduated_with_fractional_bounds_agrees_with_slice_by_slice(tiers, q):
    assert price_graduated(q, tiers).amount == brute_graduated(q, tiers, D("0.01"))


@FAST
@given(tier_lists(blocks=True) | fractional_tiers(), st.decimals(min_value=0, max_value=20_000, places=2))
def test_volume_agrees_with_the_reference(tiers, q):
    assert price_volume(q, tiers).amount == brute_volume(q, tiers)


@FAST
@given(tier_lists(blocks=True), st.integers(0, 500), st.integers(0, 3000))
def test_allowance_overage_tiers_agree_with_unit_by_unit(tiers, included, q):
    over = max(0, q - included)
    expected = brute_graduated(D(over), tiers, D(1)) if over else D(0)
    assert price_allowance(D(q), D(included), overage_tiers=tiers).amount == expected


@FAST
@given(tier_lists(blocks=True) | fractional_tiers(), st.decimals(min_value=0, max_value=50_000, places=3),
       st.decimals(min_value=0, max_value=5_000, places=3))
def test_adding_usage_never_lowers_a_graduated_total(tiers, q, more):
    assert price_graduated(q + more, tiers).amount >= price_graduated(q, tiers).amount


events_st = st.lists(st.decimals(min_value=0, max_value=1000, places=2), max_size=15).map(tuple)


@FAST
@given(events_st, st.decimals(min_value=0, max_value=100, places=2), fees,
       st.none() | st.integers(0, 10), st.none() | fees)
def test_percentage_per_event_path_agrees_with_the_sum_and_count_path(events, rate, fixed, free_events, free_amount):
    if free_events is not None and free_amount is not None:
        free_amount = None  # both limits are an event-by-event rule: no aggregate path to compare with
    t = Terms(rate=rate, fixed_fee=fixed, free_events=free_events, free_amount=free_amount)
    total = sum(events, D(0))
    by_sum = price_percentage(t, Usage(total, count=len(events))).amount
    # the same terms priced event by event: a maximum no event reaches switches the per-event path on
    t_events = Terms(rate=rate, fixed_fee=fixed, free_events=free_events, free_amount=free_amount,
                     event_max=D(10) ** 9)
    assert price_percentage(t_events, Usage(total, events=events)).amount == by_sum


@FAST
@given(events_st, st.decimals(min_value=0, max_value=100, places=2), fees, st.integers(0, 10), fees, fees)
def test_percentage_with_both_free_limits_is_never_more_than_without(events, rate, fixed, n, x, extra):
    total = sum(events, D(0))
    free = price_percentage(Terms(rate, fixed, n, x, event_max=D(10) ** 9), Usage(total, events=events)).amount
    none = price_percentage(Terms(rate, fixed), Usage(total, count=len(events))).amount
    assert 0 <= free <= none


@FAST
@given(events_st, st.decimals(min_value=0, max_value=100, places=2), fees, fees, fees)
def test_percentage_minimum_and_maximum_bound_every_event(events, rate, fixed, lo, width):
    t = Terms(rate, fixed, event_min=lo, event_max=lo + width)
    amount = price_percentage(t, Usage(sum(events, D(0)), events=events)).amount
    assert len(events) * lo <= amount <= len(events) * (lo + width)


def test_reference_sanity():
    tiers = (Tier(1, 10, D(1), block_size=D(4)), Tier(11, None, D(2), D(5)))
    assert brute_graduated(D(12), tiers, D(1)) == D(3) + D(4) + D(5)  # 3 blocks, 2 units × 2, flat 5
    assert brute_volume(D(12), tiers) == D(24) + D(5)
