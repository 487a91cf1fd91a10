"""Usage dashboards: permission-checked, read-only queries over the usage aggregates.

Every function takes the session and the acting user and decides the scope itself:
platform admins may look at every partner (partner_id None = all partners), partner staff at their own
partner, customer roles (Manager, User, Annotation Manager, Annotator) only at their own account.

Where the numbers come from (all exactly equal to the raw events, see core.usage.ingest):
- per-account queries and day/week buckets read `usage_daily`;
- long ranges read the monthly table for the whole months inside the range and the daily table for the
  partial months at either end;
- partner and platform totals of additive metrics (sum, count) read the partner rollups
  `usage_partner_daily` / `usage_partner_monthly` (a few rows per partner and day) instead of every
  account's rows; per-customer breakdowns (top customers, stacked trends) read `usage_daily` /
  `usage_monthly`;
- unique_count metrics are counted from `usage_distinct` (distinct values cannot be added up).

A metric's value for a customer over a bucket honours its aggregation (sum, count, max, latest,
unique_count); values of several customers (partner totals, "other customers") are added up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.accounts.actor import CUSTOMER_ROLES, Actor
from core.accounts.permissions import authorize
from core.errors import PermissionDenied, ValidationError
from core.usage import as_of, unique_counts
from core.usage.metrics import get_metrics
from core.usage.ranges import Range, plan, quiet, source, widen

PRESETS = {
    "this_month": "This month",
    "last_month": "Last month",
    "last_30_days": "Last 30 days",
    "this_quarter": "This quarter",
    "this_year": "This year",
    "custom": "Custom",
}
GRAINS = ("day", "week", "month")
MAX_RANGE_DAYS = 3 * 366
HISTORY_PAGE_MAX = 500


# ---------------------------------------------------------------- date ranges


def preset_range(preset: str, today: date) -> tuple[date, date]:
    """The inclusive date range of a preset, relative to `today`."""
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    if preset == "last_30_days":
        return today - timedelta(days=29), today
    if preset == "this_quarter":
        return date(today.year, 3 * ((today.month - 1) // 3) + 1, 1), today
    if preset == "this_year":
        return date(today.year, 1, 1), today
    raise ValidationError({"preset": f"Unknown range preset {preset!r}."})


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length right before [start, end]."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def check_range(start: date, end: date) -> None:
    if end < start:
        raise ValidationError({"range": "The range ends before it starts."})
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError({"range": "Choose a range of at most three years."})


# ---------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    partner_id: int | None  # None: all partners (platform admins)
    account_id: int | None  # None: every account of the partner(s)


def resolve_scope(actor: Actor, partner_id: int | None = None, account_id: int | None = None) -> Scope:
    """What the actor may see for the requested partner/account; raises PermissionDenied otherwise."""
    if actor.role in CUSTOMER_ROLES:
        if account_id is not None and account_id != actor.account_id:
            raise PermissionDenied("You can only see your own account's usage.")
        partner_id, account_id = actor.partner_id, actor.account_id
    elif not actor.is_admin and partner_id is None:
        partner_id = actor.partner_id
    if partner_id is None and account_id is not None:
        raise ValidationError({"partner_id": "Choose the partner of the account."})
    authorize(actor, "usage.view", partner_id, account_id)
    return Scope(partner_id, account_id)


# ---------------------------------------------------------------- the core query


_BUCKETS = {None: "CAST(NULL AS date)", "day": "day", "week": "CAST(date_trunc('week', day) AS date)",
            "month": "CAST(date_trunc('month', day) AS date)"}
_LEVELS = {"account": "partner_id, account_id", "partner": "partner_id", "total": ""}


def _where(scope: Scope, params: dict[str, Any], alias: str = "") -> str:
    conds = []
    if scope.partner_id is not None:
        conds.append(f"{alias}partner_id = :p")
        params["p"] = scope.partner_id
    if scope.account_id is not None:
        conds.append(f"{alias}account_id = :a")
        params["a"] = scope.account_id
    return "".join(f" AND {c}" for c in conds)


def _values(session: Session, scope: Scope, start: date, end: date, *, grain: str | None = None,
            level: str = "account", metric: str | None = None, only: list[int] | None = None) -> list[Any]:
    """Rows (bucket, [partner_id, [account_id]], metric, value) for the range, aggregated correctly.

    Additive metrics (sum, count) are summed straight to the requested level - from the partner rollups
    (usage_partner_daily/monthly) when no per-account breakdown is asked for, else from the per-account
    tables; max and latest per account first (through the metric indexes); unique counts from the distinct
    rollups (core.usage.unique_counts). `only`: just these accounts (level account) or partners (partner)."""
    check_range(start, end)
    params: dict[str, Any] = {"s": start, "e": end}
    w = _where(scope, params)
    if only is not None:
        w += f" AND {'account_id' if level == 'account' else 'partner_id'} = ANY(:only)"
        params["only"] = only
    by_agg: dict[str, list[str]] = defaultdict(list)
    for k, m in get_metrics(session).items():
        if metric is None or k == metric:
            by_agg[m.aggregation].append(k)
    params.update(add=by_agg["sum"] + by_agg["count"], cnt=by_agg["count"], mx=by_agg["max"], lt=by_agg["latest"],
                  uq=by_agg["unique_count"])
    rng = Range(_BUCKETS[grain], grain)
    if grain in (None, "month") and scope.account_id is None:  # whole months from the monthly rollups
        whole, pieces = plan(start, end)
        if pieces:
            whole, pieces = widen(whole, pieces, quiet(session, pieces, w, params))
        rng = Range(rng.bucket, grain, whole, tuple(pieces), True)
    keys = _LEVELS[level]
    keys_c = f"{keys}, " if keys else ""
    per_acc = level == "account" or scope.account_id is not None
    parts = []
    if params["add"]:
        if per_acc:
            src = source("usage_daily", "usage_monthly", "partner_id, account_id, metric, qty_sum, events", rng, w,
                          "add", params, "partner_id, account_id, metric, -qty_sum, -events")
        else:
            src = source("usage_partner_daily", "usage_partner_monthly", "partner_id, metric, qty_sum, events",
                          rng, w, "add", params, "partner_id, metric, -qty_sum, -events")
        parts.append(f"""
    SELECT b, {keys_c}metric, sum(CASE WHEN metric = ANY(:cnt) THEN events ELSE qty_sum END) AS value
    FROM ({src}) x GROUP BY b, {keys_c}metric HAVING sum(events) <> 0""")
    asof = as_of.usable(session, scope.partner_id, start, end, params) if grain is None else set()
    if params["mx"]:
        parts.append(_per_account_first("max", rng, w, params, keys_c))
    if params["lt"]:
        parts.append(as_of.latest_sql(per_acc, keys_c, w) if "lt" in asof else
                     _per_account_first("latest", rng, w, params, keys_c))
    uq_sql = None
    if params["uq"] and asof & {"uq", "uq_first"}:
        parts.append(as_of.distinct_sql(per_acc, asof, keys_c, w))
    elif params["uq"]:
        uq_sql = unique_counts.sql(grain, level, keys_c, w, rng.bucket, rng.whole, list(rng.pieces), params)
    if not parts and uq_sql is None:
        return []
    rows = _run_parts(session, parts, uq_sql, params)
    width = len(keys.split(", ")) if keys else 0
    # the order the single query had: ORDER BY bucket (NULLS LAST), the level keys, metric. Every row has a
    # bucket, or none has (no grain), so the bucket sorts as itself or not at all.
    return sorted(rows, key=itemgetter(*range(0 if grain else 1, 2 + width)))


_PER_ACCOUNT = "b, partner_id, account_id, metric"
_STATS = "partner_id, account_id, metric, qty_sum, events, qty_max, last_at, last_event_id, last_qty"


def _per_account_first(kind: str, rng: Range, w: str, params: dict[str, Any], keys_c: str) -> str:
    """A max or latest metric's part: per account first (its maximum, or its latest event's quantity over the
    range), then summed to the level."""
    src = source("usage_daily", "usage_monthly", _STATS, rng, w, "mx" if kind == "max" else "lt", params, kind=kind)
    if kind == "max":
        inner = f"SELECT {_PER_ACCOUNT}, max(qty_max) AS v FROM ({src}) x GROUP BY {_PER_ACCOUNT}"
    else:
        inner = (f"SELECT DISTINCT ON ({_PER_ACCOUNT}) {_PER_ACCOUNT}, last_qty AS v FROM ({src}) x "
                 f"ORDER BY {_PER_ACCOUNT}, last_at DESC, last_event_id DESC")
    return f"""
    SELECT b, {keys_c}metric, sum(v) AS value FROM ({inner}) y GROUP BY b, {keys_c}metric"""


def _run_parts(session: Session, parts: list[str], uq_sql: str | None, params: dict[str, Any]) -> list[Any]:
    # In one round trip, for this transaction only:
    # - work_mem: hash aggregates in memory;
    # - plan_cache_mode: psycopg prepares a statement after a few runs, and PostgreSQL then switches to a
    #   generic plan that does not know the range or the metrics: for these analytic queries that plan can be
    #   several times slower. Always plan with the actual parameters (well under a millisecond here);
    # - no parallel workers: these queries read a few thousand rollup rows, and starting workers costs more
    #   (about 5 ms a query here) than the work; with a bigger history the planner started choosing them.
    session.execute(text("SET LOCAL work_mem = '64MB'; SET LOCAL plan_cache_mode = force_custom_plan; "
                         "SET LOCAL max_parallel_workers_per_gather = 0"))
    rows: list[Any] = []
    if parts:
        rows = list(session.execute(text(" UNION ALL ".join(parts)), params).all())  # one fetch, not row by row
    if uq_sql is not None:
        rows += _run_unique(session, uq_sql, params)
    return rows


def _run_unique(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    """The distinct-count query with hash aggregation and sequential scans off for it alone: the planner
    underestimates the number of distinct pairs and would otherwise hash them, which is twice as slow as the
    sorted scan; and when it expects no value in the whole months (a range mostly before the history) it
    reads all of usage_distinct_monthly once instead of probing its key for each value of the partial months,
    a cost that grows with the history. Every table it reads has an index for its conditions."""
    session.execute(text("SET LOCAL enable_hashagg = off; SET LOCAL enable_seqscan = off"))
    try:
        return list(session.execute(text(sql), params).all())
    finally:
        session.execute(text("SET LOCAL enable_hashagg = on; SET LOCAL enable_seqscan = on"))


# ---------------------------------------------------------------- names


def account_names(session: Session, actor: Actor, partner_id: int | None = None) -> dict[tuple[int, int], str]:
    """(partner_id, account_id) -> name of the accounts whose usage the actor may see."""
    scope = resolve_scope(actor, partner_id)
    params: dict[str, Any] = {}
    w = _where(Scope(scope.partner_id, None), params)
    if scope.account_id is not None:
        w += " AND id = :a"
        params["a"] = scope.account_id
    rows = session.execute(text(f"SELECT partner_id, id, name FROM customer_accounts WHERE true{w} "
                                "ORDER BY lower(name), id"), params)
    return {(r.partner_id, r.id): r.name for r in rows}


def partner_names(session: Session, actor: Actor) -> dict[int, str]:
    """Partners whose usage the actor may see (every partner for admins, else their own)."""
    if actor.is_admin:
        rows = session.execute(text("SELECT id, name FROM partners ORDER BY is_house DESC, name"))
    else:
        authorize(actor, "usage.view", actor.partner_id, actor.account_id)
        rows = session.execute(text("SELECT id, name FROM partners WHERE id = :p"), {"p": actor.partner_id})
    return {r.id: r.name for r in rows}


# ---------------------------------------------------------------- dashboards


@dataclass
class Summary:
    start: date
    end: date
    previous: tuple[date, date]
    totals: dict[str, Decimal]  # metric -> value over the scope
    previous_totals: dict[str, Decimal]
    # metric -> [(label, value)] biggest first: customers in a partner, partners platform-wide
    top: dict[str, list[tuple[str, Decimal]]] = field(default_factory=dict)
    by: str = "customer"

    @property
    def has_data(self) -> bool:
        return any(self.totals.values())

    def change(self, metric: str) -> Decimal | None:
        """Relative change against the previous period (None when the previous period had none)."""
        prev = self.previous_totals.get(metric, Decimal(0))
        if not prev:
            return None
        return (self.totals.get(metric, Decimal(0)) - prev) / prev


def _label_map(session: Session, actor: Actor, scope: Scope, level: str) -> dict:
    if level == "partner":
        return partner_names(session, actor)
    return account_names(session, actor, scope.partner_id)


def usage_summary(session: Session, actor: Actor, *, start: date, end: date, partner_id: int | None = None,
                  account_id: int | None = None, top: int = 10) -> Summary:
    """Totals per metric for the range and the previous period of the same length, and the top customers
    (or partners, platform-wide) per metric."""
    scope = resolve_scope(actor, partner_id, account_id)
    prev = previous_period(start, end)
    level = "partner" if scope.partner_id is None else "account"
    rows = _values(session, scope, start, end, level=level)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    per: dict[str, list[tuple[Any, Decimal]]] = defaultdict(list)
    if level == "partner":  # rows (bucket, partner_id, metric, value)
        for _b, p, m, v in rows:
            totals[m] += v
            per[m].append((p, v))
    else:  # (bucket, partner_id, account_id, metric, value)
        for _b, p, a, m, v in rows:
            totals[m] += v
            per[m].append(((p, a), v))
    prev_totals: dict[str, Decimal] = defaultdict(Decimal)
    for _b, m, v in _values(session, scope, prev[0], prev[1], level="total"):
        prev_totals[m] += v
    labels = _label_map(session, actor, scope, level)
    tops = {m: [(labels.get(k, str(k)), v) for k, v in sorted(lst, key=lambda kv: (-kv[1], str(kv[0])))[:top]]
            for m, lst in per.items()}
    return Summary(start, end, prev, dict(totals), dict(prev_totals), tops,
                   by="partner" if level == "partner" else "customer")


@dataclass(frozen=True)
class TrendPoint:
    bucket: date
    label: str  # customer (or partner) name, or "Other customers"
    value: Decimal


def usage_trend(session: Session, actor: Actor, *, metric: str, start: date, end: date, grain: str = "day",
                partner_id: int | None = None, account_id: int | None = None, top: int = 8) -> list[TrendPoint]:
    """The metric per bucket (day, week or month), stacked by customer (partners platform-wide); the
    biggest `top` keep their own series, the rest are summed as "Other ..."."""
    if grain not in GRAINS:
        raise ValidationError({"grain": f"Grain must be one of {', '.join(GRAINS)}."})
    scope = resolve_scope(actor, partner_id, account_id)
    level = "partner" if scope.partner_id is None else "account"
    labels = _label_map(session, actor, scope, level)
    other = "Other partners" if level == "partner" else "Other customers"
    m = get_metrics(session).get(metric)
    if m is not None and m.aggregation in ("sum", "count") and scope.account_id is None:
        return _additive_trend(session, scope, level, labels, other, metric=metric, start=start, end=end,
                               grain=grain, top=top)
    rows = _values(session, scope, start, end, grain=grain, level=level, metric=metric)

    def key(r: Any) -> Any:
        return r.partner_id if level == "partner" else (r.partner_id, r.account_id)

    size: dict[Any, Decimal] = defaultdict(Decimal)
    for r in rows:
        size[key(r)] += r.value
    keep = {k for k, _ in sorted(size.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]}
    out: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        k = key(r)
        out[(r.b, labels.get(k, str(k)) if k in keep else other)] += r.value
    return [TrendPoint(b, label, v) for (b, label), v in sorted(out.items())]


def _additive_trend(session: Session, scope: Scope, level: str, labels: dict, other: str, *, metric: str,
                    start: date, end: date, grain: str, top: int) -> list[TrendPoint]:
    """usage_trend of a sum or count metric without reading every customer's rows: the biggest `top` over the
    range from the monthly rollups, their buckets from their own rows, and "Other" as the scope's total per
    bucket (the partner rollups) minus theirs - exact, because these metrics add up."""
    # rows are (bucket, partner_id, [account_id,] metric, value); a customer is (partner_id, account_id)
    def key(r: Any) -> Any:
        return r[1] if level == "partner" else (r[1], r[2])

    size = {key(r): r[-1] for r in _values(session, scope, start, end, level=level, metric=metric)}
    keep = [k for k, _ in sorted(size.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]]
    out: dict[tuple[date, str], Decimal] = {}
    kept: dict[date, Decimal] = {}
    if keep:
        ids = [k if level == "partner" else k[1] for k in keep]
        names = {k if level == "partner" else k[1]: labels.get(k, str(k)) for k in keep}
        rows = _values(session, scope, start, end, grain=grain, level=level, metric=metric, only=ids)
        at = 1 if level == "partner" else 2
        for r in rows:
            b, v = r[0], r[-1]
            point = (b, names[r[at]])  # two customers may share a name: one series, as on the chart
            out[point] = out.get(point, 0) + v
            kept[b] = kept.get(b, 0) + v
    for b, _m, v in _values(session, scope, start, end, grain=grain, level="total", metric=metric):
        rest = v - kept.get(b, 0)
        if rest:
            out[(b, other)] = rest
    return [TrendPoint(b, label, v) for (b, label), v in sorted(out.items())]


def account_series(session: Session, actor: Actor, partner_id: int, account_id: int, *, start: date,
                   end: date, grain: str = "day") -> list[TrendPoint]:
    """Every metric of one account per day (week, month): label = metric key."""
    scope = resolve_scope(actor, partner_id, account_id)
    rows = _values(session, scope, start, end, grain=grain, level="total")
    return [TrendPoint(r.b, r.metric, r.value) for r in rows]


def account_totals(session: Session, actor: Actor, partner_id: int, account_id: int, *, start: date,
                   end: date) -> dict[str, Decimal]:
    """Every metric of one account over the range (the same numbers billing uses)."""
    scope = resolve_scope(actor, partner_id, account_id)
    return {r.metric: r.value for r in _values(session, scope, start, end, level="total")}


# ---------------------------------------------------------------- history (the events themselves)


@dataclass
class HistoryPage:
    rows: list[dict[str, Any]]
    has_more: bool
    offset: int
    limit: int


def usage_history(session: Session, actor: Actor, partner_id: int, account_id: int, *, start: date, end: date,
                  metric: str | None = None, prop_key: str | None = None, prop_value: str | None = None,
                  limit: int = 50, offset: int = 0) -> HistoryPage:
    """One page of an account's usage events in the range, newest first, optionally filtered on the metric
    and on one property (key = value, or key present when value is empty)."""
    scope = resolve_scope(actor, partner_id, account_id)
    check_range(start, end)
    limit = max(1, min(int(limit), HISTORY_PAGE_MAX))
    offset = max(0, int(offset))
    params: dict[str, Any] = {"p": scope.partner_id, "a": scope.account_id, "lim": limit + 1, "off": offset,
                              "ds": start, "de": end}
    conds = ""
    if metric:
        conds += " AND metric = :m"
        params["m"] = metric
    if prop_key:
        if prop_value:
            conds += " AND properties ->> :pk = :pv"
            params.update(pk=prop_key, pv=prop_value)
        else:
            conds += " AND properties ? :pk"
            params["pk"] = prop_key
    rows = session.execute(text(f"""
        SELECT occurred_at, metric, quantity, event_id, source, properties, correction, recorded_at
        FROM usage_events
        WHERE partner_id = :p AND account_id = :a AND day BETWEEN :ds AND :de{conds}
        ORDER BY day DESC, occurred_at DESC, event_id DESC LIMIT :lim OFFSET :off"""), params).mappings().all()
    out = [dict(r) for r in rows[:limit]]
    return HistoryPage(out, len(rows) > limit, offset, limit)


def _metric_labels(session: Session) -> dict[str, str]:
    return {k: f"{m.name} ({m.unit})" for k, m in get_metrics(session).items()}


def metric_names(session: Session) -> dict[str, str]:
    """key -> the metric's name, for labels that show no unit (a unit goes with the number instead)."""
    return {k: m.name for k, m in get_metrics(session).items()}


@dataclass(frozen=True)
class CustomerUsage:
    partner: str
    customer: str
    value: Decimal
    previous: Decimal  # the same metric over the previous period of the same length

    @property
    def change(self) -> Decimal | None:
        """Relative change against the previous period (0.25 = +25 %); None when there was none before."""
        return (self.value - self.previous) / self.previous if self.previous else None


def usage_by_customer(session: Session, actor: Actor, *, metric: str, start: date, end: date,
                      partner_id: int | None = None) -> list[CustomerUsage]:
    """Every customer with usage of `metric` in the range (or in the previous period), biggest first:
    the whole table behind the dashboard's top list. Platform-wide for admins (partner_id None)."""
    scope = resolve_scope(actor, partner_id)
    prev = previous_period(start, end)
    now = {(r.partner_id, r.account_id): r.value
           for r in _values(session, scope, start, end, level="account", metric=metric)}
    before = {(r.partner_id, r.account_id): r.value
              for r in _values(session, scope, prev[0], prev[1], level="account", metric=metric)}
    names = account_names(session, actor, scope.partner_id)
    partners = partner_names(session, actor)
    keys = set(now) | set(before)
    rows = [CustomerUsage(partners.get(k[0], str(k[0])), names.get(k, str(k[1])), now.get(k, Decimal(0)),
                          before.get(k, Decimal(0))) for k in keys]
    return sorted(rows, key=lambda r: (-r.value, r.customer.lower()))


def daily_usage(session: Session, actor: Actor, *, start: date, end: date, partner_id: int | None = None,
                account_id: int | None = None) -> list[tuple[int, str, date, Decimal]]:
    """Usage per customer, metric and day over the range, as (account_id, metric, day, value) rows in that
    order (the HTTP API's summary; the same numbers as the dashboards and billing)."""
    scope = resolve_scope(actor, partner_id, account_id)
    if scope.partner_id is None:
        raise ValidationError({"partner_id": "Choose a partner."})
    rows = _values(session, scope, start, end, grain="day", level="account")
    return sorted(((r[2], r[3], r[0], r[4]) for r in rows), key=lambda t: (t[0], t[1], t[2]))
