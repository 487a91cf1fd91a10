"""A partner's integration in a real browser: make an API key on the page, post events over HTTP with it
(httpx, like curl), and see them on the usage page."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import text

from api.main import create_app
from core import clock
from tests.api.servers import serve
from tests.browser.conftest import login, shot
from tests.factories import PASSWORD


def test_create_key_post_events_see_usage(world, engine, app_url, page):
    a = world.a
    login(page, app_url, "staff-a@test.example", PASSWORD)
    page.get_by_role("link", name="API keys").first.click()
    page.get_by_role("heading", name="API keys").first.wait_for(timeout=30000)
    page.get_by_label("Name (what uses it)").fill("Nightly usage export")
    page.get_by_role("button", name="Create key").click()
    page.get_by_text("Copy this key now").first.wait_for(timeout=30000)
    token = page.locator('[data-testid="stCode"] code').first.inner_text().strip()
    assert token.startswith(f"rck_{a.partner_id}_")
    shot(page, "api-key-created")

    t0 = clock.now() - timedelta(hours=1)
    events = [{"account_id": a.account_id, "event_id": f"http-{i}", "metric": "documents", "quantity": 617,
               "occurred_at": (t0 + timedelta(seconds=i)).isoformat()} for i in range(2)]
    with serve(create_app(engine)) as api:
        r = httpx.post(f"{api}/v1/usage/events", json={"events": events},
                       headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text

    with engine.connect() as c:  # the key's "last used" is set by that request
        assert c.execute(text("SELECT last_used_at FROM api_keys")).scalar() is not None
    page.get_by_role("link", name="Usage overview").first.click()
    page.get_by_role("heading", name="Usage").first.wait_for(timeout=30000)
    page.get_by_text("Every customer").first.wait_for(timeout=30000)
    page.get_by_text("1,234").first.wait_for(timeout=30000)  # 2 × 617 documents for Customer a1
    shot(page, "api-events-on-usage-page")


def test_webhooks_page_shows_the_delivery_log(world, engine, app_url, page, monkeypatch):
    from sqlalchemy.orm import Session

    from core.accounts import accounts
    from core.notify import webhooks

    monkeypatch.setenv("RC_WEBHOOKS_ALLOW_PRIVATE", "1")
    a = world.a
    with Session(engine) as s, s.begin():
        webhooks.create_endpoint(s, a.staff, a.partner_id, url="http://127.0.0.1:9/hooks",
                                 event_types=["account.created", "statement.finalised"])
        accounts.create_account(s, a.staff, name="Hooked AS", country="NO")
    webhooks.deliver_due(engine, clock.now())  # nobody listens: an error, retried later
    login(page, app_url, "staff-a@test.example", PASSWORD)
    page.get_by_role("link", name="Webhooks & automation").first.click()
    page.get_by_role("heading", name="Webhooks & automation").first.wait_for(timeout=30000)
    shot(page, "webhooks-endpoints")
    page.get_by_role("tab", name="Delivery log").click()
    page.get_by_role("button", name="Replay").wait_for(timeout=30000)
    shot(page, "webhooks-delivery-log")
    page.get_by_role("tab", name="Billing cycle").click()
    page.get_by_label("Review window (days)").wait_for(timeout=30000)
    shot(page, "webhooks-billing-cycle")
