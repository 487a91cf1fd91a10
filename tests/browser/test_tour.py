"""The tour: every demo role visits every page of its navigation in a real browser, chooses every option of
every metric selector, and the test fails on any error element (a crash or an error message). It also
makes the README's screenshots (docs/screenshots/).

The demo data (seeds/scenarios/default.toml: four reseller worlds with 13 months of usage) is loaded into
the test database first, as `make run` does."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from core import clock
from db.testing import reset_data
from seeds.loader import load_default_demo_if_empty
from tests.browser.conftest import ARTIFACTS, follow_the_server_clock, login, settle, shot

pytestmark = pytest.mark.tour  # a target of its own (make test-tour): make test stays well under 15 minutes

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
DEMO_PASSWORD = "demo-pass-2026"
ROLES = [  # the demo logins in README.md
    ("admin@example.com", "Platform admin"),
    ("partner@example.com", "Partner staff, Nordic Docs"),
    ("manager@example.com", "Manager, Fjord Logistics"),
    ("user@example.com", "User"),
    ("annotation.manager@example.com", "Annotation Manager"),
    ("annotator@example.com", "Annotator"),
    ("partner2@example.com", "Partner staff, Alpen (prepaid)"),
    ("manager2@example.com", "Manager, Münchner Mandanten"),
    ("staff@textwave.example", "Partner staff, TextWave (SMS)"),
    ("staff@regnskapnord.example", "Partner staff, accounting API"),
]
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def demo(owner_engine, app_url):
    follow_the_server_clock()  # the demo's 13 months end on the server's "today" (tests/when.py)
    reset_data(owner_engine)  # the demo is loaded as set-up does: by the owner
    assert load_default_demo_if_empty(owner_engine)
    clock.travel_to(None)
    yield
    reset_data(owner_engine)


def no_errors(page, where: str) -> None:
    settle(page)
    found = page.locator(ERRORS)
    if found.count():
        shot(page, "tour-error")
        raise AssertionError(f"{where}: {found.first.inner_text()[:500]}")


def nav_links(page) -> list[str]:
    nav = page.locator('[data-testid="stSidebarNav"] a')
    # a link's text is its Material icon's name, then its label
    return [t.strip().split("\n")[-1].strip() for t in nav.all_inner_texts() if t.strip()]


def open_page(page, name: str) -> float:
    t0 = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"] a').filter(has=page.get_by_text(name, exact=True)).first.click()
    settle(page)
    return time.perf_counter() - t0


def _open(page, box) -> None:
    """Open a selectbox's list (again if a rerun closed it)."""
    for _ in range(4):
        settle(page)
        box.get_by_role("combobox").first.click()
        try:
            _options(page).first.wait_for(timeout=5000)
            return
        except Exception:  # closed by a rerun: try again
            page.keyboard.press("Escape")
    raise AssertionError("the selectbox did not open")


def _options(page):
    return page.get_by_role("listbox", name="Metric").get_by_role("option")


def _metric_boxes(page):
    return page.locator('[data-testid="stSelectbox"]').filter(
        has=page.locator('[data-testid="stWidgetLabel"]').get_by_text("Metric", exact=True))


def _all_options(page) -> list[str]:
    """Every option of the open list. Long lists are virtual (only the rows in view exist), so the list is
    scrolled to its end, collecting the rows it shows on the way."""
    box = page.get_by_role("listbox", name="Metric")
    seen: list[str] = []
    for _ in range(200):
        for t in _options(page).all_inner_texts():
            if t.strip() and t.strip() not in seen:
                seen.append(t.strip())
        at_end = box.evaluate("e => { const s = [e, ...e.querySelectorAll('*')].find("
                              "x => x.scrollHeight > x.clientHeight + 1) || e;"
                              " const end = s.scrollTop + s.clientHeight >= s.scrollHeight - 1;"
                              " s.scrollTop += Math.max(s.clientHeight - 40, 20); return end; }")
        if at_end:
            break
        page.wait_for_timeout(50)
    return seen


def choose_every_metric(page, where: str) -> int:
    """Every option of every selectbox labelled "Metric" on the page, one after the other. An option is
    found by typing its name (the list filters as one types), so it is chosen even when far down a long
    list."""
    chosen = 0
    for b in range(_metric_boxes(page).count()):
        _open(page, _metric_boxes(page).nth(b))
        options = _all_options(page)
        page.keyboard.press("Escape")
        for option in options:
            _open(page, _metric_boxes(page).nth(b))
            page.keyboard.type(option)
            _options(page).filter(has=page.get_by_text(option, exact=True)).first.click()
            no_errors(page, f"{where}, metric {option!r}")
            chosen += 1
    return chosen


@pytest.mark.parametrize("email,who", ROLES, ids=[r[0] for r in ROLES])
def test_every_role_every_page_every_metric(demo, app_url, page, email, who):
    login(page, app_url, email, DEMO_PASSWORD)
    no_errors(page, f"{who}: Overview")
    pages = nav_links(page)
    assert pages, who
    for name in pages:
        TIMES[f"{who} · {name}"] = open_page(page, name)
        no_errors(page, f"{who}: {name}")
        if name.startswith("Usage") or name == "Customer usage":
            chosen = choose_every_metric(page, f"{who}: {name}")
            body = page.inner_text("body")
            assert chosen or "No usage recorded" in body or "no customer accounts" in body, (who, name)
    if email == "partner@example.com":
        _screenshots(page)
    slow = sorted(TIMES.items(), key=lambda kv: -kv[1])[:3]
    print(f"\n{who}: {len(pages)} pages; slowest so far: " + ", ".join(f"{k} {v:.1f}s" for k, v in slow))


def _screenshots(page) -> None:
    """The README's three screenshots: the partner's Overview, the usage dashboard and the lab."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for nav_name, file in (("Overview", "overview"), ("Usage overview", "usage-dashboard"),
                           ("Billing-model lab", "lab")):
        open_page(page, nav_name)
        page.wait_for_timeout(1500)  # charts draw after the run
        if file == "lab":  # the comparison, not the form above it
            side = page.get_by_text("Side by side")
            if side.count():
                side.first.evaluate("e => e.scrollIntoView({block: 'start'})")
                page.wait_for_timeout(800)
        path = shot(page, f"readme-{file}")
        shutil.copy(path, SCREENSHOTS / f"{file}.png")


def test_a_deep_link_survives_login(demo, app_url, page):
    """A shared link to a page with a range, opened logged out, shows the login form and then that page
    with the same range."""
    page.context.clear_cookies()
    page.goto(app_url + "/usage_dashboard?preset=custom&from=2026-02-01&to=2026-02-28")
    page.get_by_role("button", name="Log in").wait_for(timeout=30000)
    settle(page)
    assert page.get_by_role("dialog").count() == 0  # no "Page not found" on the way (issue 15)
    page.get_by_label("E-mail").fill("partner@example.com")
    page.get_by_label("Password", exact=True).fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Usage").first.wait_for(timeout=30000)
    settle(page)
    assert "usage_dashboard" in page.url and "preset=custom" in page.url and "from=2026-02-01" in page.url, page.url
    no_errors(page, "deep link")


def test_a_partners_client_sees_only_the_partners_brand(demo, app_url, page, owner_engine):
    """Issue 15: a partner's client sees the partner's name, logo text and colours on every page of its
    navigation, never the platform's name."""
    with owner_engine.begin() as c:  # Nordic Docs sets its brand with its statement branding
        c.execute(text("INSERT INTO statement_settings (partner_id, logo_text, primary_colour, sidebar_colour) "
                       "SELECT id, 'NORDIC DOCS', '#0f766e', '#ecfdf5' FROM partners WHERE name = 'Nordic Docs AS' "
                       "ON CONFLICT (partner_id) DO UPDATE SET logo_text = excluded.logo_text, "
                       "primary_colour = excluded.primary_colour, sidebar_colour = excluded.sidebar_colour"))
    login(page, app_url, "manager@example.com", DEMO_PASSWORD)
    settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert "NORDIC DOCS" in sidebar.inner_text()
    assert sidebar.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(236, 253, 245)"
    for name in nav_links(page):
        open_page(page, name)
        title, body = page.title(), page.inner_text("body")
        assert "Reseller Console" not in title and "Reseller Console" not in body, (name, title)
        assert "Nordic Docs AS" in title, title
    shot(page, "tour-white-label-manager")


def test_times_recorded():
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "tour-times.txt").write_text("\n".join(f"{v:6.2f}s  {k}" for k, v in
                                                        sorted(TIMES.items(), key=lambda kv: -kv[1])))
