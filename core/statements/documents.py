"""A statement as a document: everything a rendering needs (issuer, addressee, labels, lines, totals, notes)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.statements.i18n import labels
from core.statements.settings import Branding, branding
from db.models import CustomerAccount, Partner
from db.models.statements import Statement, StatementLine


def fetch(session: Session, partner_id: int, statement_id: int, *, lock: bool = False) -> Statement:
    q = select(Statement).where(Statement.partner_id == partner_id, Statement.id == statement_id)
    if lock:
        q = q.with_for_update()
    st = session.scalar(q.execution_options(populate_existing=True))
    if st is None:
        raise NotFound(f"Statement {statement_id} does not exist.")
    return st


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
        orig = fetch(session, st.partner_id, st.credit_note_for)
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
