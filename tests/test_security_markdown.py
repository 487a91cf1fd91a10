"""Markdown injection: names typed by other people are shown as text on every page, never as Markdown.

Every partner, customer account, user, plan and payment method gets a hostile name (a link, an image, HTML,
emphasis, a colour directive); then every page a role can open is rendered with AppTest, and every string
that Streamlit renders as Markdown (bodies, headings, captions, alerts, labels, expander and dialog titles)
is checked: the payloads may only appear escaped.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer, RepeatedScalarFieldContainer
from sqlalchemy import text

from core import clock
from core.billing import plans
from db.engine import unit_of_work
from pages.common import md_escape, visible_pages
from tests.apptest import app
from tests.billing_factories import make_plan
from tests.statements_helpers import generate
from tests.wallet_helpers import setup_wallet

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)

LINK = "[Session expired - log in again](http://evil.example/login)"
IMAGE = "![x](http://evil.example/x.png)"
HTML = "<b>bold</b><img src=x>"
EMPHASIS = "**x** :red[red] $x$"
# What must never reach Markdown as such: any of these means a payload was rendered unescaped.
RAW_FRAGMENTS = ["](http://evil", "<b>", "<img src=x>", "**x**", ":red[", "$x$"]


RepeatedTypes = (RepeatedCompositeFieldContainer, RepeatedScalarFieldContainer)


def hostile(label: str, payload: str) -> str:
    return f"{label} {payload}"


def _md_strings(at) -> list[str]:
    """Every string of the rendered page that Streamlit treats as Markdown."""
    fields = {"body", "label", "title", "help", "caption"}
    out: list[str] = []

    def visit_proto(msg) -> None:
        if msg.DESCRIPTOR.name in ("Text", "Code"):  # st.text / st.code: shown as typed, never Markdown
            return
        for fd, value in msg.ListFields():
            values = list(value) if isinstance(value, RepeatedTypes) else [value]
            if fd.type == fd.TYPE_MESSAGE:
                for v in values:
                    visit_proto(v)
            elif fd.type == fd.TYPE_STRING and fd.name in fields:
                out.extend(values)

    def visit(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            visit_proto(proto)
        for child in getattr(node, "children", {}).values():
            visit(child)

    visit(at._tree)
    return out


def _assert_escaped(at, where: str) -> list[str]:
    assert not at.exception, (where, at.exception)
    strings = _md_strings(at)
    for s in strings:
        for frag in RAW_FRAGMENTS:
            assert frag not in s, f"{where}: unescaped user text reaches Markdown: {s!r}"
    return strings


@pytest.fixture
def hostile_world(world, engine):
    return plant_hostile_names(world, engine)


def plant_hostile_names(world, engine):
    """Hostile names on partner A's partner, accounts, users, plan and card, and a statement (also used by
    the browser test)."""
    a = world.a
    month_start = (clock.today().replace(day=1) - timedelta(days=1)).replace(day=1)
    _, plan_id = make_plan(engine, a.staff, code="evil", name=hostile("Plan", LINK), effective_from=date(2024, 1, 1))
    with unit_of_work(engine) as s:
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    setup_wallet(engine, a.staff, a.partner_id)
    with engine.begin() as c:  # names as a hostile sign-up or colleague would type them
        c.execute(text("UPDATE partners SET name = :n WHERE id = :p"), {"n": hostile("Partner", IMAGE), "p": a.partner_id})
        c.execute(text("UPDATE customer_accounts SET name = :n WHERE partner_id = :p"),
                  {"n": hostile("Customer", LINK + HTML), "p": a.partner_id})
        c.execute(text("UPDATE users SET display_name = :n WHERE partner_id = :p"),
                  {"n": hostile("User", EMPHASIS + LINK), "p": a.partner_id})
        c.execute(text("UPDATE payment_methods SET label = :n WHERE partner_id = :p"),
                  {"n": hostile("Card", LINK), "p": a.partner_id})
    generate(engine, a.staff, a.partner_id, month=f"{month_start:%Y-%m}")
    return world


ROLES = ["partner_staff", "manager", "user", "annotation_manager", "annotator"]


@pytest.mark.parametrize("role", ROLES)
def test_every_page_shows_hostile_names_as_text(hostile_world, role):
    actor = hostile_world.actor(role)
    seen_escaped = False
    for _section, path, _title, _icon in visible_pages(actor):
        at = app(actor, path, state={"cust_pick": hostile_world.a.account_id})
        strings = _assert_escaped(at, f"{role} {path}")
        seen_escaped |= any(md_escape(LINK) in s or md_escape(EMPHASIS) in s for s in strings)
    assert seen_escaped  # the names were shown (escaped), so the check above looked at them


def test_admin_pages_and_dialogs_show_hostile_names_as_text(hostile_world):
    admin, a = hostile_world.admin, hostile_world.a
    for _section, path, _title, _icon in visible_pages(admin):
        _assert_escaped(app(admin, path), f"admin {path}")
    # the delete dialog of the hostile customer
    at = app(a.staff, "pages/customers.py", state={"cust_pick": a.account_id, "cust_dialog": ("delete", a.account_id)})
    strings = _assert_escaped(at, "delete dialog")
    assert any("Deleting" in s and md_escape(LINK) in s for s in strings)


def test_log_in_as_banner_and_sidebar(hostile_world):
    a = hostile_world.a
    manager = a.users["manager"]
    at = app(a.staff, state={"auth_impersonating": (manager.partner_id, manager.user_id)})
    strings = _assert_escaped(at, "impersonation banner")
    assert any("You are logged in as" in s and md_escape(EMPHASIS) in s for s in strings)


def test_flash_and_field_errors_are_plain_text(hostile_world):
    a = hostile_world.a
    at = app(a.staff, "pages/overview.py", state={"flash": ("success", hostile("Done", LINK))})
    strings = _assert_escaped(at, "flash")
    assert any(md_escape(LINK) in s for s in strings)


def test_md_escape_keeps_the_text():
    assert md_escape("a_b*c") == "a\\_b\\*c"
    assert md_escape("line\nbreak") == "line break"
    assert md_escape(None) == ""
    for payload in (LINK, IMAGE, HTML, EMPHASIS):
        escaped = md_escape(payload)
        assert not any(f in escaped for f in RAW_FRAGMENTS)
        assert escaped.replace("\\", "").replace("\u2060", "") == payload.replace("\\", "")
    assert "http\\:\u2060\\/\\/" in md_escape("http://x.example")  # GFM would link a bare URL otherwise
