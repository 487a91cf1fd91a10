"""Users & roles: partner staff and admins manage users of any of their customer accounts; a Manager
manages the users of their own account."""

from __future__ import annotations

import streamlit as st

from core.accounts import accounts
from pages.common import pick_partner, plain, read, require
from pages.user_admin import render_users

actor = require("user.list")
st.title("Users & roles")

if actor.account_id is not None:  # a Manager: their own account only
    st.caption(f"Users of {plain(actor.account_name)}")
    render_users(actor, actor.partner_id, actor.account_id, key_prefix="own")
else:
    partner_id = actor.partner_id
    if actor.is_admin:
        partner_id = pick_partner(actor, "users_partner")
    rows = read(accounts.list_accounts, actor, partner_id=partner_id)
    if not rows:
        st.info("No customer accounts yet. Create one on the Customers page.")
        st.stop()
    names = {r.id: f"{r.name} (#{r.id})" for r in rows}
    account_id = st.selectbox("Customer account", list(names), format_func=names.get, key="users_account")
    render_users(actor, partner_id, account_id, key_prefix=f"ua{account_id}")
