"""A scenario's history, in date order: each dated thing (an account opened, a plan or mode change, a price
version, a wallet top-up, a month of usage, a statement finalised, voided or credited, an account deleted) is
a :class:`Step` run through the core services, and what it wrote is stamped with the time it happened
(:func:`restamp`), not the time of loading.

Every row the load writes carries the transaction's time (PostgreSQL's now() is the start of the
transaction; Python-side stamps are later), so after each step the rows stamped at or after that instant are
re-dated to the step's time; rows of earlier steps are already older and are left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy.orm import Session

from core.errors import DomainError, ValidationError
from seeds.scenario_model import ScenarioError, Src

# order of things within one day
OPEN, CHANGE, WALLET, USAGE, STATEMENTS, CLOSE = range(6)

STAMPED = {  # table -> timestamp columns the load writes
    "partners": ("created_at",), "customer_accounts": ("created_at", "updated_at", "deleted_at"),
    "users": ("created_at",), "audit_log": ("at",), "plans": ("created_at", "updated_at"),
    "plan_versions": ("created_at",), "plan_assignments": ("created_at",), "billing_alerts": ("created_at",),
    "statement_settings": ("updated_at",), "statements": ("created_at", "updated_at", "finalised_at", "voided_at"),
    "statement_numbers": ("issued_at",), "wallets": ("created_at", "updated_at"), "wallet_ledger": ("created_at",),
    "payment_methods": ("created_at",), "payment_charges": ("created_at",), "billing_modes": ("created_at",),
    "outbox": ("created_at",), "usage_settlements": ("updated_at",), "metrics": ("created_at",),
    "wallet_purchase_intents": ("requested_at", "settled_at", "created_at"),
    "wallet_refunds": ("created_at", "settled_at"), "wallet_lots": ("created_at",), "credit_receipts": ("created_at",),
    "charge_receipts": ("created_at",),
}
ISSUED = {"credit_receipts": "issued_on", "charge_receipts": "issued_on"}  # dates set to the step's day


@dataclass(order=True)
class Step:
    day: date
    order: int
    seq: int
    run: Callable[[], Any] = field(compare=False)
    src: Src = field(compare=False)
    what: str = field(compare=False, default="")
    at: datetime | None = field(compare=False, default=None)  # the stamp (default: the day, by order)

    def stamp(self) -> datetime:
        return self.at or datetime.combine(self.day, time(8 + self.order, 0), tzinfo=UTC)


class Timeline:
    def __init__(self) -> None:
        self.steps: list[Step] = []

    def add(self, day: date, order: int, run: Callable[[], Any], src: Src, what: str = "",
            at: datetime | None = None) -> None:
        self.steps.append(Step(day, order, len(self.steps), run, src, what, at))

    def run(self, session: Session) -> None:
        """Run the steps in date order; re-date what they wrote once per distinct stamp (not per step)."""
        steps = sorted(self.steps)
        pending: Step | None = None
        for step in steps:
            if pending is not None and pending.stamp() != step.stamp():
                restamp(session, pending.stamp(), pending.day)
            try:
                step.run()
            except ScenarioError:
                raise
            except DomainError as exc:
                raise ScenarioError([step.src.problem("", f"{step.what or 'loading'} on {step.day} failed: "
                                                          f"{_message(exc)}")]) from None
            pending = step
        if pending is not None:
            restamp(session, pending.stamp(), pending.day)


def _message(exc: DomainError) -> str:
    if isinstance(exc, ValidationError) and getattr(exc, "errors", None):
        return "; ".join(f"{k}: {v}" if not k.startswith("_") else v for k, v in exc.errors.items())
    return str(exc)


def restamp(session: Session, at: datetime, day: date) -> None:
    """Re-date what the last steps wrote (stamped at or after the transaction's start) to `at`: one UPDATE a
    table, all in one round trip (a DO block; `at` and `day` are values this module made, written as
    literals). A statement finalised by those steps also gets `day` as its issue date (due date moved along)."""
    session.flush()
    # never into the future: a step dated today at 20:00, loaded in the morning, keeps the transaction's time
    ts, d, now = f"least('{at.astimezone(UTC).isoformat()}'::timestamptz, transaction_timestamp())", \
        f"DATE '{day.isoformat()}'", "transaction_timestamp()"
    body = []
    for table, cols in STAMPED.items():
        sets = [f"{c} = CASE WHEN {c} >= {now} THEN {ts} ELSE {c} END" for c in cols]
        if table == "statements":
            fresh = f"finalised_at >= {now} AND issued_on IS NOT NULL AND snapshot IS NOT NULL"
            sets += [f"issued_on = CASE WHEN {fresh} THEN {d} ELSE issued_on END",
                     f"due_on = CASE WHEN {fresh} THEN {d} + (due_on - issued_on) ELSE due_on END",
                     f"snapshot = CASE WHEN {fresh} THEN snapshot || jsonb_build_object('issued_on', {d}, "
                     f"'due_on', {d} + (due_on - issued_on)) ELSE snapshot END"]
        if table in ISSUED:
            sets.append(f"{ISSUED[table]} = CASE WHEN created_at >= {now} THEN {d} ELSE {ISSUED[table]} END")
        where = " OR ".join(f"{c} >= {now}" for c in cols)
        body.append(f"UPDATE {table} SET {', '.join(sets)} WHERE {where};")
    # see migration 0018: only rows of this transaction may be re-dated, and only while rc.backdate is on
    session.connection().exec_driver_sql("DO $$ BEGIN PERFORM set_config('rc.backdate', 'on', true); "
                                         + " ".join(body) + " PERFORM set_config('rc.backdate', 'off', true); END $$")
