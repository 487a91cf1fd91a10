"""Input validation at the core boundary. Collects field errors and raises one ValidationError."""

from __future__ import annotations

import re
import unicodedata
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
    """The form an address is stored and looked up in: Unicode NFKC (full-width and compatibility forms
    folded), surrounding space removed, lower case."""
    return unicodedata.normalize("NFKC", email or "").strip().lower()


# Bidirectional overrides, isolates and marks: they reorder what is shown ("gpj.exe" shown as "exe.jpg").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# Invisible characters that make two addresses or names look the same.
INVISIBLE = frozenset("\u200b\u2060\ufeff\u00ad\u180e\u034f")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why this text is refused, or None: control characters (NUL among them), bidirectional overrides
    and invisible characters. Line breaks and tabs are allowed only in multi-line fields."""
    for ch in value:
        if ch in BIDI_CONTROLS:
            return "must not contain right-to-left or left-to-right override characters"
        if ch in INVISIBLE:
            return "must not contain invisible characters"
        if multiline and ch in "\n\r\t":
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cs", "Co", "Cn") or (cat == "Cf" and ch not in "\u200c\u200d"):  # joiners: some scripts, emoji
            return "must not contain control characters"
    return None


def _script(ch: str) -> str | None:
    """A rough Unicode script of a letter (the first word of its name: LATIN, CYRILLIC, GREEK, ...)."""
    if not ch.isalpha():
        return None
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"


def email_problem(email: str) -> str | None:
    """Look-alike tricks in the local part: invisible characters, or letters of more than one script
    (`аdmin` with a Cyrillic а). The domain must be ASCII (EMAIL_RE; IDNs in their xn-- form)."""
    local = email.split("@", 1)[0]
    if text_problem(local) or any(unicodedata.category(ch) in ("Cf", "Mn", "Me") for ch in local):
        return "must not contain invisible or control characters"
    scripts = {sc for sc in map(_script, local) if sc is not None}
    if len(scripts) > 1:
        return "mixes letters of different alphabets (look-alike characters)"
    return None


class Checker:
    """Collects problems per field; `done()` raises them all at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, message)

    def text(self, field: str, value: str | None, label: str, *, required: bool = True, max_len: int = 200,
             multiline: bool | None = None) -> str | None:
        """A trimmed text, or None. Refuses control, bidi-override and invisible characters; line breaks
        only in multi-line fields (by default those allowing 1,000 characters or more: addresses, notes)."""
        if multiline is None:
            multiline = max_len >= 1000
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{label} is required.")
            return None
        if len(value) > max_len:
            self.fail(field, f"{label} is too long (at most {max_len} characters).")
        problem = text_problem(value, multiline=multiline)
        if problem:
            self.fail(field, f"{label} {problem}.")
            return None
        return value

    def email(self, field: str, value: str | None, label: str = "E-mail", *, required: bool = True) -> str | None:
        value = unicodedata.normalize("NFKC", value or "").strip()
        if not value:
            if required:
                self.fail(field, f"{label} is required.")
            return None
        problem = email_problem(value)
        if problem:
            self.fail(field, f"{label} {problem}.")
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
