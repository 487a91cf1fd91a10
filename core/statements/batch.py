"""Drafts of many statements in one transaction (the monthly run's batched path, issue 18).

`generate_drafts(session, actor, keys, data)` gives, for every key of one partner-month, exactly the outcome
`core.statements.lifecycle.generate(..., data=data)` gives for it alone (created / updated / unchanged / final /
removed / nothing, the same rows, lines and audit entries), with a handful of round trips for the whole batch
instead of a handful per statement: one query takes the keys' advisory locks (in a fixed order, so concurrent
runs cannot deadlock), one reads and locks their live statements, the contents are computed in memory from the
prefetched month, and the new headers, their lines and their audit entries are written in three multi-row
inserts. Finalisation is not batched: it always re-reads under the period lock, one statement at a time.

The batch is one transaction: it commits whole or not at all. The monthly command falls back to one
transaction per statement when a batch fails, so one bad statement still costs only itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.statements import lifecycle
from core.statements.content import Content, compute
from core.statements.planning import Key, MonthData, check_key
from db.models.statements import Statement, StatementLine


def _lock_keys(session: Session, keys: Sequence[Key]) -> None:
    """The keys' advisory locks (the same ones lifecycle.generate takes), in ascending order, in one query."""
    ids = sorted({lifecycle._key_lock_id(k) for k in keys})
    session.execute(text("SELECT count(pg_advisory_xact_lock(:ns, k)) FROM unnest(CAST(:ks AS int[])) AS k"),
                    {"ns": lifecycle.ADVISORY_NS, "ks": ids})


def _live_many(session: Session, keys: Sequence[Key]) -> dict[Key, Statement]:
    """The live (not void) statements of the keys, locked (one query; all keys share partner and month)."""
    partner_id, start = keys[0].partner_id, keys[0].period_start
    accounts = [k.account_id for k in keys if k.account_id is not None]
    whose = (Statement.account_id.in_(accounts) | Statement.account_id.is_(None) if len(accounts) < len(keys)
             else Statement.account_id.in_(accounts))
    rows = session.scalars(select(Statement).where(
        Statement.partner_id == partner_id, Statement.period_start == start, Statement.status != "void",
        Statement.kind.in_({k.kind for k in keys}), whose)
        .order_by(Statement.id).with_for_update().execution_options(populate_existing=True)).all()
    wanted = set(keys)
    return {k: st for st in rows if (k := lifecycle.key_of(st)) in wanted}


def generate_drafts(session: Session, actor: Actor, keys: Sequence[Key], data: MonthData | None = None
                    ) -> list[lifecycle.Outcome]:
    """Create or recompute the drafts of `keys` (one partner, one month) in this transaction; the outcomes in
    the keys' order, each what lifecycle.generate(session, actor, key, data=data) would give."""
    if not keys:
        return []
    if data is not None:
        data.rebind(session)
    if len({(k.partner_id, k.period_start) for k in keys}) != 1:
        raise ValueError("A batch of drafts is one partner's month.")
    for key in keys:
        authorize(actor, "billing.manage", key.partner_id, key.account_id)
    _lock_keys(session, keys)
    live = _live_many(session, keys)
    outcomes: dict[int, lifecycle.Outcome] = {}
    new: list[tuple[int, Key, Content]] = []
    for i, key in enumerate(keys):
        existing = live.get(key)
        if existing is None:
            check_key(session, key, data)
        elif existing.status == "final":
            outcomes[i] = lifecycle.Outcome(key, "final", existing.id, existing.number, existing.total)
            continue
        content = compute(session, key, data)
        if existing is None and content is not None:
            new.append((i, key, content))
        else:  # unchanged, updated, removed or nothing: rare on a rerun's scale, done one by one
            outcomes[i] = lifecycle._upsert_draft(session, actor, key, content, existing)
    outcomes.update(_create(session, actor, new))
    return [outcomes[i] for i in range(len(keys))]


def _create(session: Session, actor: Actor, new: list[tuple[int, Key, Content]]
            ) -> dict[int, lifecycle.Outcome]:
    """Insert the new drafts: headers (one multi-row insert), then every line, then the audit entries."""
    if not new:
        return {}
    rows = []
    for _, key, content in new:
        st = Statement(partner_id=key.partner_id, kind=key.kind, status="draft",
                       issuer_partner_id=key.issuer_partner_id, account_id=key.account_id,
                       period_start=key.period_start, period_end=key.period_end, created_by=actor.user_id or None)
        lifecycle._apply(st, content)
        rows.append(st)
    session.add_all(rows)
    session.flush()
    for st in rows:
        for hook in list(lifecycle.on_header_written):
            hook(session, st)
    lines = [lifecycle._line_row(st, n, ln) for st, (_, _, content) in zip(rows, new, strict=True)
             for n, ln in enumerate(content.lines, start=1)]
    if lines:  # Core insert: the ORM's bulk insert would split the rows by which columns are None
        session.execute(insert(StatementLine.__table__), lines)
    for st, (_, key, _) in zip(rows, new, strict=True):
        audit.record(session, actor, partner_id=key.partner_id, action="generate", entity="statement",
                     entity_id=st.id, account_id=key.account_id, after=lifecycle._summary(st))
    session.flush()
    return {i: lifecycle.Outcome(key, "created", st.id, None, st.total) for (i, key, _), st in zip(new, rows, strict=True)}


def batches(keys: Sequence[Key], size: int) -> list[list[Key]]:
    """The keys in consecutive batches of at most `size`."""
    return [list(keys[i:i + size]) for i in range(0, len(keys), size)]


__all__ = ["batches", "generate_drafts"]
