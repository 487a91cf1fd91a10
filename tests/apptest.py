"""AppTest helpers: open the app logged in as a given actor."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from core.accounts.actor import Actor


def app(actor: Actor | None = None, page: str | None = None, state: dict | None = None) -> AppTest:
    """Run Home.py (the router) as `actor`, then switch to `page`.

    Note: AppTest registers pages/ as classic multipage scripts, so after the first run, later runs of the
    same AppTest (clicks) execute the page script alone, without Home.py. Pages check access themselves,
    so that is still a faithful test of each page; the router itself is exercised by the first run."""
    at = AppTest.from_file("../Home.py", default_timeout=60)
    for key, value in (state or {}).items():
        at.session_state[key] = value
    if actor is not None:
        at.session_state["auth_partner_id"] = actor.partner_id
        at.session_state["auth_user_id"] = actor.user_id
        at.session_state["auth_version"] = actor.session_version
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def unescape(markdown: str) -> str:
    """Text as the browser shows it: Markdown escapes (pages.common.md_escape) removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest) -> str:
    """All visible text of the page, for simple assertions (Markdown escapes of user text removed, as the
    browser shows it: `a\\-b` reads `a-b`)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "text"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return unescape("\n".join(parts))


def page_alone(actor: Actor | None, page: str) -> AppTest:
    """Run one page script on its own (bypassing the router), to check the page's own role check."""
    at = AppTest.from_file(f"../{page}", default_timeout=60)
    if actor is not None:
        at.session_state["auth_partner_id"] = actor.partner_id
        at.session_state["auth_user_id"] = actor.user_id
        at.session_state["auth_version"] = actor.session_version
    at.run()
    return at
