"""The one validation of usage events (API, CSV page, CLI): check_events, and validate_batch used by
ingestion. A fast path decides the common all-valid batch; anything unusual goes through the reference
validation, which defines "valid" and reports every problem of every row (BatchValidationError).

Billing day: an event belongs to the UTC date of its ``occurred_at`` (naive timestamps are read as UTC).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from core import clock
from core.errors import ValidationError
from core.usage.metrics import get_metrics

# How far in the future an event may lie (clock skew of the sending system).
MAX_FUTURE = timedelta(hours=1)
# Events before this are certainly a mistake (and would land in long-closed periods).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_ERRORS = 200  # per-row errors reported at most (the batch is rejected as a whole anyway)
MAX_EVENT_ID = 100
MAX_SOURCE = 60
MAX_PROPERTIES_CHARS = 4000
QUANTITY_MAX = Decimal("1e18")  # NUMERIC(24, 6)
EVENT_KEYS = ("account_id", "metric", "quantity", "occurred_at", "event_id", "source", "properties")


class BatchValidationError(ValidationError):
    """A batch with bad rows. ``rows`` maps the row number to its problems; ``errors`` (for forms) maps
    ``"row N"`` to the same text. Nothing was written."""

    def __init__(self, rows: dict[int, list[str]], total_bad: int):
        self.rows = rows
        self.total_bad = total_bad
        errors = {f"row {n}": "; ".join(msgs) for n, msgs in sorted(rows.items())}
        if total_bad > len(rows):
            errors["_form"] = (f"{total_bad} rows have errors (the first {len(rows)} are listed); "
                               "nothing was imported.")
        else:
            errors["_form"] = f"{total_bad} row{'s' if total_bad != 1 else ''} with errors; nothing was imported."
        super().__init__(errors)


def _parse_quantity(value: Any) -> tuple[Decimal | None, str | None]:
    if isinstance(value, bool) or value is None:
        return None, "quantity is required and must be a number"
    if isinstance(value, Decimal):
        q = value
    elif isinstance(value, int):
        q = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None, "quantity must be a finite number"
        q = Decimal(repr(value))
    else:
        s = str(value).strip()
        if not s:
            return None, "quantity is required"
        try:
            q = Decimal(s)
        except InvalidOperation:
            return None, f"quantity {s[:30]!r} is not a number"
    if not q.is_finite():
        return None, "quantity must be a finite number"
    if q < 0:
        return None, f"quantity {q} is negative"
    if q >= QUANTITY_MAX:
        return None, "quantity is too large"
    if q.as_tuple().exponent < -6 and q != q.quantize(Decimal("0.000001")):  # type: ignore[operator]
        return None, "quantity has more than 6 decimal places"
    return q, None


def _parse_time(value: Any, now: datetime) -> tuple[datetime | None, str | None]:
    if isinstance(value, datetime):
        ts = value
    elif isinstance(value, str) and value.strip():
        s = value.strip()
        try:
            ts = datetime.fromisoformat(s)
        except ValueError:
            return None, f"occurred_at {s[:40]!r} is not a date and time (use ISO 8601, e.g. 2026-03-01T12:00:00Z)"
    elif isinstance(value, date):
        ts = datetime(value.year, value.month, value.day)
    else:
        return None, "occurred_at is required (ISO 8601, e.g. 2026-03-01T12:00:00Z)"
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    if ts > now + MAX_FUTURE:
        return None, f"occurred_at {ts.isoformat()} is too far in the future"
    if ts < EARLIEST:
        return None, f"occurred_at {ts.isoformat()} is before {EARLIEST.date()}"
    return ts, None


MAX_PROPERTIES_DEPTH = 8  # properties are labels to filter and group on, not documents


def _too_deep(value: Any, limit: int = MAX_PROPERTIES_DEPTH) -> bool:
    """Nesting deeper than `limit` (iterative: a hostile depth cannot exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


def _parse_properties(value: Any) -> tuple[dict | None, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            return None, f"properties are nested more than {MAX_PROPERTIES_DEPTH} levels deep"
        except ValueError:
            return None, "properties is not valid JSON"
    if not isinstance(value, dict):
        return None, "properties must be a JSON object such as {\"mailing\": \"M-1\"}"
    if _too_deep(value):
        return None, f"properties are nested more than {MAX_PROPERTIES_DEPTH} levels deep"
    return value, None


@dataclass(frozen=True)
class _AccountInfo:
    partner_id: int
    status: str


def _account_info(session: Session, ids: set[int]) -> dict[int, _AccountInfo]:
    if not ids:
        return {}
    rows = session.execute(text("SELECT id, partner_id, status FROM customer_accounts WHERE id = ANY(:ids)"),
                           {"ids": list(ids)})
    return {r.id: _AccountInfo(r.partner_id, r.status) for r in rows}


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    s = str(value).strip() if value is not None else ""
    return int(s) if s.isascii() and s.isdigit() and len(s) < 19 else None


_KEYSET = frozenset(EVENT_KEYS)
_SIX = -6
_QMAX_INT = 10 ** 18
_dump_props = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class _Slow(Exception):
    """The fast path met something it does not decide itself: the reference validation takes over."""


def _fast_quantity(q: Any) -> Decimal:
    t = type(q)
    if t is Decimal:
        pass
    elif t is int:
        if 0 <= q < _QMAX_INT:
            return Decimal(q)
        raise _Slow
    elif t is str:
        try:
            q = Decimal(q)
        except InvalidOperation:
            raise _Slow from None
    else:
        raise _Slow
    if not q.is_finite() or q < 0 or q >= QUANTITY_MAX or q.as_tuple().exponent < _SIX:
        raise _Slow
    return q


def _fast_time(ts: Any, lo: datetime, hi: datetime) -> datetime:
    t = type(ts)
    if t is str:
        try:
            ts = datetime.fromisoformat(ts)
        except ValueError:
            raise _Slow from None
    elif t is not datetime:
        raise _Slow
    tz = ts.tzinfo
    if tz is not UTC:
        ts = ts.replace(tzinfo=UTC) if tz is None else ts.astimezone(UTC)
    if not lo <= ts <= hi:
        raise _Slow
    return ts


def _fast_account(acc: Any) -> int:
    if type(acc) is str and acc.isascii() and acc.isdigit() and len(acc) < 19:
        return int(acc)
    raise _Slow


def _fast_props(props: Any, unique_property: str | None) -> str:
    """The properties as JSON; `unique_property`: the property a unique_count metric counts (must be set)."""
    if type(props) is not dict:
        raise _Slow
    props_json = _dump_props(props)
    if len(props_json) > MAX_PROPERTIES_CHARS:
        raise _Slow
    if unique_property is not None:
        v = props.get(unique_property)
        if v is None or v == "":
            raise _Slow
    return props_json


def _fast_rows(events: list, metrics: dict, default_source: str, now: datetime) -> tuple[list[tuple], int, set[int]]:
    """The common case in one tight loop: every row well-formed and valid. Produces exactly the rows the
    reference validation (_check_reference) would — (rows, in-batch duplicates, account ids; the accounts
    are checked by the caller). Raises _Slow at the first row it cannot decide alone
    (a bad row, or an unusual but maybe valid type); the reference then validates the whole batch again and
    reports every problem. Why: the reference costs ~20 µs a row; this ~3 µs."""
    unique = {k: m.property for k, m in metrics.items() if m.aggregation == "unique_count"}
    lo, hi = EARLIEST, now + MAX_FUTURE
    qmax = QUANTITY_MAX
    keyset = _KEYSET
    rows: list[tuple] = []
    append = rows.append
    seen: set[tuple[int, str]] = set()
    add = seen.add
    accounts: set[int] = set()
    dups = 0
    for ev in events:
        if type(ev) is not dict or not ev.keys() <= keyset:
            raise _Slow
        acc = ev.get("account_id")
        if type(acc) is not int:
            acc = _fast_account(acc)
        metric = ev.get("metric")
        if metric not in metrics:
            raise _Slow
        # the common case (a finite Decimal in range, at most 6 places) inline; the rest as _fast_quantity decides
        qty = ev.get("quantity")
        if type(qty) is not Decimal or not (qty.is_finite() and 0 <= qty < qmax) \
                or qty.as_tuple().exponent < _SIX:  # type: ignore[operator]  # finite: an int
            qty = _fast_quantity(qty)
        ts = ev.get("occurred_at")
        if type(ts) is not datetime or ts.tzinfo is not UTC or not lo <= ts <= hi:
            ts = _fast_time(ts, lo, hi)
        eid = ev.get("event_id")
        if type(eid) is not str:
            raise _Slow
        eid = eid.strip()
        if not eid or len(eid) > MAX_EVENT_ID:
            raise _Slow
        source = ev.get("source")
        if source is None:
            source = default_source
        elif type(source) is str:
            source = source.strip() or default_source
        else:
            raise _Slow
        if len(source) > MAX_SOURCE:
            raise _Slow
        props = ev.get("properties")
        props_json = None if props is None and metric not in unique else _fast_props(props, unique.get(metric))
        key = (acc, eid)
        if key in seen:
            dups += 1
            continue
        add(key)
        accounts.add(acc)
        append((acc, eid, metric, qty, ts, ts.date(), source, props_json))
    return rows, dups, accounts


def _accounts_ok(session: Session, partner_id: int, accounts: set[int]) -> bool:
    """Every account exists, belongs to the partner and is not deleted (one query)."""
    infos = _account_info(session, accounts)
    return all((i := infos.get(a)) is not None and i.partner_id == partner_id and i.status != "deleted"
               for a in accounts)


def check_events(session: Session, partner_id: int, events: Iterable[dict], *, default_source: str = "api",
                 first_row: int = 1, now: datetime | None = None) -> tuple[list[tuple], int]:
    """Validate a batch; return (staging rows, number of in-batch duplicates) or raise BatchValidationError.

    Staging row: (account_id, event_id, metric, quantity, occurred_at, day, source, properties_json).
    An event id repeated within the batch is kept once (its first row) and counted as a duplicate.
    """
    now = now or clock.now()
    events = events if isinstance(events, list) else list(events)
    rows, dups, _ = validate_batch(session, partner_id, events, get_metrics(session), default_source=default_source,
                              first_row=first_row, now=now)
    return rows, dups


def validate_batch(session: Session, partner_id: int, events: list, metrics: dict, *, default_source: str,
              first_row: int, now: datetime) -> tuple[list[tuple], int, set[int]]:
    """check_events, plus the set of accounts of the rows."""
    try:
        rows, dups, accounts = _fast_rows(events, metrics, default_source, now)
        if _accounts_ok(session, partner_id, accounts):
            return rows, dups, accounts
    except _Slow:
        pass
    rows, dups = _check_reference(session, partner_id, events, metrics, default_source=default_source,
                                  first_row=first_row, now=now)
    return rows, dups, {r[0] for r in rows}


def _check_reference(session: Session, partner_id: int, events: list, metrics: dict, *, default_source: str,
                     first_row: int, now: datetime) -> tuple[list[tuple], int]:
    """The reference validation: every row, every field, every message (the definition of "valid")."""
    problems: dict[int, list[str]] = {}
    bad = 0
    parsed: list[tuple[int, tuple]] = []
    for n, ev in enumerate(events, start=first_row):
        if isinstance(ev, dict) and ev.get("_blank"):
            errs = ["empty row"]
        else:
            row, errs = _check_row(ev, metrics, default_source, now)
            if row is not None:
                parsed.append((n, row))
        if errs:
            bad += 1
            if len(problems) < MAX_ERRORS:
                problems[n] = errs
    rows, dups, refused = _check_accounts(session, partner_id, parsed)
    for n, msg in refused:
        bad += 1
        if len(problems) < MAX_ERRORS:
            problems[n] = [msg]
    if bad:
        raise BatchValidationError(dict(sorted(problems.items())), bad)
    return rows, dups


def _check_row(ev: Any, metrics: dict, default_source: str, now: datetime) -> tuple[tuple | None, list[str]]:
    """One event: its staging row (without the account check), or None and every problem found."""
    errs: list[str] = []
    if not isinstance(ev, dict):
        errs.append("not an event (expected a mapping of column to value)")
        ev = {}
    if "_extra_cells" in ev:
        errs.append("more cells than there are columns")
        ev = {k: v for k, v in ev.items() if k != "_extra_cells"}
    unknown = set(ev) - set(EVENT_KEYS)
    if unknown:
        errs.append(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    acc = _as_int(ev.get("account_id"))
    if acc is None:
        errs.append(f"account_id {ev.get('account_id')!r} is not a customer account id")
    metric = str(ev.get("metric") or "").strip()
    m = metrics.get(metric)
    if m is None:
        errs.append(f"unknown metric {metric!r}" if metric else "metric is required")
    qty, err = _parse_quantity(ev.get("quantity"))
    ts, err2 = _parse_time(ev.get("occurred_at"), now)
    errs += [e for e in (err, err2) if e]
    event_id = str(ev.get("event_id") or "").strip()
    if not event_id:
        errs.append("event_id is required")
    elif len(event_id) > MAX_EVENT_ID:
        errs.append(f"event_id is longer than {MAX_EVENT_ID} characters")
    source = str(ev.get("source") or "").strip() or default_source
    if len(source) > MAX_SOURCE:
        errs.append(f"source is longer than {MAX_SOURCE} characters")
    props, props_json, err = _check_properties(ev.get("properties"))
    if err:
        errs.append(err)
    if m is not None and m.aggregation == "unique_count":
        v = (props or {}).get(m.property)
        if v is None or v == "":
            errs.append(f"metric {metric} counts distinct values of property {m.property!r}: it is missing")
    if errs or ts is None or acc is None:
        return None, errs
    return (acc, event_id, metric, qty, ts, ts.date(), source, props_json), errs


def _check_properties(value: Any) -> tuple[dict | None, str | None, str | None]:
    """(properties, their JSON, problem)."""
    props, err = _parse_properties(value)
    if err or props is None:
        return None, None, err
    props_json = json.dumps(props, ensure_ascii=False, separators=(",", ":"), default=str)
    if "\\u0000" in props_json or "\x00" in props_json:
        return props, None, "properties must not contain NUL characters"
    if len(props_json) > MAX_PROPERTIES_CHARS:
        return props, None, f"properties are longer than {MAX_PROPERTIES_CHARS} characters"
    return props, props_json, None


def _check_accounts(session: Session, partner_id: int,
                    parsed: list[tuple[int, tuple]]) -> tuple[list[tuple], int, list[tuple[int, str]]]:
    """The rows whose account is the partner's and not deleted (an event id repeated in the batch kept once),
    the number of in-batch duplicates and the (row number, message) of refused rows. One query."""
    infos = _account_info(session, {row[0] for _, row in parsed})
    rows: list[tuple] = []
    seen: set[tuple[int, str]] = set()
    dups = 0
    refused: list[tuple[int, str]] = []
    for n, row in parsed:
        info = infos.get(row[0])
        if info is None or info.partner_id != partner_id:
            refused.append((n, f"unknown customer account {row[0]} (not a customer of this partner)"))
        elif info.status == "deleted":
            refused.append((n, f"customer account {row[0]} is deleted"))
        elif (row[0], row[1]) in seen:
            dups += 1
        else:
            seen.add((row[0], row[1]))
            rows.append(row)
    return rows, dups, refused
