"""A partner's statement settings: branding, language, default tax rate, payment terms and number prefix."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import NotFound, ValidationError
from core.statements.i18n import LANGUAGES, labels
from db.models import Partner
from db.models.statements import StatementSettings

MAX_TEXT = {"display_name": 200, "logo_text": 80, "address": 1000, "footer": 2000, "vat_id": 40}
LABEL_KEYS = tuple(labels("en"))


@dataclass(frozen=True)
class Branding:
    partner_id: int
    display_name: str
    address: str
    logo_text: str
    footer: str
    labels: dict
    language: str
    tax_rate: Decimal | None
    payment_terms_days: int
    number_prefix: str
    is_house: bool
    vat_id: str = ""
    primary_colour: str | None = None  # white label colours (#rrggbb), None = the platform's
    sidebar_colour: str | None = None


def _default_prefix(partner: Partner) -> str:
    return (re.sub(r"[^A-Z0-9]", "", partner.slug.upper()) or f"P{partner.id}")[:8]


def branding(session: Session, partner_id: int) -> Branding:
    """The partner's statement settings with defaults filled in (internal: no actor)."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    row = session.get(StatementSettings, partner_id)
    return Branding(
        partner_id=partner_id,
        display_name=(row.display_name if row and row.display_name else partner.name),
        address=(row.address or "") if row else "",
        logo_text=(row.logo_text or "") if row else "",
        footer=(row.footer or "") if row else "",
        labels=dict(row.labels or {}) if row else {},
        language=row.language if row else "en",
        tax_rate=row.tax_rate if row else None,
        payment_terms_days=row.payment_terms_days if row else 14,
        number_prefix=(row.number_prefix if row and row.number_prefix else _default_prefix(partner)),
        is_house=partner.is_house,
        vat_id=(row.vat_id or "") if row else "",
        primary_colour=row.primary_colour if row else None,
        sidebar_colour=row.sidebar_colour if row else None,
    )


def get_settings(session: Session, actor: Actor, partner_id: int) -> Branding:
    authorize(actor, "partner.settings", partner_id)
    return branding(session, partner_id)


def save_settings(session: Session, actor: Actor, partner_id: int, *, display_name: str | None = None,
                  address: str | None = None, logo_text: str | None = None, footer: str | None = None,
                  labels_: dict | None = None, language: str = "en", tax_rate: Any = None,
                  payment_terms_days: Any = 14, number_prefix: str | None = None, vat_id: str | None = None,
                  primary_colour: str | None = None, sidebar_colour: str | None = None) -> Branding:
    """Save the partner's statement branding (its VAT id and its colours in the app for its clients, too),
    language, default tax rate (percent), payment terms and number prefix. Bad input raises ValidationError with one message per field; nothing is written then."""
    authorize(actor, "partner.settings", partner_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, raw in (("display_name", display_name), ("address", address), ("logo_text", logo_text),
                      ("footer", footer), ("vat_id", vat_id)):
        v = (raw or "").strip()
        if len(v) > MAX_TEXT[name]:
            errors[name] = f"At most {MAX_TEXT[name]} characters."
        values[name] = v or None
    if language not in LANGUAGES:
        errors["language"] = f"Choose {', '.join(LANGUAGES.values())}."
    values["language"] = language
    values["tax_rate"] = _field(errors, "tax_rate", _tax_rate, tax_rate)
    values["payment_terms_days"] = _field(errors, "payment_terms_days", _terms, payment_terms_days)
    values["number_prefix"] = _field(errors, "number_prefix", _prefix, number_prefix)
    values["labels"] = _field(errors, "labels", _labels, labels_)
    values["primary_colour"] = _field(errors, "primary_colour", _colour, primary_colour)
    values["sidebar_colour"] = _field(errors, "sidebar_colour", _colour, sidebar_colour)
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    if errors:
        raise ValidationError(errors)
    before = branding(session, partner_id)
    row = session.get(StatementSettings, partner_id)
    if row is None:
        row = StatementSettings(partner_id=partner_id)
        session.add(row)
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_by = actor.user_id or None
    row.updated_at = clock.now()
    session.flush()
    after = branding(session, partner_id)
    b, a = audit.changes(_branding_dict(before), _branding_dict(after))
    audit.record(session, actor, partner_id=partner_id, action="update", entity="statement_settings",
                 entity_id=partner_id, before=b, after=a)
    return after


def _field(errors: dict[str, str], name: str, parse: Callable[[Any], Any], raw: Any) -> Any:
    """parse(raw), or None with the field's message in `errors` when it raises ValueError."""
    try:
        return parse(raw)
    except ValueError as exc:
        errors[name] = str(exc)
        return None


def _tax_rate(raw: Any) -> Decimal | None:
    if raw is None or str(raw).strip() == "":
        return None
    msg = "Enter a tax rate in percent between 0 and 100 (e.g. 25), or leave it empty."
    try:
        v = Decimal(str(raw).strip().replace(",", ".").rstrip("%").strip())
    except InvalidOperation:
        raise ValueError(msg) from None
    if not v.is_finite() or v < 0 or v > 100 or v != v.quantize(Decimal("0.0001")):
        raise ValueError(msg)
    return v


def _terms(raw: Any) -> int:
    try:
        terms = int(str(raw).strip())
    except (TypeError, ValueError):
        terms = -1
    if not 0 <= terms <= 365:
        raise ValueError("Enter the payment terms in days (0 to 365).")
    return terms


def _prefix(raw: str | None) -> str | None:
    prefix = (raw or "").strip().upper() or None
    if prefix is not None and not re.fullmatch(r"[A-Z0-9]{1,12}", prefix):
        raise ValueError("Use 1 to 12 letters A-Z or digits.")
    return prefix


def _colour(raw: str | None) -> str | None:
    """A colour as #rrggbb (lower case); empty = the platform's."""
    colour = (raw or "").strip().lower() or None
    if colour is not None and not re.fullmatch(r"#[0-9a-f]{6}", colour):
        raise ValueError("Enter a colour as #rrggbb (e.g. #0f766e), or leave it empty.")
    return colour


def _labels(raw: dict | None) -> dict[str, str]:
    clean: dict[str, str] = {}
    for k, v in (raw or {}).items():
        if k not in LABEL_KEYS:
            raise ValueError(f"Unknown label {k!r}; known: {', '.join(LABEL_KEYS)}.")
        if v is not None and str(v).strip():
            if len(str(v)) > 200:
                raise ValueError(f"Label {k!r}: at most 200 characters.")
            clean[k] = str(v).strip()
    return clean


def _branding_dict(b: Branding) -> dict:
    return {"display_name": b.display_name, "address": b.address, "logo_text": b.logo_text, "footer": b.footer,
            "labels": b.labels, "language": b.language, "tax_rate": b.tax_rate,
            "payment_terms_days": b.payment_terms_days, "number_prefix": b.number_prefix, "vat_id": b.vat_id,
            "primary_colour": b.primary_colour, "sidebar_colour": b.sidebar_colour}


def parse_label_overrides(text_: str | None) -> dict[str, str]:
    """Label overrides typed as lines `key = text` (e.g. `total = Amount due`); blank lines and # comments
    are skipped. Unknown keys are refused by save_settings with the list of known ones."""
    out: dict[str, str] = {}
    for raw in (text_ or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValidationError({"labels": f"Write each label as `key = text`: {line!r}."})
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip()
    return out
