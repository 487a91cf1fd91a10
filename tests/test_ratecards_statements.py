"""Statements of the two price layers (issue 10), October 2026, Partner A on the standard card (pages 1–1,000 at
0.05 then 0.04; recipients 1.05 credits at 0.01; 149 per active client; revenue share 10 %):

- Mail Co (prepaid, the partner's 0.02 per recipient, 5,000 recipients): the partner's statement, 100.00;
- Agency Co (agency, the partner's 0.08 a page, 100 pages): a section of the platform's collective statement
  at the card (5.00) and the partner's own statement at its plan (8.00);
- Direct Co (customer pays, the platform's plan 0.10 a page, 500 pages): the platform's statement (50.00) and
  a commission statement from the platform to the partner (5.00);
- Orphan Co (prepaid, no plan, 300 recipients): the partner's statement with the quantity and no amounts;
- the card's partner fees: 2 active clients (Agency Co and Direct Co use pages) × 149 = 298.00.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import SYSTEM
from core.billing import plans
from core.statements import lifecycle
from db.engine import unit_of_work
from tests.billing_factories import make_plan
from tests.statements_helpers import assign, doc, generate, listed, record, set_mode
from tests.test_margin import PLATFORM_PAGES
from tests.test_ratecards import MAIL_PLAN, standard
from tests.wallet_helpers import setup_wallet

PLATFORM = "Platform direct"
AGENCY_PLAN = {"currency": "EUR", "charges": [{"id": "pages", "label": "Pages", "metric": "pages",
                                               "model": "per_unit", "unit_price": "0.08"}]}


def _world(world, db):
    a = world.a
    standard(db, world.admin)
    setup_wallet(db, a.staff, a.partner_id, buy=50_000)
    with unit_of_work(db) as s:
        accounts.update_account(s, SYSTEM, a.partner_id, a.account_id, name="Mail Co")
        accounts.update_account(s, SYSTEM, a.partner_id, a.other_account_id, name="Agency Co")
        direct = accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name="Direct Co", country="NO").id
        orphan = accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name="Orphan Co", country="NO").id
        house = house_partner(s).id
    assign(db, a.staff, a.partner_id, a.account_id, MAIL_PLAN, "mail")
    assign(db, a.staff, a.partner_id, a.other_account_id, AGENCY_PLAN, "agency")
    _, platform_plan = make_plan(db, world.admin, code="direct", spec_=PLATFORM_PAGES, partner_id=house)
    with unit_of_work(db) as s:
        plans.assign_plan(s, a.staff, a.partner_id, direct, plan_id=platform_plan, plan_partner_id=house,
                          effective_from=date(2024, 1, 1))
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    set_mode(db, a.staff, a.partner_id, a.other_account_id, "agency")
    set_mode(db, a.staff, a.partner_id, orphan, "partner_prepaid")
    record(db, a.staff, a.partner_id, a.account_id, "recipients", 5000, "mail-1")
    record(db, a.staff, a.partner_id, a.other_account_id, "pages", 100, "agency-1")
    record(db, a.staff, a.partner_id, direct, "pages", 500, "direct-1")
    record(db, a.staff, a.partner_id, orphan, "recipients", 300, "orphan-1")
    generate(db, a.staff, a.partner_id)
    return {(st.kind, st.issuer, st.addressee): st for st in listed(db, world.admin, a.partner_id)}


def test_every_layer_has_its_statement(world, db):
    a = world.a
    got = _world(world, db)
    assert set(got) == {
        ("statement", "Partner A", "Mail Co"), ("statement", "Partner A", "Agency Co"),
        ("statement", "Partner A", "Orphan Co"), ("statement", PLATFORM, "Direct Co"),
        ("collective", PLATFORM, "Partner A"), ("commission", PLATFORM, "Partner A")}
    # partner → client, at the partner's plans, above zero where the plan prices the usage
    assert got[("statement", "Partner A", "Mail Co")].total == D("100.00")
    assert got[("statement", "Partner A", "Agency Co")].total == D("8.00")
    # no plan: the quantity, no amounts
    orphan = doc(db, a.staff, a.partner_id, got[("statement", "Partner A", "Orphan Co")].id)
    assert [(ln.metric, ln.quantity, ln.amount) for ln in orphan.lines] == [("recipients", D(300), D(0))]
    # platform → client (customer pays), and the partner's revenue share on it
    assert got[("statement", PLATFORM, "Direct Co")].total == D("50.00")
    commission = doc(db, a.staff, a.partner_id, got[("commission", PLATFORM, "Partner A")].id)
    assert [(ln.section, ln.amount) for ln in commission.lines] == [("Direct Co", D("5.00"))]


def test_the_collective_statement_prices_agency_clients_at_the_rate_card(world, db):
    a = world.a
    got = _world(world, db)
    st = got[("collective", PLATFORM, "Partner A")]
    d = doc(db, a.staff, a.partner_id, st.id)
    lines = [(ln.section, ln.kind, ln.metric, ln.amount) for ln in d.lines]
    # Agency Co's 100 pages at the card (not at the partner's 0.08); 2 active clients × 149
    assert lines == [("Agency Co", "usage", "pages", D("5.00")), (None, "partner_fee", "active_clients", D("298.00"))]
    assert st.total == D("303.00")


def test_partner_statements_never_name_the_platform(world, db):
    a = world.a
    got = _world(world, db)
    for key in (("statement", "Partner A", "Mail Co"), ("statement", "Partner A", "Agency Co"),
                ("statement", "Partner A", "Orphan Co")):
        d = doc(db, a.staff, a.partner_id, got[key].id)
        text = json.dumps(d.to_json(), ensure_ascii=False).lower()
        assert "platform" not in text and "rate card" not in text, key


def test_each_issuer_numbers_its_own(world, db):
    a = world.a
    got = _world(world, db)
    with unit_of_work(db) as s:
        own = lifecycle.finalise(s, a.staff, a.partner_id, got[("statement", "Partner A", "Agency Co")].id)
        com = lifecycle.finalise(s, world.admin, a.partner_id, got[("commission", PLATFORM, "Partner A")].id)
    assert own.number.startswith("PARTNERA-") and not com.number.startswith("PARTNERA-")


def test_card_share_and_unpriced_lines_speak_the_documents_language(world, db):
    """The lines the two layers add (the card's section, the revenue share, "no price agreed") are in the
    document's language like every other line: the partner's statement in German, the platform's in Norwegian.
    They were English only."""
    from core.statements.settings import save_settings

    a = world.a
    with unit_of_work(db) as s:
        save_settings(s, a.staff, a.partner_id, language="de")
        save_settings(s, world.admin, house_partner(s).id, language="nb")
    got = _world(world, db)
    orphan = doc(db, a.staff, a.partner_id, got[("statement", "Partner A", "Orphan Co")].id)
    assert [ln.explanation for ln in orphan.lines] == ["300 recipients: kein Preis vereinbart"]
    coll = doc(db, a.staff, a.partner_id, got[("collective", PLATFORM, "Partner A")].id)
    agency = next(ln for ln in coll.lines if ln.section == "Agency Co")
    assert agency.explanation == "100 pages etter prislisten" and agency.amount == D("5.00")
    com = doc(db, a.staff, a.partner_id, got[("commission", PLATFORM, "Partner A")].id)
    (share,) = com.lines
    assert share.label == "Inntektsdeling 10 %"
    assert share.explanation.startswith("10 % av ") and share.explanation.endswith(" fakturert til Direct Co")
    assert "50,00" in share.explanation
