"""Users of one customer account: list, add, change role, deactivate/reactivate, reset password.

Shared by the Customers page (detail view) and the Users & roles page. Not a page itself.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.accounts.actor import CUSTOMER_ROLES, ROLE_LABELS, Actor
from pages.common import field_error, read, run_action


def render_users(actor: Actor, partner_id: int, account_id: int, key_prefix: str = "ua") -> None:
    users = read(accounts.list_users, actor, partner_id, account_id)
    if users:
        st.dataframe(pd.DataFrame([{
            "Name": u.display_name, "E-mail": u.email, "Role": ROLE_LABELS[u.role],
            "Active": "yes" if u.active else "no",
            "Must set password": "yes" if u.must_change_password else "",
            "Last login": u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never",
        } for u in users]), hide_index=True, width="stretch", key=f"{key_prefix}_table")
    else:
        st.info("This account has no users yet.")

    otp = st.session_state.pop(f"{key_prefix}_otp", None)
    if otp:
        st.success(f"One-time password for {otp[0]}: `{otp[1]}` — give it to the user; it is shown only once "
                   "and must be replaced at their next login.")

    with st.expander("Add a user", icon=":material/person_add:"):
        with st.form(f"{key_prefix}_add"):
            c1, c2 = st.columns(2)
            name = c1.text_input("Name", key=f"{key_prefix}_new_name")
            with c1:
                field_error("display_name")
            email = c2.text_input("E-mail", key=f"{key_prefix}_new_email")
            with c2:
                field_error("email")
            role = c1.selectbox("Role", CUSTOMER_ROLES, format_func=ROLE_LABELS.get, key=f"{key_prefix}_new_role")
            password = c2.text_input("Initial password (leave empty for a one-time password)", type="password",
                                     key=f"{key_prefix}_new_pw")
            with c2:
                field_error("password")
            if st.form_submit_button("Add user", type="primary"):
                user = run_action(accounts.create_user, actor, partner_id=partner_id, account_id=account_id,
                                  email=email, display_name=name, role=role, password=password or None)
                if user is not None:
                    st.session_state["flash"] = ("success", f"{user.display_name} added as {ROLE_LABELS[user.role]}.")
                    if user.one_time_password:
                        st.session_state[f"{key_prefix}_otp"] = (user.email, user.one_time_password)
                    st.rerun()

    if not users:
        return
    st.markdown("**Manage a user**")
    by_id = {u.id: u for u in users}
    uid = st.selectbox("User", list(by_id), format_func=lambda i: f"{by_id[i].display_name} <{by_id[i].email}>",
                       key=f"{key_prefix}_pick")
    user = by_id[uid]
    c1, c2, c3 = st.columns(3)
    with c1:
        new_role = st.selectbox("Role", CUSTOMER_ROLES, index=CUSTOMER_ROLES.index(user.role),
                                format_func=ROLE_LABELS.get, key=f"{key_prefix}_role_{uid}")
        if st.button("Change role", key=f"{key_prefix}_chrole", disabled=new_role == user.role):
            if run_action(accounts.change_role, actor, partner_id, uid, new_role,
                          success=f"{user.display_name} is now {ROLE_LABELS[new_role]}."):
                st.rerun()
    with c2:
        st.write("")
        label = "Deactivate" if user.active else "Reactivate"
        if st.button(label, key=f"{key_prefix}_active", icon=":material/block:" if user.active else ":material/check:"):
            if run_action(accounts.set_user_active, actor, partner_id, uid, not user.active,
                          success=f"{user.display_name} {'deactivated' if user.active else 'reactivated'}."):
                st.rerun()
    with c3:
        st.write("")
        if st.button("Reset password", key=f"{key_prefix}_reset", icon=":material/key:"):
            temp = run_action(accounts.reset_password, actor, partner_id, uid)
            if temp:
                st.session_state[f"{key_prefix}_otp"] = (user.email, temp)
                st.rerun()
