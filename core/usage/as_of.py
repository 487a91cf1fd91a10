"""Latest metrics and distinct counts read "as of" now (migration 0027): for a range that ends after every event
of its scope (a dashboard range ending today), an account's latest quantity is its latest event's if that fell
on or after the range's first day, and its distinct count is the number of its values whose last occurrence
did; for a range that starts before every event, the number of values whose first occurrence fell on or before
its end. core.usage.aggregates keeps the rows (by the day of the latest event, last or first occurrence, per
account and per partner); core.usage.reports asks `usable` which metrics may be read so, and adds these parts
to its query."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def usable(session: Session, partner_id: int | None, start: date, end: date, params: dict[str, Any]) -> set[str]:
    """Which of the query's latest (params "lt") and distinct-count ("uq") metrics may be read as of now, judged
    on the partner (or, with None, the platform):
    - "lt", "uq": no stored day after the range's end, so every account's latest event and every value's last
      occurrence fell before the range ended;
    - "uq_first": no distinct value before the range's start, so every value's first occurrence fell inside
      or after it (the previous period of a range that covers the whole history)."""
    if not params["lt"] and not params["uq"]:
        return set()
    wp = " AND partner_id = :p" if partner_id is not None else ""
    row = session.execute(text(f"""
        SELECT (SELECT max(last_day) FROM usage_partner_latest_days WHERE metric = ANY(:lt) AND accounts <> 0{wp}),
               (SELECT max(day) FROM usage_partner_distinct_last_days WHERE metric = ANY(:uq) AND pairs <> 0{wp}),
               (SELECT min(day) FROM usage_partner_distinct_first_days WHERE metric = ANY(:uq) AND pairs <> 0{wp})
        """), {**params, "p": partner_id}).one()
    out = {k for k, newest in (("lt", row[0]), ("uq", row[1])) if newest is None or newest <= end}
    if row[2] is None or row[2] >= start:
        out.add("uq_first")
    return out


def latest_sql(per_account: bool, keys_c: str, w: str) -> str:
    """The latest metrics' part: each account's latest quantity (per account), or their sums by day."""
    table, v, having = (("usage_latest", "last_qty", "") if per_account else
                        ("usage_partner_latest_days", "qty_sum", " HAVING sum(accounts) <> 0"))
    return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, sum({v}) AS value FROM {table}
    WHERE last_day BETWEEN :s AND :e AND metric = ANY(:lt){w} GROUP BY {keys_c}metric{having}"""


def distinct_sql(per_account: bool, usable: set[str], keys_c: str, w: str) -> str:
    """The distinct counts' part: the values last seen in the range ("uq"), or first seen in it ("uq_first")."""
    edge = "last" if "uq" in usable else "first"
    table = f"usage_distinct_{edge}_days" if per_account else f"usage_partner_distinct_{edge}_days"
    return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, sum(pairs) AS value FROM {table}
    WHERE day BETWEEN :s AND :e AND metric = ANY(:uq){w} GROUP BY {keys_c}metric HAVING sum(pairs) <> 0"""
