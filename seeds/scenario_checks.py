"""The scenario checker's building blocks: a per-file problem collector that knows the line of every value
(:mod:`seeds.scenario_positions`), and checks of single values (tables, lists, decimals, texts, dates,
payment cards)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from seeds.scenario_model import Problem, Src, resolve_date
from seeds.scenario_positions import line_for, value_lines


class Check:
    """Collects the problems of one file; `fail(path, message)` reports at the line where `path` (or its
    nearest written ancestor) is written."""

    def __init__(self, file: str, source: str):
        self.file = file
        self.lines = value_lines(source)
        self.problems: list[Problem] = []

    def line(self, path: str) -> int | None:
        return line_for(self.lines, path)

    def fail(self, path: str, message: str, value: Any = None, *, at: str | None = None) -> None:
        """`value` is accepted for callers written against the older checker (the line comes from `path`)."""
        self.problems.append(Problem(self.file, path, message, self.line(at or path)))

    def src(self, path: str) -> Src:
        return Src(self.file, path, self.lines)


def table(ck: Check, path: str, v: Any) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        ck.fail(path, f"expected a table, got {type(v).__name__}")
        return {}
    return v


def as_list(ck: Check, path: str, v: Any) -> list[Any]:
    if v is None:
        return []
    if not isinstance(v, list):
        ck.fail(path, f"expected a list (array of tables), got {type(v).__name__}")
        return []
    return v


def unknown(ck: Check, path: str, data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in data:
        if k not in allowed:
            ck.fail(f"{path}.{k}" if path else k, f"unknown field {k!r} (allowed: {', '.join(allowed)})")


def dec(ck: Check, path: str, v: Any, *, required: bool = False, minimum: Decimal | None = Decimal(0),
        default: Decimal | None = None) -> Decimal | None:
    """A decimal written as a string ("0.017"), an integer, or a TOML float (read as the digits typed)."""
    if v is None:
        if required:
            ck.fail(path, "is required")
        return default
    if isinstance(v, bool):
        ck.fail(path, f"expected a number, got {v!r}")
        return default
    try:
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v).strip())
    except InvalidOperation:
        ck.fail(path, f"not a decimal number: {v!r}")
        return default
    if not d.is_finite():
        ck.fail(path, f"must be a finite number, got {v!r}")
        return default
    if minimum is not None and d < minimum:
        ck.fail(path, f"must be at least {minimum}, got {v!r}")
        return default
    return d


def text(ck: Check, path: str, v: Any, *, required: bool = True) -> str | None:
    if v is None:
        if required:
            ck.fail(path, "is required")
        return None
    if not isinstance(v, str) or not v.strip():
        ck.fail(path, f"must be a non-empty text, got {v!r}")
        return None
    return v.strip()


def a_date(ck: Check, path: str, v: Any, today: date, default: date) -> date:
    if v is None:
        return default
    try:
        return resolve_date(v, today)
    except ValueError as exc:
        ck.fail(path, str(exc))
        return default


def whole(ck: Check, path: str, v: Any, low: int, high: int, default: int) -> int:
    if v is None:
        return default
    if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
        ck.fail(path, f"must be a whole number {low}–{high}, got {v!r}")
        return default
    return v


def plain(v: Any) -> Any:
    """TOML values → what the pricing parser expects: floats as the decimal string typed."""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def card(ck: Check, path: str, c: dict[str, Any], today: date) -> bool:
    """A demo card as the payment gateway will check it: 12–19 digits passing the Luhn checksum, expiry
    month 1–12 and a year, not expired on the scenario's day."""
    ok = True
    digits = re.sub(r"[\s-]", "", str(c.get("number", "")))
    if not re.fullmatch(r"[0-9]{12,19}", digits):
        ck.fail(f"{path}.number", f"a card number is 12–19 digits, got {c.get('number')!r}")
        ok = False
    elif not luhn_ok(digits):
        ck.fail(f"{path}.number", f"card number {c.get('number')!r} fails its checksum (Luhn): not a valid card "
                                  "number; the demo card is 4242424242424242")
        ok = False
    month, year = c.get("exp_month"), c.get("exp_year")
    if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
        ck.fail(f"{path}.exp_month", f"exp_month is the expiry month as a number 1–12, got {month!r}")
        return False
    if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
        ck.fail(f"{path}.exp_year", f"exp_year is the expiry year as a number such as 2030, got {year!r}")
        return False
    if (year, month) < (today.year, today.month):
        ck.fail(f"{path}.exp_year", f"the card expired {month:02d}/{year} (today is {today})")
        ok = False
    return ok
