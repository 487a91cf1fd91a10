"""Log in."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import login, remember
from core.errors import AuthError
from pages.common import engine, log_in, run_action

st.title("Reseller Console")
st.caption("Log in to manage your customer accounts, usage and billing.")

with st.form("login", border=True):
    email = st.text_input("E-mail", key="login_email", autocomplete="username")
    password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
    keep = st.checkbox("Keep me logged in on this device (14 days)", value=True, key="login_keep")
    submitted = st.form_submit_button("Log in", type="primary", width="stretch")

if submitted:
    try:
        actor = login(engine(), email, password)
    except AuthError as exc:
        st.error(str(exc))
    else:
        token = run_action(remember, actor) if keep else None
        log_in(actor, token)
        st.rerun()

st.page_link("pages/signup.py", label="No account yet? Sign up", icon=":material/person_add:")
