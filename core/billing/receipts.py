"""Receipts from the platform (house partner, its statement settings) to the partner.

- Credit purchases: one receipt per credited purchase, numbered `CR-{year}-{n:06d}`.
- On-demand usage charges (issue 10): one receipt per approved charge of a partner-paid client's usage (the
  rate card's amount charged to the partner's payment method), numbered `OD-{year}-{n:06d}`, written in the
  charging transaction (core.billing.modes).

Each series is unbroken per year (the sequence row is locked until commit, so a rolled-back charge leaves no
gap). Prices include the issuer's tax: a receipt shows the net amount and the tax contained in the total
that was charged. The PDF is drawn with fpdf2 like the statements (core.statements.render), in a small
one-page layout.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from fpdf import FPDF
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import NotFound
from core.pricing.money import format_money, format_quantity, round_money
from db.models import CustomerAccount, Partner
from db.models.statements import StatementSettings
from db.models.wallet import (
    ChargeReceipt,
    ChargeReceiptSequence,
    CreditReceipt,
    CreditReceiptSequence,
    PaymentCharge,
)

R = CreditReceipt.__table__
SEQ = CreditReceiptSequence.__table__
OD = ChargeReceipt.__table__
OD_SEQ = ChargeReceiptSequence.__table__


@dataclass(frozen=True)
class Issuer:
    name: str
    address: str
    tax_rate: Decimal | None


def _platform_issuer(session: Session) -> Issuer:
    house = session.scalar(select(Partner).where(Partner.is_house))
    if house is None:
        return Issuer("Platform", "", None)
    st = session.get(StatementSettings, house.id)
    return Issuer((st.display_name if st and st.display_name else house.name), (st.address or "") if st else "",
                  st.tax_rate if st else None)


def split_tax(total: Decimal, rate: Decimal | None, currency: str) -> tuple[Decimal, Decimal]:
    """(net, tax) contained in a tax-inclusive `total`."""
    if not rate:
        return total, Decimal(0)
    net = round_money(total * 100 / (100 + rate), currency)
    return net, total - net


def issue_receipt(session: Session, intent: Any, entry_id: int, today: date) -> str:
    """Number and store the receipt of a credited purchase intent (in the crediting transaction)."""
    number = session.execute(pg_insert(SEQ).values(year=today.year, last=1).on_conflict_do_update(
        index_elements=["year"], set_={"last": SEQ.c.last + 1}).returning(SEQ.c.last)).scalar_one()
    issuer = _platform_issuer(session)
    net, tax = split_tax(intent.amount, issuer.tax_rate, intent.currency)
    text_number = f"CR-{today.year}-{number:06d}"
    session.execute(R.insert().values(
        partner_id=intent.partner_id, number=text_number, intent_id=intent.id, entry_id=entry_id, issued_on=today,
        credits=intent.credits, price_per_credit=intent.price_per_credit, net_amount=net, tax_rate=issuer.tax_rate,
        tax_amount=tax, total=intent.amount, currency=intent.currency, issuer_name=issuer.name[:200],
        issuer_address=issuer.address or None))
    return text_number


def list_receipts(session: Session, actor: Actor, partner_id: int, limit: int = 100) -> list[CreditReceipt]:
    authorize(actor, "wallet.view", partner_id)
    return list(session.scalars(select(CreditReceipt).where(CreditReceipt.partner_id == partner_id)
                                .order_by(CreditReceipt.id.desc()).limit(min(limit, 500))))


def _latin(text: object) -> str:
    """Latin-1 safe text for the PDF core font (the statements do the same when DejaVu is missing)."""
    s = str(text or "").replace("€", "EUR").replace("–", "-").replace("•", "*")
    return "".join(ch if ch.encode("latin-1", "ignore") else
                   (unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?") for ch in s)


def _pdf(title: str, issuer_name: str, issuer_address: str | None, rows: list[tuple[str, str]],
         note: str) -> bytes:
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(_latin(title))
    pdf.set_author(_latin(issuer_name))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _latin(issuer_name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in (issuer_address or "").splitlines():
        pdf.cell(0, 4.5, _latin(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(0, 8, _latin(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    for label, value in rows:
        pdf.cell(45, 6, _latin(label))
        pdf.cell(0, 6, _latin(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    pdf.multi_cell(0, 4, _latin(note))
    return bytes(pdf.output())


def _money_rows(net: Decimal, tax_rate: Decimal | None, tax: Decimal, total: Decimal, currency: str
                ) -> list[tuple[str, str]]:
    rows = [("Net", format_money(net, currency))]
    if tax_rate:
        rows.append((f"Tax {format_quantity(tax_rate)} %", format_money(tax, currency)))
    rows.append(("Total paid", format_money(total, currency)))
    return rows


def receipt_pdf(session: Session, actor: Actor, partner_id: int, receipt_id: int) -> bytes:
    """The receipt as a one-page A4 PDF."""
    authorize(actor, "wallet.view", partner_id)
    rc = session.get(CreditReceipt, (partner_id, receipt_id))
    if rc is None:
        raise NotFound(f"Receipt {receipt_id} does not exist.")
    partner = session.get(Partner, partner_id)
    rows = [("Issued", rc.issued_on.isoformat()), ("To", partner.name if partner else str(partner_id)),
            ("Credits", f"{format_quantity(rc.credits)} at {rc.price_per_credit.normalize()} {rc.currency} each"),
            *_money_rows(rc.net_amount, rc.tax_rate, rc.tax_amount, rc.total, rc.currency)]
    return _pdf(f"Receipt {rc.number}", rc.issuer_name, rc.issuer_address, rows,
                "Prepaid credits for usage on the platform. Prices include tax.")


# ---------------------------------------------------------------- on-demand usage charges (issue 10)


def issue_charge_receipt(session: Session, charge: PaymentCharge, today: date) -> str:
    """Number and store the receipt of an approved on-demand usage charge (in the charging transaction).
    Internal: called by core.billing.modes right after the gateway approved the charge."""
    number = session.execute(pg_insert(OD_SEQ).values(year=today.year, last=1).on_conflict_do_update(
        index_elements=["year"], set_={"last": OD_SEQ.c.last + 1}).returning(OD_SEQ.c.last)).scalar_one()
    issuer = _platform_issuer(session)
    net, tax = split_tax(charge.amount, issuer.tax_rate, charge.currency)
    text_number = f"OD-{today.year}-{number:06d}"
    session.execute(OD.insert().values(
        partner_id=charge.partner_id, number=text_number, charge_id=charge.id, account_id=charge.account_id,
        issued_on=today, credits=charge.credits, net_amount=net, tax_rate=issuer.tax_rate, tax_amount=tax,
        total=charge.amount, currency=charge.currency, issuer_name=issuer.name[:200],
        issuer_address=issuer.address or None))
    return text_number


@dataclass(frozen=True)
class ChargeReceiptRow:
    id: int
    number: str
    issued_on: date
    customer: str | None
    total: Decimal
    currency: str


def list_charge_receipts(session: Session, actor: Actor, partner_id: int, limit: int = 100
                         ) -> list[ChargeReceiptRow]:
    """The partner's receipts for on-demand charges, newest first (platform admins, the partner's staff)."""
    authorize(actor, "margin.view", partner_id)
    q = (select(ChargeReceipt, CustomerAccount.name).outerjoin(
        CustomerAccount, (CustomerAccount.partner_id == ChargeReceipt.partner_id)
        & (CustomerAccount.id == ChargeReceipt.account_id))
        .where(ChargeReceipt.partner_id == partner_id).order_by(ChargeReceipt.id.desc()).limit(min(limit, 500)))
    return [ChargeReceiptRow(r.id, r.number, r.issued_on, name, r.total, r.currency)
            for r, name in session.execute(q)]


def charge_receipt_pdf(session: Session, actor: Actor, partner_id: int, receipt_id: int) -> bytes:
    """An on-demand charge's receipt as a one-page A4 PDF."""
    authorize(actor, "margin.view", partner_id)
    rc = session.get(ChargeReceipt, (partner_id, receipt_id))
    if rc is None:
        raise NotFound(f"Receipt {receipt_id} does not exist.")
    partner = session.get(Partner, partner_id)
    client = session.get(CustomerAccount, (partner_id, rc.account_id)) if rc.account_id is not None else None
    rows = [("Issued", rc.issued_on.isoformat()), ("To", partner.name if partner else str(partner_id))]
    if client is not None:
        rows.append(("Usage of", client.name))
    if rc.credits:
        rows.append(("Credits", format_quantity(rc.credits)))
    rows += _money_rows(rc.net_amount, rc.tax_rate, rc.tax_amount, rc.total, rc.currency)
    return _pdf(f"Receipt {rc.number}", rc.issuer_name, rc.issuer_address, rows,
                "Usage charged on demand at your rate card, to your payment method. Prices include tax.")
