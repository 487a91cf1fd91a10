"""Reading statements: the list, one statement as a document, its PDF and CSV exports, and small helpers the
statements page mirrors (mode labels, who may issue, recent months)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts.actor import Actor
from core.accounts.permissions import allowed, authorize
from core.billing.modes import MODE_LABELS
from core.errors import NotFound
from core.statements.documents import StatementDocument, document, fetch
from core.statements.planning import month_period
from core.statements.render import render_csv, render_pdf
from core.statements.settings import branding
from db.models import CustomerAccount
from db.models.statements import Statement


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


def latest_month(session: Session, actor: Actor, partner_id: int) -> str | None:
    """'YYYY-MM' of the newest month that has a statement the actor may see (a Manager: a final one of their
    own account), or None: the statements page opens there."""
    account_id = None if actor.is_staff else actor.account_id
    authorize(actor, "statement.view", partner_id, account_id)
    q = select(func.max(Statement.period_start)).where(Statement.partner_id == partner_id)
    if not actor.is_staff:
        q = q.where(Statement.account_id == account_id, Statement.status == "final")
    day = session.scalar(q)
    return None if day is None else f"{day.year:04d}-{day.month:02d}"


def get_statement(session: Session, actor: Actor, partner_id: int, statement_id: int) -> StatementDocument:
    """The statement as a document (amounts as Decimals), if the actor may see it."""
    st = fetch(session, partner_id, statement_id)
    authorize(actor, "statement.view", partner_id, st.account_id)
    if not _visible(actor, partner_id, st.account_id, st.status):
        raise NotFound(f"Statement {statement_id} does not exist.")
    return document(session, st)


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


def recent_months(today: date | None = None, count: int = 13) -> list[str]:
    """'YYYY-MM' of the current month and the `count - 1` before it, newest first."""
    day = today or clock.today()
    y, m = day.year, day.month
    out = []
    for _ in range(count):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out
