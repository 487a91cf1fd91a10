"""Rendering a statement document (core.statements.documents.StatementDocument) as an A4 PDF (fpdf2) and as CSV.

Pure functions of the document: a final statement renders from its snapshot, so its PDF never changes.
The PDF uses DejaVu Sans when the font is installed (every character: ø, €, ×, –); otherwise the PDF core
font with a safe transliteration (€ -> EUR, – -> -, ...), never a crash.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF

from core.export import csv_text
from core.pricing.money import round_money
from core.statements.documents import DocumentLine, StatementDocument, num
from core.statements.i18n import (
    country_name,
    format_date,
    format_period,
    format_qty,
    line_explanation,
    line_label,
    money,
)

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts/dejavu"))
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}

_TRANSLIT = {"€": "EUR", "–": "-", "—": "-", "→": "->", "…": "...", "“": '"', "”": '"', "‘": "'", "’": "'",
             "•": "*", "\u00a0": " ", "\u202f": " ", "≥": ">=", "≤": "<="}

CSV_COLUMNS = ["number", "statement_id", "kind", "status", "issuer", "addressee", "period_start", "period_end",
               "issued_on", "due_on", "currency", "line_no", "section", "line_kind", "label", "metric", "quantity",
               "amount", "credits", "mode", "explanation", "subtotal", "tax_rate", "tax_amount", "total",
               "credits_drawn", "charged_on_demand", "credit_note_for", "reason"]


def find_font_dir() -> Path | None:
    for d in FONT_DIRS:
        if all((d / f).exists() for f in FONT_FILES.values()):
            return d
    return None


def transliterate(text: str) -> str:
    """Latin-1 safe text for the PDF core fonts."""
    out = []
    for ch in text:
        ch = _TRANSLIT.get(ch, ch)
        try:
            ch.encode("latin-1")
            out.append(ch)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?"
            out.append(plain)
    return "".join(out)


class _Pdf(FPDF):
    def __init__(self, font_dir: Path | None, footer_text: str, page_label: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.unicode = font_dir is not None
        self.footer_text = footer_text
        self.page_label = page_label
        self.family = "Helvetica"
        if font_dir is not None:
            try:
                for style, name in FONT_FILES.items():
                    self.add_font("DejaVu", style, str(font_dir / name))
                self.family = "DejaVu"
            except Exception:  # noqa: BLE001 - an unreadable font must not stop the statement: core font
                self.unicode = False
        self.set_auto_page_break(True, margin=22)
        self.set_margins(18, 16, 18)

    def t(self, text: object) -> str:
        s = "" if text is None else str(text)
        return s if self.unicode else transliterate(s)

    def font(self, size: float, bold: bool = False, grey: bool = False) -> None:
        self.set_font(self.family, "B" if bold else "", size)
        self.set_text_color(110, 110, 110) if grey else self.set_text_color(20, 20, 20)

    def footer(self) -> None:
        self.set_y(-16)
        self.font(7.5, grey=True)
        if self.footer_text:
            self.multi_cell(0, 3.6, self.t(self.footer_text), align="C")
        self.set_y(-9)
        self.cell(0, 4, self.t(f"{self.page_label} {self.page_no()}/{{nb}}"), align="R")


def _d(day: date | None, lang: str) -> str:
    return format_date(day, lang) if day else "–"


def render_pdf(doc: StatementDocument, *, font_dir: Path | None | bool = True) -> bytes:
    """An A4 invoice: issuer block with logo text, addressee, number and dates, period, the line table with
    explanations (sections for a collective invoice), totals with tax, notes on who paid, footer."""
    if font_dir is True:
        fd = find_font_dir()
    else:
        fd = font_dir if font_dir and all((font_dir / f).exists() for f in FONT_FILES.values()) else None
    lab, issuer = doc.labels, doc.issuer
    pdf = _Pdf(fd, issuer.footer, lab["page"])
    pdf.set_title(pdf.t(f"{lab[doc.kind]} {doc.number or ''}".strip()))
    pdf.set_author(pdf.t(issuer.name))
    pdf.set_creator(pdf.t(issuer.name))
    pdf.alias_nb_pages()
    pdf.add_page()
    page = _Page(pdf, lab, doc.language, doc.currency, pdf.w - pdf.l_margin - pdf.r_margin)
    _header(page, doc)
    _addressee(page, doc)
    _line_table(page, doc.lines)
    _totals(page, doc)
    _payment_notes(page, doc)
    return bytes(pdf.output())


@dataclass(frozen=True)
class _Page:
    """What every part of the PDF needs: the document being drawn, its labels, language, currency and width."""

    pdf: _Pdf
    lab: Mapping[str, str]
    lang: str
    cur: str
    width: float

    @property
    def columns(self) -> tuple[float, float, float]:
        """Widths of the line table's description, quantity and amount columns."""
        return self.width * 0.62, self.width * 0.14, self.width * 0.24


def _header(page: _Page, doc: StatementDocument) -> None:
    """Logo text / issuer name left and the document title right, the issuer's address, the meta column."""
    pdf, lab, width, issuer = page.pdf, page.lab, page.width, doc.issuer
    pdf.font(18, bold=True)
    pdf.cell(width * 0.6, 9, pdf.t(issuer.logo_text or issuer.name))
    pdf.font(16, bold=True)
    pdf.cell(width * 0.4, 9, pdf.t(lab[doc.kind]), align="R", new_x="LMARGIN", new_y="NEXT")
    status = doc.status
    if status in ("draft", "void"):
        pdf.font(11, bold=True)
        pdf.set_text_color(200, 30, 30)
        pdf.cell(0, 6, pdf.t(lab[status]), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    y0 = pdf.get_y()
    # the issuer's name, address, country (its name) and VAT id
    issuer_lines = [issuer.name, *[s for s in issuer.address.splitlines() if s.strip()]]
    if issuer.country:
        issuer_lines.append(country_name(issuer.country, page.lang))
    if issuer.vat_id:
        issuer_lines.append(f"{lab.get('vat_id', 'VAT ID')} {issuer.vat_id}")
    pdf.font(9, bold=True)
    pdf.cell(width / 2, 4.5, pdf.t(issuer_lines[0]), new_x="LMARGIN", new_y="NEXT")
    pdf.font(9)
    for s in issuer_lines[1:]:
        pdf.cell(width / 2, 4.5, pdf.t(s), new_x="LMARGIN", new_y="NEXT")
    y_issuer = pdf.get_y()
    pdf.set_y(y0)
    _meta(page, doc)
    pdf.set_y(max(y_issuer, pdf.get_y()) + 6)


def _meta(page: _Page, doc: StatementDocument) -> None:
    """Number, dates, period (and the credited statement), in the right column."""
    pdf, lab, lang, width = page.pdf, page.lab, page.lang, page.width
    meta = [(lab["number"], doc.number or "–"), (lab["issued"], _d(doc.issued_on, lang)),
            (lab["due"], _d(doc.due_on, lang)), (lab["period"], format_period(doc.period_start, doc.period_end, lang))]
    if doc.credit_note_for:
        meta.append((lab["credit_note_for"].format(number=""), doc.credit_note_for))
    for k, v in meta:
        pdf.set_x(pdf.l_margin + width * 0.55)
        pdf.font(9, grey=True)
        pdf.cell(width * 0.18, 4.5, pdf.t(k))
        pdf.font(9, bold=True)
        pdf.cell(width * 0.27, 4.5, pdf.t(v), align="R", new_x="LMARGIN", new_y="NEXT")


def _addressee(page: _Page, doc: StatementDocument) -> None:
    pdf, lab, to = page.pdf, page.lab, doc.addressee
    pdf.font(8, grey=True)
    pdf.cell(0, 4, pdf.t(lab["bill_to"]), new_x="LMARGIN", new_y="NEXT")
    pdf.font(10, bold=True)
    pdf.cell(0, 5, pdf.t(to.name), new_x="LMARGIN", new_y="NEXT")
    pdf.font(9)
    vat = f"{lab.get('vat_id', 'VAT ID')} {to.vat_id}" if to.vat_id else ""
    for s in [to.contact, *to.address.splitlines(), country_name(to.country, page.lang), vat, to.email]:
        if s and str(s).strip():
            pdf.cell(0, 4.5, pdf.t(s), new_x="LMARGIN", new_y="NEXT")
    if doc.reason:
        pdf.ln(2)
        pdf.font(9, bold=True)
        pdf.multi_cell(0, 4.5, pdf.t(f"{lab['reason']}: {doc.reason}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)


def _table_head(page: _Page) -> None:
    pdf, lab, cw = page.pdf, page.lab, page.columns
    pdf.set_fill_color(235, 238, 242)
    pdf.font(9, bold=True)
    pdf.cell(cw[0], 7, pdf.t(lab["description"]), fill=True)
    pdf.cell(cw[1], 7, pdf.t(lab["quantity"]), fill=True, align="R")
    pdf.cell(cw[2], 7, pdf.t(lab["amount"]), fill=True, align="R", new_x="LMARGIN", new_y="NEXT")


def _section_total(page: _Page, name: str, total: Decimal) -> None:
    pdf, cw = page.pdf, page.columns
    pdf.font(9, bold=True)
    pdf.cell(cw[0] + cw[1], 6, pdf.t(page.lab["section_total"].format(name=name)), align="R")
    pdf.cell(cw[2], 6, pdf.t(money(total, page.cur, page.lang)), align="R", new_x="LMARGIN", new_y="NEXT")


def _line_table(page: _Page, lines: tuple[DocumentLine, ...]) -> None:
    """The lines, grouped in sections (a collective invoice: one per agency customer, then the partner fees),
    each named section closed by its total; the column heads repeat on a new page."""
    pdf = page.pdf
    _table_head(page)
    if not lines:
        pdf.font(9, grey=True)
        pdf.cell(0, 7, pdf.t(page.lab["no_lines"]), new_x="LMARGIN", new_y="NEXT")
    first = True
    section: str | None = None
    section_sum = Decimal(0)
    for ln in lines:
        if first or ln.section != section:
            if section:
                _section_total(page, section, section_sum)
            first, section, section_sum = False, ln.section, Decimal(0)
            title = section or (page.lab["partner_fees"] if ln.kind == "partner_fee" else None)
            if title:
                pdf.ln(1)
                pdf.font(10, bold=True)
                pdf.cell(0, 7, pdf.t(title), new_x="LMARGIN", new_y="NEXT")
        if pdf.will_page_break(14):
            pdf.add_page()
            _table_head(page)
        section_sum += _line_row(page, ln)
    if section:
        _section_total(page, section, section_sum)


def _line_row(page: _Page, ln: DocumentLine) -> Decimal:
    """One line: label, quantity and amount, the explanation under it; returns the amount."""
    pdf, lang, cw = page.pdf, page.lang, page.columns
    amount = ln.amount
    y = pdf.get_y()
    pdf.font(9, bold=True)
    pdf.multi_cell(cw[0], 4.8, pdf.t(line_label(ln, lang)), new_x="RIGHT", new_y="TOP")
    pdf.font(9)
    qty = format_qty(ln.quantity, lang)
    pdf.cell(cw[1], 4.8, pdf.t(qty), align="R")
    pdf.cell(cw[2], 4.8, pdf.t(money(amount, page.cur, lang)), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), y + 4.8))
    expl = line_explanation(ln, lang)
    if ln.credits is not None and "credit" not in expl and "→" not in expl:
        expl = f"{expl} ({format_qty(ln.credits, lang)} {page.lab['credits']})".strip()
    if expl:
        pdf.font(7.5, grey=True)
        pdf.multi_cell(cw[0], 3.8, pdf.t(expl), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(225, 225, 225)
    pdf.line(pdf.l_margin, pdf.get_y() + 0.8, pdf.l_margin + page.width, pdf.get_y() + 0.8)
    pdf.ln(1.6)
    return amount


def _totals(page: _Page, doc: StatementDocument) -> None:
    pdf, lab, lang, cur, width = page.pdf, page.lab, page.lang, page.cur, page.width
    pdf.ln(3)
    totals = [(lab["subtotal"], money(doc.subtotal, cur, lang), False)]
    # the tax line is always there (0 % when the issuer charges no tax), so the total's make-up is explicit
    totals.append((f"{lab['tax']} {format_qty(doc.tax_rate or Decimal(0), lang)} %", money(doc.tax_amount, cur, lang),
                   False))
    totals.append((lab["total"], money(doc.total, cur, lang), True))
    for k, v, bold in totals:
        pdf.set_x(pdf.l_margin + width * 0.5)
        pdf.font(10 if bold else 9, bold=bold)
        pdf.cell(width * 0.26, 6, pdf.t(k), align="R")
        pdf.cell(width * 0.24, 6, pdf.t(v), align="R", new_x="LMARGIN", new_y="NEXT")


def _payment_notes(page: _Page, doc: StatementDocument) -> None:
    """Who paid, on partner-paid statements (credits drawn from the wallet, or charged on demand)."""
    lab, lang, cur = page.lab, page.lang, page.cur
    notes = []
    if doc.credits_drawn is not None:
        notes.append(lab["paid_prepaid"].format(partner=doc.issuer.name, credits=format_qty(doc.credits_drawn, lang)))
    if doc.charged_on_demand is not None:
        amt = round_money(doc.charged_on_demand, cur)
        notes.append(lab["paid_on_demand"].format(partner=doc.issuer.name, amount=money(amt, cur, lang)))
    if notes:
        page.pdf.ln(4)
        page.pdf.font(9)
        for n in notes:
            page.pdf.multi_cell(0, 4.8, page.pdf.t(n), new_x="LMARGIN", new_y="NEXT")


def _plain(amount: Decimal | None, currency: str) -> str:
    return "" if amount is None else str(round_money(amount, currency))


def _csv_head(d: StatementDocument) -> dict[str, object]:
    cur = d.currency
    return {"number": d.number or "", "statement_id": d.id, "kind": d.kind, "status": d.status,
            "issuer": d.issuer.name, "addressee": d.addressee.name, "period_start": d.period_start.isoformat(),
            "period_end": d.period_end.isoformat(), "issued_on": d.issued_on.isoformat() if d.issued_on else "",
            "due_on": d.due_on.isoformat() if d.due_on else "", "currency": cur, "subtotal": _plain(d.subtotal, cur),
            "tax_rate": "" if d.tax_rate is None else str(d.tax_rate), "tax_amount": _plain(d.tax_amount, cur),
            "total": _plain(d.total, cur), "credits_drawn": num(d.credits_drawn) or "",
            "charged_on_demand": _plain(d.charged_on_demand, cur), "credit_note_for": d.credit_note_for or "",
            "reason": d.reason or ""}


def render_csv(docs: list[StatementDocument]) -> str:
    """One row per statement line (a statement without lines gets one row); amounts as plain decimals
    rounded to the currency, dates ISO: for spreadsheets and accounting imports. Text cells that a
    spreadsheet would run as a formula are neutralised (core.export)."""
    rows: list[list] = []
    for d in docs:
        head = _csv_head(d)
        for ln in d.lines or [None]:
            row = dict(head)
            if ln is not None:
                row.update({"line_no": ln.line_no, "section": ln.section or "", "line_kind": ln.kind,
                            "label": line_label(ln, d.language), "metric": ln.metric or "",
                            "quantity": num(ln.quantity) or "", "amount": _plain(ln.amount, d.currency),
                            "credits": num(ln.credits) or "", "mode": ln.mode or "",
                            "explanation": line_explanation(ln, d.language)})
            rows.append([row.get(c, "") for c in CSV_COLUMNS])
    return csv_text(CSV_COLUMNS, rows)
