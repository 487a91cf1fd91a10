"""Foundation flows in a real browser."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import CustomerAccount
from tests.browser.conftest import login, rerun, settle, shot, wait_app
from tests.factories import PASSWORD


def test_partner_creates_customer_sees_it_listed_and_logs_out(world, app_url, page, engine):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Customers").first.click()
    page.get_by_role("heading", name="Customers").wait_for()
    page.get_by_text("New customer account").click()
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Create customer"))
    form.get_by_label("Organisation name").fill("Browser Bygg AS")
    form.get_by_label("Contact e-mail").fill("post@browserbygg.example")
    with rerun(page):
        form.get_by_role("button", name="Create customer").click()
    page.get_by_text("Customer account “Browser Bygg AS” created.").first.wait_for(timeout=20000)
    shot(page, "foundation-customer-created")
    with Session(engine) as s:
        acc = s.scalar(select(CustomerAccount).where(CustomerAccount.name == "Browser Bygg AS"))
        assert acc is not None and acc.partner_id == world.a.partner_id
    # listed in the table (the grid is a canvas: check via search narrowing to one row count)
    page.get_by_label("Search by name, e-mail or id").fill("Browser Bygg")
    with rerun(page):
        page.get_by_label("Search by name, e-mail or id").press("Enter")
    page.get_by_text("1 customer account(s)").wait_for(timeout=20000)
    shot(page, "foundation-customer-listed")
    with rerun(page):
        page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    shot(page, "foundation-logged-out")


def test_annotator_cannot_reach_customers(world, app_url, page):
    login(page, app_url, "annotator-a@test.example", PASSWORD)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_role("link", name="Customers").count() == 0
    shot(page, "foundation-annotator-home")
    # Typing the page's address opens a new session: logged out, the address answers with the login form
    # (a deep link survives the login), and the annotator, once logged in, still has no Customers page.
    page.context.clear_cookies()
    page.goto(app_url + "/customers")
    wait_app(page)
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    settle(page)
    assert page.get_by_role("dialog").count() == 0  # no "Page not found" on the way (issue 15)
    page.get_by_label("E-mail").fill("annotator-a@test.example")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_text("Welcome,").first.wait_for(timeout=30000)
    shot(page, "foundation-annotator-customers-url")
    assert page.get_by_role("heading", name="Customers").count() == 0


def test_partner_logs_in_as_customer_manager_and_back(world, app_url, page):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Customers").first.click()
    page.get_by_role("heading", name="Customers").wait_for()
    with rerun(page):
        page.get_by_role("button", name="Log in as").click()
    page.get_by_text("You are logged in as").wait_for(timeout=20000)
    page.get_by_text("Welcome, manager a").wait_for(timeout=20000)
    shot(page, "foundation-impersonating")
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_role("link", name="Customers", exact=True).count() == 0
    with rerun(page):
        page.get_by_role("button", name="Back to my account").click()
    # back on the Customers page, at the customer "Log in as" started from (issue 15)
    page.get_by_role("heading", name="Customers").wait_for(timeout=20000)
    page.get_by_role("heading", name="Customer a1").wait_for(timeout=20000)
    assert page.get_by_text("You are logged in as").count() == 0


def test_a_reload_keeps_log_in_as_and_back_returns_to_the_customer(world, app_url, page):
    """Issue 15: reloading during "Log in as" keeps it (a signed, short-lived token bound to the remembered
    login); "Back" then returns to the customer it was started from; a tampered token is ignored."""
    login(page, app_url, "staff-a@test.example", PASSWORD)  # "Keep me logged in" is on by default
    with rerun(page):
        page.get_by_role("link", name="Customers").first.click()
    page.get_by_role("heading", name="Customer a1").wait_for(timeout=20000)
    with rerun(page):
        page.get_by_role("button", name="Log in as").click()
    page.get_by_text("You are logged in as").wait_for(timeout=20000)
    settle(page)
    assert any(c["name"] == "rc_imp" for c in page.context.cookies())
    page.reload()
    wait_app(page)
    page.get_by_text("You are logged in as").wait_for(timeout=20000)
    page.get_by_text("Welcome, manager a").first.wait_for(timeout=20000)
    shot(page, "foundation-impersonating-after-reload")
    with rerun(page):
        page.get_by_role("button", name="Back to my account").click()
    page.get_by_role("heading", name="Customer a1").wait_for(timeout=20000)
    assert page.get_by_text("You are logged in as").count() == 0
    # a forged token (another user, same signature) does not start "Log in as" on a reload
    with rerun(page):
        page.get_by_role("button", name="Log in as").click()
    page.get_by_text("You are logged in as").wait_for(timeout=20000)
    settle(page)
    imp = next(c for c in page.context.cookies() if c["name"] == "rc_imp")
    parts = imp["value"].split(".")
    parts[1] = str(int(parts[1]) + 1)
    page.context.add_cookies([{**imp, "value": ".".join(parts)}])
    page.reload()
    wait_app(page)
    page.get_by_text("Welcome,").first.wait_for(timeout=20000)
    assert page.get_by_text("You are logged in as").count() == 0


def test_client_actions_edit_dialog_and_reporting(world, app_url, page, engine):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    with rerun(page):
        page.get_by_role("link", name="Customers").first.click()
    page.get_by_role("heading", name="Customer a1").wait_for(timeout=20000)
    with rerun(page):
        page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Organisation name").fill("Customer a1 Edited")
    with rerun(page):
        dialog.get_by_role("button", name="Save changes").click()
    page.get_by_text("Changes saved.").first.wait_for(timeout=20000)
    with Session(engine) as s:
        assert s.get(CustomerAccount, (world.a.partner_id, world.a.account_id)).name == "Customer a1 Edited"
    shot(page, "foundation-client-edited")
    with rerun(page):
        page.get_by_role("button", name="Reporting").click()
    page.get_by_role("heading", name="Customer usage").wait_for(timeout=20000)
    settle(page)
    assert f"account={world.a.account_id}" in page.url
    shot(page, "foundation-client-reporting")


def test_kept_logged_in_across_reload_until_logout(world, app_url, page):
    login(page, app_url, "manager-a@test.example", PASSWORD)  # "Keep me logged in" is on by default
    settle(page)
    page.reload()
    wait_app(page)
    page.get_by_text("Welcome, manager a").wait_for(timeout=20000)
    with rerun(page):
        page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    settle(page)
    page.reload()
    wait_app(page)
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    assert page.get_by_text("Welcome,").count() == 0


def test_logout_right_after_login_revokes_the_remembered_login(world, app_url, page):
    login(page, app_url, "staff-a@test.example", PASSWORD)
    settle(page)
    remembered = [c for c in page.context.cookies() if c["name"] == "rc_remember"]
    assert remembered and remembered[0]["value"]
    with rerun(page):
        page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
    # a copy of the cookie taken before log-out (a stolen or stale one) cannot resume the login
    page.context.add_cookies(remembered)
    page.goto(app_url)
    wait_app(page)
    page.get_by_role("button", name="Log in").wait_for(timeout=20000)
