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

from core.usage.unique_counts import EVERY_PARTNER


def usable(session: Session, partner_id: int | None, start: date, end: date, params: dict[str, Any]) -> set[str]:
    """Which of the query's latest (params "lt") and distinct-count ("uq") metrics may be read as of now, judged
    on the partner (or, with None, the platform):
    - "lt", "uq": no stored day after the range's end, so every account's latest event and every value's last
      occurrence fell before the range ended;
    - "uq_first": no distinct value before the range's start, so every value's first occurrence fell inside
      or after it (the previous period of a range that covers the whole history)."""
    if not params["lt"] and not params["uq"]:
        return set()
    # Each partner's newest (or oldest) day per metric, read from the end of its key: a probe per partner and
    # metric, so the cost does not grow with the history (a max() over the table read every day of it).
    ids = "(SELECT CAST(:p AS bigint) AS id)" if partner_id is not None else "(SELECT id FROM partners)"

    def edge(table: str, col: str, count: str, metrics: str, newest: bool) -> str:
        return (f"(SELECT {'max' if newest else 'min'}(x.d) FROM {ids} p"
                f" CROSS JOIN unnest(CAST(:{metrics} AS text[])) m(k) CROSS JOIN LATERAL"
                f" (SELECT t.{col} AS d FROM {table} t WHERE t.partner_id = p.id AND t.metric = m.k"
                f" AND t.{count} <> 0 ORDER BY t.{col}{' DESC' if newest else ''} LIMIT 1) x)")

    row = session.execute(text(
        "SELECT " + ", ".join([edge("usage_partner_latest_days", "last_day", "accounts", "lt", True),
                               edge("usage_partner_distinct_last_days", "day", "pairs", "uq", True),
                               edge("usage_partner_distinct_first_days", "day", "pairs", "uq", False)])),
        {**params, "p": partner_id}).one()
    out = {k for k, newest in (("lt", row[0]), ("uq", row[1])) if newest is None or newest <= end}
    if row[2] is None or row[2] >= start:
        out.add("uq_first")
    return out




def latest_sql(per_account: bool, keys_c: str, w: str) -> str:
    """The latest metrics' part: each account's latest quantity (per account), or their sums by day."""
    table, v, having = (("usage_latest", "last_qty", "") if per_account else
                        ("usage_partner_latest_days", "qty_sum", " HAVING sum(accounts) <> 0"))
    if not per_account and not w:
        w = EVERY_PARTNER
    return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, sum({v}) AS value FROM {table}
    WHERE last_day BETWEEN :s AND :e AND metric = ANY(:lt){w} GROUP BY {keys_c}metric{having}"""


def distinct_sql(per_account: bool, usable: set[str], keys_c: str, w: str) -> str:
    """The distinct counts' part: the values last seen in the range ("uq"), or first seen in it ("uq_first")."""
    edge = "last" if "uq" in usable else "first"
    table = f"usage_distinct_{edge}_days" if per_account else f"usage_partner_distinct_{edge}_days"
    if not per_account and not w:
        w = EVERY_PARTNER
    return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, sum(pairs) AS value FROM {table}
    WHERE day BETWEEN :s AND :e AND metric = ANY(:uq){w} GROUP BY {keys_c}metric HAVING sum(pairs) <> 0"""
