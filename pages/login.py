"""Log in; also where the links e-mailed to users land (?confirm=... for a sign-up, ?reset=... for a new password)."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import confirm_email, login, remember, reset_with_token
from core.accounts.passwords import MIN_LENGTH
from core.errors import AuthError
from pages.common import client_address, engine, field_error, log_in, plain, run_action, show_flash

# the partner's brand when the login link names it (?brand=<partner>) or this browser's last user was its client
st.title(plain(st.session_state.get("brand_name") or "Reseller Console"))

confirm_token = st.query_params.get("confirm")
reset_token = st.query_params.get("reset")
if confirm_token:
    message = run_action(confirm_email, confirm_token)
    st.query_params.clear()
    if message:
        st.session_state["flash"] = ("success", message)
    st.rerun()

show_flash()

if reset_token:
    st.subheader("Set a new password")
    with st.form("reset_password"):
        new = st.text_input(f"New password (at least {MIN_LENGTH} characters)", type="password", key="reset_new",
                            autocomplete="new-password")
        field_error("new")
        if st.form_submit_button("Save password", type="primary"):
            message = run_action(reset_with_token, reset_token, new)
            if message:
                st.query_params.clear()
                st.session_state["flash"] = ("success", message)
                st.rerun()
    st.stop()

st.caption("Log in to see your usage and billing." if st.session_state.get("brand_slug")
           else "Log in to manage your customer accounts, usage and billing.")

with st.form("login", border=True):
    email = st.text_input("E-mail", key="login_email", autocomplete="username")
    password = st.text_input("Password", type="password", key="login_password", autocomplete="current-password")
    keep = st.checkbox("Keep me logged in on this device (14 days)", value=True, key="login_keep")
    submitted = st.form_submit_button("Log in", type="primary", width="stretch")

if submitted:
    try:
        actor = login(engine(), email, password, client=client_address())
    except AuthError as exc:
        st.error(plain(exc))
    else:
        token = run_action(remember, actor) if keep else None
        log_in(actor, token)
        st.rerun()

st.page_link("pages/signup.py", label="No account yet? Sign up", icon=":material/person_add:")
