"""Reseller Console: the router. Builds the navigation from the logged-in user's role on every rerun.

A page that is not passed to st.navigation cannot be opened, not even by URL; each page checks the role
again itself (pages.common.require), and every core service checks it a third time. A link to an app page
(with its range in the query), opened in a new browser session, comes here first (require() sends it):
logged out, the login form shows, and after logging in the user lands on that page with the same query.

A partner's clients see the partner's name and logo (white label), never the platform's.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.accounts import impersonation
from core.errors import DomainError
from core.overview import brand_for
from pages.common import (
    APP_PAGE_PATHS,
    PUBLIC_PAGES,
    brand_css,
    current_actor,
    end_impersonation,
    enter_applies_dates,
    freeze_startup_objects,
    log_out,
    plain,
    read,
    render_cookie_ops,
    run_action,
    show_domain_error,
    show_flash,
    visible_pages,
)

ROOT = Path(__file__).resolve().parent
ICON = str(ROOT / "static" / "icon.png")  # shipped with the app: no icon font service needed offline

st.set_page_config(page_title="Reseller Console", page_icon=ICON, layout="wide")
st.session_state["_routed"] = True  # this session's runs go through the router (see pages.common.require)

actor = current_actor()


brand = read(brand_for, actor, st.query_params.get("brand") or st.session_state.get("brand_slug"))
if brand.partner_slug:
    st.session_state["brand_slug"] = brand.partner_slug  # the login page after log-out keeps the brand
st.session_state["brand_name"] = brand.name

if actor is None:
    pages = [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon) in enumerate(PUBLIC_PAGES)]
    # Every app page's address answers too, logged out, with the login form (hidden from the menu), so a shared
    # link never meets "Page not found"; after logging in, the user lands on that page with its query (range).
    stand_ins = [st.Page("pages/login.py", title="Log in", url_path=Path(path).stem, visibility="hidden")
                 for path in APP_PAGE_PATHS]
    nav = st.navigation(pages + stand_ins)
    if any(nav is p for p in stand_ins):
        st.session_state["after_login"] = (nav.url_path, st.query_params.to_dict())
elif actor.must_change_password:
    pages = [st.Page("pages/profile.py", title="Set a new password", icon=":material/key:", default=True)]
    nav = st.navigation(pages)
else:
    sections: dict[str, list] = {}
    pages = []
    for section, path, title, icon in visible_pages(actor):
        page = st.Page(path, title=title, icon=icon, default=not pages)
        sections.setdefault(section, []).append(page)
        pages.append(page)
    nav = st.navigation(sections, expanded=True)  # staff have more than 12 pages: never hide any

# After logging in, go where the visitor was headed (a deep link), else home; after "Back" from "Log in
# as", to the customer it was started from.
if actor is not None and not actor.must_change_password:
    wanted = st.session_state.pop("after_login", None)  # after logging in, or resuming a remembered login
    go_to = st.session_state.pop("go_to", None)
    target = None
    if wanted:
        target = next((p for p in pages if p.url_path == wanted[0]), None)
        if target is None:
            st.session_state["flash"] = ("info", "The page in your link is not available to your role.")
    elif go_to:
        target = next((p for p in pages if Path(str(p._page)).as_posix().endswith(go_to)), None)
    if target is not None:
        st.session_state.pop("go_home", None)
        st.switch_page(target, query_params=wanted[1] if wanted else None)
if st.session_state.pop("go_home", False) and nav is not pages[0]:
    st.switch_page(pages[0])

# The browser tab: the page and the brand (the partner's for its clients); the icon was set above, so no
# page's Material icon is fetched from a font service as the favicon (the app works offline).
st.set_page_config(page_title=f"{nav.title} · {brand.name}" if nav.title != brand.name else brand.name)
with st.sidebar:
    st.text(brand.logo_text)  # the partner's logo text for its clients, the platform's for everyone else
    css = brand_css(brand.primary_colour, brand.sidebar_colour)  # and the partner's colours (white label)
    if css:
        st.html(css)

if actor is not None:
    if actor.impersonator_email:
        st.warning(f"You are logged in as **{plain(actor.display_name)}** ({plain(actor.email)}), Manager of "
                   f"**{plain(actor.account_name)}**. Everything you do is recorded under your name too.",
                   icon=":material/visibility:")
        if st.button("Back to my account", key="imp_back", icon=":material/undo:"):
            run_action(impersonation.stop, actor)
            end_impersonation()
            st.rerun()
    with st.sidebar:
        st.text(f"{actor.display_name}\n{actor.role_label} · {actor.account_name or actor.partner_name}")
        if st.button("Log out", key="logout", icon=":material/logout:", width="stretch"):
            log_out(actor)
            st.rerun()

render_cookie_ops()
enter_applies_dates()
show_flash()
try:
    nav.run()
except DomainError as exc:  # a domain error no page caught: its message, never the redacted crash
    show_domain_error(exc)
freeze_startup_objects()
