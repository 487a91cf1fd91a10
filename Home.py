"""Reseller Console: the router. Builds the navigation from the logged-in user's role on every rerun.

A page that is not passed to st.navigation cannot be opened, not even by URL; each page checks the role
again itself (pages.common.require), and every core service checks it a third time.
"""

from __future__ import annotations

import streamlit as st

from core.accounts import impersonation
from pages.common import (
    PUBLIC_PAGES,
    current_actor,
    end_impersonation,
    log_out,
    render_cookie_ops,
    run_action,
    show_flash,
    visible_pages,
)

st.set_page_config(page_title="Reseller Console", page_icon=":material/hub:", layout="wide")

actor = current_actor()

if actor is None:
    pages = [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon) in enumerate(PUBLIC_PAGES)]
    nav = st.navigation(pages)
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

# After logging in or out (or being logged out), start from the new navigation's first page.
if st.session_state.pop("go_home", False) and nav is not pages[0]:
    st.switch_page(pages[0])

if actor is not None:
    if actor.impersonator_email:
        st.warning(f"You are logged in as **{actor.display_name}** ({actor.email}), Manager of "
                   f"**{actor.account_name}**. Everything you do is recorded under your name too.",
                   icon=":material/visibility:")
        if st.button("Back to my account", key="imp_back", icon=":material/undo:"):
            run_action(impersonation.stop, actor)
            end_impersonation()
            st.rerun()
    with st.sidebar:
        st.markdown(f"**{actor.display_name}**  \n{actor.role_label} · {actor.account_name or actor.partner_name}")
        if st.button("Log out", key="logout", icon=":material/logout:", width="stretch"):
            log_out()
            st.rerun()

render_cookie_ops()
show_flash()
nav.run()
