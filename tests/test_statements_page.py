"""AppTest: the Statements page as partner staff (generate, open, finalise, downloads, branding), platform
admin, Manager (own final statements, read-only) and Annotator (refused); preselection from the Customers
page's "Billing" button."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.statements import lifecycle, reading, settings
from db.engine import unit_of_work
from tests.apptest import app, page_alone, texts
from tests.statements_helpers import (
    MAILING_SPEC,
    MONTH,
    PER_PAGE_SPEC,
    assign,
    generate,
    listed,
    record,
    set_mode,
)
from tests.wallet_helpers import setup_wallet

PAGE = "pages/statements.py"


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def _downloads(at) -> list[str]:
    return [el.proto.label for el in at.get("download_button")]


def _prepaid_world(world, db):
    a = world.a
    setup_wallet(db, a.staff, a.partner_id, buy=50_000)
    assign(db, a.staff, a.partner_id, a.account_id, MAILING_SPEC, "mail")
    assign(db, a.staff, a.partner_id, a.other_account_id, PER_PAGE_SPEC, "pp")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    record(db, a.staff, a.partner_id, a.account_id, "documents", 5000, "m1")
    record(db, a.staff, a.partner_id, a.other_account_id, "pages", 100, "p1")
    return a


def test_exports_are_built_only_when_a_download_is_clicked(world, db, monkeypatch):
    """Showing a statement renders neither its PDF nor its CSVs: the download buttons get callables that
    build them on click (a rerun costs no export). Fails if the page builds an export while rendering."""
    a = _prepaid_world(world, db)
    generate(db, a.staff, a.partner_id)
    built: list[str] = []
    for name in ("export_pdf", "export_csv", "export_month_csv"):
        real = getattr(reading, name)
        monkeypatch.setattr(reading, name, lambda *args, _n=name, _f=real, **kw: built.append(_n) or _f(*args, **kw))
    at = app(a.staff, PAGE)
    at.selectbox(key="stm_month").set_value(MONTH).run()
    ids = {r.addressee: r.id for r in listed(db, a.staff, a.partner_id)}
    at.selectbox(key="stm_open").set_value(ids["Customer a1"]).run()
    assert not at.exception
    assert {"Download PDF", "Download CSV", f"Export {MONTH} as CSV"} <= set(_downloads(at))
    assert built == []


def test_staff_generates_finalises_and_downloads(world, db):
    a = _prepaid_world(world, db)
    at = app(a.staff, PAGE)
    assert not at.exception
    at.selectbox(key="stm_month").set_value(MONTH).run()
    assert f"No statements for {MONTH} yet" in texts(at)
    _button(at, "stm_generate").click().run()
    assert not at.exception
    assert f"Drafts for {MONTH}: 2 created." in texts(at)
    table = next(d.value for d in at.dataframe if "Issuer" in d.value.columns)
    assert sorted(table["Customer"]) == ["Customer a1", "Customer a2"]
    assert set(table["Issuer"]) == {"Partner A", "Platform direct"}
    ids = {r.addressee: r.id for r in listed(db, a.staff, a.partner_id)}
    at.selectbox(key="stm_open").set_value(ids["Customer a1"]).run()
    assert "Paid by Partner A with prepaid credits: 5,250 credits drawn." in texts(at)
    assert {"Download PDF", "Download CSV", f"Export {MONTH} as CSV"} <= set(_downloads(at))
    _button(at, "stm_finalise").click().run()
    assert not at.exception
    [fin] = [r for r in listed(db, a.staff, a.partner_id) if r.status == "final"]
    assert fin.addressee == "Customer a1" and fin.number.startswith("PARTNERA-")
    # the platform-issued statement: staff see it but may not finalise it
    at.selectbox(key="stm_open").set_value(ids["Customer a2"]).run()
    assert "The platform issues this statement" in texts(at)
    assert not [b for b in at.button if b.key == "stm_finalise"]


def test_billing_button_preselects_the_client_and_admin_finalises(world, db):
    a = _prepaid_world(world, db)
    generate(db, a.staff, a.partner_id)
    at = app(world.admin, PAGE, state={"open_account": (a.partner_id, a.other_account_id)})
    assert not at.exception
    assert at.selectbox(key="stm_partner").value == a.partner_id
    assert at.selectbox(key="stm_customer").value == a.other_account_id
    at.selectbox(key="stm_month").set_value(MONTH).run()
    table = next(d.value for d in at.dataframe if "Issuer" in d.value.columns)
    assert list(table["Customer"]) == ["Customer a2"]
    _button(at, "stm_finalise").click().run()
    assert not at.exception and "Statement finalised." in texts(at)
    at.text_input(key="stm_reason").input("Wrong customer")
    _button(at, "stm_void").click().run()
    assert not at.exception
    kinds = sorted((r.kind, r.status) for r in listed(db, a.staff, a.partner_id, account_id=a.other_account_id))
    assert kinds == [("credit_note", "final"), ("statement", "void")]


def test_manager_sees_own_final_statements_read_only_and_annotator_is_refused(world, db):
    a = _prepaid_world(world, db)
    generate(db, a.staff, a.partner_id)
    sid = next(r.id for r in listed(db, a.staff, a.partner_id) if r.account_id == a.account_id)
    with unit_of_work(db) as s:
        lifecycle.finalise(s, a.staff, a.partner_id, sid)
    at = app(a.users["manager"], PAGE)
    assert not at.exception
    # issue 15: a Manager opens on the latest month that has a statement (not on an empty last month)
    assert at.selectbox(key="stm_month").value == MONTH
    table = next(d.value for d in at.dataframe if "Issuer" in d.value.columns)
    assert list(table["Customer"]) == ["Customer a1"] and list(table["Status"]) == ["Final"]
    assert str(table["Total"].dtype).startswith("float")  # a numeric column, right-aligned, never text
    assert "Download PDF" in _downloads(at)
    assert not [b for b in at.button if b.key in ("stm_generate", "stm_finalise", "stm_void", "stm_credit")]
    assert "Branding & language" not in [t.label for t in at.tabs]
    for role in ("annotator", "user"):
        at = page_alone(a.users[role], PAGE)
        assert "You do not have access to this page." in texts(at)


def test_branding_tab_saves_and_shows_field_errors(world, db):
    a = world.a
    at = app(a.staff, PAGE)
    at.text_input(key="set_tax").input("abc")
    at.button(key="FormSubmitter:stm_settings-Save branding").click().run()
    assert "Enter a tax rate in percent" in texts(at)
    at.text_input(key="set_name").input("Nordic Docs AS")
    at.text_input(key="set_tax").input("25")
    at.selectbox(key="set_language").set_value("nb")
    at.text_area(key="set_labels").input("total = Sum å betale")
    at.button(key="FormSubmitter:stm_settings-Save branding").click().run()
    assert not at.exception and "Branding saved." in texts(at)
    with Session(db) as s:
        b = settings.get_settings(s, a.staff, a.partner_id)
    assert (b.display_name, b.language, str(b.tax_rate), b.labels) == \
        ("Nordic Docs AS", "nb", "25.0000", {"total": "Sum å betale"})
