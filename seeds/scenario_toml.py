"""A small TOML writer for exported scenarios: tables, arrays of tables, and one-line inline values
(strings, whole numbers, booleans, decimals as strings, dates as ISO strings, lists and inline tables).
`None` values are left out (TOML has no null)."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def key(k: str) -> str:
    return k if _BARE.match(k) else json.dumps(k, ensure_ascii=False)


def value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Decimal):
        return json.dumps(format(v.normalize(), "f"))
    if isinstance(v, datetime):  # a TOML offset date-time (unquoted)
        return v.isoformat()
    if isinstance(v, date):
        return json.dumps(v.isoformat())
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        inner = ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items() if x is not None)
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v if x is not None) + "]"
    return json.dumps(str(v), ensure_ascii=False)


def lines(table: dict[str, Any], header: str | None = None, *, indent: str = "", many: bool = False) -> list[str]:
    """A table: its plain keys, then its sub-tables given as dict (as [a.b]) or as list of dicts under a
    key starting with '[[' (as [[a.b]])."""
    out = [f"{indent}{'[[' if many else '['}{header}{']]' if many else ']'}"] if header else []
    subs = []
    for k, v in table.items():
        if v is None:
            continue
        if k.startswith("[["):
            subs.append((k[2:], v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v) and len(v) > 1:
            out.append(f"{indent}{key(k)} = [")
            out += [f"{indent}  {value(x)}," for x in v]
            out.append(f"{indent}]")
        else:
            out.append(f"{indent}{key(k)} = {value(v)}")
    for name, items in subs:
        for item in items:
            out.append("")
            out += lines(item, f"{header}.{name}" if header else name, indent=indent + "  ", many=True)
    return out
