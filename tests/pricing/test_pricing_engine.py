"""Engine tests: statement lines, rounding, fees, proration, minimums, credits, segments."""

from datetime import date
from decimal import Decimal as D

import pytest

from core.pricing import (
    ChargeSpec,
    FeeSpec,
    PlanSpec,
    RatingError,
    Segment,
    Tier,
    UnknownCurrencyError,
    break_even,
    format_money,
    minor_unit,
    next_period,
    rate,
    rate_plan,
    round_money,
)

APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)
PAGES = ChargeSpec(
    "pages", "pages", "graduated", unit="pages",
    tiers=(Tier(1, 1000, D("0.10")), Tier(1001, None, D("0.08"))),
)


def plan(*charges, fees=(), currency="EUR", **kw):
    return PlanSpec(currency=currency, charges=tuple(charges), fees=tuple(fees), **kw)


# ----------------------------------------------------------------- money


def test_minor_units_and_unknown_currency():
    assert (minor_unit("EUR"), minor_unit("NOK"), minor_unit("JPY"), minor_unit("BHD")) == (2, 2, 0, 3)
    with pytest.raises(UnknownCurrencyError):
        minor_unit("XXX")
    with pytest.raises(ValueError):
        round_money(D(1), "ZZZ")


@pytest.mark.parametrize(
    "amount, currency, expected",
    [
        ("0.125", "EUR", "0.13"),  # half up, not banker's
        ("0.135", "EUR", "0.14"),
        ("0.124999", "EUR", "0.12"),
        ("2.5", "JPY", "3"),
        ("3.5", "JPY", "4"),
        ("0.0005", "BHD", "0.001"),
        ("1.2345", "BHD", "1.235"),
    ],
)
def test_round_half_up(amount, currency, expected):
    assert round_money(D(amount), currency) == D(expected)
    assert str(round_money(D(amount), currency)) == expected


def test_format_money():
    assert format_money(D("1234.5"), "EUR") == "EUR 1,234.50"
    assert format_money(D("1234.5"), "EUR", "de") == "1.234,50 €"
    assert format_money(D("1234.5"), "NOK", "nb") == "1 234,50 kr"  # CLDR (Babel), issue 15
    assert format_money(D("1234567"), "JPY") == "JPY 1,234,567"
    assert format_money(D("-1.2345"), "BHD") == "BHD -1.235"
    with pytest.raises(ValueError):
        format_money(D(1), "EUR", "fr")


def test_line_rounded_once_and_total_is_sum_of_rounded_lines():
    # three charges each 0.005 EUR unrounded -> each line rounds half up to 0.01; total 0.03
    charges = [ChargeSpec(f"c{i}", "m", "per_unit", unit_price=D("0.005")) for i in range(3)]
    r = rate_plan(plan(*charges), {"m": D(1)}, APR1, APR30)
    assert [ln.amount for ln in r.lines] == [D("0.01")] * 3
    assert [ln.unrounded for ln in r.lines] == [D("0.005")] * 3
    assert r.total == D("0.03")  # not round(0.015) = 0.02


def test_rounding_jpy_and_bhd_lines():
    c = ChargeSpec("calls", "calls", "per_unit", unit_price=D("0.25"))
    assert rate_plan(plan(c, currency="JPY"), {"calls": D(10)}, APR1, APR30).total == D(3)  # 2.5 -> 3
    c3 = ChargeSpec("calls", "calls", "per_unit", unit_price=D("0.0001"))
    assert rate_plan(plan(c3, currency="BHD"), {"calls": D(5)}, APR1, APR30).total == D("0.001")


# ----------------------------------------------------------------- usage lines


def test_graduated_line_explanation():
    r = rate_plan(plan(PAGES), {"pages": D(1200)}, APR1, APR30)
    (ln,) = r.lines
    assert (ln.kind, ln.charge_id, ln.metric, ln.quantity, ln.amount) == ("usage", "pages", "pages", 1200, D("116.00"))
    assert ln.explanation == "1,200 pages: 1,000 × 0.10 + 200 × 0.08"
    assert r.currency == "EUR" and r.total == D("116.00")


def test_missing_usage_is_zero_and_bad_usage_rejected():
    r = rate_plan(plan(PAGES), {}, APR1, APR30)
    assert r.total == 0 and r.lines[0].explanation == "0 pages: no charge"
    with pytest.raises(RatingError):
        rate_plan(plan(PAGES), {"pages": 1.5}, APR1, APR30)
    with pytest.raises(RatingError):
        rate_plan(plan(PAGES), {"pages": D(-1)}, APR1, APR30)


def test_partner_band_volume_charge():
    c = ChargeSpec("partner", "active_clients", "volume", unit="clients",
                   tiers=(Tier(0, 99, D(0), D(200)), Tier(100, 250, D(0), D(500)), Tier(251, None, D(0), D(1000))))
    totals = [rate_plan(plan(c), {"active_clients": D(n)}, APR1, APR30).total for n in (0, 99, 100, 250, 251)]
    assert totals == [D(200), D(200), D(500), D(500), D(1000)]


def test_threshold_alert_returned_as_data():
    c = ChargeSpec("api", "api_requests", "threshold", threshold=D(500_000), threshold_price=D("0.017"),
                   unit="requests")
    r0 = rate_plan(plan(c), {"api_requests": D(500_000)}, APR1, APR30)
    assert r0.total == 0 and r0.alerts == ()
    r1 = rate_plan(plan(c), {"api_requests": D(500_001)}, APR1, APR30)
    assert r1.total == D("0.02")  # 0.017 rounded half up
    assert r1.lines[0].unrounded == D("0.017")
    (a,) = r1.alerts
    assert (a.metric, a.threshold, a.quantity, a.charge_id) == ("api_requests", 500_000, 500_001, "api")
    assert "exceeds the threshold of 500,000" in a.message


def test_credits_wallet():
    c = ChargeSpec("mailing", "recipients", "per_unit", credit_rate=D("1.05"), settle="wallet", unit="recipients")
    r = rate_plan(plan(c), {"recipients": D(5000)}, APR1, APR30)
    (ln,) = r.lines
    assert ln.amount == 0 and ln.credits == D(5250) and ln.settle == "wallet"
    assert ln.explanation == "5,000 recipients → 5,250 credits at 1.05 per recipient, drawn from prepaid credits"
    assert r.credits == {"recipients": D(5250)}
    assert r.total == 0


def test_credits_priced_with_tiers():
    # credits are priced by the charge model: 5,250 credits, first 5,000 at 0.02, rest at 0.01
    c = ChargeSpec("mailing", "recipients", "graduated", credit_rate=D("1.05"), unit="recipients",
                   tiers=(Tier(1, 5000, D("0.02")), Tier(5001, None, D("0.01"))))
    r = rate_plan(plan(c), {"recipients": D(5000)}, APR1, APR30)
    assert r.total == D("102.50")
    assert r.credits == {}
    assert r.lines[0].credits == D(5250)
    assert r.lines[0].explanation == (
        "5,000 recipients → 5,250 credits at 1.05 per recipient; 5,000 × 0.02 + 250 × 0.01")


def test_charge_min_amount_top_up_line():
    c = ChargeSpec("pages", "pages", "per_unit", unit_price=D("0.10"), min_amount=D(25), label="Pages")
    r = rate_plan(plan(c), {"pages": D(120)}, APR1, APR30)
    usage, top = r.lines
    assert usage.amount == D("12.00")
    assert (top.kind, top.charge_id, top.amount) == ("minimum", "pages", D("13.00"))
    assert top.label == "Pages minimum spend top-up"
    assert "minimum spend top-up" in top.explanation
    assert r.total == D(25)
    # above the minimum: no top-up line
    assert len(rate_plan(plan(c), {"pages": D(300)}, APR1, APR30).lines) == 1


def test_plan_minimum_spend():
    spec = plan(PAGES, fees=[FeeSpec("base", "base", D(99))], minimum_spend=D(500))
    r = rate_plan(spec, {"pages": D(1200)}, APR1, APR30)
    assert [ln.kind for ln in r.lines] == ["usage", "fee", "minimum"]
    assert r.lines[-1].amount == D("285.00")  # 500 - 116 - 99
    assert r.total == D(500)
    assert rate_plan(spec, {"pages": D(10_000)}, APR1, APR30).lines[-1].kind == "fee"


# ----------------------------------------------------------------- fees


def test_fees_full_month():
    spec = plan(fees=[
        FeeSpec("base", "base", D("99")),
        FeeSpec("kw", "feature", D("2.00"), metric="keywords"),
        FeeSpec("access", "access", D(149), label="Client access"),
    ])
    r = rate_plan(spec, {"keywords": D(5)}, APR1, APR30)
    assert [ln.amount for ln in r.lines] == [D("99.00"), D("10.00"), D("149.00")]
    assert r.lines[0].explanation == "Base fee 99.00"
    assert r.lines[1].explanation == "Feature fee: 5 keywords × 2.00"
    assert r.lines[2].label == "Client access"
    assert r.total == D("258.00")


def test_fee_prorated_by_days():
    # base fee starts 21 April: covers 10 of April's 30 days
    spec = plan(fees=[FeeSpec("base", "base", D(99), start=date(2024, 4, 21))])
    (ln,) = rate_plan(spec, {}, APR1, APR30).lines
    assert ln.amount == D("33.00")
    assert ln.explanation == "Base fee 99.00, prorated 10/30 days"
    assert (ln.covers_start, ln.covers_end) == (date(2024, 4, 21), APR30)
    # fee ended before the period: no line
    ended = plan(fees=[FeeSpec("base", "base", D(99), end=date(2024, 3, 31))])
    assert rate_plan(ended, {}, APR1, APR30).lines == ()


def test_fee_in_advance_covers_next_period():
    spec = plan(fees=[FeeSpec("base", "base", D(99), timing="in_advance")])
    (ln,) = rate_plan(spec, {}, APR1, APR30).lines
    assert (ln.covers_start, ln.covers_end) == (date(2024, 5, 1), date(2024, 5, 31))
    assert ln.amount == D("99.00")
    assert ln.explanation == "Base fee 99.00, billed in advance for 2024-05-01 – 2024-05-31"
    # plan-level timing is the default for fees without their own
    spec2 = plan(fees=[FeeSpec("base", "base", D(99))], timing="in_advance")
    assert rate_plan(spec2, {}, APR1, APR30).lines[0].covers_start == date(2024, 5, 1)
    # fee ending mid-May: prorated within May
    spec3 = plan(fees=[FeeSpec("base", "base", D(62), timing="in_advance", end=date(2024, 5, 10))])
    ln3 = rate_plan(spec3, {}, APR1, APR30).lines[0]
    assert ln3.amount == D("20.00") and "prorated 10/31 days" in ln3.explanation


def test_next_period():
    assert next_period(date(2024, 1, 1), date(2024, 1, 31)) == (date(2024, 2, 1), date(2024, 2, 29))
    assert next_period(date(2024, 12, 1), date(2024, 12, 31)) == (date(2025, 1, 1), date(2025, 1, 31))
    assert next_period(date(2024, 1, 1), date(2024, 3, 31)) == (date(2024, 4, 1), date(2024, 6, 30))
    assert next_period(date(2024, 1, 15), date(2024, 2, 14)) == (date(2024, 2, 15), date(2024, 3, 16))


# ----------------------------------------------------------------- segments


def test_two_segments_plan_change_mid_month():
    old = plan(ChargeSpec("pages", "pages", "per_unit", unit_price=D("0.10")),
               fees=[FeeSpec("base", "base", D(90))])
    new = plan(ChargeSpec("pages", "pages", "per_unit", unit_price=D("0.08")),
               fees=[FeeSpec("base", "base", D(120))])
    segs = [
        Segment(new, date(2024, 4, 11), APR30, {"pages": D(2000)}),
        Segment(old, APR1, date(2024, 4, 10), {"pages": D(1000)}),  # order does not matter
    ]
    r = rate(segs, APR1, APR30)
    assert [(ln.kind, ln.amount) for ln in r.lines] == [
        ("usage", D("100.00")), ("fee", D("30.00")),  # 90 × 10/30
        ("usage", D("160.00")), ("fee", D("80.00")),  # 120 × 20/30
    ]
    assert r.lines[0].label == "pages (2024-04-01 – 2024-04-10)"
    assert r.lines[3].explanation == "Base fee 120.00, prorated 20/30 days"
    assert r.lines[2].segment_start == date(2024, 4, 11)
    assert r.total == D("370.00")


def test_segment_errors():
    s = plan(PAGES)
    with pytest.raises(RatingError):
        rate([], APR1, APR30)
    with pytest.raises(RatingError):  # outside the period
        rate([Segment(s, date(2024, 3, 31), APR30, {})], APR1, APR30)
    with pytest.raises(RatingError):  # overlap
        rate([Segment(s, APR1, date(2024, 4, 15), {}), Segment(s, date(2024, 4, 15), APR30, {})], APR1, APR30)
    with pytest.raises(RatingError):  # mixed currencies
        rate([Segment(s, APR1, date(2024, 4, 14), {}), Segment(plan(PAGES, currency="NOK"),
              date(2024, 4, 15), APR30, {})], APR1, APR30)


def test_in_advance_fee_only_from_segment_in_effect_at_period_end():
    old = plan(fees=[FeeSpec("base", "base", D(90), timing="in_advance")])
    new = plan(fees=[FeeSpec("base", "base", D(120), timing="in_advance")])
    r = rate([Segment(old, APR1, date(2024, 4, 10), {}), Segment(new, date(2024, 4, 11), APR30, {})], APR1, APR30)
    assert [ln.amount for ln in r.lines] == [D("120.00")]


# ----------------------------------------------------------------- break-even


def test_break_even():
    a = plan(ChargeSpec("p", "pages", "per_unit", unit_price=D("0.10")))  # 0.10 per page
    b = plan(ChargeSpec("p", "pages", "per_unit", unit_price=D("0.05")), fees=[FeeSpec("base", "base", D(50))])
    # a < b until 1,000 pages (100 == 100), a > b from 1,001
    assert break_even(a, b, "pages", 0, 5000) == 1000
    assert break_even(a, b, "pages", 0, 10_000_000) == 1000  # bisection path
    assert break_even(a, b, "pages", 0, 999) is None


def test_break_even_bisection_across_tiers():
    a = plan(ChargeSpec("p", "pages", "per_unit", unit_price=D("0.10")))
    b = plan(ChargeSpec("p", "pages", "graduated",
                        tiers=(Tier(1, 10_000, D("0.20")), Tier(10_001, None, D(0)))))
    # a < b from 1 page; b is capped at 2,000 and a reaches 2,000 at 20,000 pages
    assert break_even(a, b, "pages", 1, 10_000_000) == 20_000
    assert break_even(a, b, "pages", 1, 30_000) == 20_000


def test_wallet_credits_accumulate_across_segments_and_int_usage():
    c = ChargeSpec("mailing", "recipients", "per_unit", credit_rate=D("1.05"), settle="wallet")
    s = plan(c)
    r = rate([Segment(s, APR1, date(2024, 4, 10), {"recipients": 1000}),
              Segment(s, date(2024, 4, 11), APR30, {"recipients": D(4000)})], APR1, APR30)
    assert r.credits == {"recipients": D(5250)}
    assert r.total == 0


def test_rating_to_dict_is_json_safe():
    import json

    from core.pricing import rating_to_dict

    c = ChargeSpec("api", "api_requests", "threshold", threshold=D(10), threshold_price=D("0.5"))
    r = rate_plan(plan(c), {"api_requests": D(12)}, APR1, APR30)
    d = rating_to_dict(r)
    assert json.loads(json.dumps(d)) == d
    assert d["total"] == "1.00" and d["lines"][0]["amount"] == "1.00" and d["lines"][0]["unrounded"] == "1.0"
    assert d["alerts"][0]["threshold"] == "10"


def test_results_independent_of_callers_decimal_context():
    import decimal

    with decimal.localcontext() as ctx:
        ctx.prec = 3
        r = rate_plan(plan(PAGES), {"pages": D(123456)}, APR1, APR30)
        assert round_money(D("123456.785"), "EUR") == D("123456.79")
    assert r.total == D("9896.48")  # 100 + 122,456 × 0.08


def test_threshold_on_credits_alerts_on_credit_quantity():
    c = ChargeSpec("sms", "messages", "threshold", credit_rate=D(2), threshold=D(100), threshold_price=D("0.5"))
    assert rate_plan(plan(c), {"messages": D(50)}, APR1, APR30).alerts == ()  # 100 credits: not crossed
    r = rate_plan(plan(c), {"messages": D(51)}, APR1, APR30)  # 102 credits
    assert r.total == D("1.00")
    assert r.alerts[0].quantity == D(102) and "102 credits exceeds the threshold of 100 by 2" in r.alerts[0].message
