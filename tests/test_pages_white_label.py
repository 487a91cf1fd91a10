"""Issue 15, white label: a partner's clients see the partner's name, logo text AND colours (pages, login page)
and get e-mails from the partner, never with the platform's name; partner staff set the colours and the VAT id
with their statement branding; the statement PDF shows the issuer's address, VAT id, country name and tax line."""

from __future__ import annotations

from email import message_from_bytes, policy

from sqlalchemy import select
from sqlalchemy.orm import Session
from streamlit.testing.v1 import AppTest

from core.accounts import accounts
from core.notify import outbox
from core.overview import PLATFORM_NAME
from core.statements import reading, settings
from db.engine import unit_of_work
from db.models import Partner
from db.models.statements import StatementSettings
from db.models.wallet import OutboxMessage
from tests.api.servers import smtp_sink
from tests.apptest import app, texts
from tests.statements_helpers import generate, listed, pdf_text
from tests.test_statements_page import _prepaid_world

TEAL, MINT = "#0f766e", "#ecfdf5"


def _brand(engine, partner_id: int, **kw) -> None:
    with unit_of_work(engine) as s:
        s.add(StatementSettings(partner_id=partner_id, display_name="Nordlys Docs", logo_text="NORDLYS", **kw))


def _styles(at) -> str:
    return " ".join(str(getattr(h.proto, "body", "")) for h in at.get("html"))


def test_clients_see_the_partners_colours_staff_and_others_do_not(world, engine):
    _brand(engine, world.a.partner_id, primary_colour=TEAL, sidebar_colour=MINT)
    for role in ("manager", "user", "annotation_manager", "annotator"):
        at = app(world.a.users[role])
        assert not at.exception
        css = _styles(at)
        assert TEAL in css and MINT in css, role
        assert PLATFORM_NAME not in texts(at) and PLATFORM_NAME not in css, role
    for actor in (world.a.staff, world.b.users["manager"], world.admin):  # staff, another partner's client, admin
        assert TEAL not in _styles(app(actor))
    # the login page through the partner's link (?brand=<slug>) wears its colours and name too
    with Session(engine) as s:
        slug = s.get(Partner, world.a.partner_id).slug
    at = AppTest.from_file("../Home.py", default_timeout=60)  # query set before the router's first run
    at.query_params["brand"] = slug
    at.run()
    assert TEAL in _styles(at) and "Nordlys Docs" in texts(at) and PLATFORM_NAME not in texts(at)


def test_staff_set_colours_and_vat_id_with_the_branding_and_bad_colours_are_refused(world, db):
    a = world.a
    with Session(db) as s:
        try:
            settings.save_settings(s, a.staff, a.partner_id, primary_colour="teal")
        except Exception as exc:  # noqa: BLE001 - the message is what matters
            assert "#rrggbb" in str(exc.errors["primary_colour"])  # type: ignore[attr-defined]
        else:
            raise AssertionError("a bad colour was accepted")
        assert s.get(StatementSettings, a.partner_id) is None  # nothing written
    at = app(a.staff, "pages/statements.py")
    at.checkbox(key="set_own_colours").check()
    at.color_picker(key="set_primary").pick(TEAL.upper())
    at.color_picker(key="set_sidebar").pick(MINT)
    at.text_input(key="set_vat").input("NO 999 888 777 MVA")
    at.button(key="FormSubmitter:stm_settings-Save branding").click().run()
    assert not at.exception and "Branding saved." in texts(at)
    with Session(db) as s:
        b = settings.get_settings(s, a.staff, a.partner_id)
    assert (b.primary_colour, b.sidebar_colour, b.vat_id) == (TEAL, MINT, "NO 999 888 777 MVA")
    # unticked: the clients see the platform's colours again
    at.checkbox(key="set_own_colours").uncheck()
    at.button(key="FormSubmitter:stm_settings-Save branding").click().run()
    with Session(db) as s:
        b = settings.get_settings(s, a.staff, a.partner_id)
    assert (b.primary_colour, b.sidebar_colour) == (None, None)


def test_a_clients_password_mail_comes_from_and_names_the_partner(world, engine, monkeypatch):
    a = world.a
    _brand(engine, a.partner_id)
    with unit_of_work(engine) as s:
        accounts.reset_password(s, a.staff, a.partner_id, a.users["user"].user_id)
        accounts.reset_password(s, world.admin, a.partner_id, a.staff.user_id)  # staff: the platform's name
    with Session(engine) as s:
        client, staff = (s.scalar(select(OutboxMessage).where(OutboxMessage.recipient == r)
                                  .order_by(OutboxMessage.id.desc()).limit(1))
                         for r in ("user-a@test.example", a.staff.email))
        slug = s.get(Partner, a.partner_id).slug
    assert client.subject == "Set your Nordlys Docs password"
    assert PLATFORM_NAME not in client.subject + client.body and f"&brand={slug}" in client.body
    assert PLATFORM_NAME in staff.subject
    monkeypatch.setenv("RC_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RC_SMTP_STARTTLS", "0")
    monkeypatch.setenv("RC_SMTP_FROM", "mail@console.example")
    with smtp_sink() as (sink, port):
        monkeypatch.setenv("RC_SMTP_PORT", str(port))
        assert outbox.deliver_pending(engine) >= 2
        sent = {tuple(m.rcpt_tos): message_from_bytes(m.content, policy=policy.default) for m in sink.messages}
    assert sent[("user-a@test.example",)]["From"].addresses[0].display_name == "Nordlys Docs"
    assert sent[(a.staff.email,)]["From"].addresses[0].display_name == PLATFORM_NAME


def test_the_pdf_shows_the_issuers_address_vat_id_country_name_and_the_tax_line(world, db):
    a = _prepaid_world(world, db)
    _brand(db, a.partner_id, address="Storgata 1\n0155 Oslo", vat_id="NO 999 888 777 MVA")
    generate(db, a.staff, a.partner_id)
    sid = next(r.id for r in listed(db, a.staff, a.partner_id) if r.account_id == a.account_id)
    with Session(db) as s:
        text = pdf_text(reading.export_pdf(s, a.staff, a.partner_id, sid))
    for expected in ("Nordlys Docs", "Storgata 1", "0155 Oslo", "VAT ID NO 999 888 777 MVA", "Norway", "Tax 0 %"):
        assert expected in text, (expected, text[:800])
    assert "\nNO\n" not in f"\n{text}\n"  # the country's name, never its bare code
