"""CSV files for people: every CSV the app produces is written here, so that no cell can run as a formula.

A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula
(CSV injection, OWASP). User text (names, labels, reasons, event ids, properties) can start with any of
them, so such a cell gets a leading apostrophe, which spreadsheets show as text. Numbers stay numbers:
an int or Decimal, or a string that is a plain decimal such as "-12.50" (a credit note's amount), is written
unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")


def safe_cell(value: Any) -> Any:
    """The value to write in a CSV cell: numbers as they are, text that a spreadsheet would run as a
    formula prefixed with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if text.lstrip(" ").startswith(FORMULA_START) or text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV file (header row, then rows), every cell through safe_cell."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")  # RFC 4180; also quotes any cell holding a CR or LF
    w.writerow([safe_cell(h) for h in header])
    for row in rows:
        w.writerow([safe_cell(v) for v in row])
    return buf.getvalue()


def records_csv(records: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A CSV file from a list of dicts (columns: the given ones, else the first record's keys)."""
    cols = list(columns) if columns is not None else (list(records[0]) if records else [])
    return csv_text(cols, ([r.get(c, "") for c in cols] for r in records))
