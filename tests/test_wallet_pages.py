"""AppTest: the Credits wallet and Billing modes pages, as partner staff, platform admin and customers."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from core import clock
from core.billing import modes as bm
from core.billing import wallet
from tests.apptest import app, page_alone, texts
from tests.wallet_helpers import balance_of, ledger_kinds, setup_wallet

WALLET, MODES = "pages/wallet.py", "pages/billing_modes.py"


def _table(at, column):
    """The first dataframe on the page with this column (AppTest does not look dataframes up by key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _button(at, key):
    return next(b for b in at.button if b.key == key)


def test_staff_sets_up_wallet_adds_card_buys_and_configures(world, db):
    t = world.a
    at = app(t.staff, WALLET)
    assert not at.exception
    assert "no credit wallet yet" in texts(at)
    _button(at, "wallet_create").click().run()
    assert not at.exception and "Balance (credits)" in [m.label for m in at.metric]
    assert "DEMO payment gateway" in texts(at)
    at.text_input(key="card_number").input("4242 4242 4242 4242")
    at.button(key="FormSubmitter:demo_card-Add demo card").click().run()
    assert not at.exception
    assert "Card •••• 4242" in texts(at)
    at.number_input(key="buy_credits").set_value(50000).run()
    assert "EUR 450.00" in texts(at)  # shipped volume step: 0.009 per credit from 50,000
    _button(at, "buy_submit").click().run()
    assert not at.exception
    assert balance_of(db, t.partner_id) == Decimal(50000)
    at.text_input(key="set_threshold").input("1000")
    at.text_input(key="set_auto").input("abc")
    at.button(key="FormSubmitter:wallet_settings-Save settings").click().run()
    assert "Enter a number of credits" in texts(at)
    at.text_input(key="set_auto").input("20000")
    at.button(key="FormSubmitter:wallet_settings-Save settings").click().run()
    assert not at.exception
    with Session(db) as s:
        v = wallet.wallet_view(s, t.staff, t.partner_id)
    assert (v.low_balance_threshold, v.auto_buy_credits) == (Decimal(1000), Decimal(20000))
    assert "Adjust" not in [tab.label for tab in at.tabs]  # platform only


def test_ledger_paging_filter_draws_and_outbox(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000, low_balance_threshold=500)
    from db.engine import unit_of_work

    for i in range(60):
        with unit_of_work(db) as s:
            wallet.draw(s, t.partner_id, t.account_id, Decimal(10), f"p{i}")
    at = app(t.staff, WALLET)
    assert not at.exception
    assert "Page 1 of 2 · 61 entries" in texts(at)
    at.number_input(key="ledger_page").set_value(2).run()
    assert "Page 2 of 2" in texts(at)
    at.selectbox(key="ledger_kind").set_value("purchase").run()
    at.number_input(key="ledger_page").set_value(1).run()
    assert "1 entries" in texts(at)
    draws = _table(at, "Credits drawn")
    assert list(draws["Customer"]) == ["Customer a1"] and list(draws["Credits drawn"]) == ["600"]
    outbox = _table(at, "Subject")
    assert list(outbox["Subject"]) == ["Your credit balance is low"]
    at.date_input(key="draws_period").set_value((clock.today(),)).run()
    assert "Pick the first and the last day" in texts(at)


def test_admin_adjusts_with_reason(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100)
    at = app(world.admin, WALLET)
    at.selectbox(key="wallet_partner").set_value(t.partner_id).run()
    assert not at.exception
    at.text_input(key="adj_credits").input("25")
    at.button(key="FormSubmitter:wallet_adjust-Record adjustment").click().run()
    assert "A reason is required" in texts(at)
    at.text_input(key="adj_reason").input("Service credit for outage")
    at.button(key="FormSubmitter:wallet_adjust-Record adjustment").click().run()
    assert not at.exception
    assert ledger_kinds(db, t.partner_id) == ["purchase", "adjustment"]


def test_billing_modes_page_changes_mode(world, db):
    t = world.a
    at = app(t.staff, MODES)
    assert not at.exception
    table = _table(at, "Current mode")
    assert set(table["Customer"]) == {"Customer a1", "Customer a2"}
    assert set(table["Current mode"]) == {"Customer pays"}
    at.selectbox(key="mode_account").set_value(t.account_id)
    at.selectbox(key="mode_mode").set_value("partner_prepaid")
    at.button(key="FormSubmitter:change_mode-Change mode").click().run()
    assert "Set up the credit wallet" in texts(at)  # validation message next to the field
    at.selectbox(key="mode_mode").set_value("agency")
    at.button(key="FormSubmitter:change_mode-Change mode").click().run()
    assert not at.exception
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, clock.today())[0] == "agency"
    assert "Agency customer" in " ".join(_table(at, "Current mode")["Current mode"])


def test_customers_cannot_open_billing_pages(world, db):
    for role in ("manager", "user", "annotator"):
        actor = world.a.users[role]
        for page in (WALLET, MODES):
            at = page_alone(actor, page)
            assert "You do not have access to this page." in texts(at)


def test_wallet_page_shows_paid_free_expiring_and_receipts(world, db):
    from datetime import timedelta

    from db.engine import unit_of_work

    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=1000)
    day = clock.today()
    with unit_of_work(db) as s:
        wallet.grant_credits(s, world.admin, t.partner_id, 200, "Launch offer", expires_on=day + timedelta(days=10),
                             today=day)
        wallet.grant_credits(s, world.admin, t.partner_id, 100, "Later offer", expires_on=day + timedelta(days=60),
                             today=day)
    at = app(t.staff, WALLET)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Paid credits"], metrics["Free credits"], metrics["Expiring in the next 30 days"]) == (
        "1,000", "300", "200")
    assert list(_table(at, "Expires on")["Credits left"]) == ["200"]
    receipts = _table(at, "Number")
    assert len(receipts) == 1 and receipts["Total"][0] == "EUR 10.00"
    assert "Give free (promotional) credits" not in texts(at)  # platform only

    admin = app(world.admin, WALLET)
    admin.selectbox(key="wallet_partner").set_value(t.partner_id).run()
    admin.text_input(key="grant_credits").input("50")
    admin.text_input(key="grant_reason").input("Goodwill")
    admin.button(key="FormSubmitter:wallet_grant-Give credits").click().run()
    assert not admin.exception
    assert ledger_kinds(db, t.partner_id)[-1] == "grant"
    assert {m.label: m.value for m in admin.metric}["Free credits"] == "350"
