"""Overview: the landing page after login."""

from __future__ import annotations

import streamlit as st

from core.accounts import list_accounts
from core.permissions import allowed
from pages.common import read, require

actor = require()

st.title(f"Welcome, {actor.display_name}")
st.caption(f"{actor.role_label} · {actor.account_name or actor.partner_name}")

if allowed(actor, "account.list"):
    rows = read(list_accounts, actor)
    col1, col2, col3 = st.columns(3)
    col1.metric("Customer accounts", sum(1 for r in rows if r.status == "active"))
    col2.metric("Suspended", sum(1 for r in rows if r.status == "suspended"))
    col3.metric("Active users", sum(r.users for r in rows))
