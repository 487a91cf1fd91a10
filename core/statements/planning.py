"""Which statements a partner's month has (plan_month) and the month prefetched for the monthly run (MonthData).

Who issues what (per customer, split by `core.billing.modes.modes_in_period`): days in *customer pays* -> the
platform (house partner) issues a statement; days in *partner pays* (prepaid or on demand) -> the partner issues
it; days in *agency* -> the usage goes onto the partner's collective invoice from the platform.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, tuple_
from sqlalchemy.orm import Session

from core.accounts.accounts import house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.billing.modes import DEFAULT_MODE, PARTNER_PAID, modes_in_period
from core.billing.plans import AssignmentRow
from core.billing.rating import PrefetchedSource, month_of
from core.errors import NotFound, ValidationError
from core.statements import layers
from core.statements.settings import Branding, branding
from core.usage.metrics import get_metrics
from db.models import CustomerAccount, Partner
from db.models.billing import Plan, PlanAssignment, PlanVersion
from db.models.wallet import BillingMode


def month_period(month: str | date) -> tuple[date, date]:
    """'2026-10' (or any date in the month) -> (first day, last day)."""
    if isinstance(month, date):
        return month_of(month)
    m = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", str(month or ""))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValidationError({"month": "Enter the month as YYYY-MM, e.g. 2026-10."})
    return month_of(date(int(m.group(1)), int(m.group(2)), 1))


@dataclass(frozen=True)
class Key:
    """Which statement: (tenant, kind, issuer, addressed account or None = the partner, month)."""

    partner_id: int
    kind: str  # statement | collective
    issuer_partner_id: int
    account_id: int | None
    period_start: date
    period_end: date


@dataclass(frozen=True)
class Piece:
    start: date
    end: date
    mode: str


def issuer_kind(mode: str, partner_id: int, house_id: int) -> tuple[str, int]:
    """The one issuer of a day before rate cards (legacy); with a card see core.statements.layers.issuers."""
    if mode == "agency":
        return "collective", house_id
    if mode in PARTNER_PAID:
        return "statement", partner_id
    return "statement", house_id


def pieces_of(session: Session, partner_id: int, account_id: int, start: date, end: date,
            has_modes: bool = True) -> list[Piece]:
    if not has_modes:
        return [Piece(start, end, DEFAULT_MODE)]
    return [Piece(a, b, m) for a, b, m in modes_in_period(session, partner_id, account_id, start, end)]


def billable_accounts(session: Session, partner_id: int, start: date, end: date) -> list[tuple[int, str]]:
    """The partner's accounts that existed in the month and had a plan assigned by its end, by name."""
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    planned = (select(PlanAssignment.account_id).where(
        PlanAssignment.partner_id == partner_id, PlanAssignment.subject == "account",
        PlanAssignment.effective_from <= end))
    q = (select(CustomerAccount.id, CustomerAccount.name).where(
        CustomerAccount.partner_id == partner_id, CustomerAccount.id.in_(planned),
        (CustomerAccount.deleted_at.is_(None)) | (CustomerAccount.deleted_at >= t0))
        .order_by(func.lower(CustomerAccount.name), CustomerAccount.id))
    return [(r[0], r[1]) for r in session.execute(q)]


def _has_partner_plan(session: Session, partner_id: int, end: date) -> bool:
    return session.execute(select(func.count()).select_from(PlanAssignment).where(
        PlanAssignment.partner_id == partner_id, PlanAssignment.subject == "partner",
        PlanAssignment.effective_from <= end)).scalar_one() > 0


def accounts_with_modes(session: Session, partner_id: int, end: date) -> set[int]:
    return set(session.scalars(select(BillingMode.account_id).where(
        BillingMode.partner_id == partner_id, BillingMode.effective_from <= end).distinct()))


def check_key(session: Session, key: Key, data: MonthData | None = None) -> None:
    """Refuse a key the server would not plan itself (_planned_keys is the one rule): the issuer and kind of a
    statement follow the customer's billing mode and the partner's rate card (a hand-built key naming another
    partner as issuer, or another kind, is forged), and a statement covers a whole calendar month."""
    start, end = month_period(key.period_start)
    if (key.period_start, key.period_end) != (start, end):
        raise _forged()
    if data is not None and (data.partner_id, data.start) != (key.partner_id, start):
        data = None  # prefetched for another partner or month: read afresh
    if data is not None:
        if data.planned is None:
            data.planned = frozenset(_planned_keys(session, key.partner_id, start, data))
        planned: frozenset[Key] | list[Key] = data.planned
    else:
        planned = _planned_keys(session, key.partner_id, start)
    if key not in planned:
        raise _forged()


def _forged() -> ValidationError:
    return ValidationError("There is no such statement: its issuer and kind follow the customer's billing mode "
                           "for that month.")


def plan_month(session: Session, actor: Actor, partner_id: int, month: str | date,
               data: MonthData | None = None) -> list[Key]:
    """Every statement the partner's month should have (in a stable order): customer statements by issuer,
    then the collective invoice when there are agency days or a partner-level plan."""
    authorize(actor, "billing.manage", partner_id)
    return _planned_keys(session, partner_id, month, data)


def _planned_keys(session: Session, partner_id: int, month: str | date, data: MonthData | None = None) -> list[Key]:
    """plan_month without the permission check (for plan_month and check_key)."""
    if data is not None:
        data.session = session
    start, end = month_period(month)
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    house_id = data.house_id if data else house_partner(session).id
    moded = set(data.mode_rows) if data else accounts_with_modes(session, partner_id, end)
    keys: list[Key] = []
    collective = False
    billable = data.accounts if data else billable_accounts(session, partner_id, start, end)
    cards = data.cards if data else layers.card_source(session, partner_id)
    planned = set(a for a, _ in billable)
    if cards is not None:  # two layers: partner-billed clients without a plan get the partner's statement too
        billable = sorted({*billable, *_unpriced_accounts(session, partner_id, start, end, planned)},
                          key=lambda r: (r[1].lower(), r[0]))
    commission = False
    for account_id, _name in billable:
        seen: list[tuple[str, int]] = []
        pieces = data.pieces(account_id) if data else pieces_of(session, partner_id, account_id, start, end,
                                                               account_id in moded)
        for p in pieces:
            for ik in layers.issuers(p.mode, partner_id, house_id, cards is not None):
                if ik not in seen and (account_id in planned or ik == ("statement", partner_id)):
                    seen.append(ik)
            commission = commission or (p.mode not in layers.PARTNER_BILLS and account_id in planned)
        for kind, issuer in seen:
            if kind == "collective":
                collective = True
            else:
                keys.append(Key(partner_id, kind, issuer, account_id, start, end))
    if cards is not None:
        partner_fees = any(rc.card.partner_fees is not None for _, _, rc in cards.segments(start, end))
    else:
        partner_fees = (any(r.effective_from <= end for r in data.assignment_rows.get(None, [])) if data
                        else _has_partner_plan(session, partner_id, end))
    if collective or partner_fees:
        keys.append(Key(partner_id, "collective", house_id, None, start, end))
    if cards is not None and commission and any(rc.card.revenue_share_percent
                                                for _, _, rc in cards.segments(start, end)):
        keys.append(Key(partner_id, "commission", house_id, None, start, end))
    return keys


def _unpriced_accounts(session: Session, partner_id: int, start: date, end: date,
                      planned: set[int]) -> list[tuple[int, str]]:
    """Accounts without a plan that spent some of the month in a partner-billed mode (two layers: the partner's
    statement lists their quantities with no amounts)."""
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    moded = select(BillingMode.account_id).where(
        BillingMode.partner_id == partner_id, BillingMode.effective_from <= end,
        BillingMode.mode.in_(layers.PARTNER_BILLS))
    q = (select(CustomerAccount.id, CustomerAccount.name).where(
        CustomerAccount.partner_id == partner_id, CustomerAccount.id.in_(moded),
        (CustomerAccount.deleted_at.is_(None)) | (CustomerAccount.deleted_at >= t0)))
    out = []
    for account_id, name in session.execute(q):
        if account_id in planned:
            continue
        pieces = pieces_of(session, partner_id, account_id, start, end)
        if any(p.mode in layers.PARTNER_BILLS for p in pieces):
            out.append((account_id, name))
    return out


class MonthData(PrefetchedSource):
    """A partner's month prefetched in a few queries (modes, plan assignments and versions, daily usage,
    settlement totals, branding), giving the same answers as the per-account queries. Used by the monthly
    run to compute drafts; finalisation always re-reads under the period lock instead."""

    def __init__(self, session: Session, partner_id: int, month: str | date):
        super().__init__(session)
        self.partner_id = partner_id
        self.start, self.end = month_period(month)
        self.house_id = house_partner(session).id
        self.planned: frozenset[Key] | None = None  # the month's planned keys, once check_key has asked
        self._branding: dict[int, Branding] = {}
        self.accounts = billable_accounts(session, partner_id, self.start, self.end)
        self.mode_rows: dict[int, list[tuple[date, str]]] = {}
        for r in session.execute(select(BillingMode.account_id, BillingMode.effective_from, BillingMode.mode).where(
                BillingMode.partner_id == partner_id, BillingMode.effective_from <= self.end)
                .order_by(BillingMode.account_id, BillingMode.effective_from)):
            self.mode_rows.setdefault(r.account_id, []).append((r.effective_from, r.mode))
        self.assignment_rows: dict[int | None, list] = {}
        for row in _all_assignments(session, partner_id):
            self.assignment_rows.setdefault(row.account_id, []).append(row)
        self._versions: dict[tuple[int, int], list] = {}
        plans_used = {(a.plan_partner_id, a.plan_id) for rows in self.assignment_rows.values() for a in rows}
        if plans_used:
            for v in session.scalars(select(PlanVersion).where(
                    tuple_(PlanVersion.partner_id, PlanVersion.plan_id).in_(list(plans_used)))
                    .order_by(PlanVersion.version)):
                self._versions.setdefault((v.partner_id, v.plan_id), []).append(v)
        self._metrics = get_metrics(session)
        self._specs: dict[tuple, Any] = {}
        self._usage: dict[tuple[int, date, date], dict[str, Decimal]] = {}
        self._daily: dict[int, list] = {}
        for r in session.execute(text(
                "SELECT account_id, metric, day, qty_sum, events, qty_max, last_qty, last_at, last_event_id "
                "FROM usage_daily WHERE partner_id = :p AND day BETWEEN :s AND :e"),
                {"p": partner_id, "s": self.start, "e": self.end}):
            self._daily.setdefault(r.account_id, []).append(r)
        self._distinct: dict[int, list] = {}
        for r in session.execute(text(
                "SELECT account_id, metric, day, value FROM usage_distinct "
                "WHERE partner_id = :p AND day BETWEEN :s AND :e"), {"p": partner_id, "s": self.start, "e": self.end}):
            self._distinct.setdefault(r.account_id, []).append(r)
        self.credits = _period_totals(session, "wallet_ledger", "-credits", partner_id, self.start, self.end,
                                      "kind = 'usage_draw'")
        self.charges = _period_totals(session, "payment_charges", "amount", partner_id, self.start, self.end,
                                      "reason = 'usage_on_demand' AND status = 'approved'")
        for pid in (self.house_id, partner_id):
            self.branding(pid)
        self.cards = layers.card_source(session, partner_id)

    def rebind(self, session: Session) -> None:
        """Use `session` for whatever is still read lazily (the month outlives the session that prefetched it:
        each transaction of the monthly run rebinds it, so no read goes through a closed session, which would
        open a connection of its own and leave it idle in a transaction)."""
        self.session = session
        if self.cards is not None:
            self.cards.session = session

    def branding(self, partner_id: int) -> Branding:
        if partner_id not in self._branding:
            self._branding[partner_id] = branding(self.session, partner_id)
        return self._branding[partner_id]

    def pieces(self, account_id: int) -> list[Piece]:
        """The same split as core.billing.modes.modes_in_period, from the prefetched mode rows."""
        rows = self.mode_rows.get(account_id, [])
        current = DEFAULT_MODE
        for day, mode in rows:
            if day <= self.start:
                current = mode
        out: list[Piece] = []
        cur_from = self.start
        for day, mode in rows:
            if self.start < day <= self.end:
                out.append(Piece(cur_from, day - timedelta(days=1), current))
                cur_from, current = day, mode
        out.append(Piece(cur_from, self.end, current))
        return out

    def plan_spec(self, version: Any, overrides: Mapping) -> Any:
        """Parsed once per plan version and overrides for the whole month (thousands of accounts share a few)."""
        key = (version.partner_id, version.plan_id, version.version, json.dumps(overrides, sort_keys=True, default=str))
        got = self._specs.get(key)
        if got is None:
            got = self._specs[key] = super().plan_spec(version, overrides)
        return got

    def usage(self, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
        if partner_id != self.partner_id or start < self.start or end > self.end:
            return super().usage(partner_id, account_id, start, end)
        key = (account_id, start, end)
        if key not in self._usage:
            self._usage[key] = self._fold(account_id, start, end)
        return dict(self._usage[key])


def _all_assignments(session: Session, partner_id: int) -> list:
    """Every plan assignment of the partner (accounts and the partner itself), ordered like
    core.billing.plans.assignments_in_force expects (effective date, id)."""
    q = (select(PlanAssignment, Plan).join(Plan, (Plan.partner_id == PlanAssignment.plan_partner_id)
                                          & (Plan.id == PlanAssignment.plan_id))
         .where(PlanAssignment.partner_id == partner_id)
         .order_by(PlanAssignment.effective_from, PlanAssignment.id))
    return [AssignmentRow(a.id, a.partner_id, a.subject, a.account_id, p.partner_id, p.id, p.name, p.code,
                          p.currency, a.effective_from, dict(a.overrides or {}), a.created_at)
            for a, p in session.execute(q)]


def _period_totals(session: Session, table: str, value: str, partner_id: int, start: date, end: date,
                   extra: str) -> dict[int, Decimal]:
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    rows = session.execute(text(f"""
        SELECT account_id, coalesce(sum({value}), 0) FROM {table}
        WHERE partner_id = :p AND account_id IS NOT NULL AND {extra}
          AND CASE WHEN event_ref ? 'period' THEN event_ref ->> 'period' = :ps
                   ELSE created_at >= :t0 AND created_at < :t1 END
        GROUP BY account_id"""), {"p": partner_id, "ps": start.isoformat(), "t0": t0, "t1": t1})
    return {a: Decimal(v) for a, v in rows}
