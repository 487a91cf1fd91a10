"""AppTest: the API keys page and the webhooks & automation page."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.notify import webhooks
from tests.apptest import app, page_alone, texts


def test_api_keys_page_creates_shows_once_rotates_and_revokes(world, db):
    a = world.a
    at = app(a.staff, "pages/api_keys.py")
    assert not at.exception
    at.text_input(key="key_name").input("Billing system")
    at.multiselect(key="key_scopes").set_value(["usage:write", "statements:read"])
    at.button(key="key_create").click().run()
    assert not at.exception
    token = at.code[0].value
    assert token.startswith(f"rck_{a.partner_id}_")
    df = at.dataframe[0].value
    assert list(df["Name"]) == ["Billing system"] and list(df["Scopes"]) == ["usage:write, statements:read"]
    assert list(df["Last used"]) == ["never"]
    with db.connect() as c:
        stored = c.execute(text("SELECT secret_hash FROM api_keys")).scalar()
    assert token.split("_", 3)[3] not in stored  # only the hash is kept
    at.run()  # the key is shown once
    assert not at.code
    at.button(key="key_rotate").click().run()
    assert at.code[0].value != token
    df = at.dataframe[0].value
    assert sorted(df["Status"]) == ["active", "revoked"]
    at.button(key="key_revoke").click().run()
    assert list(at.dataframe[0].value["Status"]) == ["revoked", "revoked"]
    with db.connect() as c:
        acts = c.execute(text("SELECT action FROM audit_log WHERE entity = 'api_key' ORDER BY id")).scalars().all()
    assert acts == ["create", "revoke", "rotate", "revoke"]


def test_api_keys_page_refuses_a_key_without_scopes_and_customers(world):
    at = app(world.a.staff, "pages/api_keys.py")
    at.text_input(key="key_name").input("x")
    at.multiselect(key="key_scopes").set_value([])
    at.button(key="key_create").click().run()
    assert "Choose at least one scope." in texts(at)
    assert not at.code
    page = page_alone(world.a.users["manager"], "pages/api_keys.py")
    assert "You do not have access to this page." in [e.value for e in page.error]


def test_webhooks_page_endpoints_log_replay_and_cycle(world, db):
    a = world.a
    at = app(a.staff, "pages/webhooks.py")
    assert not at.exception
    at.text_input(key="hook_url").input("http://127.0.0.1:9/hook")
    at.multiselect(key="hook_types").set_value(["account.created"])
    at.button(key="hook_create").click().run()
    assert not at.exception
    assert at.code[0].value.startswith("whsec_")
    with Session(db) as s, s.begin():
        accounts.create_account(s, a.staff, name="Hooked", country="NO")
    from datetime import UTC, datetime

    webhooks.deliver_due(db, datetime.now(UTC))  # nobody listens on port 9: an error, retried later
    at.run()
    log = at.dataframe[1].value
    assert list(log["Event"]) == ["account.created"] and list(log["Attempts"]) == [1]
    assert "ConnectError" in log["Last error"][0]
    at.button(key="hook_replay").click().run()
    assert len(at.dataframe[1].value) == 2
    at.number_input(key="cycle_days").set_value(5)
    at.button(key="cycle_save").click().run()
    assert not at.exception
    with db.connect() as c:
        assert c.execute(text("SELECT review_days FROM billing_cycle_settings WHERE partner_id = :p"),
                         {"p": a.partner_id}).scalar() == 5
    at.button(key="hook_toggle").click().run()
    assert list(at.dataframe[0].value["Active"]) == [False]


def test_platform_admin_manages_keys_and_hooks_of_a_chosen_partner(world, db):
    b = world.b
    at = app(world.admin, "pages/api_keys.py")
    assert not at.exception
    at.selectbox(key="keys_partner").set_value(b.partner_id).run()
    at.text_input(key="key_name").input("For B")
    at.button(key="key_create").click().run()
    assert at.code[0].value.startswith(f"rck_{b.partner_id}_")
    at = app(world.admin, "pages/webhooks.py")
    at.selectbox(key="hooks_partner").set_value(b.partner_id).run()
    at.text_input(key="hook_url").input("https://hooks.example/b")
    at.multiselect(key="hook_types").set_value(["statement.finalised"])
    at.button(key="hook_create").click().run()
    assert not at.exception
    with db.connect() as c:
        assert c.execute(text("SELECT partner_id FROM webhook_endpoints")).scalars().all() == [b.partner_id]
        assert c.execute(text("SELECT partner_id FROM api_keys")).scalars().all() == [b.partner_id]
