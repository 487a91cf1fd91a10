"""Usage period locks: a finalised statement locks its accounts' period (lock_period), after which late
events are stored as corrections and left out of the aggregates. Ingestion and finalisation are serialised
per account with advisory locks (period_guard)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.errors import NotFound, ValidationError

ADVISORY_NS = 42_004  # advisory-lock namespace of usage periods (issue 4)


def period_guard(session: Session, partner_id: int, account_ids: Iterable[int], *, exclusive: bool = False) -> None:
    """Serialise ingestion against statement finalisation per account: ingestion holds a shared
    transaction lock per account, lock_period an exclusive one, so no event slips into a period between
    "statement read the aggregates" and "period locked"."""
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    keys = sorted({hash_key(partner_id, a) for a in account_ids})
    if keys:
        session.execute(text(f"SELECT {fn}(:ns, k) FROM unnest(CAST(:keys AS int[])) AS k ORDER BY k"),
                        {"ns": ADVISORY_NS, "keys": keys})


def hash_key(partner_id: int, account_id: int) -> int:
    """A stable 32-bit key per (partner, account) for advisory locks (collisions only cost waiting)."""
    return ((partner_id * 1_000_003 + account_id) % 4_294_967_291) - 2_147_483_648


def locked_ranges(session: Session, partner_id: int, account_ids: set[int]) -> dict[int, list[tuple[date, date]]]:
    rows = session.execute(text(
        "SELECT account_id, period_start, period_end FROM usage_period_locks "
        "WHERE partner_id = :p AND account_id = ANY(:a)"), {"p": partner_id, "a": list(account_ids)})
    out: dict[int, list[tuple[date, date]]] = {}
    for r in rows:
        out.setdefault(r.account_id, []).append((r.period_start, r.period_end))
    return out


def in_locked(ranges: list[tuple[date, date]] | None, day: date) -> bool:
    return bool(ranges) and any(a <= day <= b for a, b in ranges)  # type: ignore[union-attr]


def _month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def lock_period(session: Session, partner_id: int, account_id: int, period_start: date,
                period_end: date | None = None, statement_ref: str | None = None) -> None:
    """Mark a period final (internal: called by statements when a statement is finalised).

    Call it BEFORE reading period_usage in the finalising transaction: it waits for in-flight ingestion
    for the account and blocks new ingestion until commit, so the statement and the aggregates agree.
    Default period_end: the last day of period_start's month. Locking twice keeps the first lock.
    """
    end = period_end or _month_end(period_start)
    if end < period_start:
        raise ValidationError({"period_end": "The period ends before it starts."})
    if session.execute(text("SELECT 1 FROM customer_accounts WHERE partner_id = :p AND id = :a"),
                       {"p": partner_id, "a": account_id}).first() is None:
        raise NotFound(f"Customer account {account_id} does not exist.")
    period_guard(session, partner_id, [account_id], exclusive=True)
    session.execute(text(
        "INSERT INTO usage_period_locks (partner_id, account_id, period_start, period_end, statement_ref) "
        "VALUES (:p, :a, :s, :e, :r) ON CONFLICT DO NOTHING"),
        {"p": partner_id, "a": account_id, "s": period_start, "e": end, "r": statement_ref})


def is_locked(session: Session, partner_id: int, account_id: int, day: date) -> bool:
    """Is `day` inside a finalised period of the account?"""
    return session.execute(text(
        "SELECT 1 FROM usage_period_locks WHERE partner_id = :p AND account_id = :a "
        "AND :d BETWEEN period_start AND period_end LIMIT 1"),
        {"p": partner_id, "a": account_id, "d": day}).first() is not None
