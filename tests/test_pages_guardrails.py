"""Guardrails on the pages (issue 15): a switch to prepaid with an empty wallet asks first."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from core import clock
from core.billing import modes as bm
from tests.apptest import app, texts
from tests.wallet_helpers import setup_wallet

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)


def test_switching_to_prepaid_with_an_empty_wallet_and_no_auto_buy_warns(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)  # a wallet at 0 credits, automatic purchase off
    today = clock.today()
    at = app(t.staff, "pages/billing_modes.py")
    at.selectbox(key="mode_account").set_value(t.account_id)
    at.selectbox(key="mode_mode").set_value("partner_prepaid")
    at.button(key="FormSubmitter:change_mode-Change mode").click().run()
    assert "usage will be refused" in texts(at)
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, today)[0] == "customer_pays"  # nothing changed yet
    at.button(key="mode_confirm_yes").click().run()
    assert not at.exception
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, today)[0] == "partner_prepaid"


def test_switching_to_prepaid_with_credits_does_not_ask(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)
    at = app(t.staff, "pages/billing_modes.py")
    at.selectbox(key="mode_account").set_value(t.account_id)
    at.selectbox(key="mode_mode").set_value("partner_prepaid")
    at.button(key="FormSubmitter:change_mode-Change mode").click().run()
    assert "usage will be refused" not in texts(at)
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, clock.today())[0] == "partner_prepaid"


def test_plan_assignment_defaults_to_a_day_the_plan_covers(world, db):

    from tests.billing_factories import make_plan

    a = world.a
    today = clock.today()  # the page's clock (tests/when.py)
    old = make_plan(db, a.staff, code="old")  # since 2024: covers the whole month
    new = make_plan(db, a.staff, code="new", effective_from=today)  # starts today
    at = app(a.staff, "pages/pricing.py")
    at.selectbox(key="pr_customer").select(a.account_id).run()
    for plan, want in ((old, today.replace(day=1)), (new, today)):
        key = (a.partner_id, plan[1])
        at.selectbox(key="pr_assign_plan").set_value(key).run()
        assert at.date_input(key=f"pr_assign_eff_{key}").value == want
    if today.day != 1:
        assert "priced in two parts" in texts(at)  # the split is explained


def test_assign_plan_error_stays_on_the_customers_tab_and_under_its_form(world, db):
    from tests.billing_factories import make_plan

    a = world.a
    make_plan(db, a.staff, code="std")
    at = app(a.staff, "pages/pricing.py")
    at.session_state["pricing_tab"] = "Customers"
    at.selectbox(key="pr_customer").select(a.account_id).run()
    at.text_area(key="pr_assign_overrides").input("no such thing = 1")
    next(b for b in at.button if b.label == "Assign plan").click().run()
    assert not at.exception
    assert at.session_state["pricing_tab"] == "Customers"
    assert at.session_state["field_errors_form"] == "pr_assign"
