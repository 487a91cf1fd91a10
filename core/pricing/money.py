"""Money helpers: currency minor units, half-up rounding, and the app's number, money and date formats.

Minor units and formats come from CLDR through Babel (no hand-written tables): JPY has 0 decimals, KWD 3;
nb gives "1 234,50 kr", de "1.234,50 €" and "30.11.2026". Amounts are rounded by the engine (half up, to
the currency's minor unit) before they are formatted. Pure: no I/O, no clock, no floats; the output is the
same on every machine (Babel's data ships with it; no OS locale is used). Spaces are plain spaces and the
minus sign is "-", so the PDF fonts can print every character.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache

from babel import Locale
from babel.dates import format_date as _babel_date
from babel.numbers import format_currency as _babel_currency
from babel.numbers import format_decimal as _babel_decimal
from babel.numbers import format_percent as _babel_percent
from babel.numbers import get_currency_precision

__all__ = [
    "CURRENCY_MINOR_UNITS",
    "LOCALES",
    "format_date",
    "format_month",
    "format_percent",
    "UnknownCurrencyError",
    "minor_unit",
    "is_known_currency",
    "round_money",
    "format_money",
    "format_number",
    "format_quantity",
    "format_price",
]


class UnknownCurrencyError(ValueError):
    """Raised for a currency code that is not in CURRENCY_MINOR_UNITS."""


# The currencies the app supports (ISO 4217 codes); their minor units come from CLDR.
SUPPORTED_CURRENCIES: tuple[str, ...] = (
    "AED", "ARS", "AUD", "BAM", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EGP", "EUR", "GBP",
    "GEL", "HKD", "HUF", "IDR", "ILS", "INR", "KES", "KZT", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN",
    "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD",
    "ZAR", "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
    "XOF", "XPF", "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND",
)
# code -> number of decimals of its minor unit, from CLDR (Babel): EUR 2, JPY 0, KWD 3
CURRENCY_MINOR_UNITS: dict[str, int] = {c: get_currency_precision(c) for c in SUPPORTED_CURRENCIES}

# The app's languages (and the statement languages) -> the CLDR locale whose formats they use.
LOCALES: dict[str, str] = {"en": "en_GB", "de": "de_DE", "nb": "nb_NO"}

_CTX = Context(prec=60)  # explicit context: results never depend on the caller's decimal context
_QUANTS: dict[int, Decimal] = {n: Decimal(1).scaleb(-n) for n in range(0, 5)}



def is_known_currency(currency: object) -> bool:
    return isinstance(currency, str) and currency in CURRENCY_MINOR_UNITS


def minor_unit(currency: str) -> int:
    """Number of decimals of the currency's minor unit (EUR 2, JPY 0, BHD 3)."""
    try:
        return CURRENCY_MINOR_UNITS[currency]
    except (KeyError, TypeError):
        raise UnknownCurrencyError(f"unknown currency {currency!r}") from None


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round ONCE, half up (away from zero on .5), to the currency's minor unit."""
    if not isinstance(amount, Decimal):
        if isinstance(amount, int) and not isinstance(amount, bool):
            amount = Decimal(amount)
        else:
            raise TypeError(f"amount must be Decimal, got {type(amount).__name__}")
    return amount.quantize(_QUANTS[minor_unit(currency)], rounding=ROUND_HALF_UP, context=_CTX)


def _group(int_digits: str, sep: str) -> str:
    out = []
    while len(int_digits) > 3:
        out.append(int_digits[-3:])
        int_digits = int_digits[:-3]
    out.append(int_digits)
    return sep.join(reversed(out))


def format_number(value: Decimal, places: int | None = None, thousands: str = ",", decimal_sep: str = ".") -> str:
    """Format a Decimal with grouping. places=None keeps the value's own digits (no exponent)."""
    if places is not None:
        value = value.quantize(_QUANTS.get(places, Decimal(1).scaleb(-places)), rounding=ROUND_HALF_UP,
                               context=_CTX)
    sign = "-" if value < 0 else ""
    text = format(abs(value), "f")
    if "." in text:
        int_part, frac = text.split(".")
    else:
        int_part, frac = text, ""
    body = _group(int_part, thousands)
    if frac:
        body += decimal_sep + frac
    return sign + body


# (thousands, decimal) separators per language, from CLDR: en "1,234.50", de "1.234,50", nb "1 234,50"


def _locale(locale: str) -> Locale:
    try:
        return Locale.parse(LOCALES[locale])
    except KeyError:
        raise ValueError(f"unsupported locale {locale!r}; use 'en', 'de' or 'nb'") from None


def _plain(text: str) -> str:
    """CLDR uses no-break spaces and U+2212 minus in some locales: plain characters print everywhere."""
    return text.replace("\u00a0", " ").replace("\u202f", " ").replace("\u2212", "-")


def _separators(locale: str) -> tuple[str, str]:
    symbols = _locale(locale).number_symbols["latn"]
    return _plain(symbols["group"]), symbols["decimal"]


SEPARATORS: dict[str, tuple[str, str]] = {lang: _separators(lang) for lang in LOCALES}


def _seps(locale: str) -> tuple[str, str]:
    try:
        return SEPARATORS[locale]
    except KeyError:
        raise ValueError(f"unsupported locale {locale!r}; use 'en', 'de' or 'nb'") from None


@lru_cache(maxsize=8192)
def _decimal_text(value: str, pattern: str, locale: str, quantization: bool) -> str:
    """Babel's format_decimal, memoised (statements format the same few numbers thousands of times)."""
    return _plain(_babel_decimal(Decimal(value), pattern, locale=_locale(locale), decimal_quantization=quantization))


def format_quantity(value: Decimal | int, locale: str = "en", places: int | None = None) -> str:
    """A quantity: '1,200', '30.5', '0' (trailing zeros dropped); de '1.200', nb '1 200'. With `places`,
    exactly that many decimals (credits: 2), rounded half up."""
    value = Decimal(value)
    if places is not None:
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=_CTX)
        pattern = "#,##0" + ("." + "0" * places if places else "")
        return _decimal_text(str(value), pattern, locale, True)
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    else:
        value = value.normalize()
    return _decimal_text(str(value), "#,##0.###", locale, False)


def format_price(value: Decimal, locale: str = "en") -> str:
    """Price for explanations: at least 2 decimals, more only if significant ('0.10', '0.017'; de '0,10')."""
    value = Decimal(value)
    norm = value.normalize()
    exp = norm.as_tuple().exponent
    places = max(2, -exp) if isinstance(exp, int) else 2
    value = value.quantize(Decimal(1).scaleb(-places), context=_CTX)
    return _decimal_text(str(value), "#,##0.00", locale, False)


def format_money(amount: Decimal | int, currency: str, locale: str = "en") -> str:
    """Money in the language's CLDR format, rounded half up to the currency's minor unit first.

    en: "EUR 1,234.50" (the ISO code: a reseller's customers pay in many currencies)
    de: "1.234,50 €"     nb: "1 234,50 kr" (NOK), "1 234,50 €"     JPY "JPY 1,235", KWD "KWD 1.235"
    """
    value = round_money(Decimal(amount), currency)
    loc = _locale(locale)
    if locale == "en":
        positive = loc.currency_formats["standard"].pattern.split(";")[0].replace("¤", "¤¤\u00a0")
        pattern = f"{positive};{positive.replace('#', '-#', 1)}"  # "EUR -1,234.50": the sign at the digits
        return _plain(_babel_currency(value, currency, pattern, locale=loc))
    return _plain(_babel_currency(value, currency, locale=loc))


def format_percent(ratio: Decimal, locale: str = "en", places: int = 1, signed: bool = True) -> str:
    """A ratio as a percentage in the language's CLDR pattern: 0.125 -> '+12.5%' (en), '+12,5 %' (de).
    A change that rounds to zero has no sign: '0.0%'."""
    ratio = Decimal(ratio)
    loc = _locale(locale)
    pattern = loc.percent_formats[None].pattern.split(";")[0]
    if places:
        pattern = pattern.replace("#,##0", "#,##0." + "0" * places)
    text = _plain(_babel_percent(ratio, pattern, locale=loc))
    if round(ratio * 100, places) == 0:
        return text.lstrip("-")
    return ("+" + text) if signed and ratio > 0 else text


# CLDR's date style per language that spells out the whole year: en '30 Nov 2026', de and nb '30.11.2026'
DATE_STYLES: dict[str, str] = {"en": "medium", "de": "medium", "nb": "short"}


def format_month(day: date, locale: str = "en") -> str:
    """A month as people write it: en 'Oct 2026', de 'Okt. 2026', nb 'okt. 2026'."""
    return _plain(_babel_date(day, "MMM y", locale=_locale(locale)))


def format_date(day: date | datetime, locale: str = "en") -> str:
    """The one date format per language: en '30 Nov 2026', de '30.11.2026', nb '30.11.2026'."""
    if isinstance(day, datetime):
        day = day.date()
    return _plain(_babel_date(day, DATE_STYLES.get(locale, "medium"), locale=_locale(locale)))
