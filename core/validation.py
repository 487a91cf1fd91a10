"""Input validation at the core boundary. Collects field errors and raises one ValidationError."""

from __future__ import annotations

import re
from functools import lru_cache

from core.errors import ValidationError
from core.pricing.money import CURRENCY_MINOR_UNITS

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


@lru_cache(maxsize=1)
def countries() -> dict[str, str]:
    """ISO 3166-1 alpha-2 code -> name."""
    import pycountry

    return {c.alpha_2: c.name for c in pycountry.countries}


def currencies() -> dict[str, int]:
    """Supported ISO 4217 currencies -> minor unit digits (from the pricing engine's table)."""
    return dict(CURRENCY_MINOR_UNITS)


def normalise_email(email: str) -> str:
    return email.strip().lower()


class Checker:
    """Collects problems per field; `done()` raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def text(self, field: str, value: str | None, label: str, *, required: bool = True, max_len: int = 200) -> str | None:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{label} is required.")
            return None
        if len(value) > max_len:
            self.fail(field, f"{label} is too long (at most {max_len} characters).")
        return value

    def email(self, field: str, value: str | None, label: str = "E-mail", *, required: bool = True) -> str | None:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{label} is required.")
            return None
        if len(value) > 254 or not EMAIL_RE.match(value):
            self.fail(field, f"{label} is not a valid e-mail address.")
            return None
        return value

    def country(self, field: str, value: str | None) -> str | None:
        code = (value or "").strip().upper()
        if code not in countries():
            self.fail(field, f"Unknown country {value!r}: use an ISO 3166 code such as NO, DE or US.")
            return None
        return code

    def currency(self, field: str, value: str | None) -> str | None:
        code = (value or "").strip().upper()
        if code not in currencies():
            self.fail(field, f"Unknown currency {value!r}: use an ISO 4217 code such as EUR, NOK or USD.")
            return None
        return code

    def choice(self, field: str, value: str | None, options: tuple[str, ...], label: str) -> str | None:
        if value not in options:
            self.fail(field, f"{label} must be one of: {', '.join(options)}.")
            return None
        return value

    def done(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)
