"""A partner's margins over a date range read in a fixed number of queries (the Money page, issue 10).

core.billing.margin used to ask the database per client and month: its modes, its plan assignments, its plan
versions, its usage (twice: for the client's price and for the card's), and on a partner-basis card every
client's usage again for the partner's total. `MarginData` reads each of these once for the whole partner and
range, and answers the same questions from memory, with exactly the answers of the per-client queries
(tests/test_margin_batch.py compares both and counts the queries).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select, text, tuple_
from sqlalchemy.orm import Session

from core.billing.modes import DEFAULT_MODE
from core.billing.plans import AssignmentRow
from core.billing.rating import PrefetchedSource
from core.usage.metrics import get_metrics
from db.models.billing import Plan, PlanAssignment, PlanVersion
from db.models.wallet import BillingMode


class MarginData(PrefetchedSource):
    """Modes, plan assignments and versions, daily usage of one partner over start..end, read once."""

    def __init__(self, session: Session, partner_id: int, start: date, end: date):
        super().__init__(session)
        self.partner_id, self.start, self.end = partner_id, start, end
        self.mode_rows: dict[int, list[tuple[date, str]]] = {}
        for r in session.execute(select(BillingMode.account_id, BillingMode.effective_from, BillingMode.mode).where(
                BillingMode.partner_id == partner_id, BillingMode.effective_from <= end)
                .order_by(BillingMode.account_id, BillingMode.effective_from)):
            self.mode_rows.setdefault(r.account_id, []).append((r.effective_from, r.mode))
        self.assignment_rows: dict[int | None, list[AssignmentRow]] = {}
        q = (select(PlanAssignment, Plan).join(Plan, (Plan.partner_id == PlanAssignment.plan_partner_id)
                                              & (Plan.id == PlanAssignment.plan_id))
             .where(PlanAssignment.partner_id == partner_id)
             .order_by(PlanAssignment.effective_from, PlanAssignment.id))
        for a, p in session.execute(q):
            key = a.account_id if a.subject == "account" else None
            self.assignment_rows.setdefault(key, []).append(AssignmentRow(
                a.id, a.partner_id, a.subject, a.account_id, a.plan_partner_id, a.plan_id, p.name, p.code,
                p.currency, a.effective_from, dict(a.overrides or {}), a.created_at))
        self._versions: dict[tuple[int, int], list] = {}
        used = {(a.plan_partner_id, a.plan_id) for rows in self.assignment_rows.values() for a in rows}
        if used:
            for v in session.scalars(select(PlanVersion).where(
                    tuple_(PlanVersion.partner_id, PlanVersion.plan_id).in_(list(used))).order_by(PlanVersion.version)):
                self._versions.setdefault((v.partner_id, v.plan_id), []).append(v)
        self._metrics = get_metrics(session)
        self._daily: dict[int, list] = {}
        for r in session.execute(text(
                "SELECT account_id, metric, day, qty_sum, events, qty_max, last_qty, last_at, last_event_id "
                "FROM usage_daily WHERE partner_id = :p AND day BETWEEN :s AND :e"),
                {"p": partner_id, "s": start, "e": end}):
            self._daily.setdefault(r.account_id, []).append(r)
        self._distinct: dict[int, list] = {}
        for r in session.execute(text("SELECT account_id, metric, day, value FROM usage_distinct "
                                      "WHERE partner_id = :p AND day BETWEEN :s AND :e"),
                                 {"p": partner_id, "s": start, "e": end}):
            self._distinct.setdefault(r.account_id, []).append(r)

    # ---------------------------------------------------------------- what core.billing.modes answers

    def pieces(self, account_id: int, start: date, end: date) -> list[tuple[date, date, str]]:
        """The same split as core.billing.modes.modes_in_period."""
        rows = self.mode_rows.get(account_id, [])
        current = DEFAULT_MODE
        for day, mode in rows:
            if day <= start:
                current = mode
        out: list[tuple[date, date, str]] = []
        cur_from = start
        for day, mode in rows:
            if start < day <= end:
                out.append((cur_from, day - timedelta(days=1), current))
                cur_from, current = day, mode
        out.append((cur_from, end, current))
        return out

    def mode_on(self, account_id: int, day: date) -> str:
        current = DEFAULT_MODE
        for d, mode in self.mode_rows.get(account_id, []):
            if d <= day:
                current = mode
        return current

    # ---------------------------------------------------------------- RatingSource (assignments and versions: PrefetchedSource)

    def usage(self, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
        if partner_id != self.partner_id or start < self.start or end > self.end:
            return super().usage(partner_id, account_id, start, end)
        return self._fold(account_id, start, end)

    def partner_usage(self, start: date, end: date) -> dict[str, Decimal]:
        """The partner's total per metric over all its clients (partner-basis cards): the sum of each
        client's quantity, as core.billing.ratecards.partner_usage adds them."""
        out: dict[str, Decimal] = {k: Decimal(0) for k in self._metrics}
        for account_id in set(self._daily) | set(self._distinct):
            for metric, q in self.usage(self.partner_id, account_id, start, end).items():
                out[metric] = out.get(metric, Decimal(0)) + Decimal(q or 0)
        return out
