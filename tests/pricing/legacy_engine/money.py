"""Money helpers: ISO 4217 minor units, half-up rounding, deterministic formatting.

Pure: stdlib only, no floats, no locale module (formatting is hand-rolled so it is
identical on every machine).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal

__all__ = [
    "CURRENCY_MINOR_UNITS",
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


# ISO 4217 minor units (number of decimals) for common currencies.
CURRENCY_MINOR_UNITS: dict[str, int] = {
    # two decimals
    "AED": 2, "ARS": 2, "AUD": 2, "BAM": 2, "BGN": 2, "BRL": 2, "CAD": 2, "CHF": 2,
    "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "GEL": 2,
    "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "KES": 2, "KZT": 2, "MAD": 2,
    "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "PEN": 2, "PHP": 2, "PKR": 2,
    "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "ZAR": 2,
    # zero decimals
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # three decimals
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

_CTX = Context(prec=60)  # explicit context: results never depend on the caller's decimal context
_QUANTS: dict[int, Decimal] = {n: Decimal(1).scaleb(-n) for n in range(0, 5)}

_SYMBOLS: dict[str, str] = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
_KR = {"NOK", "SEK", "DKK", "ISK"}


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


# (thousands, decimal) separators per statement locale: en "1,234.50", de "1.234,50", nb "1 234,50"
SEPARATORS: dict[str, tuple[str, str]] = {"en": (",", "."), "de": (".", ","), "nb": (" ", ",")}


def _seps(locale: str) -> tuple[str, str]:
    try:
        return SEPARATORS[locale]
    except KeyError:
        raise ValueError(f"unsupported locale {locale!r}; use 'en', 'de' or 'nb'") from None


def format_quantity(value: Decimal, locale: str = "en") -> str:
    """Quantity for explanations: '1,200', '30.5', '0' (trailing zeros dropped); de '1.200', nb '1 200'."""
    value = Decimal(value)
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    else:
        value = value.normalize()
    return format_number(value, None, *_seps(locale))


def format_price(value: Decimal, locale: str = "en") -> str:
    """Price for explanations: at least 2 decimals, more only if significant ('0.10', '0.017'; de '0,10')."""
    value = Decimal(value)
    norm = value.normalize()
    exp = norm.as_tuple().exponent
    places = max(2, -exp) if isinstance(exp, int) else 2
    return format_number(value.quantize(Decimal(1).scaleb(-places), context=_CTX), None, *_seps(locale))


def format_money(amount: Decimal, currency: str, locale: str = "en") -> str:
    """Deterministic money formatting (rounded half up to the minor unit first).

    en: "EUR 1,234.50"   (code, space, comma thousands, dot decimals)
    de: "1.234,50 €"     (dot thousands, comma decimals, symbol or code after)
    nb: "kr 1 234,50"    (space thousands, comma decimals; "kr" for NOK/SEK/DKK/ISK, else code, before)
    Negative amounts put "-" directly before the digits.
    """
    places = minor_unit(currency)
    value = round_money(amount, currency)
    if locale == "en":
        return f"{currency} {format_number(value, places, ',', '.')}"
    if locale == "de":
        return f"{format_number(value, places, '.', ',')} {_SYMBOLS.get(currency, currency)}"
    if locale == "nb":
        prefix = "kr" if currency in _KR else currency
        return f"{prefix} {format_number(value, places, ' ', ',')}"
    raise ValueError(f"unsupported locale {locale!r}; use 'en', 'de' or 'nb'")
