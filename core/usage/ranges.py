"""How the usage dashboards read a date range from a family of aggregate tables (daily and monthly): day by
day, or the whole months from the monthly table plus the partial months at either end (core.usage.reports)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def split(start: date, end: date) -> tuple[date | None, date | None]:
    """The whole months inside [start, end] as (first month, last month), or (None, None)."""
    first = start if start.day == 1 else next_month(start)
    last_excl = next_month(end) if next_month(end) - timedelta(days=1) == end else month_start(end)
    if first >= last_excl:
        return None, None
    return first, month_start(last_excl - timedelta(days=1))


def plan(start: date, end: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """The range as its whole months (first, last) or None, and the partial-month pieces at either end
    (each inside one month)."""
    first, last = split(start, end)
    if first is None or last is None:
        if month_start(start) == month_start(end):
            return None, [(start, end)]
        return None, [(start, month_start(end) - timedelta(days=1)), (month_start(end), end)]
    pieces = []
    if start < first:
        pieces.append((start, first - timedelta(days=1)))
    if next_month(last) <= end:
        pieces.append((next_month(last), end))
    return (first, last), pieces


def month_end(d: date) -> date:
    return next_month(d) - timedelta(days=1)


Piece = tuple[date, date]


def gaps(pieces: list[Piece]) -> list[list[Piece]]:
    """For each partial-month piece, the days of its month outside it (before it, after it, or both)."""
    out = []
    for a, b in pieces:
        g = []
        if a > month_start(a):
            g.append((month_start(a), a - timedelta(days=1)))
        if b < month_end(b):
            g.append((b + timedelta(days=1), month_end(b)))
        out.append(g)
    return out


def widen(whole: tuple[date, date] | None, pieces: list[Piece], quiet: list[bool]
          ) -> tuple[tuple[date, date] | None, list[Piece]]:
    """The plan with each piece whose month holds no usage outside it (`quiet`, one flag per piece) read as a
    whole month: that month's rows are then exactly the piece's. A dashboard range usually ends today, so its
    last month is a piece with nothing after it, and its rows number one per account and metric instead of one
    per account, metric and day. The pieces lie in the months just before and after the whole ones (or in one
    or two adjacent months when there are none), so the whole months stay one run."""
    months = [m for m in whole or ()]
    kept = []
    for (a, b), q in zip(pieces, quiet, strict=True):
        if q:
            months.append(month_start(a))
        else:
            kept.append((a, b))
    if not months:
        return None, kept
    return (min(months), max(months)), kept


def quiet(session: Session, pieces: list[tuple[date, date]], w: str, params: dict[str, Any]) -> list[bool]:
    """Per partial-month piece: does the rest of its month hold no usage of the query's metrics in the scope?
    (Then the month's rows are the piece's: widen.) One query, an index probe per gap;
    every rollup is written from the same batch as usage_daily, so a day without a daily row has nothing."""
    conds, qp = [], {**params, "qm": params["add"] + params["mx"] + params["lt"] + params["uq"]}
    for i, piece_gaps in enumerate(gaps(pieces)):
        probes = []
        for j, (a, b) in enumerate(piece_gaps):
            qp[f"q{i}a{j}"], qp[f"q{i}b{j}"] = a, b
            probes.append(f"EXISTS (SELECT 1 FROM usage_daily WHERE metric = ANY(:qm) "
                          f"AND day BETWEEN :q{i}a{j} AND :q{i}b{j}{w})")
        conds.append(f"NOT ({' OR '.join(probes)})")
    return list(session.execute(text("SELECT " + ", ".join(conds)), qp).one())


@dataclass(frozen=True)
class Range:
    """How _source reads a range: by day, or whole months from the monthly tables plus partial pieces."""
    bucket: str
    grain: str | None
    whole: tuple[date, date] | None = None
    pieces: tuple[tuple[date, date], ...] = ()
    by_month: bool = False  # False: every day from the daily table over [:s, :e]


# A partial month of a max or latest metric, per account, without reading every day of the piece: the month's
# row is the piece's answer when the month's largest quantity (max) or its latest event (latest) is known to
# lie inside the piece; only the accounts for which that is not known read their daily rows of the piece.
#  - max: no day of the month outside the piece reached the month's maximum (a probe of the outside days,
#    which are few when the piece is long);
#  - latest: the month's latest event fell on a day inside the piece.
_EXACT_IN_PIECE = {
    "max": ("NOT EXISTS (SELECT 1 FROM {daily} o WHERE o.partner_id = m.partner_id AND o.account_id = m.account_id"
            " AND o.metric = m.metric AND o.day BETWEEN :pm{i} AND :pz{i} AND NOT o.day BETWEEN :pa{i} AND :pb{i}"
            " AND o.qty_max >= m.qty_max)"),
    "latest": "CAST(m.last_at AT TIME ZONE 'UTC' AS date) BETWEEN :pa{i} AND :pb{i}",
}


def _piece_by_month_row(daily: str, monthly: str, cols: str, kind: str, i: int, mbucket: str, mw: str) -> str:
    """Both branches start from the month's rows (one per account and metric, through the metric index): the
    exact ones are the answer; the others fetch their own daily rows of the piece by primary key. Either way
    the bucket is the month's (a piece lies inside one month)."""
    exact = _EXACT_IN_PIECE[kind].format(daily=daily, i=i)
    month_rows = f"(SELECT * FROM {monthly} WHERE month = :pm{i}{mw}) m"
    dcols = ", ".join(f"d.{c.strip()}" for c in cols.split(","))
    return (f"SELECT {mbucket} AS b, {cols} FROM {month_rows} WHERE {exact}"
            f" UNION ALL SELECT {mbucket} AS b, {dcols} FROM {month_rows} JOIN {daily} d"
            f" ON d.partner_id = m.partner_id AND d.account_id = m.account_id AND d.metric = m.metric"
            f" AND d.day BETWEEN :pa{i} AND :pb{i} WHERE NOT ({exact})")


def source(daily: str, monthly: str, cols: str, rng: Range, w: str, metrics_param: str, params: dict[str, Any],
            neg: str | None = None, kind: str | None = None) -> str:
    """SELECT b, <cols> of one table family for the range. By month: the whole months from the monthly table
    and each partial month from the daily table - or, for additive columns (`neg`: the same columns negated)
    when the rest of that month is shorter, the month's row minus the days outside the piece, so a long
    piece costs a few days' rows; for max and latest metrics (`kind`) the month's row where it is known to
    be the piece's answer (see _EXACT_IN_PIECE) when the piece is the longer part of its month (a short piece
    reads its few days instead). Every branch names its metrics, so the (partner_id, metric, day) /
    (metric, day) indexes read only those rows."""
    mw = f" AND metric = ANY(:{metrics_param}){w}"
    if not rng.by_month:
        return f"SELECT {rng.bucket} AS b, {cols} FROM {daily} WHERE day BETWEEN :s AND :e{mw}"
    mbucket = "month" if rng.grain == "month" else "CAST(NULL AS date)"
    parts = []
    if rng.whole is not None:
        params["mf"], params["ml"] = rng.whole
        parts.append(f"SELECT {mbucket} AS b, {cols} FROM {monthly} WHERE month BETWEEN :mf AND :ml{mw}")
    for i, (a, b) in enumerate(rng.pieces):
        m0, m1 = month_start(a), month_end(a)
        params[f"pa{i}"], params[f"pb{i}"] = a, b
        if neg is not None and (m1 - m0).days - (b - a).days < (b - a).days + 1:
            params[f"pm{i}"], params[f"pz{i}"] = m0, m1
            parts.append(f"SELECT {mbucket} AS b, {cols} FROM {monthly} WHERE month = :pm{i}{mw}")
            parts.append(f"SELECT {rng.bucket} AS b, {neg} FROM {daily} WHERE day BETWEEN :pm{i} AND :pz{i}"
                         f" AND NOT day BETWEEN :pa{i} AND :pb{i}{mw}")
        elif kind is not None and (m1 - m0).days - (b - a).days < (b - a).days + 1:
            params[f"pm{i}"], params[f"pz{i}"] = m0, m1
            parts.append(_piece_by_month_row(daily, monthly, cols, kind, i, mbucket, mw))
        else:
            parts.append(f"SELECT {rng.bucket} AS b, {cols} FROM {daily} WHERE day BETWEEN :pa{i} AND :pb{i}{mw}")
    return " UNION ALL ".join(parts)
