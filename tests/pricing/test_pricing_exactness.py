"""Two paths to silent wrong money, closed (issue 13): rate() refuses an invalid spec however it was built, and a
line is rounded once, half up, from an exactly computed amount (no -0.00)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.pricing import (
    ChargeSpec,
    PlanSpec,
    PlanValidationError,
    RatingError,
    Segment,
    Tier,
    rate,
    rate_plan,
)
from tests.pricing import legacy_engine as old

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)
ROOT = Path(__file__).resolve().parents[2]


def per_unit(price: str = "1", currency: str = "EUR") -> PlanSpec:
    return PlanSpec(currency, charges=(ChargeSpec(id="x", metric="pages", model="per_unit", unit_price=D(price)),))


def test_more_than_40_significant_digits_are_rounded_once():
    q = D("10000000000.004999999999999999999999999995")  # 43 significant digits, just below the half cent
    assert old.rate_plan(per_unit(), {"pages": q}, APR1, APR30).total == D("10000000000.01")  # the bug
    r = rate_plan(per_unit(), {"pages": q}, APR1, APR30)
    assert r.total == D("10000000000.00")
    assert r.lines[0].unrounded == q


def test_exact_half_rounds_up_once_at_the_minor_unit_of_each_currency():
    assert rate_plan(per_unit("0.5"), {"pages": D("0.01")}, APR1, APR30).total == D("0.01")  # 0.005 -> 0.01
    assert rate_plan(per_unit("0.5", "JPY"), {"pages": D(1)}, APR1, APR30).total == D(1)  # 0.5 -> 1
    assert rate_plan(per_unit("0.0005", "BHD"), {"pages": D(1)}, APR1, APR30).total == D("0.001")


def test_package_blocks_of_a_long_quantity_are_counted_exactly():
    spec = PlanSpec("EUR", charges=(ChargeSpec(id="x", metric="pages", model="package", package_size=D(1),
                                               unit_price=D(1)),))
    q = D("100000000000000000000000000000000000000.0000000001")  # 49 digits: one started block more
    assert rate_plan(spec, {"pages": q}, APR1, APR30).total == D("100000000000000000000000000000000000001")


def test_minus_zero_is_normalised():
    assert str(old.rate_plan(per_unit(), {"pages": D("-0")}, APR1, APR30).lines[0].amount) == "-0.00"  # the bug
    line = rate_plan(per_unit(), {"pages": D("-0")}, APR1, APR30).lines[0]
    assert str(line.amount) == "0.00"
    assert str(line.quantity) == "0"
    assert "-" not in line.explanation


def test_a_quantity_with_absurdly_many_digits_is_refused():
    with pytest.raises(RatingError, match="significant digits"):
        rate_plan(per_unit(), {"pages": D("1." + "1" * 120)}, APR1, APR30)


def graduated(*tiers: Tier) -> PlanSpec:
    return PlanSpec("EUR", charges=(ChargeSpec(id="g", metric="pages", model="graduated", tiers=tiers),))


def test_rate_refuses_a_gap_between_tiers_built_in_code():
    gap = graduated(Tier(1, 100, D("1")), Tier(201, None, D("0.5")))
    assert old.rate_plan(gap, {"pages": D(300)}, APR1, APR30).total == D("150.00")  # 100 units unbilled
    with pytest.raises(PlanValidationError) as exc:
        rate_plan(gap, {"pages": D(300)}, APR1, APR30)
    assert exc.value.problems == [("charges[0].tiers[1]", "tier starts at 201 but the previous tier ends at 100: gap")]


def test_rate_refuses_an_overlap_between_tiers_built_in_code():
    overlap = graduated(Tier(1, 100, D("1")), Tier(51, None, D("0.5")))
    with pytest.raises(PlanValidationError, match="overlap"):
        rate([Segment(overlap, APR1, APR30, {"pages": D(300)})], APR1, APR30)


def test_rate_refuses_any_invalid_spec_in_any_segment():
    bad = PlanSpec("EUR", charges=(ChargeSpec(id="x", metric="pages", model="per_unit"),))  # no price
    with pytest.raises(PlanValidationError, match="unit price is required"):
        rate([Segment(per_unit(), APR1, date(2024, 4, 10)), Segment(bad, date(2024, 4, 11), APR30)], APR1, APR30)
    with pytest.raises(PlanValidationError, match="model must be one of"):
        rate_plan(PlanSpec("EUR", charges=(ChargeSpec(id="x", metric="m", model="nope"),)), {}, APR1, APR30)


def test_mypy_passes_on_core_pricing():
    out = subprocess.run([sys.executable, "-m", "mypy", "core/pricing"], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
