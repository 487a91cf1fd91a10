"""Money, number, percent and date formats come from CLDR (Babel) for every language (issue 15)."""

from datetime import date
from decimal import Decimal as D

import pytest

from core.pricing.money import (
    LOCALES,
    format_date,
    format_money,
    format_percent,
    format_quantity,
    minor_unit,
    round_money,
)


def test_cldr_money_formats():
    assert format_money(D("1234.5"), "NOK", "nb") == "1 234,50 kr"
    assert format_money(D("1234.5"), "EUR", "de") == "1.234,50 €"
    assert format_money(D("1234.5"), "EUR") == "EUR 1,234.50"
    assert format_money(D("-1234.5"), "EUR") == "EUR -1,234.50"
    assert format_money(D("1234.5"), "JPY") == "JPY 1,235"  # 0 decimals, rounded half up first
    assert format_money(D("1.2345"), "KWD") == "KWD 1.235"  # 3 decimals


def test_minor_units_from_cldr():
    assert (minor_unit("JPY"), minor_unit("KWD"), minor_unit("EUR")) == (0, 3, 2)
    assert round_money(D("2.5"), "JPY") == 3


def test_one_date_format_per_language():
    day = date(2026, 11, 30)
    assert format_date(day, "de") == "30.11.2026"
    assert format_date(day, "nb") == "30.11.2026"
    assert format_date(day) == "30 Nov 2026"
    assert set(LOCALES) == {"en", "de", "nb"}


@pytest.mark.parametrize("lang", list(LOCALES))
def test_plain_characters_only(lang):
    """No no-break spaces or U+2212 minus: the PDF fonts print every character."""
    for text in (format_money(D("-1234567.5"), "NOK", lang), format_quantity(D("1234567"), lang),
                 format_percent(D("-0.5"), lang)):
        assert text.isascii() or set(text) - set("€ -0123456789.,%kr") == set(), text
        assert "\u00a0" not in text and "\u2212" not in text


def test_credits_and_percentages():
    assert format_quantity(D("2.5"), places=2) == "2.50"
    assert format_quantity(D("1200.456"), places=2) == "1,200.46"
    assert format_percent(D("0.125")) == "+12.5%"
    assert format_percent(D("-0.00001")) == "0.0%"  # neutral: no sign
    assert format_percent(D("0")) == "0.0%"
    assert format_percent(D("0.125"), "de") == "+12,5 %"
