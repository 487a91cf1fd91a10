"""My profile: who I am, and changing my password (forced after a reset)."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import change_password, log_out_everywhere, remember
from core.accounts.passwords import MIN_LENGTH
from pages.common import field_error, log_in, log_out, plain, require, run_action

actor = require()

if actor.must_change_password:
    st.title("Set a new password")
    st.info("Your password was reset. Choose a new password to continue.")
else:
    st.title("My profile")
    st.markdown(f"**{plain(actor.display_name)}** — {plain(actor.email)}  \n{actor.role_label} · "
                f"{plain(actor.account_name or actor.partner_name)}")
    st.subheader("Change password")

with st.form("change_password", clear_on_submit=False):
    current = st.text_input("Current (or one-time) password", type="password", key="pw_current")
    field_error("current")
    new = st.text_input(f"New password (at least {MIN_LENGTH} characters)", type="password", key="pw_new")
    field_error("new")
    submitted = st.form_submit_button("Save password", type="primary")

if submitted:
    fresh = run_action(change_password, actor, current=current, new=new,
                       success="Password changed. Every other session and remembered login has ended.")
    if fresh is not None:  # this session continues (with the new session version); all others ended
        token = run_action(remember, fresh) if st.session_state.get("remember_token") else None
        log_in(fresh, token, go_home=False)
        st.rerun()

if not actor.must_change_password and actor.impersonator_user_id is None:
    st.subheader("Sessions")
    st.caption("Ends every session and “keep me logged in” of your user, on every device, this one included.")
    if st.button("Log out everywhere", key="logout_everywhere", icon=":material/logout:"):
        if run_action(log_out_everywhere, actor):
            log_out(audited=False)
            st.session_state["flash"] = ("success", "You have been logged out everywhere.")
            st.rerun()
