"""Statement labels in English, German and Norwegian (Bokmål), and locale formatting of dates and quantities.

Partners may override any label (statement settings, `labels`); overrides sit on top of these defaults.
Amounts are formatted by core.pricing.money.format_money (the one money formatter).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from core.pricing.explain import LOCALES, explain, explain_label
from core.pricing.money import LOCALES as LOCALE_NAMES
from core.pricing.money import SEPARATORS, format_money, format_number

# The statement languages are the locales the pricing engine explains lines in (core.pricing.explain.LOCALES,
# the one list); here their names. The statements tables' CHECK constraints (migration 0006) allow the same.
_NAMES = {"en": "English", "de": "Deutsch", "nb": "Norsk (bokmål)"}
LANGUAGES = {code: _NAMES[code] for code in LOCALES}

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "statement": "Statement", "collective": "Invoice", "commission": "Commission statement", "credit_note": "Credit note", "draft": "DRAFT",
        "void": "VOID", "number": "Number", "issued": "Date", "due": "Due date", "period": "Period",
        "bill_to": "Bill to", "description": "Description", "quantity": "Quantity", "amount": "Amount",
        "subtotal": "Subtotal", "tax": "Tax", "total": "Total", "usage": "Usage", "fees": "Fees",
        "minimum": "Minimum spend", "partner_fees": "Partner fees", "credits_drawn": "Credits drawn",
        "paid_prepaid": "Paid by {partner} with prepaid credits: {credits} credits drawn.",
        "paid_on_demand": "Paid by {partner}: {amount} charged on demand.",
        "credit_note_for": "Credit note for {number}", "reason": "Reason", "page": "Page",
        "no_lines": "No charges in this period.", "section_total": "Total {name}", "credits": "credits",
        "customer": "Customer", "status": "Status", "currency": "Currency", "kind": "Kind", "vat_id": "VAT ID",
    },
    "de": {
        "statement": "Abrechnung", "collective": "Rechnung", "commission": "Provisionsabrechnung", "credit_note": "Gutschrift", "draft": "ENTWURF",
        "void": "STORNIERT", "number": "Nummer", "issued": "Datum", "due": "Fällig am", "period": "Zeitraum",
        "bill_to": "Rechnungsempfänger", "description": "Beschreibung", "quantity": "Menge", "amount": "Betrag",
        "subtotal": "Zwischensumme", "tax": "MwSt.", "total": "Gesamtbetrag", "usage": "Nutzung",
        "fees": "Gebühren", "minimum": "Mindestumsatz", "partner_fees": "Partnergebühren",
        "credits_drawn": "Verbrauchte Credits",
        "paid_prepaid": "Bezahlt von {partner} mit Prepaid-Credits: {credits} Credits verbraucht.",
        "paid_on_demand": "Bezahlt von {partner}: {amount} sofort belastet.",
        "credit_note_for": "Gutschrift zu {number}", "reason": "Grund", "page": "Seite",
        "no_lines": "Keine Kosten in diesem Zeitraum.", "section_total": "Summe {name}", "credits": "Credits",
        "customer": "Kunde", "status": "Status", "currency": "Währung", "kind": "Art", "vat_id": "USt-IdNr.",
    },
    "nb": {
        "statement": "Kontoutskrift", "collective": "Faktura", "commission": "Provisjonsoppgjør", "credit_note": "Kreditnota", "draft": "UTKAST",
        "void": "ANNULLERT", "number": "Nummer", "issued": "Dato", "due": "Forfallsdato", "period": "Periode",
        "bill_to": "Fakturamottaker", "description": "Beskrivelse", "quantity": "Antall", "amount": "Beløp",
        "subtotal": "Sum før mva.", "tax": "Mva.", "total": "Å betale", "usage": "Forbruk", "fees": "Gebyrer",
        "minimum": "Minstebeløp", "partner_fees": "Partnergebyrer", "credits_drawn": "Kreditter trukket",
        "paid_prepaid": "Betalt av {partner} med forhåndsbetalte kreditter: {credits} kreditter trukket.",
        "paid_on_demand": "Betalt av {partner}: {amount} belastet fortløpende.",
        "credit_note_for": "Kreditnota for {number}", "reason": "Årsak", "page": "Side",
        "no_lines": "Ingen kostnader i perioden.", "section_total": "Sum {name}", "credits": "kreditter",
        "customer": "Kunde", "status": "Status", "currency": "Valuta", "kind": "Type", "vat_id": "MVA-nr.",
    },
}

_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def labels(language: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The label set of a language with the partner's overrides on top (unknown keys are ignored)."""
    base = dict(LABELS.get(language, LABELS["en"]))
    for key, value in (overrides or {}).items():
        if key in base and isinstance(value, str) and value.strip():
            base[key] = value
    return base


def format_date(day: date, language: str) -> str:
    """en: 31 Oct 2026 · de: 31.10.2026 · nb: 31.10.2026."""
    if language in ("de", "nb"):
        return f"{day.day:02d}.{day.month:02d}.{day.year}"
    return f"{day.day} {_MONTHS_EN[day.month - 1]} {day.year}"


def country_name(code: str | None, language: str) -> str:
    """A country's name in the statement's language from CLDR (Babel): 'NO' -> 'Norway' / 'Norwegen' / 'Norge';
    an unknown code stays as written."""
    if not code:
        return ""
    from babel import Locale

    try:
        return Locale.parse(LOCALE_NAMES.get(language, "en_GB")).territories.get(code.upper(), code)
    except (ValueError, LookupError):
        return code


def format_period(start: date, end: date, language: str) -> str:
    return f"{format_date(start, language)} – {format_date(end, language)}"


def format_qty(value: Decimal | None, language: str) -> str:
    """A quantity with the locale's separators, trailing zeros dropped ('1,200.5' / '1.200,5' / '1 200,5')."""
    if value is None:
        return ""
    v = Decimal(value)
    v = v.quantize(Decimal(1)) if v == v.to_integral_value() else v.normalize()
    return format_number(v, None, *SEPARATORS.get(language, SEPARATORS["en"]))


def money(amount: Decimal, currency: str, language: str) -> str:
    return format_money(Decimal(amount), currency, language)


def line_label(line: Any, language: str) -> str:
    """A statement line's label in the language: from the engine's structured label when the snapshot keeps it
    (engine-made labels such as "Discount" are translated), else the stored label."""
    try:
        return explain_label(line, language)
    except (KeyError, ValueError):  # an unknown template or language: show what was stored
        return str(_get(line, "label") or "")


def line_explanation(line: Any, language: str) -> str:
    """A statement line's rating explanation in the language (older snapshots without parts: the stored text)."""
    try:
        return explain(line, language)
    except (KeyError, ValueError):
        return str(_get(line, "explanation") or "")


def _get(line: Any, name: str) -> Any:
    """A field of a statement line: a DocumentLine, or a line dict of a snapshot."""
    return line.get(name) if isinstance(line, Mapping) else getattr(line, name, None)
