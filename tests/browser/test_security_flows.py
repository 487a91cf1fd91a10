"""Security in a real browser: planted Markdown payloads show as plain text on every page (no link, no image
fetched, no HTML), and a refused read shows a message instead of a traceback."""

from __future__ import annotations

from tests.browser.conftest import login, settle, shot, wait_app
from tests.factories import PASSWORD
from tests.test_security_markdown import plant_hostile_names


def test_planted_markdown_payloads_are_plain_text_on_every_page(world, app_url, page, engine):
    plant_hostile_names(world, engine)
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "evil.example" in r.url else None)
    login(page, app_url, "staff-a@test.example", PASSWORD)
    sidebar = page.locator('[data-testid="stSidebar"]')
    links = sidebar.locator('[data-testid="stSidebarNavLink"]')
    titles = [t.strip().split("\n")[-1] for t in links.all_inner_texts()]
    assert len(titles) >= 8, titles
    seen_plain = 0
    for i, title in enumerate(titles):
        links.nth(i).click()
        page.get_by_role("heading").first.wait_for(timeout=30000)
        settle(page)
        main = page.locator('[data-testid="stMain"], [data-testid="stSidebar"]')
        anchors = main.locator('a[href*="evil.example"]')
        assert anchors.count() == 0, (title, [anchors.nth(j).evaluate("e => e.parentElement.outerHTML")
                                              for j in range(anchors.count())])
        assert page.locator('img[src*="evil.example"], img[src="x"]').count() == 0, title
        assert page.locator('[data-testid="stMarkdownContainer"] b').count() == 0, title
        shown = page.locator('[data-testid="stMain"]').inner_text().replace("\u2060", "")
        if "[Session expired - log in again](http://evil.example/login)" in shown:
            seen_plain += 1
        shot(page, f"security-hostile-{title.lower().replace(' ', '-').replace('&', 'and')}")
    assert seen_plain >= 3  # the payload shows as typed: plain text, on the pages that name things
    assert fetched == []  # and the browser never fetched the planted image


def test_a_refused_read_is_a_message(world, app_url, page):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    settle(page)
    for _ in range(50):  # a new page load logs in from the remembered-login cookie: wait until it is set
        if any(c["name"] == "rc_remember" for c in page.context.cookies()):
            break
        page.wait_for_timeout(200)
    page.goto(app_url + "/usage_dashboard?from=2019-01-01&to=2026-01-01")
    wait_app(page)
    try:
        page.get_by_text("Choose a range of at most three years.").first.wait_for(timeout=30000)
    except Exception as exc:
        shot(page, "security-refused-read-failed")
        raise AssertionError(page.locator('[data-testid="stApp"]').inner_text()[:2000]) from exc
    assert page.locator('[data-testid="stException"]').count() == 0
    shot(page, "security-refused-read")


def test_log_in_and_log_out_are_audited(world, app_url, page, engine):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from db.models import AuditEntry

    login(page, app_url, "staff-b@test.example", PASSWORD)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    with Session(engine) as s:
        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == str(world.b.staff.user_id),
                                                            AuditEntry.action.in_(("login", "logout")))
                            .order_by(AuditEntry.id)).all()
    assert actions == ["login", "logout"]
