"""A statement as a document: everything a rendering needs (issuer, addressee, labels, lines, totals, notes),
as frozen dataclasses with Decimal amounts and dates (StatementDocument).

A final statement's document is its snapshot (JSON, stored at finalisation, so it never changes); a draft's is
built from the current rows and settings. StatementDocument.to_json / from_json are the one snapshot format.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import NotFound
from core.statements.i18n import labels
from core.statements.settings import branding
from db.models import CustomerAccount, Partner
from db.models.statements import Statement, StatementLine


@dataclass(frozen=True)
class Party:
    """Who a statement is addressed to."""

    name: str
    contact: str = ""
    address: str = ""
    country: str = ""
    vat_id: str = ""
    email: str = ""


@dataclass(frozen=True)
class Issuer:
    """Who issues a statement, in its branding."""

    partner_id: int
    name: str
    address: str = ""
    logo_text: str = ""
    footer: str = ""
    vat_id: str = ""  # older snapshots have neither: empty
    country: str = ""


@dataclass(frozen=True)
class DocumentLine:
    line_no: int
    kind: str
    label: str
    amount: Decimal
    quantity: Decimal | None = None
    credits: Decimal | None = None
    metric: str | None = None
    mode: str | None = None
    section: str | None = None
    section_account_id: int | None = None
    explanation: str = ""
    # the engine's structured label / explanation (JSON form, see core.pricing.explain), kept by final statements
    # so that they render in any language; None on drafts and older snapshots (label / explanation are used)
    label_parts: list | None = None
    explanation_parts: list | None = None


@dataclass(frozen=True)
class StatementDocument:
    id: int
    partner_id: int
    kind: str  # statement | collective | credit_note
    status: str  # draft | final | void
    number: str | None
    currency: str
    language: str
    period_start: date
    period_end: date
    issued_on: date | None
    due_on: date | None
    issuer: Issuer
    addressee: Party
    payer: str
    labels: Mapping[str, str]
    lines: tuple[DocumentLine, ...]
    modes: tuple[tuple[str, ...], ...]  # (from, to, mode[, agency account id]) ISO dates
    subtotal: Decimal
    tax_rate: Decimal | None
    tax_amount: Decimal
    total: Decimal
    credits_drawn: Decimal | None = None
    charged_on_demand: Decimal | None = None
    credit_note_for: str | None = None  # the credited statement's number
    reason: str | None = None
    void_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # other snapshot keys (credited_lines), verbatim

    def to_json(self) -> dict[str, Any]:
        """The snapshot form: JSON-safe plain values, amounts as exact decimal strings."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(
            period_start=self.period_start.isoformat(), period_end=self.period_end.isoformat(),
            issued_on=_iso(self.issued_on), due_on=_iso(self.due_on), issuer=asdict(self.issuer),
            addressee=asdict(self.addressee), labels=dict(self.labels), modes=[list(m) for m in self.modes],
            lines=[_line_json(ln) for ln in self.lines], subtotal=str(self.subtotal),
            tax_rate=_str(self.tax_rate), tax_amount=str(self.tax_amount), total=str(self.total),
            credits_drawn=num(self.credits_drawn), charged_on_demand=_str(self.charged_on_demand))
        if self.void_reason is None:
            del out["void_reason"]
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StatementDocument:
        known = {f.name for f in fields(cls)}
        return cls(
            id=d["id"], partner_id=d["partner_id"], kind=d["kind"], status=d["status"], number=d.get("number"),
            currency=d["currency"], language=d.get("language") or "en",
            period_start=date.fromisoformat(d["period_start"]), period_end=date.fromisoformat(d["period_end"]),
            issued_on=_date(d.get("issued_on")), due_on=_date(d.get("due_on")),
            issuer=Issuer(**d["issuer"]), addressee=Party(**d["addressee"]), payer=d.get("payer") or "",
            labels=dict(d.get("labels") or labels(d.get("language") or "en")),
            lines=tuple(_line(x) for x in d.get("lines") or ()),
            modes=tuple(tuple(m) for m in d.get("modes") or ()),
            subtotal=Decimal(d["subtotal"]), tax_rate=_dec(d.get("tax_rate")), tax_amount=Decimal(d["tax_amount"]),
            total=Decimal(d["total"]), credits_drawn=_dec(d.get("credits_drawn")),
            charged_on_demand=_dec(d.get("charged_on_demand")), credit_note_for=d.get("credit_note_for"),
            reason=d.get("reason"), void_reason=d.get("void_reason"),
            extra={k: v for k, v in d.items() if k not in known})


def _line_json(ln: DocumentLine) -> dict[str, Any]:
    out = asdict(ln)
    out.update(amount=str(ln.amount), quantity=num(ln.quantity), credits=num(ln.credits))
    for k in ("label_parts", "explanation_parts"):
        if out[k] is None:
            del out[k]
    return out


def _line(d: Mapping[str, Any]) -> DocumentLine:
    return DocumentLine(
        line_no=d["line_no"], kind=d["kind"], label=d.get("label") or "", amount=Decimal(d["amount"]),
        quantity=_dec(d.get("quantity")), credits=_dec(d.get("credits")), metric=d.get("metric"),
        mode=d.get("mode"), section=d.get("section"), section_account_id=d.get("section_account_id"),
        explanation=d.get("explanation") or "", label_parts=d.get("label_parts"),
        explanation_parts=d.get("explanation_parts"))


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _date(s: str | None) -> date | None:
    return date.fromisoformat(s) if s else None


def _dec(s: Any) -> Decimal | None:
    return None if s in (None, "") else Decimal(s)


def _str(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def num(v: Decimal | None) -> str | None:
    """A quantity as a plain string without trailing zeros ('5250', '0.5')."""
    if v is None:
        return None
    v = Decimal(v)
    return f"{(v.quantize(Decimal(1)) if v == v.to_integral_value() else v.normalize()):f}"


def fetch(session: Session, partner_id: int, statement_id: int, *, lock: bool = False) -> Statement:
    q = select(Statement).where(Statement.partner_id == partner_id, Statement.id == statement_id)
    if lock:
        q = q.with_for_update()
    st = session.scalar(q.execution_options(populate_existing=True))
    if st is None:
        raise NotFound(f"Statement {statement_id} does not exist.")
    return st


def _party_account(session: Session, partner_id: int, account_id: int) -> Party:
    acc = session.get(CustomerAccount, (partner_id, account_id))
    assert acc is not None
    return Party(name=acc.name, contact=acc.contact_name or "", address=acc.address or "", country=acc.country,
                 vat_id=acc.vat_id or "", email=acc.billing_email or acc.contact_email or "")


def _party_partner(session: Session, partner_id: int) -> Party:
    b = branding(session, partner_id)
    p = session.get(Partner, partner_id)
    assert p is not None
    return Party(name=b.display_name, address=b.address, country=p.country or "", vat_id=b.vat_id,
                 email=p.contact_email or "")


def _country(session: Session, partner_id: int) -> str:
    p = session.get(Partner, partner_id)
    return (p.country or "") if p is not None else ""


def build_document(session: Session, st: Statement) -> StatementDocument:
    """The document of a statement from its current rows and the issuer's current settings (a draft's
    document, and what finalisation snapshots)."""
    issuer = branding(session, st.issuer_partner_id)
    addressee = (_party_account(session, st.partner_id, st.account_id) if st.account_id is not None
                 else _party_partner(session, st.partner_id))
    rows = session.scalars(select(StatementLine).where(
        StatementLine.partner_id == st.partner_id, StatementLine.statement_id == st.id)
        .order_by(StatementLine.line_no)).all()
    original = fetch(session, st.partner_id, st.credit_note_for).number if st.credit_note_for is not None else None
    lines = tuple(DocumentLine(
        line_no=ln.line_no, kind=ln.kind, label=ln.label, amount=ln.amount, quantity=ln.quantity,
        credits=ln.credits, metric=ln.metric, mode=ln.mode, section=ln.section,
        section_account_id=ln.section_account_id, explanation=ln.explanation or "") for ln in rows)
    return StatementDocument(
        id=st.id, partner_id=st.partner_id, kind=st.kind, status=st.status, number=st.number,
        currency=st.currency, language=st.language, period_start=st.period_start, period_end=st.period_end,
        issued_on=st.issued_on, due_on=st.due_on,
        issuer=Issuer(issuer.partner_id, issuer.display_name, issuer.address, issuer.logo_text, issuer.footer,
                      issuer.vat_id, _country(session, st.issuer_partner_id)),
        addressee=addressee, payer=branding(session, st.partner_id).display_name,
        labels=labels(st.language, issuer.labels), lines=lines,
        modes=tuple(tuple(m) for m in st.modes or ()), subtotal=st.subtotal, tax_rate=st.tax_rate,
        tax_amount=st.tax_amount, total=st.total, credits_drawn=st.credits_drawn,
        charged_on_demand=st.charged_on_demand, credit_note_for=original, reason=st.reason)


def document(session: Session, st: Statement) -> StatementDocument:
    """The statement's document (internal: no actor), with its current status and void reason: a final (or
    void) statement renders from its snapshot, a draft from the current settings."""
    if st.snapshot is not None and st.status != "draft":
        doc = StatementDocument.from_json(st.snapshot)
    else:
        doc = build_document(session, st)
    return replace(doc, status=st.status, void_reason=st.void_reason)
