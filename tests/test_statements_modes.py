"""Every billing mode end to end: who issues, who is addressed, what the statement shows; a month that
changed mode; branding and languages; PDF and CSV exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from core.statements import lifecycle, reading, settings
from core.statements.render import CSV_COLUMNS, render_pdf
from db.engine import unit_of_work
from tests.billing_factories import BANDS_SPEC, PAGES_SPEC
from tests.statements_helpers import (
    ALLOWANCE_SPEC,
    MAILING_SPEC,
    MONTH,
    PER_PAGE_SPEC,
    D,
    assign,
    assign_partner,
    doc,
    generate,
    listed,
    pdf_text,
    record,
    set_mode,
)
from tests.wallet_helpers import balance_of, setup_wallet

PLATFORM = "Platform direct"


def _pdf(db, actor, pid, sid) -> bytes:
    with Session(db) as s:
        return reading.export_pdf(s, actor, pid, sid)


def _brand(db, actor, pid, **kw):
    with unit_of_work(db) as s:
        return settings.save_settings(s, actor, pid, **kw)


def test_customer_pays_is_issued_by_the_platform(world, db):
    a = world.a
    assign(db, a.staff, a.partner_id, a.account_id, ALLOWANCE_SPEC, "allow")
    record(db, a.staff, a.partner_id, a.account_id, "documents", 1500, "d1")
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id)
    assert (st.issuer, st.addressee, st.total) == (PLATFORM, "Customer a1", D("41.00"))
    d = doc(db, a.staff, a.partner_id, st.id)
    assert "1,000 of 1,000 included" in d.lines[0].explanation  # allowance used
    assert "500 over × 0.02" in d.lines[0].explanation  # overage
    text = pdf_text(_pdf(db, a.staff, a.partner_id, st.id))
    assert PLATFORM in text and "Customer a1" in text and "EUR 41.00" in text


def test_prepaid_partner_issues_and_shows_credits_drawn_never_the_platform(world, db):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id, buy=50_000)
    assign(db, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    _brand(db, a.staff, a.partner_id, display_name="Nordic Docs AS", address="Havnegata 1\n0150 Oslo",
           logo_text="NORDIC DOCS", footer="Nordic Docs AS · Org. nr 999 888 777 · Takk for handelen!")
    record(db, a.staff, a.partner_id, a.account_id, "documents", 5000, "m1")
    assert balance_of(db, a.partner_id) == D(44_750)  # the draw happened as the usage was recorded
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id)
    assert (st.issuer, st.issuer_partner_id, st.credits_drawn) == ("Nordic Docs AS", a.partner_id, D(5250))
    assert st.total == D("10.00")  # the usage itself was paid with credits; the base fee remains
    d = doc(db, a.staff, a.partner_id, st.id)
    assert d.lines[0].credits == D("5250") and d.lines[0].mode == "partner_prepaid"
    with unit_of_work(db) as s:  # the partner issues it, so the partner finalises it
        fin = lifecycle.finalise(s, a.staff, a.partner_id, st.id)
        assert fin.number.startswith("PARTNERA-")
    pdf = _pdf(db, a.staff, a.partner_id, st.id)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    for want in ("NORDIC DOCS", "Nordic Docs AS", "Havnegata 1", "Customer a1", "5,250 credits drawn",
                 "Takk for handelen!", fin.number):
        assert want in text, want
    assert PLATFORM not in text and "Platform" not in text
    assert PLATFORM.encode() not in pdf


def test_on_demand_shows_the_charges(world, db):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id)
    assign(db, a.staff, a.partner_id, a.account_id, PER_PAGE_SPEC, "pp")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_on_demand", on_decline="block")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 300, "p1")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 100, "p2")
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id)
    d = doc(db, a.staff, a.partner_id, st.id)
    assert st.issuer == "Partner A" and st.total == D("20.00")
    assert d.charged_on_demand == D("20.00")  # 15.00 + 5.00 charged as recorded
    text = pdf_text(_pdf(db, a.staff, a.partner_id, st.id))
    assert "Paid by Partner A: EUR 20.00 charged on demand." in text and PLATFORM not in text


def test_agency_customers_go_on_the_collective_invoice_with_partner_band_fee(world, db):
    a, b = world.a, world.b
    for aid, code in ((a.account_id, "x1"), (a.other_account_id, "x2")):
        assign(db, a.staff, a.partner_id, aid, PAGES_SPEC, code)
        set_mode(db, a.staff, a.partner_id, aid, "agency")
    assign_partner(db, world.admin, a.partner_id, BANDS_SPEC)
    assign_partner(db, world.admin, b.partner_id, BANDS_SPEC, code="bands-b")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "a1")
    record(db, a.staff, a.partner_id, a.other_account_id, "pages", 10, "a2")
    out = generate(db, a.staff, a.partner_id)
    assert [(o.key.kind, o.key.account_id) for o in out] == [("collective", None)]
    [st] = listed(db, a.staff, a.partner_id)
    assert (st.kind, st.issuer, st.addressee) == ("collective", PLATFORM, "Partner A")
    d = doc(db, a.staff, a.partner_id, st.id)
    sections = [(ln.section, ln.kind, ln.amount) for ln in d.lines]
    assert sections == [("Customer a1", "usage", D("116.0000")), ("Customer a1", "fee", D("90.0000")),
                        ("Customer a2", "usage", D("1.0000")), ("Customer a2", "fee", D("90.0000")),
                        (None, "partner_fee", D("200.0000"))]  # band 0–99 active clients: 2
    assert st.total == D("497.00")
    text = pdf_text(_pdf(db, a.staff, a.partner_id, st.id))
    assert "Total Customer a1" in text and "Partner fees" in text and "EUR 497.00" in text
    # partner B: a partner plan but no agency customers -> a collective invoice with the band fee only
    generate(db, b.staff, b.partner_id)
    [stb] = listed(db, b.staff, b.partner_id)
    assert (stb.kind, stb.total) == ("collective", D("200.00"))
    # customers never see the collective invoice
    assert listed(db, a.users["manager"], a.partner_id) == []


def test_a_month_that_changed_mode_is_split_between_issuers(world, db):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id, buy=10_000)
    assign(db, a.staff, a.partner_id, a.account_id, ALLOWANCE_SPEC, "allow")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_prepaid", date(2026, 10, 17))
    record(db, a.staff, a.partner_id, a.account_id, "documents", 700, "early", when=datetime(2026, 10, 3, tzinfo=UTC))
    record(db, a.staff, a.partner_id, a.account_id, "documents", 900, "late")  # 15 Oct: still customer pays
    generate(db, a.staff, a.partner_id)
    rows = {r.issuer: r for r in listed(db, a.staff, a.partner_id)}
    assert set(rows) == {PLATFORM, "Partner A"}
    assert rows[PLATFORM].modes == [["2026-10-01", "2026-10-16", "customer_pays"]]
    assert rows["Partner A"].modes == [["2026-10-17", "2026-10-31", "partner_prepaid"]]
    assert rows[PLATFORM].total == D("16.00") + D("12.00")  # 31 × 16/31 + 600 over × 0.02
    assert rows["Partner A"].total == D("15.00")  # 31 × 15/31, no usage in its days


def test_language_and_tax_formatting_de_and_nb(world, db):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id)
    assign(db, a.staff, a.partner_id, a.account_id, PER_PAGE_SPEC, "pp")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_on_demand", date(2026, 9, 1), on_decline="flag")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 24690, "big")
    _brand(db, a.staff, a.partner_id, display_name="Müller & Søn GmbH", language="de", tax_rate="19",
           labels_={"total": "Zu zahlen"})
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id)
    with unit_of_work(db) as s:
        lifecycle.finalise(s, a.staff, a.partner_id, st.id)
    d = doc(db, a.staff, a.partner_id, st.id)
    assert (d.subtotal, d.tax_amount, d.total) == (D("1234.5000"), D("234.5600"), D("1469.0600"))
    text = pdf_text(_pdf(db, a.staff, a.partner_id, st.id))
    for want in ("Abrechnung", "Müller & Søn GmbH", "1.234,50 €", "MwSt. 19 %", "234,56 €", "Zu zahlen",
                 "1.469,06 €", "01.10.2026 – 31.10.2026", "24.690"):
        assert want in text, want
    # Norwegian: a new month in NOK-style formatting (EUR keeps its code), dates dd.mm.yyyy
    _brand(db, a.staff, a.partner_id, display_name="Fjord AS", language="nb", tax_rate="25")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1000, "sep",
           when=datetime(2026, 9, 10, tzinfo=UTC))
    generate(db, a.staff, a.partner_id, month="2026-09")
    [sep] = listed(db, a.staff, a.partner_id, month="2026-09")
    text = pdf_text(_pdf(db, a.staff, a.partner_id, sep.id))
    for want in ("Kontoutskrift", "Fjord AS", "EUR 50,00", "Mva. 25 %", "EUR 12,50", "EUR 62,50",
                 "01.09.2026 – 30.09.2026", "Å betale"):
        assert want in text, want
    # the October statement is final: its snapshot keeps the German branding
    assert "Müller & Søn GmbH" in pdf_text(_pdf(db, a.staff, a.partner_id, st.id))


def test_pdf_without_the_truetype_font_transliterates(world, db):
    a = world.a
    assign(db, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "std")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "e1")
    _brand(db, world.admin, (lambda s: s)(_house(db)), display_name="Plattform Ø – €", language="de")
    generate(db, a.staff, a.partner_id)
    [st] = listed(db, a.staff, a.partner_id)
    d = doc(db, a.staff, a.partner_id, st.id)
    pdf = render_pdf(d, font_dir=Path("/nonexistent"))
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert "Plattform Ø - EUR" in text and "206,00 EUR" in text


def _house(db) -> int:
    from core.accounts.accounts import house_partner

    with Session(db) as s:
        return house_partner(s).id


def test_csv_exports(world, db):
    a = world.a
    assign(db, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "std")
    assign(db, a.staff, a.partner_id, a.other_account_id, PER_PAGE_SPEC, "pp")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "e1")
    generate(db, a.staff, a.partner_id)
    rows = listed(db, a.staff, a.partner_id)
    with Session(db) as s:
        one = reading.export_csv(s, a.staff, a.partner_id, rows[0].id)
        month = reading.export_month_csv(s, a.staff, a.partner_id, MONTH)
    parsed = list(csv.DictReader(io.StringIO(one)))
    assert list(parsed[0].keys()) == CSV_COLUMNS
    assert [(r["label"], r["amount"], r["total"]) for r in parsed] == [("pages", "116.00", "206.00"),
                                                                      ("base", "90.00", "206.00")]
    allrows = list(csv.DictReader(io.StringIO(month)))
    assert {r["addressee"] for r in allrows} == {"Customer a1", "Customer a2"}
    assert [r["line_no"] for r in allrows if r["addressee"] == "Customer a2"] == ["1"]
