"""Guardrails on the pages (issue 15): a switch to prepaid with an empty wallet asks first."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from core.billing import modes as bm
from tests.apptest import app, texts
from tests.wallet_helpers import setup_wallet


def test_switching_to_prepaid_with_an_empty_wallet_and_no_auto_buy_warns(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)  # a wallet at 0 credits, automatic purchase off
    today = datetime.now(UTC).date()
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
        assert bm.mode_at(s, t.partner_id, t.account_id, datetime.now(UTC).date())[0] == "partner_prepaid"
