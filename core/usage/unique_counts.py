"""Distinct counts (unique_count metrics) for the usage dashboards, exact and cheap for long ranges.

A unique_count metric's value for an account over a range is the number of distinct property values it
reported in it; several accounts' values are added up. Whole months come from the distinct-gap rollups
(core.usage.aggregates: a few rows per partner, or per account, and month, whatever the history's size);
the partial months at either end from the daily distinct values, counting only the values that did not
occur in the whole months already (an index probe into usage_distinct_monthly each). Ranges without a whole
month read the daily values alone (at most two months of them); day buckets read the count of the day's
distinct values kept on each usage_daily row.
"""

from __future__ import annotations

from datetime import date

Piece = tuple[date, date]

# Platform-wide, the partner tables keyed (partner_id, metric, ...) are read partner by partner through their
# keys: without a partner condition PostgreSQL reads the whole table (or index), whose size grows with the
# history. A condition to add where a query has no partner of its own.
EVERY_PARTNER = " AND partner_id = ANY(ARRAY(SELECT id FROM partners))"


def _days(pieces: list[Piece], params: dict) -> str:
    conds = []
    for i, (a, b) in enumerate(pieces):
        params[f"ua{i}"], params[f"ub{i}"] = a, b
        conds.append(f"day BETWEEN :ua{i} AND :ub{i}")
    return "(" + " OR ".join(conds) + ")" if conds else "false"


def daily_sql(grain: str | None, bucket: str, keys_c: str, w: str) -> str:
    """Distinct (account, value) pairs of the days [:s, :e], read in the order of ix_usage_distinct_count_order
    so that a Unique step over a sorted index-only scan does it (no hash of many groups)."""
    if grain is None:  # no bucket: the DISTINCT follows the index order exactly (no sort at all)
        return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, count(*) AS value FROM (
      SELECT DISTINCT partner_id, metric, account_id, value
      FROM usage_distinct WHERE day BETWEEN :s AND :e AND metric = ANY(:uq){w}) y
    GROUP BY {keys_c}metric"""
    return f"""
    SELECT b, {keys_c}metric, count(*) AS value FROM (
      SELECT DISTINCT {bucket} AS b, partner_id, metric, account_id, value
      FROM usage_distinct WHERE day BETWEEN :s AND :e AND metric = ANY(:uq){w}) y
    GROUP BY b, {keys_c}metric"""


def rollup_sql(grain: str | None, level: str, keys_c: str, w: str, whole: Piece, pieces: list[Piece],
               params: dict) -> str:
    """Whole months [:mf, :ml] from the gap rollups plus the partial-month pieces from the daily values.
    grain None: one bucket (values counted once over the whole range); grain "month": per month."""
    params["mf"], params["ml"] = whole
    gaps = "usage_distinct_gaps" if level == "account" else "usage_partner_distinct_gaps"
    gw = w or EVERY_PARTNER  # the gap rows of the range's months, partner by partner
    days = _days(pieces, params)
    if grain == "month":
        # every month its own bucket: a whole month is all its gap rows, a partial one its days' values
        return f"""
    SELECT b, {keys_c}metric, sum(value) AS value FROM (
      SELECT month AS b, {keys_c}metric, value_count AS value FROM {gaps}
      WHERE month BETWEEN :mf AND :ml AND metric = ANY(:uq){gw}
      UNION ALL
      SELECT b, {keys_c}metric, 1 AS value FROM (
        SELECT DISTINCT CAST(date_trunc('month', day) AS date) AS b, partner_id, metric, account_id, value
        FROM usage_distinct WHERE {days} AND metric = ANY(:uq){w}) y
    ) z GROUP BY b, {keys_c}metric"""
    return f"""
    SELECT CAST(NULL AS date) AS b, {keys_c}metric, sum(value) AS value FROM (
      SELECT {keys_c}metric, value_count AS value FROM {gaps}
      WHERE month BETWEEN :mf AND :ml AND prev_month < :mf AND metric = ANY(:uq){gw}
      UNION ALL
      SELECT {keys_c}metric, 1 AS value FROM (
        SELECT DISTINCT partner_id, metric, account_id, value FROM usage_distinct d
        WHERE {days} AND metric = ANY(:uq){w}
          AND NOT EXISTS (SELECT 1 FROM usage_distinct_monthly m
                          WHERE m.partner_id = d.partner_id AND m.metric = d.metric AND m.account_id = d.account_id
                            AND m.value = d.value AND m.month BETWEEN :mf AND :ml)) y
    ) z GROUP BY {keys_c}metric"""


def sql(grain: str | None, level: str, keys_c: str, w: str, bucket: str, whole: Piece | None, pieces: list[Piece],
        params: dict) -> str:
    """The distinct-count query of a range: from the rollups when it has whole months, else from the days."""
    if grain == "day":  # one day's distinct values per account are kept on its usage_daily row
        return f"""
    SELECT day AS b, {keys_c}metric, sum(distinct_values) AS value FROM usage_daily
    WHERE day BETWEEN :s AND :e AND metric = ANY(:uq){w}
    GROUP BY day, {keys_c}metric HAVING sum(distinct_values) > 0"""
    if whole is None:
        return daily_sql(grain, bucket, keys_c, w)
    return rollup_sql(grain, level, keys_c, w, whole, pieces, params)
