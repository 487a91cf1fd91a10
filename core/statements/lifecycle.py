"""Monthly statements, collective invoices and credit notes (see docs/statements.md).

Who issues what for a month (per customer, split by `core.billing.modes.modes_in_period`):
- days in *customer pays*: the platform (house partner's branding) issues a statement to the customer;
- days in *partner pays* (prepaid or on demand): the partner issues a statement to its customer, in the
  partner's branding only, showing what the partner paid (credits drawn / charged on demand);
- days in *agency*: no customer statement; the usage goes onto the partner's collective invoice from the
  platform, one section per agency customer, together with the partner-level plan's fees (client bands).

The money comes from the billing engine: the days of each issuer are rated with `core.pricing.rate` over the
whole month (so fees are prorated by the days the issuer covers), from `core.billing.rating.segments_for`.

Lifecycle: draft (recomputed freely: generate() again) -> final (number + snapshot, immutable, usage period
locked) -> void (a draft at any time; a final one only together with a full credit note). Corrections to a
final statement are credit notes, numbered in their own series. Numbers are allocated at finalisation under
a row lock on the issuer's sequence in the same transaction: a rolled-back finalisation leaves no gap.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, insert, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.accounts import house_partner
from core.accounts.actor import Actor
from core.accounts.permissions import allowed, authorize
from core.billing.modes import DEFAULT_MODE, MODE_LABELS, modes_in_period
from core.billing.plans import AssignmentRow
from core.billing.rating import RatingSource, month_of, segments_for
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.pricing import Line, explain, explain_label, rate
from core.pricing.explain import parts_to_json
from core.pricing.money import round_money
from core.statements.i18n import LANGUAGES, labels
from core.statements.render import render_csv, render_pdf
from core.usage import ingest as usage
from core.usage.metrics import get_metrics
from db.models import CustomerAccount, Partner
from db.models.billing import Plan, PlanAssignment, PlanVersion
from db.models.statements import (
    Statement,
    StatementLine,
    StatementNumber,
    StatementSequence,
    StatementSettings,
)
from db.models.wallet import BillingMode

ZERO = Decimal(0)
PARTNER_PAID = ("partner_prepaid", "partner_on_demand")
ADVISORY_NS = 42_006  # advisory-lock namespace: one statement key generated at a time
MAX_TEXT = {"display_name": 200, "logo_text": 80, "address": 1000, "footer": 2000}
LABEL_KEYS = tuple(labels("en"))

# Test hook: called after a statement's header row is written and before its lines are (kill tests).
on_header_written: list[Callable[[Session, Statement], None]] = []


# ---------------------------------------------------------------- periods and keys


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


def _issuer_kind(mode: str, partner_id: int, house_id: int) -> tuple[str, int]:
    if mode == "agency":
        return "collective", house_id
    if mode in PARTNER_PAID:
        return "statement", partner_id
    return "statement", house_id


def _pieces(session: Session, partner_id: int, account_id: int, start: date, end: date,
            has_modes: bool = True) -> list[Piece]:
    if not has_modes:
        return [Piece(start, end, DEFAULT_MODE)]
    return [Piece(a, b, m) for a, b, m in modes_in_period(session, partner_id, account_id, start, end)]


def _billable_accounts(session: Session, partner_id: int, start: date, end: date) -> list[tuple[int, str]]:
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
    return session.scalar(select(func.count()).select_from(PlanAssignment).where(
        PlanAssignment.partner_id == partner_id, PlanAssignment.subject == "partner",
        PlanAssignment.effective_from <= end)) > 0


def _accounts_with_modes(session: Session, partner_id: int, end: date) -> set[int]:
    return set(session.scalars(select(BillingMode.account_id).where(
        BillingMode.partner_id == partner_id, BillingMode.effective_from <= end).distinct()))


def plan_month(session: Session, actor: Actor, partner_id: int, month: str | date,
               data: MonthData | None = None) -> list[Key]:
    """Every statement the partner's month should have (in a stable order): customer statements by issuer,
    then the collective invoice when there are agency days or a partner-level plan."""
    authorize(actor, "billing.manage", partner_id)
    if data is not None:
        data.session = session
    start, end = month_period(month)
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    house_id = data.house_id if data else house_partner(session).id
    moded = set(data._modes) if data else _accounts_with_modes(session, partner_id, end)
    keys: list[Key] = []
    collective = False
    billable = data.accounts if data else _billable_accounts(session, partner_id, start, end)
    for account_id, _name in billable:
        seen: list[tuple[str, int]] = []
        pieces = data.pieces(account_id) if data else _pieces(session, partner_id, account_id, start, end,
                                                               account_id in moded)
        for p in pieces:
            ik = _issuer_kind(p.mode, partner_id, house_id)
            if ik not in seen:
                seen.append(ik)
        for kind, issuer in seen:
            if kind == "collective":
                collective = True
            else:
                keys.append(Key(partner_id, kind, issuer, account_id, start, end))
    partner_plan = (any(r.effective_from <= end for r in data._assignments.get(None, [])) if data
                    else _has_partner_plan(session, partner_id, end))
    if collective or partner_plan:
        keys.append(Key(partner_id, "collective", house_id, None, start, end))
    return keys


class MonthData(RatingSource):
    """A partner's month prefetched in a few queries (modes, plan assignments and versions, daily usage,
    settlement totals, branding), giving the same answers as the per-account queries. Used by the monthly
    run to compute drafts; finalisation always re-reads under the period lock instead."""

    def __init__(self, session: Session, partner_id: int, month: str | date):
        super().__init__(session)
        self.partner_id = partner_id
        self.start, self.end = month_period(month)
        self.house_id = house_partner(session).id
        self._branding: dict[int, Branding] = {}
        self.accounts = _billable_accounts(session, partner_id, self.start, self.end)
        self._modes: dict[int, list[tuple[date, str]]] = {}
        for r in session.execute(select(BillingMode.account_id, BillingMode.effective_from, BillingMode.mode).where(
                BillingMode.partner_id == partner_id, BillingMode.effective_from <= self.end)
                .order_by(BillingMode.account_id, BillingMode.effective_from)):
            self._modes.setdefault(r.account_id, []).append((r.effective_from, r.mode))
        self._assignments: dict[int | None, list] = {}
        for row in _all_assignments(session, partner_id):
            self._assignments.setdefault(row.account_id, []).append(row)
        self._versions: dict[tuple[int, int], list] = {}
        plans_used = {(a.plan_partner_id, a.plan_id) for rows in self._assignments.values() for a in rows}
        if plans_used:
            for v in session.scalars(select(PlanVersion).where(
                    tuple_(PlanVersion.partner_id, PlanVersion.plan_id).in_(list(plans_used)))
                    .order_by(PlanVersion.version)):
                self._versions.setdefault((v.partner_id, v.plan_id), []).append(v)
        self._metrics = get_metrics(session)
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

    def branding(self, partner_id: int) -> Branding:
        if partner_id not in self._branding:
            self._branding[partner_id] = branding(self.session, partner_id)
        return self._branding[partner_id]

    def pieces(self, account_id: int) -> list[Piece]:
        """The same split as core.billing.modes.modes_in_period, from the prefetched mode rows."""
        rows = self._modes.get(account_id, [])
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

    def assignments(self, partner_id: int, account_id: int | None) -> list:
        if partner_id != self.partner_id:
            return super().assignments(partner_id, account_id)
        by_day: dict[date, Any] = {}
        for r in self._assignments.get(account_id, []):
            by_day[r.effective_from] = r
        return sorted(by_day.values(), key=lambda r: r.effective_from)

    def versions(self, plan_partner_id: int, plan_id: int) -> list:
        got = self._versions.get((plan_partner_id, plan_id))
        return got if got is not None else super().versions(plan_partner_id, plan_id)

    def usage(self, partner_id: int, account_id: int, start: date, end: date) -> dict[str, Decimal]:
        if partner_id != self.partner_id or start < self.start or end > self.end:
            return super().usage(partner_id, account_id, start, end)
        out = {k: Decimal(0) for k in self._metrics}
        stats: dict[str, list] = {}
        for r in self._daily.get(account_id, []):
            if start <= r.day <= end:
                st = stats.setdefault(r.metric, [Decimal(0), 0, None, None])
                st[0] += r.qty_sum
                st[1] += r.events
                st[2] = r.qty_max if st[2] is None else max(st[2], r.qty_max)
                if st[3] is None or (r.last_at, r.last_event_id) > (st[3].last_at, st[3].last_event_id):
                    st[3] = r
        distinct: dict[str, set] = {}
        for r in self._distinct.get(account_id, []):
            if start <= r.day <= end:
                distinct.setdefault(r.metric, set()).add(r.value)
        for metric, (qsum, n, qmax, last) in stats.items():
            m = self._metrics.get(metric)
            if m is not None:
                out[metric] = usage.value_for(m.aggregation, qsum, n, qmax, last.last_qty,
                                              len(distinct.get(metric, ())))
        return out


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


# ---------------------------------------------------------------- settings (branding)


@dataclass(frozen=True)
class Branding:
    partner_id: int
    display_name: str
    address: str
    logo_text: str
    footer: str
    labels: dict
    language: str
    tax_rate: Decimal | None
    payment_terms_days: int
    number_prefix: str
    is_house: bool


def _default_prefix(partner: Partner) -> str:
    return (re.sub(r"[^A-Z0-9]", "", partner.slug.upper()) or f"P{partner.id}")[:8]


def branding(session: Session, partner_id: int) -> Branding:
    """The partner's statement settings with defaults filled in (internal: no actor)."""
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    row = session.get(StatementSettings, partner_id)
    return Branding(
        partner_id=partner_id,
        display_name=(row.display_name if row and row.display_name else partner.name),
        address=(row.address or "") if row else "",
        logo_text=(row.logo_text or "") if row else "",
        footer=(row.footer or "") if row else "",
        labels=dict(row.labels or {}) if row else {},
        language=row.language if row else "en",
        tax_rate=row.tax_rate if row else None,
        payment_terms_days=row.payment_terms_days if row else 14,
        number_prefix=(row.number_prefix if row and row.number_prefix else _default_prefix(partner)),
        is_house=partner.is_house,
    )


def get_settings(session: Session, actor: Actor, partner_id: int) -> Branding:
    authorize(actor, "partner.settings", partner_id)
    return branding(session, partner_id)


def save_settings(session: Session, actor: Actor, partner_id: int, *, display_name: str | None = None,
                  address: str | None = None, logo_text: str | None = None, footer: str | None = None,
                  labels_: dict | None = None, language: str = "en", tax_rate: Any = None,
                  payment_terms_days: Any = 14, number_prefix: str | None = None) -> Branding:
    """Save the partner's statement branding, language, default tax rate (percent), payment terms and number
    prefix. Bad input raises ValidationError with one message per field; nothing is written then."""
    authorize(actor, "partner.settings", partner_id)
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, raw in (("display_name", display_name), ("address", address), ("logo_text", logo_text),
                      ("footer", footer)):
        v = (raw or "").strip()
        if len(v) > MAX_TEXT[name]:
            errors[name] = f"At most {MAX_TEXT[name]} characters."
        values[name] = v or None
    if language not in LANGUAGES:
        errors["language"] = "Choose English, Deutsch or Norsk."
    values["language"] = language
    rate_v: Decimal | None = None
    if tax_rate is not None and str(tax_rate).strip() != "":
        try:
            rate_v = Decimal(str(tax_rate).strip().replace(",", ".").rstrip("%").strip())
            if not rate_v.is_finite() or rate_v < 0 or rate_v > 100 or rate_v != rate_v.quantize(Decimal("0.0001")):
                raise InvalidOperation
        except (InvalidOperation, ValueError):
            errors["tax_rate"] = "Enter a tax rate in percent between 0 and 100 (e.g. 25), or leave it empty."
            rate_v = None
    values["tax_rate"] = rate_v
    try:
        terms = int(str(payment_terms_days).strip())
        if not 0 <= terms <= 365:
            raise ValueError
    except (TypeError, ValueError):
        errors["payment_terms_days"] = "Enter the payment terms in days (0 to 365)."
        terms = 14
    values["payment_terms_days"] = terms
    prefix = (number_prefix or "").strip().upper() or None
    if prefix is not None and not re.fullmatch(r"[A-Z0-9]{1,12}", prefix):
        errors["number_prefix"] = "Use 1 to 12 letters A-Z or digits."
    values["number_prefix"] = prefix
    clean_labels: dict[str, str] = {}
    for k, v in (labels_ or {}).items():
        if k not in LABEL_KEYS:
            errors["labels"] = f"Unknown label {k!r}; known: {', '.join(LABEL_KEYS)}."
        elif v is not None and str(v).strip():
            if len(str(v)) > 200:
                errors["labels"] = f"Label {k!r}: at most 200 characters."
            clean_labels[k] = str(v).strip()
    values["labels"] = clean_labels
    if session.get(Partner, partner_id) is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    if errors:
        raise ValidationError(errors)
    before = branding(session, partner_id)
    row = session.get(StatementSettings, partner_id)
    if row is None:
        row = StatementSettings(partner_id=partner_id)
        session.add(row)
    for k, v in values.items():
        setattr(row, k, v)
    row.updated_by = actor.user_id or None
    row.updated_at = datetime.now(UTC)
    session.flush()
    after = branding(session, partner_id)
    b, a = audit.changes(_branding_dict(before), _branding_dict(after))
    audit.record(session, actor, partner_id=partner_id, action="update", entity="statement_settings",
                 entity_id=partner_id, before=b, after=a)
    return after


def _branding_dict(b: Branding) -> dict:
    return {"display_name": b.display_name, "address": b.address, "logo_text": b.logo_text, "footer": b.footer,
            "labels": b.labels, "language": b.language, "tax_rate": b.tax_rate,
            "payment_terms_days": b.payment_terms_days, "number_prefix": b.number_prefix}


# ---------------------------------------------------------------- computing a statement's content


@dataclass
class LineData:
    kind: str
    label: str
    amount: Decimal
    explanation: str = ""
    metric: str | None = None
    quantity: Decimal | None = None
    credits: Decimal | None = None
    mode: str | None = None
    section: str | None = None
    section_account_id: int | None = None
    # the engine's structured label / explanation (JSON form, see core.pricing.explain); kept in the snapshot so
    # a final statement can be rendered in any language. label / explanation hold the text in the statement's
    # language (what drafts show).
    label_parts: list | None = None
    explanation_parts: list | None = None

    def as_tuple(self) -> tuple:
        return (self.kind, self.label, str(self.amount), self.explanation, self.metric,
                None if self.quantity is None else str(self.quantity),
                None if self.credits is None else str(self.credits), self.mode, self.section,
                self.section_account_id)


@dataclass
class Content:
    currency: str
    language: str
    lines: list[LineData]
    modes: list[list[str]]
    tax_rate: Decimal | None
    credits_drawn: Decimal | None = None
    charged_on_demand: Decimal | None = None
    accounts: list[int] = field(default_factory=list)  # accounts whose usage is on it (period locks)

    @property
    def subtotal(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)

    @property
    def tax_amount(self) -> Decimal:
        if not self.tax_rate:
            return round_money(ZERO, self.currency)
        return round_money(self.subtotal * self.tax_rate / 100, self.currency)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount

    def fingerprint(self) -> str:
        payload = [self.currency, self.language, [ln.as_tuple() for ln in self.lines], self.modes,
                   str(self.tax_rate), str(self.credits_drawn), str(self.charged_on_demand)]
        return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def _line(ln: Line, pieces: list[Piece], language: str, **kw: Any) -> LineData:
    """A statement line from an engine line, its label and explanation in the statement's language."""
    mode = next((p.mode for p in pieces if ln.segment_start is not None and p.start <= ln.segment_start <= p.end),
                None)
    return LineData(kind=ln.kind, label=explain_label(ln, language), amount=ln.amount,
                    explanation=explain(ln, language), metric=ln.metric,
                    quantity=ln.quantity if (ln.metric or ln.kind == "usage") else None, credits=ln.credits,
                    mode=mode, label_parts=parts_to_json(ln.label_parts) or None,
                    explanation_parts=parts_to_json(ln.explanation_parts) or None, **kw)


def _rate_pieces(session: Session, partner_id: int, account_id: int | None, pieces: list[Piece], start: date,
                 end: date, source: RatingSource | None = None) -> tuple[str | None, list[Line]]:
    """Rate the days of `pieces` within the month [start, end]: fees are prorated by the days covered."""
    segs = []
    for p in pieces:
        segs += segments_for(session, partner_id, account_id, p.start, p.end, source=source)
    if not segs:
        return None, []
    r = rate(segs, start, end)
    return r.currency, list(r.lines)


def _period_ref_sum(session: Session, table: str, value: str, partner_id: int, account_id: int, start: date,
                    end: date, extra: str) -> Decimal:
    """Sum of a settlement column for the account's month: rows whose event_ref names the period, or (rows
    without a period reference) rows created within it."""
    t0 = datetime.combine(start, time.min, tzinfo=UTC)
    t1 = datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)
    got = session.execute(text(f"""
        SELECT coalesce(sum({value}), 0) FROM {table}
        WHERE partner_id = :p AND account_id = :a AND {extra}
          AND CASE WHEN event_ref ? 'period' THEN event_ref ->> 'period' = :ps
                   ELSE created_at >= :t0 AND created_at < :t1 END"""),
        {"p": partner_id, "a": account_id, "ps": start.isoformat(), "t0": t0, "t1": t1}).scalar_one()
    return Decimal(got)


def credits_drawn(session: Session, partner_id: int, account_id: int, start: date, end: date) -> Decimal:
    """Credits drawn from the partner's wallet for the account's usage of the month."""
    return _period_ref_sum(session, "wallet_ledger", "-credits", partner_id, account_id, start, end,
                           "kind = 'usage_draw'")


def charged_on_demand(session: Session, partner_id: int, account_id: int, start: date, end: date) -> Decimal:
    """Money charged to the partner's payment method for the account's usage of the month (approved)."""
    return _period_ref_sum(session, "payment_charges", "amount", partner_id, account_id, start, end,
                           "reason = 'usage_on_demand' AND status = 'approved'")


def _account_currency(session: Session, partner_id: int, account_id: int) -> str:
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None:
        raise NotFound(f"Customer account {account_id} does not exist.")
    return acc.currency


def _agency_accounts(session: Session, key: Key, data: MonthData | None = None) -> list[tuple[int, str, list[Piece]]]:
    if data is not None:
        moded, billable = set(data._modes), data.accounts
    else:
        moded = _accounts_with_modes(session, key.partner_id, key.period_end)
        billable = _billable_accounts(session, key.partner_id, key.period_start, key.period_end)
    out = []
    for account_id, name in billable:
        if account_id not in moded:
            continue
        all_pieces = (data.pieces(account_id) if data is not None else
                      _pieces(session, key.partner_id, account_id, key.period_start, key.period_end))
        pieces = [p for p in all_pieces if p.mode == "agency"]
        if pieces:
            out.append((account_id, name, pieces))
    return out


def involved_accounts(session: Session, key: Key) -> list[int]:
    """The accounts whose usage a statement prices (their periods are locked at finalisation)."""
    if key.kind == "statement":
        return [key.account_id] if key.account_id is not None else []
    return [a for a, _, _ in _agency_accounts(session, key)]


def compute(session: Session, key: Key, data: MonthData | None = None) -> Content | None:
    """What the statement for `key` contains now (None: nothing to bill under this key any more). `data`: the
    month prefetched (drafts of the monthly run); without it everything is read from the database."""
    start, end = key.period_start, key.period_end
    if data is not None and (data.partner_id, data.start) != (key.partner_id, start):
        data = None
    if data is not None:
        data.session = session  # anything not prefetched is read in the caller's transaction
    house_id = data.house_id if data else house_partner(session).id
    issuer = data.branding(key.issuer_partner_id) if data else branding(session, key.issuer_partner_id)
    if key.kind == "statement":
        assert key.account_id is not None
        all_pieces = data.pieces(key.account_id) if data else _pieces(session, key.partner_id, key.account_id,
                                                                       start, end)
        pieces = [p for p in all_pieces
                  if _issuer_kind(p.mode, key.partner_id, house_id) == (key.kind, key.issuer_partner_id)]
        if not pieces:
            return None
        currency, lines = _rate_pieces(session, key.partner_id, key.account_id, pieces, start, end, data)
        content = Content(currency=currency or _account_currency(session, key.partner_id, key.account_id),
                          language=issuer.language, lines=[_line(ln, pieces, issuer.language) for ln in lines],
                          modes=[[p.start.isoformat(), p.end.isoformat(), p.mode] for p in pieces],
                          tax_rate=issuer.tax_rate, accounts=[key.account_id])
        if any(p.mode == "partner_prepaid" for p in pieces):
            content.credits_drawn = (data.credits.get(key.account_id, ZERO) if data else
                                     credits_drawn(session, key.partner_id, key.account_id, start, end))
        if any(p.mode == "partner_on_demand" for p in pieces):
            content.charged_on_demand = (data.charges.get(key.account_id, ZERO) if data else
                                         charged_on_demand(session, key.partner_id, key.account_id, start, end))
        return content
    # collective invoice: one section per agency customer, then the partner-level fees
    partner = session.get(Partner, key.partner_id)
    assert partner is not None
    lines: list[LineData] = []
    modes: list[list[str]] = []
    accounts: list[int] = []
    for account_id, name, pieces in _agency_accounts(session, key, data):
        currency, rated = _rate_pieces(session, key.partner_id, account_id, pieces, start, end, data)
        if currency is not None and currency != partner.currency:
            raise Conflict(f"{name} is priced in {currency}, but {partner.name}'s collective invoice is in "
                           f"{partner.currency}: assign {name} a plan in {partner.currency}.")
        lines += [_line(ln, pieces, issuer.language, section=name, section_account_id=account_id) for ln in rated]
        modes += [[p.start.isoformat(), p.end.isoformat(), "agency", str(account_id)] for p in pieces]
        accounts.append(account_id)
    segs = segments_for(session, key.partner_id, None, start, end, source=data)
    if segs:
        r = rate(segs, start, end)
        if r.currency != partner.currency:
            raise Conflict(f"The partner plan is priced in {r.currency}, but the collective invoice is in "
                           f"{partner.currency}.")
        for ln in r.lines:
            d = _line(ln, [Piece(start, end, "partner")], issuer.language)
            d.kind = ln.kind if ln.kind in ("minimum", "discount") else "partner_fee"
            lines.append(d)
    if not accounts and not segs:
        return None
    return Content(currency=partner.currency, language=issuer.language, lines=lines, modes=modes,
                   tax_rate=issuer.tax_rate, accounts=accounts)


# ---------------------------------------------------------------- writing drafts


@dataclass(frozen=True)
class Outcome:
    key: Key
    action: str  # created | updated | unchanged | final | finalised | removed | nothing
    statement_id: int | None = None
    number: str | None = None
    total: Decimal | None = None


def _key_lock(session: Session, key: Key) -> None:
    h = hash((key.partner_id, key.kind, key.issuer_partner_id, key.account_id or 0, key.period_start.toordinal()))
    session.execute(text("SELECT pg_advisory_xact_lock(:ns, :k)"),
                    {"ns": ADVISORY_NS, "k": (h % 4_294_967_291) - 2_147_483_648})


def _live(session: Session, key: Key, *, lock: bool = False) -> Statement | None:
    q = select(Statement).where(
        Statement.partner_id == key.partner_id, Statement.kind == key.kind,
        Statement.issuer_partner_id == key.issuer_partner_id, Statement.period_start == key.period_start,
        Statement.status != "void")
    q = q.where(Statement.account_id == key.account_id) if key.account_id is not None else \
        q.where(Statement.account_id.is_(None))
    if lock:
        q = q.with_for_update()
    return session.scalar(q.execution_options(populate_existing=True))


def key_of(st: Statement) -> Key:
    return Key(st.partner_id, st.kind, st.issuer_partner_id, st.account_id, st.period_start, st.period_end)


def _write_lines(session: Session, st: Statement, lines: list[LineData], *, new: bool = False) -> None:
    if not new:
        session.execute(delete(StatementLine).where(StatementLine.partner_id == st.partner_id,
                                                    StatementLine.statement_id == st.id))
    if lines:
        session.execute(insert(StatementLine), [
            {"partner_id": st.partner_id, "statement_id": st.id, "line_no": i, "section": ln.section,
             "section_account_id": ln.section_account_id, "kind": ln.kind, "label": ln.label[:300],
             "metric": ln.metric, "quantity": ln.quantity, "amount": ln.amount, "explanation": ln.explanation,
             "credits": ln.credits, "mode": ln.mode} for i, ln in enumerate(lines, start=1)])


def _apply(st: Statement, c: Content) -> None:
    st.currency, st.language, st.modes = c.currency, c.language, c.modes
    st.subtotal, st.tax_rate, st.tax_amount, st.total = c.subtotal, c.tax_rate, c.tax_amount, c.total
    st.credits_drawn, st.charged_on_demand = c.credits_drawn, c.charged_on_demand
    st.fingerprint = c.fingerprint()
    st.updated_at = datetime.now(UTC)


def _summary(st: Statement) -> dict:
    return {"kind": st.kind, "status": st.status, "account_id": st.account_id, "issuer": st.issuer_partner_id,
            "period": st.period_start, "total": st.total, "currency": st.currency, "number": st.number}


def _upsert_draft(session: Session, actor: Actor, key: Key, content: Content | None,
                  existing: Statement | None) -> Outcome:
    if content is None:
        if existing is None:
            return Outcome(key, "nothing")
        audit.record(session, actor, partner_id=key.partner_id, action="delete", entity="statement",
                     entity_id=existing.id, account_id=key.account_id, before=_summary(existing))
        session.delete(existing)
        session.flush()
        return Outcome(key, "removed", existing.id)
    if existing is not None:
        if existing.fingerprint == content.fingerprint():
            return Outcome(key, "unchanged", existing.id, None, existing.total)
        before = _summary(existing)
        _apply(existing, content)
        session.flush()
        _write_lines(session, existing, content.lines)
        audit.record(session, actor, partner_id=key.partner_id, action="regenerate", entity="statement",
                     entity_id=existing.id, account_id=key.account_id, before=before, after=_summary(existing))
        return Outcome(key, "updated", existing.id, None, existing.total)
    st = Statement(partner_id=key.partner_id, kind=key.kind, status="draft", issuer_partner_id=key.issuer_partner_id,
                   account_id=key.account_id, period_start=key.period_start, period_end=key.period_end,
                   created_by=actor.user_id or None)
    _apply(st, content)
    session.add(st)
    session.flush()
    for hook in list(on_header_written):
        hook(session, st)
    _write_lines(session, st, content.lines, new=True)
    audit.record(session, actor, partner_id=key.partner_id, action="generate", entity="statement",
                 entity_id=st.id, account_id=key.account_id, after=_summary(st))
    return Outcome(key, "created", st.id, None, st.total)


def generate(session: Session, actor: Actor, key: Key, *, finalise: bool = False,
             data: MonthData | None = None) -> Outcome:
    """Create or recompute the draft for `key` (idempotent: an unchanged draft is not written; a final one is
    left alone). With finalise=True the draft is finalised in the same transaction, always from fresh reads
    under the period lock (`data`, a prefetched month, is only used for drafts)."""
    authorize(actor, "billing.manage", key.partner_id, key.account_id)
    _key_lock(session, key)
    existing = _live(session, key, lock=True)
    if existing is not None and existing.status == "final":
        return Outcome(key, "final", existing.id, existing.number, existing.total)
    if finalise:
        _authorize_issuer(actor, key.partner_id, key.issuer_partner_id)
        for account_id in involved_accounts(session, key):
            usage.lock_period(session, key.partner_id, account_id, key.period_start, key.period_end)
    content = compute(session, key, None if finalise else data)
    out = _upsert_draft(session, actor, key, content, existing)
    if finalise and out.statement_id is not None and out.action != "removed":
        st = _get(session, key.partner_id, out.statement_id, lock=True)
        _finalise_locked(session, actor, st, lines=content.lines if content else None)
        return Outcome(key, "finalised", st.id, st.number, st.total)
    return out


def regenerate(session: Session, actor: Actor, partner_id: int, statement_id: int) -> Outcome:
    """Recompute one draft from the current usage, plans and settings."""
    st = _get(session, partner_id, statement_id)
    if st.kind == "credit_note":
        raise Conflict("A credit note is not recomputed.")
    if st.status != "draft":
        raise Conflict(f"Statement {st.number} is {st.status}: only drafts are recomputed.")
    return generate(session, actor, key_of(st))


def generate_month(session: Session, actor: Actor, partner_id: int, month: str | date, *,
                   finalise: bool = False) -> list[Outcome]:
    """All of a partner's drafts for a month in this one transaction (the page's "Generate drafts");
    the CLI uses plan_month + generate, one transaction per statement."""
    authorize(actor, "billing.manage", partner_id)
    data = MonthData(session, partner_id, month)
    return [generate(session, actor, k, finalise=finalise, data=data)
            for k in plan_month(session, actor, partner_id, month, data)]


# ---------------------------------------------------------------- finalising and numbering


def _get(session: Session, partner_id: int, statement_id: int, *, lock: bool = False) -> Statement:
    q = select(Statement).where(Statement.partner_id == partner_id, Statement.id == statement_id)
    if lock:
        q = q.with_for_update()
    st = session.scalar(q.execution_options(populate_existing=True))
    if st is None:
        raise NotFound(f"Statement {statement_id} does not exist.")
    return st


def _authorize_issuer(actor: Actor, partner_id: int, issuer_partner_id: int) -> None:
    """Statements the platform issues to a partner's customers (or to the partner) are finalised, voided and
    credited by platform admins only; a partner finalises what it issues itself."""
    authorize(actor, "billing.manage", partner_id)
    if issuer_partner_id != partner_id and not actor.is_admin:
        raise PermissionDenied("Only the platform finalises, voids or credits the statements it issues.")


def _allocate(session: Session, issuer_id: int, series: str, prefix: str, year: int) -> tuple[int, str]:
    """The issuer's next number, under a row lock held to commit: concurrent finalisations queue here, and a
    rollback returns the number (no gaps). One unbroken sequence per issuer and series, across years."""
    session.execute(pg_insert(StatementSequence).values(partner_id=issuer_id, series=series, next_number=1)
                    .on_conflict_do_nothing(index_elements=["partner_id", "series"]))
    seq = session.execute(update(StatementSequence)
                          .where(StatementSequence.partner_id == issuer_id, StatementSequence.series == series)
                          .values(next_number=StatementSequence.next_number + 1)
                          .returning(StatementSequence.next_number - 1)).scalar_one()
    tag = "-CN" if series == "credit_note" else ""
    return seq, f"{prefix}{tag}-{year}-{seq:06d}"


def _party_account(session: Session, partner_id: int, account_id: int) -> dict:
    acc = session.get(CustomerAccount, (partner_id, account_id))
    assert acc is not None
    return {"name": acc.name, "contact": acc.contact_name or "", "address": acc.address or "",
            "country": acc.country, "vat_id": acc.vat_id or "", "email": acc.billing_email or acc.contact_email or ""}


def _party_partner(session: Session, partner_id: int) -> dict:
    b = branding(session, partner_id)
    p = session.get(Partner, partner_id)
    assert p is not None
    return {"name": b.display_name, "contact": "", "address": b.address, "country": p.country or "", "vat_id": "",
            "email": p.contact_email or ""}


def _issuer_block(b: Branding) -> dict:
    return {"partner_id": b.partner_id, "name": b.display_name, "address": b.address, "logo_text": b.logo_text,
            "footer": b.footer}


def _num(v: Decimal | None) -> str | None:
    """A quantity as a plain string without trailing zeros ('5250', '0.5')."""
    if v is None:
        return None
    v = Decimal(v)
    return f"{(v.quantize(Decimal(1)) if v == v.to_integral_value() else v.normalize()):f}"


def document_data(session: Session, st: Statement) -> dict:
    """Everything a rendering needs (issuer, addressee, labels, lines, totals, notes). For a final statement
    this is its snapshot; for a draft it is built from the current settings."""
    if st.snapshot is not None and st.status != "draft":
        return st.snapshot
    issuer = branding(session, st.issuer_partner_id)
    addressee = (_party_account(session, st.partner_id, st.account_id) if st.account_id is not None
                 else _party_partner(session, st.partner_id))
    lines = session.scalars(select(StatementLine).where(
        StatementLine.partner_id == st.partner_id, StatementLine.statement_id == st.id)
        .order_by(StatementLine.line_no)).all()
    payer = branding(session, st.partner_id).display_name
    original = None
    if st.credit_note_for is not None:
        orig = _get(session, st.partner_id, st.credit_note_for)
        original = orig.number
    return {
        "id": st.id, "partner_id": st.partner_id, "kind": st.kind, "status": st.status, "number": st.number,
        "currency": st.currency, "language": st.language,
        "period_start": st.period_start.isoformat(), "period_end": st.period_end.isoformat(),
        "issued_on": st.issued_on.isoformat() if st.issued_on else None,
        "due_on": st.due_on.isoformat() if st.due_on else None,
        "issuer": _issuer_block(issuer), "addressee": addressee, "payer": payer,
        "labels": labels(st.language, issuer.labels),
        "lines": [{"line_no": ln.line_no, "section": ln.section, "section_account_id": ln.section_account_id,
                   "kind": ln.kind, "label": ln.label, "metric": ln.metric,
                   "quantity": _num(ln.quantity), "amount": str(ln.amount),
                   "explanation": ln.explanation or "", "credits": _num(ln.credits),
                   "mode": ln.mode} for ln in lines],
        "modes": st.modes or [],
        "subtotal": str(st.subtotal), "tax_rate": None if st.tax_rate is None else str(st.tax_rate),
        "tax_amount": str(st.tax_amount), "total": str(st.total),
        "credits_drawn": _num(st.credits_drawn),
        "charged_on_demand": None if st.charged_on_demand is None else str(st.charged_on_demand),
        "credit_note_for": original, "reason": st.reason,
    }


def _keep_parts(snap: dict, lines: list[LineData] | None) -> None:
    """Store the engine's structured label / explanation of each line in the snapshot (same order as written)."""
    if not lines or len(lines) != len(snap.get("lines") or []):
        return
    for out, ln in zip(snap["lines"], lines, strict=True):
        if ln.label_parts:
            out["label_parts"] = ln.label_parts
        if ln.explanation_parts:
            out["explanation_parts"] = ln.explanation_parts


def _finalise_locked(session: Session, actor: Actor, st: Statement, *, today: date | None = None,
                     extra: dict | None = None, lines: list[LineData] | None = None) -> Statement:
    issuer = branding(session, st.issuer_partner_id)
    day = today or datetime.now(UTC).date()
    series = "credit_note" if st.kind == "credit_note" else "invoice"
    seq, number = _allocate(session, st.issuer_partner_id, series, issuer.number_prefix, day.year)
    session.add(StatementNumber(partner_id=st.issuer_partner_id, series=series, sequence=seq, number=number,
                                statement_partner_id=st.partner_id, statement_id=st.id))
    st.series, st.sequence, st.number = series, seq, number
    st.issued_on, st.due_on = day, day + timedelta(days=issuer.payment_terms_days)
    snap = document_data(session, st)
    snap["status"] = "final"
    _keep_parts(snap, lines)
    snap.update(extra or {})
    st.snapshot = json.loads(json.dumps(snap, default=str))
    st.status = "final"
    st.finalised_at, st.finalised_by = datetime.now(UTC), actor.user_id or None
    st.updated_at = datetime.now(UTC)
    session.flush()
    audit.record(session, actor, partner_id=st.partner_id, action="finalise", entity="statement", entity_id=st.id,
                 account_id=st.account_id, before={"status": "draft"}, after=_summary(st))
    return st


def finalise(session: Session, actor: Actor, partner_id: int, statement_id: int) -> Statement:
    """Finalise a draft: lock the usage period of the accounts it prices (late usage becomes a correction),
    recompute it under that lock, give it the issuer's next number and store the snapshot. Immutable after."""
    st = _get(session, partner_id, statement_id)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    if st.kind == "credit_note":
        raise Conflict("Credit notes are final when they are created.")
    if st.status != "draft":
        raise Conflict(f"Statement {st.number or st.id} is already {st.status}.")
    out = generate(session, actor, key_of(st), finalise=True)
    if out.action != "finalised":
        raise Conflict("There is nothing to bill for this statement any more; it was removed.")
    return _get(session, partner_id, out.statement_id)  # type: ignore[arg-type]


# ---------------------------------------------------------------- void and credit notes


def _credited_so_far(session: Session, st: Statement) -> dict[int, Decimal]:
    """Original line number -> amount already credited by earlier credit notes."""
    out: dict[int, Decimal] = {}
    for snap in session.scalars(select(Statement.snapshot).where(
            Statement.partner_id == st.partner_id, Statement.credit_note_for == st.id)):
        for no, amount in (snap or {}).get("credited_lines", {}).items():
            out[int(no)] = out.get(int(no), ZERO) + Decimal(amount)
    return out


def create_credit_note(session: Session, actor: Actor, partner_id: int, statement_id: int, reason: str,
                       line_nos: Iterable[int] | None = None) -> Statement:
    """Credit a final statement, fully (all lines not yet credited) or by lines, with a reason. The credit note
    is final at once, numbered in the issuer's credit-note series, with the original's tax rate."""
    st = _get(session, partner_id, statement_id, lock=True)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    reason = (reason or "").strip()
    errors: dict[str, str] = {}
    if not reason:
        errors["reason"] = "Give the reason for the credit note."
    elif len(reason) > 1000:
        errors["reason"] = "At most 1000 characters."
    if st.kind == "credit_note":
        raise Conflict("A credit note cannot be credited.")
    if st.status != "final":
        raise Conflict(f"Only final statements are credited; this one is {st.status}.")
    lines = session.scalars(select(StatementLine).where(
        StatementLine.partner_id == partner_id, StatementLine.statement_id == st.id)
        .order_by(StatementLine.line_no)).all()
    done = _credited_so_far(session, st)
    open_lines = {ln.line_no: ln for ln in lines if ln.amount - done.get(ln.line_no, ZERO) != 0}
    wanted = sorted(set(line_nos)) if line_nos is not None else sorted(open_lines)
    bad = [n for n in wanted if n not in open_lines]
    if bad:
        errors["lines"] = f"Line(s) {', '.join(map(str, bad))} do not exist or are already credited."
    elif not wanted:
        errors["lines"] = "Choose at least one line to credit (nothing is left to credit)."
    if errors:
        raise ValidationError(errors)
    credit_lines = []
    orig_parts = {int(x["line_no"]): x for x in (st.snapshot or {}).get("lines", []) if "line_no" in x}
    for n in wanted:
        ln = open_lines[n]
        left = ln.amount - done.get(n, ZERO)
        snap_line = orig_parts.get(n, {})
        credit_lines.append(LineData(kind="credit", label=ln.label, amount=-left, explanation=ln.explanation or "",
                                     metric=ln.metric, quantity=ln.quantity, credits=ln.credits, mode=ln.mode,
                                     section=ln.section, section_account_id=ln.section_account_id,
                                     label_parts=snap_line.get("label_parts"),
                                     explanation_parts=snap_line.get("explanation_parts")))
    content = Content(currency=st.currency, language=st.language, lines=credit_lines, modes=st.modes or [],
                      tax_rate=st.tax_rate)
    cn = Statement(partner_id=partner_id, kind="credit_note", status="draft", issuer_partner_id=st.issuer_partner_id,
                   account_id=st.account_id, period_start=st.period_start, period_end=st.period_end,
                   credit_note_for=st.id, reason=reason, created_by=actor.user_id or None)
    _apply(cn, content)
    session.add(cn)
    session.flush()
    _write_lines(session, cn, credit_lines, new=True)
    session.flush()
    credited = {str(n): str(open_lines[n].amount - done.get(n, ZERO)) for n in wanted}
    _finalise_locked(session, actor, cn, extra={"credited_lines": credited, "credit_note_for": st.number},
                     lines=credit_lines)
    return cn


def void(session: Session, actor: Actor, partner_id: int, statement_id: int, reason: str = "") -> Statement:
    """Void a draft (it is dropped from the month; generate makes a new one), or a final statement together
    with a full credit note for what is not yet credited (the reason is required then)."""
    st = _get(session, partner_id, statement_id, lock=True)
    _authorize_issuer(actor, partner_id, st.issuer_partner_id)
    if st.kind == "credit_note":
        raise Conflict("A credit note cannot be voided.")
    if st.status == "void":
        raise Conflict("This statement is already void.")
    reason = (reason or "").strip()
    if st.status == "final":
        if not reason:
            raise ValidationError({"reason": "Give the reason: voiding a final statement issues a credit note."})
        done = _credited_so_far(session, st)
        amounts = session.execute(select(StatementLine.line_no, StatementLine.amount).where(
            StatementLine.partner_id == partner_id, StatementLine.statement_id == st.id)).all()
        if any(a - done.get(n, ZERO) != 0 for n, a in amounts):
            create_credit_note(session, actor, partner_id, statement_id, reason)
    before = _summary(st)
    st.status, st.voided_at, st.voided_by = "void", datetime.now(UTC), actor.user_id or None
    st.void_reason = reason or None
    st.updated_at = datetime.now(UTC)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="void", entity="statement", entity_id=st.id,
                 account_id=st.account_id, before=before, after={"status": "void", "reason": reason})
    return st


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class StatementRow:
    id: int
    partner_id: int
    kind: str
    status: str
    number: str | None
    account_id: int | None
    addressee: str
    issuer: str
    issuer_partner_id: int
    period_start: date
    period_end: date
    currency: str
    total: Decimal
    credits_drawn: Decimal | None
    credit_note_for: int | None
    modes: list


def _visible(actor: Actor, st_partner: int, account_id: int | None, status: str) -> bool:
    if not allowed(actor, "statement.view", st_partner, account_id):
        return False
    if actor.is_staff:
        return True
    return account_id is not None and account_id == actor.account_id and status == "final"


def list_statements(session: Session, actor: Actor, partner_id: int, *, month: str | date | None = None,
                    status: str | None = None, account_id: int | None = None,
                    kind: str | None = None) -> list[StatementRow]:
    """The tenant's statements (staff), or the actor's own account's final statements (Manager)."""
    if not actor.is_staff:
        account_id = actor.account_id
    authorize(actor, "statement.view", partner_id, account_id)
    q = select(Statement).where(Statement.partner_id == partner_id)
    if month is not None:
        q = q.where(Statement.period_start == month_period(month)[0])
    if status:
        q = q.where(Statement.status == status)
    if kind:
        q = q.where(Statement.kind == kind)
    if account_id is not None:
        q = q.where(Statement.account_id == account_id)
    if not actor.is_staff:
        q = q.where(Statement.status == "final")
    rows = session.scalars(q.order_by(Statement.period_start.desc(), Statement.kind, Statement.account_id,
                                      Statement.id)).all()
    names = dict(session.execute(select(CustomerAccount.id, CustomerAccount.name).where(
        CustomerAccount.partner_id == partner_id)).all())
    issuers: dict[int, str] = {}
    partner_name = branding(session, partner_id).display_name
    out = []
    for st in rows:
        if st.issuer_partner_id not in issuers:
            issuers[st.issuer_partner_id] = branding(session, st.issuer_partner_id).display_name
        out.append(StatementRow(st.id, st.partner_id, st.kind, st.status, st.number, st.account_id,
                                names.get(st.account_id, "?") if st.account_id is not None else partner_name,
                                issuers[st.issuer_partner_id], st.issuer_partner_id, st.period_start, st.period_end,
                                st.currency, st.total, st.credits_drawn, st.credit_note_for, st.modes or []))
    return out


def get_statement(session: Session, actor: Actor, partner_id: int, statement_id: int) -> dict:
    """The statement as a document (see document_data), if the actor may see it."""
    st = _get(session, partner_id, statement_id)
    authorize(actor, "statement.view", partner_id, st.account_id)
    if not _visible(actor, partner_id, st.account_id, st.status):
        raise NotFound(f"Statement {statement_id} does not exist.")
    doc = dict(document_data(session, st))
    doc["status"] = st.status
    doc["void_reason"] = st.void_reason
    return doc


def credit_notes_of(session: Session, actor: Actor, partner_id: int, statement_id: int) -> list[StatementRow]:
    st = _get(session, partner_id, statement_id)
    return [r for r in list_statements(session, actor, partner_id, account_id=st.account_id, kind="credit_note")
            if r.credit_note_for == statement_id]


# ---------------------------------------------------------------- exports


def export_pdf(session: Session, actor: Actor, partner_id: int, statement_id: int) -> bytes:
    return render_pdf(get_statement(session, actor, partner_id, statement_id))


def export_csv(session: Session, actor: Actor, partner_id: int, statement_id: int) -> str:
    return render_csv([get_statement(session, actor, partner_id, statement_id)])


def export_month_csv(session: Session, actor: Actor, partner_id: int, month: str | date) -> str:
    """Every statement of the partner's month that the actor may see (void ones included, marked), as one
    CSV with one row per line."""
    rows = list_statements(session, actor, partner_id, month=month)
    return render_csv([get_statement(session, actor, partner_id, r.id) for r in rows])


def mode_label(mode: str | None) -> str:
    return MODE_LABELS.get(mode or "", mode or "")


def may_issue(actor: Actor, partner_id: int, issuer_partner_id: int) -> bool:
    """Whether the actor may finalise, void and credit a statement of this issuer (pages mirror the check)."""
    return allowed(actor, "billing.manage", partner_id) and (actor.is_admin or issuer_partner_id == partner_id)


def parse_label_overrides(text_: str | None) -> dict[str, str]:
    """Label overrides typed as lines `key = text` (e.g. `total = Amount due`); blank lines and # comments
    are skipped. Unknown keys are refused by save_settings with the list of known ones."""
    out: dict[str, str] = {}
    for raw in (text_ or "").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ValidationError({"labels": f"Write each label as `key = text`: {line!r}."})
        k, v = line.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def recent_months(today: date | None = None, count: int = 13) -> list[str]:
    """'YYYY-MM' of the current month and the `count - 1` before it, newest first."""
    day = today or datetime.now(UTC).date()
    y, m = day.year, day.month
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out
