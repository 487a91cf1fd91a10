"""JSON for answers: Decimal quantities and money as strings (exact, never float), dates as ISO 8601."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def exact(value: Decimal) -> str:
    """A quantity without trailing zeros and never in exponent form: Decimal('62.000000') -> '62'."""
    return format(value.normalize(), "f")
