"""Generate a month's statements, for scheduling:

    python -m core.statements generate --month 2026-10 [--partner ID] [--finalise]

Idempotent: drafts whose content did not change are not written, final statements are left alone, so running
it twice changes nothing. One transaction per statement: a crash or a killed connection leaves every
statement either fully written or not at all, and the next run picks up where this one stopped. Prints a
summary; the exit code is 1 when any statement failed (the others are still done), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM, Actor, db_scope
from core.accounts.permissions import authorize
from core.bootstrap import bootstrap
from core.errors import DomainError
from core.statements import batch, lifecycle, planning
from db.engine import Scope, database_url, make_engine, scoped_session, unit_of_work
from db.models import Partner


@dataclass
class RunResult:
    counts: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    outcomes: list[lifecycle.Outcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _partners(engine: Engine, partner_id: int | None) -> list[int]:
    with Session(engine) as s:
        q = select(Partner.id).order_by(Partner.id)
        if partner_id is not None:
            q = q.where(Partner.id == partner_id)
        return list(s.scalars(q))


def _one(engine: Engine, actor: Actor, key: planning.Key, finalise: bool,
         data: planning.MonthData | None, scope: Scope | None = None) -> lifecycle.Outcome:
    scope = scope or db_scope(actor)
    try:
        with unit_of_work(engine, scope) as s:
            return lifecycle.generate(s, actor, key, finalise=finalise, data=data)
    except IntegrityError:
        # a concurrent run created the same draft first: its row is now visible, recompute against it
        with unit_of_work(engine, scope) as s:
            return lifecycle.generate(s, actor, key, finalise=finalise, data=data)


BATCH = 200  # drafts per transaction in the monthly run


def run_month(engine: Engine, month: str | date, *, partner_id: int | None = None, finalise: bool = False,
              actor: Actor = SYSTEM, log: Callable[[str], None] | None = None,
              batch_size: int = BATCH) -> RunResult:
    """Generate (and optionally finalise) every statement of the month. Drafts are written `batch_size` to a
    transaction (core.statements.batch; a failed batch is redone one statement per transaction); finalising is
    one transaction per statement."""
    result = RunResult()
    planning.month_period(month)  # bad month -> ValidationError before anything happens
    scope = db_scope(actor)  # row-level security: the actor's tenant, or the platform (logged) for SYSTEM
    for pid in _partners(engine, partner_id):
        with scoped_session(engine, scope) as s:
            authorize(actor, "billing.manage", pid)
            data = planning.MonthData(s, pid, month)  # the month prefetched once: drafts computed from it
            keys = planning.plan_month(s, actor, pid, month, data)
            s.expunge_all()
        for chunk in batch.batches(keys, batch_size if not finalise else 1):
            done: list[lifecycle.Outcome | None] = list(_many(engine, actor, chunk, data, scope) or []) \
                if len(chunk) > 1 else []
            for key, got in zip(chunk, done or [None] * len(chunk), strict=True):
                out = got or _one_logged(engine, actor, key, finalise, data, result, log, scope)
                if out is not None:
                    result.outcomes.append(out)
                    result.counts[out.action] += 1
    return result


def _many(engine: Engine, actor: Actor, keys: list[planning.Key],
          data: planning.MonthData, scope: Scope) -> list[lifecycle.Outcome] | None:
    """Drafts of a batch of keys in one transaction; None when the batch failed (rolled back whole: the caller
    then makes its statements one transaction each, so a bad one costs only itself and reports its error)."""
    try:
        with unit_of_work(engine, scope) as s:
            return batch.generate_drafts(s, actor, keys, data)
    except (DomainError, DBAPIError):
        return None


def _one_logged(engine: Engine, actor: Actor, key: planning.Key, finalise: bool, data: planning.MonthData,
                result: RunResult, log: Callable[[str], None] | None,
                scope: Scope | None = None) -> lifecycle.Outcome | None:
    try:
        return _one(engine, actor, key, finalise, data, scope)
    except (DomainError, DBAPIError) as exc:
        what = f"partner {key.partner_id}, {key.kind} for account {key.account_id or '-'}"
        msg = str(exc).splitlines()[0]
        result.errors.append(f"{what}: {msg}")
        result.counts["error"] += 1
        if log:
            log(f"ERROR {what}: {msg}")
        return None


def main(argv: list[str] | None = None, engine: Engine | None = None) -> int:
    bootstrap()
    ap = argparse.ArgumentParser(prog="python -m core.statements")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="generate the statements of a month")
    g.add_argument("--month", required=True, help="YYYY-MM")
    g.add_argument("--partner", type=int, help="only this partner (id)")
    g.add_argument("--finalise", action="store_true", help="also finalise (number) every statement")
    args = ap.parse_args(argv)
    try:
        planning.month_period(args.month)
    except DomainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    own = engine is None
    eng = engine or make_engine(database_url())
    try:
        res = run_month(eng, args.month, partner_id=args.partner, finalise=args.finalise,
                        log=lambda m: print(m, file=sys.stderr))
    finally:
        if own:
            eng.dispose()
    parts = ", ".join(f"{k} {v}" for k, v in sorted(res.counts.items())) or "nothing to do"
    print(f"Statements {args.month}: {parts}")
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
