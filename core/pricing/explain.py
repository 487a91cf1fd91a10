"""Localised rating explanations: templates per language and a pure renderer.

The engine describes every line as structured *parts*: a list of ``(key, params)`` pairs whose params are
Decimal / int / str / None (dates as ISO strings), so the parts survive a JSON round trip (Decimals become
strings there, which render identically). ``explain(parts, locale)`` concatenates the rendered templates of
one language; the English rendering is exactly the engine's ``Line.explanation``.

Placeholders: ``{name}`` plain text, ``{name:q}`` quantity, ``{name:p}`` price (at least 2 decimals),
``{name:i}`` whole number, ``{name:d}`` date (en ISO, de/nb DD.MM.YYYY), ``{name:u}`` unit noun (plural),
``{name:u1}`` unit noun (singular), ``{range}`` a tier range from the params first/last ("1–1,000",
"1,001+"). Unit nouns are plan data; the common ones are translated (UNIT_NOUNS), others are shown as given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .money import format_price, format_quantity

__all__ = ["LOCALES", "TEMPLATES", "UNIT_NOUNS", "Part", "part", "explain", "explain_label", "parts_to_json",
           "register_templates", "singular"]

LOCALES = ("en", "de", "nb")

Part = tuple[str, dict[str, Any]]

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "text": "{text}", "plus": " + ", "colon": ": ", "semi": "; ",
        "times": "{qty:q} × {price:p}",
        "no_charge": "no charge",
        "flat": "{fee:p} flat",
        "usage_head": "{qty:q} {unit:u}",
        "credit_conversion": " → {credits:q} credits at {rate:q} per {unit:u1}",
        "wallet_drawn": ", drawn from prepaid credits",
        "charge_minimum": "minimum spend top-up: minimum {minimum:p}",
        "charged": ", charged {amount:p}",
        "plan_minimum": "minimum spend top-up: plan minimum {minimum:p}",
        "lines_total": ", lines total {amount:p}",
        "prorated": ", prorated {covered:i}/{total:i} days",
        "in_advance": ", billed in advance for {start:d} – {end:d}",
        "fee_name_base": "Base fee", "fee_name_access": "Access fee", "fee_name_flat": "Fee",
        "fee_name_feature": "Feature fee",
        "fee_feature": ": {qty:q} {unit:u} × {amount:p}",
        "fee_amount": " {amount:p}",
        "discount_percent": "{percent:q}% of {base:p}",
        "discount_fixed": "fixed {amount:p}",
        "discount_on_usage": " on usage", "discount_on_fees": " on fees", "discount_on_all": " on usage and fees",
        "discount_on_charges": " on {charges}",
        "discount_capped": ", capped at {amount:p}",
        "label_discount": "Discount",
        "label_charge_minimum": "{label} minimum spend top-up",
        "label_plan_minimum": "Plan minimum spend top-up",
        "segment": " ({start:d} – {end:d})",
        "dim_value": " – {value}", "dim_other": " – other values",
    },
    "de": {
        "text": "{text}", "plus": " + ", "colon": ": ", "semi": "; ",
        "times": "{qty:q} × {price:p}",
        "no_charge": "keine Kosten",
        "flat": "{fee:p} pauschal",
        "usage_head": "{qty:q} {unit:u}",
        "credit_conversion": " → {credits:q} Credits zu {rate:q} pro {unit:u1}",
        "wallet_drawn": ", aus Prepaid-Credits verbraucht",
        "charge_minimum": "Aufstockung auf Mindestumsatz: Minimum {minimum:p}",
        "charged": ", berechnet {amount:p}",
        "plan_minimum": "Aufstockung auf Mindestumsatz: Tarifminimum {minimum:p}",
        "lines_total": ", Summe der Positionen {amount:p}",
        "prorated": ", anteilig {covered:i}/{total:i} Tage",
        "in_advance": ", im Voraus berechnet für {start:d} – {end:d}",
        "fee_name_base": "Grundgebühr", "fee_name_access": "Zugangsgebühr", "fee_name_flat": "Gebühr",
        "fee_name_feature": "Funktionsgebühr",
        "fee_feature": ": {qty:q} {unit:u} × {amount:p}",
        "fee_amount": " {amount:p}",
        "discount_percent": "{percent:q} % von {base:p}",
        "discount_fixed": "Festbetrag {amount:p}",
        "discount_on_usage": " auf Nutzung", "discount_on_fees": " auf Gebühren",
        "discount_on_all": " auf Nutzung und Gebühren",
        "discount_on_charges": " auf {charges}",
        "discount_capped": ", begrenzt auf {amount:p}",
        "label_discount": "Rabatt",
        "label_charge_minimum": "{label}: Aufstockung auf Mindestumsatz",
        "label_plan_minimum": "Aufstockung auf Tarif-Mindestumsatz",
        "segment": " ({start:d} – {end:d})",
        "dim_value": " – {value}", "dim_other": " – andere Werte",
    },
    "nb": {
        "text": "{text}", "plus": " + ", "colon": ": ", "semi": "; ",
        "times": "{qty:q} × {price:p}",
        "no_charge": "ingen kostnad",
        "flat": "{fee:p} fast",
        "usage_head": "{qty:q} {unit:u}",
        "credit_conversion": " → {credits:q} kreditter à {rate:q} per {unit:u1}",
        "wallet_drawn": ", trukket fra forhåndsbetalte kreditter",
        "charge_minimum": "påfyll til minstebeløp: minimum {minimum:p}",
        "charged": ", belastet {amount:p}",
        "plan_minimum": "påfyll til minstebeløp: planens minimum {minimum:p}",
        "lines_total": ", sum linjer {amount:p}",
        "prorated": ", forholdsmessig {covered:i}/{total:i} dager",
        "in_advance": ", fakturert forskuddsvis for {start:d} – {end:d}",
        "fee_name_base": "Grunngebyr", "fee_name_access": "Tilgangsgebyr", "fee_name_flat": "Gebyr",
        "fee_name_feature": "Funksjonsgebyr",
        "fee_feature": ": {qty:q} {unit:u} × {amount:p}",
        "fee_amount": " {amount:p}",
        "discount_percent": "{percent:q} % av {base:p}",
        "discount_fixed": "fast beløp {amount:p}",
        "discount_on_usage": " på forbruk", "discount_on_fees": " på gebyrer",
        "discount_on_all": " på forbruk og gebyrer",
        "discount_on_charges": " på {charges}",
        "discount_capped": ", begrenset til {amount:p}",
        "label_discount": "Rabatt",
        "label_charge_minimum": "{label}: påfyll til minstebeløp",
        "label_plan_minimum": "Påfyll til planens minstebeløp",
        "segment": " ({start:d} – {end:d})",
        "dim_value": " – {value}", "dim_other": " – andre verdier",
    },
}

# unit noun (as configured on a charge, English plural) -> (plural, singular) per language
UNIT_NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "de": {"pages": ("Seiten", "Seite"), "documents": ("Dokumente", "Dokument"),
           "messages": ("Nachrichten", "Nachricht"), "recipients": ("Empfänger", "Empfänger"),
           "requests": ("Anfragen", "Anfrage"), "keywords": ("Keywords", "Keyword"),
           "clients": ("Kunden", "Kunde"), "credits": ("Credits", "Credit")},
    "nb": {"pages": ("sider", "side"), "documents": ("dokumenter", "dokument"),
           "messages": ("meldinger", "melding"), "recipients": ("mottakere", "mottaker"),
           "requests": ("forespørsler", "forespørsel"), "keywords": ("søkeord", "søkeord"),
           "clients": ("kunder", "kunde"), "credits": ("kreditter", "kreditt")},
}


def part(key: str, **params: Any) -> Part:
    return (key, params)


def singular(noun: str) -> str:
    """English singular of a unit noun ('pages' -> 'page', 'queries' -> 'query')."""
    if noun.endswith("ies"):
        return noun[:-3] + "y"
    if noun.endswith("s") and not noun.endswith("ss"):
        return noun[:-1]
    return noun


def _date(v: Any, locale: str) -> str:
    text = v.isoformat() if hasattr(v, "isoformat") else str(v)
    if locale == "en":
        return text
    y, m, d = text.split("-")
    return f"{d}.{m}.{y}"


def _noun(v: Any, locale: str, one: bool) -> str:
    noun = str(v)
    known = UNIT_NOUNS.get(locale, {}).get(noun)
    if known:
        return known[1] if one else known[0]
    return singular(noun) if (one and locale == "en") else noun


def _value(params: Mapping[str, Any], name: str, fmt: str, locale: str) -> str:
    if name == "range":
        first, last = params["first"], params.get("last")
        lo = format_quantity(Decimal(str(first)), locale)
        return f"{lo}+" if last is None else f"{lo}–{format_quantity(Decimal(str(last)), locale)}"
    v = params[name]
    if fmt == "q":
        return format_quantity(v if isinstance(v, Decimal) else Decimal(str(v)), locale)
    if fmt == "p":
        return format_price(v if isinstance(v, Decimal) else Decimal(str(v)), locale)
    if fmt == "d":
        return _date(v, locale)
    if fmt in ("u", "u1"):
        return _noun(v, locale, fmt == "u1")
    return str(v)


def _compile(template: str) -> tuple[tuple[str, str, str], ...]:
    """Split a template once into (literal, placeholder name, format) pieces (name "" = literal only)."""
    out: list[tuple[str, str, str]] = []
    i = 0
    while True:
        j = template.find("{", i)
        if j < 0:
            out.append((template[i:], "", ""))
            return tuple(out)
        k = template.index("}", j)
        name, _, fmt = template[j + 1:k].partition(":")
        out.append((template[i:j], name, fmt))
        i = k + 1


_COMPILED: dict[str, dict[str, tuple[tuple[str, str, str], ...]]] = {
    loc: {key: _compile(t) for key, t in table.items()} for loc, table in TEMPLATES.items()}


def register_templates(tables: Mapping[str, Mapping[str, str]]) -> None:
    """Add a charge model's templates (locale -> key -> template); every locale is required, keys are unique.

    Called by core.pricing.models.register: the templates of a model live in the model's own module.
    """
    if not tables:
        return
    missing = [loc for loc in LOCALES if loc not in tables]
    if missing:
        raise ValueError(f"templates are missing for {', '.join(missing)}")
    keys = set(tables["en"])
    for loc in LOCALES:
        if set(tables[loc]) != keys:
            raise ValueError(f"template keys of {loc!r} differ from 'en': {sorted(set(tables[loc]) ^ keys)}")
        taken = keys & set(TEMPLATES[loc])
        if taken:
            raise ValueError(f"template keys already registered: {sorted(taken)}")
    for loc in LOCALES:
        TEMPLATES[loc].update(tables[loc])
        _COMPILED[loc].update({key: _compile(t) for key, t in tables[loc].items()})


def _render(pieces: tuple[tuple[str, str, str], ...], params: Mapping[str, Any], locale: str) -> str:
    return "".join(lit + (_value(params, name, fmt, locale) if name else "") for lit, name, fmt in pieces)


def _parts_of(obj: Any, attr: str) -> Sequence[Any] | None:
    if isinstance(obj, Mapping):
        return obj.get(attr)
    if hasattr(obj, attr):
        return getattr(obj, attr)
    return obj


def explain(line_or_parts: Any, locale: str = "en") -> str:
    """The explanation of a line (Line, a rating_to_dict / statement line dict, or a parts list) in a locale.

    A dict without parts (an older snapshot) falls back to its stored English `explanation`.
    """
    parts = _parts_of(line_or_parts, "explanation_parts")
    if not parts:
        if isinstance(line_or_parts, Mapping):
            return str(line_or_parts.get("explanation") or "")
        return str(getattr(line_or_parts, "explanation", "") or "")
    return render_parts(parts, locale)


def explain_label(line_or_parts: Any, locale: str = "en") -> str:
    """The line label in a locale (engine-made labels such as "Discount" are translated; plan labels are kept)."""
    parts = _parts_of(line_or_parts, "label_parts")
    if not parts:
        if isinstance(line_or_parts, Mapping):
            return str(line_or_parts.get("label") or "")
        return str(getattr(line_or_parts, "label", "") or "")
    return render_parts(parts, locale)


def render_parts(parts: Sequence[Any], locale: str = "en") -> str:
    """Concatenate the rendered templates. Raises KeyError for an unknown template key, ValueError for a locale."""
    if locale not in TEMPLATES:
        raise ValueError(f"unsupported locale {locale!r}; use 'en', 'de' or 'nb'")
    table = _COMPILED[locale]
    return "".join(_render(table[key], params or {}, locale) for key, params in parts)


def _js(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def parts_to_json(parts: Sequence[Any] | None) -> list[list[Any]] | None:
    """JSON-safe form: [[key, {param: str|int|None}], ...] (Decimals as strings)."""
    if parts is None:
        return None
    return [[key, {k: _js(v) for k, v in (params or {}).items()}] for key, params in parts]
