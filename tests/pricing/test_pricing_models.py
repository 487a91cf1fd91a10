"""Unit tests for each charge model (worked examples and boundaries)."""

from decimal import Decimal as D

import pytest

from core.pricing import (
    Tier,
    price_allowance,
    price_graduated,
    price_package,
    price_per_unit,
    price_threshold,
    price_volume,
    threshold_crossed,
    tier_for,
)

PAGES = (Tier(1, 1000, D("0.10")), Tier(1001, 5000, D("0.08")), Tier(5001, None, D("0.05")))
PARTNER = (Tier(0, 99, D(0), D(200)), Tier(100, 250, D(0), D(500)), Tier(251, None, D(0), D(1000)))


def test_per_unit():
    r = price_per_unit(D("1200"), D("0.10"))
    assert r.amount == D("120.00")
    assert r.parts == ("1,200 × 0.10",)
    assert price_per_unit(D(0), D("0.10")).amount == 0


@pytest.mark.parametrize(
    "q, expected",
    [
        (0, D("0")),
        (1, D("0.10")),
        (1000, D("100.00")),  # exactly at the bound: all in tier 1
        (1001, D("100.08")),  # one past it
        (1200, D("116.00")),  # 1,000 × 0.10 + 200 × 0.08
        (5000, D("420.00")),
        (5001, D("420.05")),
    ],
)
def test_graduated_boundaries(q, expected):
    assert price_graduated(D(q), PAGES).amount == expected


def test_graduated_explanation_and_fraction():
    assert price_graduated(D(1200), PAGES).parts == ("1,000 × 0.10", "200 × 0.08")
    # fractional quantities: 1..1000 covers (0, 1000]
    assert price_graduated(D("1000.5"), PAGES).amount == D("100") + D("0.5") * D("0.08")
    assert price_graduated(D(0), PAGES).parts == ("no charge",)


def test_graduated_flat_fees():
    tiers = (Tier(1, 10, D(1), D(5)), Tier(11, None, D(2), D(7)))
    assert price_graduated(D(0), tiers).amount == 0  # tier starting at 1 not entered by 0
    assert price_graduated(D(10), tiers).amount == D(15)
    assert price_graduated(D(11), tiers).amount == D(10) + D(5) + D(2) + D(7)
    # a tier starting at 0 is entered even by zero usage: its flat fee is charged
    zero_tiers = (Tier(0, 10, D(1), D(5)), Tier(11, None, D(2)))
    assert price_graduated(D(0), zero_tiers).amount == D(5)


def test_graduated_closed_last_tier_extends():
    tiers = (Tier(1, 10, D(1)), Tier(11, 20, D(2)))
    assert price_graduated(D(25), tiers).amount == D(10) + D(15) * 2


@pytest.mark.parametrize(
    "clients, expected", [(0, 200), (99, 200), (100, 500), (250, 500), (251, 1000), (10_000, 1000)]
)
def test_volume_partner_bands(clients, expected):
    assert price_volume(D(clients), PARTNER).amount == D(expected)


def test_volume_prices_every_unit_at_reached_tier():
    assert price_volume(D(1200), PAGES).amount == D("96.00")  # 1,200 × 0.08
    assert price_volume(D(1000), PAGES).amount == D("100.00")
    assert price_volume(D(1001), PAGES).amount == D("80.08")
    assert price_volume(D(0), PAGES).amount == 0
    assert price_volume(D(1200), PAGES).parts == ("1,200 × 0.08 (tier 1,001–5,000)",)
    assert price_volume(D(100), PARTNER).parts == ("band 100–250: 500.00 flat",)


def test_tier_for():
    assert tier_for(D(0), PAGES) is None
    assert tier_for(D("1000.5"), PAGES) is PAGES[1]
    assert tier_for(D(0), PARTNER) is PARTNER[0]


@pytest.mark.parametrize(
    "q, expected_blocks", [(0, 0), (1, 1), (100, 1), (101, 2), (250, 3), (D("100.5"), 2)]
)
def test_package_partial_block_counts_whole(q, expected_blocks):
    assert price_package(D(q), D(100), D("5.00")).amount == D("5.00") * expected_blocks


def test_package_free_units_first():
    r = price_package(D(1050), D(100), D("5.00"), free_units=D(100))
    assert r.amount == D("50.00")  # 950 billable -> 10 blocks
    assert r.parts == ("100 free, 950 billable → 10 blocks of 100 × 5.00",)
    assert price_package(D(80), D(100), D(5), free_units=D(100)).amount == 0
    with pytest.raises(ValueError):
        price_package(D(1), D(0), D(5))


def test_allowance():
    assert price_allowance(D(1000), D(1000), D("0.05")).amount == 0  # exactly at the allowance
    assert price_allowance(D(1001), D(1000), D("0.05")).amount == D("0.05")
    assert price_allowance(D(1200), D(1000), D("0.05")).amount == D("10.00")
    r = price_allowance(D(1200), D(1000), D("0.05"), included_fee=D(49))
    assert r.amount == D("59.00")
    assert r.parts == ("1,000 of 1,000 included (included fee 49.00)", "200 over × 0.05")


def test_allowance_graduated_overage():
    over_tiers = (Tier(1, 100, D("0.05")), Tier(101, None, D("0.03")))
    # 1,250 used, 1,000 included -> 250 over: 100 × 0.05 + 150 × 0.03
    assert price_allowance(D(1250), D(1000), overage_tiers=over_tiers).amount == D("9.50")


def test_threshold_api_requests():
    assert price_threshold(D(500_000), D(500_000), D("0.017")).amount == 0
    assert not threshold_crossed(D(500_000), D(500_000))
    assert price_threshold(D(500_001), D(500_000), D("0.017")).amount == D("0.017")
    assert threshold_crossed(D(500_001), D(500_000))


def test_threshold_data_30gb():
    thirty_gb_mb = D(30 * 1024)
    assert thirty_gb_mb == D(30_720)
    assert price_threshold(D(30_720), thirty_gb_mb, D("0.017")).amount == 0
    assert price_threshold(D(31_720), thirty_gb_mb, D("0.017")).amount == D("17.000")
    assert price_threshold(D("30720.5"), thirty_gb_mb, D("0.017")).amount == D("0.0085")


def test_negative_or_float_quantity_rejected():
    with pytest.raises(ValueError):
        price_per_unit(D(-1), D(1))
    with pytest.raises(TypeError):
        price_per_unit(1.5, D(1))
