"""API keys: partner staff create, rotate and revoke the keys their machines use with the HTTP API."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import accounts, apikeys
from pages.common import field_error, read, require, run_action, show_flash

actor = require("apikey.manage")
st.title("API keys")
st.caption("Keys let your systems use the HTTP API (record usage, create customer accounts, fetch statements). "
           "A key is shown once, when it is made; only a fingerprint of it is kept.")
show_flash()

partner_id = actor.partner_id
if actor.is_admin:
    partners = {p.id: p.name for p in read(accounts.list_partners, actor)}
    partner_id = st.selectbox("Partner", list(partners), format_func=partners.get, key="keys_partner")

token = st.session_state.pop("new_api_key", None)
if token:
    st.success("Copy this key now: it will not be shown again.")
    st.code(token, language=None)

with st.form("new_key", clear_on_submit=True):
    st.subheader("New key")
    name = st.text_input("Name (what uses it)", key="key_name", max_chars=apikeys.MAX_NAME)
    field_error("name")
    scopes = st.multiselect("Scopes", list(apikeys.SCOPES), default=["usage:write"], key="key_scopes",
                            format_func=lambda s: f"{s} — {apikeys.SCOPE_LABELS[s]}")
    field_error("scopes")
    if st.form_submit_button("Create key", key="key_create"):
        new = run_action(apikeys.create_key, actor, partner_id, name=name, scopes=scopes, success="Key created.")
        if new is not None:
            st.session_state["new_api_key"] = new.token
            st.rerun()

keys = read(apikeys.list_keys, actor, partner_id)
st.subheader("Keys")
if not keys:
    st.info("No keys yet.")
else:
    st.dataframe(pd.DataFrame([{
        "Name": k.name, "Key": k.hint, "Scopes": ", ".join(k.scopes),
        "Created": k.created_at.strftime("%Y-%m-%d %H:%M"),
        "Last used": k.last_used_at.strftime("%Y-%m-%d %H:%M:%S") if k.last_used_at else "never",
        "Status": "revoked" if k.revoked_at else "active",
    } for k in keys]), hide_index=True, width="stretch", key="keys_table")
    live = {k.id: f"{k.name} ({k.hint})" for k in keys if k.revoked_at is None}
    if live:
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        chosen = c1.selectbox("Key", list(live), format_func=live.get, key="key_pick")
        if c2.button("Rotate", key="key_rotate", help="Make a new key with the same name and scopes; this one "
                                                        "stops working at once."):
            new = run_action(apikeys.rotate_key, actor, partner_id, chosen, success="Key rotated.")
            if new is not None:
                st.session_state["new_api_key"] = new.token
                st.rerun()
        if c3.button("Revoke", key="key_revoke", type="primary"):
            if run_action(apikeys.revoke_key, actor, partner_id, chosen, success="Key revoked.") is not None:
                st.rerun()
st.caption("Using the API: see the OpenAPI page at http://localhost:8000/docs and docs/api.md.")
