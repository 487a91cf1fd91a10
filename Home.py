"""Reseller Console: the router. Builds the navigation from the logged-in user's role on every rerun.

A page that is not passed to st.navigation cannot be opened, not even by URL; each page checks the role
again itself (pages.common.require), and every core service checks it a third time.
"""

from __future__ import annotations

import streamlit as st

from core.permissions import allowed
from pages.common import current_actor, log_out, show_flash

st.set_page_config(page_title="Reseller Console", page_icon=":material/hub:", layout="wide")

# (section, script, title, icon, action the role must allow; None = every logged-in user)
PAGES: list[tuple[str, str, str, str, str | None]] = [
    ("Home", "pages/overview.py", "Overview", ":material/home:", None),
    ("Customers", "pages/customers.py", "Customers", ":material/apartment:", "account.create"),
    ("Customers", "pages/users.py", "Users & roles", ":material/group:", "user.list"),
    # -- usage pages (issue 4) --
    # -- pricing pages (issue 3) --
    # -- billing pages (issue 5) --
    # -- lab pages (issue 6) --
    ("Administration", "pages/partners.py", "Partners", ":material/handshake:", "partner.list"),
    ("Administration", "pages/audit.py", "Audit log", ":material/history:", "audit.view"),
    ("Account", "pages/profile.py", "My profile", ":material/person:", None),
]

PUBLIC_PAGES = [
    ("pages/login.py", "Log in", ":material/login:"),
    ("pages/signup.py", "Sign up", ":material/person_add:"),
]

actor = current_actor()

if actor is None:
    nav = st.navigation([st.Page(path, title=title, icon=icon, default=(i == 0))
                         for i, (path, title, icon) in enumerate(PUBLIC_PAGES)])
elif actor.must_change_password:
    nav = st.navigation([st.Page("pages/profile.py", title="Set a new password", icon=":material/key:", default=True)])
else:
    sections: dict[str, list] = {}
    first = True
    for section, path, title, icon, action in PAGES:
        if action is None or allowed(actor, action):
            sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon, default=first))
            first = False
    nav = st.navigation(sections)

if actor is not None:
    with st.sidebar:
        if actor.impersonator_email:
            st.warning(f"Logged in as {actor.email} by {actor.impersonator_email}")
        st.markdown(f"**{actor.display_name}**  \n{actor.role_label} · {actor.account_name or actor.partner_name}")
        if st.button("Log out", key="logout", icon=":material/logout:", use_container_width=True):
            log_out()
            st.rerun()

show_flash()
nav.run()
