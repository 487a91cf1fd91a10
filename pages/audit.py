"""Audit log: every change, with who, what, which record, before and after, when."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.accounts import accounts, audit
from pages.common import read, require

actor = require("audit.view")
st.title("Audit log")

partner_id = actor.partner_id
if actor.is_admin:
    options = {0: "All partners", **{p.id: p.name for p in read(accounts.list_partners, actor)}}
    choice = st.selectbox("Partner", list(options), format_func=options.get, key="audit_partner")
    partner_id = choice or None

c1, c2 = st.columns([2, 1])
entity = c1.selectbox("Record type", ["(all)", "customer_account", "user", "partner", "plan", "plan_assignment",
                                      "billing_mode", "wallet", "statement"], key="audit_entity")
page_no = c2.number_input("Page", min_value=1, value=1, step=1, key="audit_page")
PAGE = 50
entries = read(audit.list_entries, actor, partner_id=partner_id, limit=PAGE, offset=(page_no - 1) * PAGE,
               entity=None if entity == "(all)" else entity)
if not entries:
    st.info("No audit entries here.")
else:
    st.dataframe(pd.DataFrame([{
        "When": e.at.strftime("%Y-%m-%d %H:%M:%S"),
        "Who": e.actor_email + (f" (as by {e.impersonator_email})" if e.impersonator_email else ""),
        "Action": e.action, "Record": f"{e.entity} #{e.entity_id}" if e.entity_id else e.entity,
        "Account": str(e.account_id or ""),
        "Before": json.dumps(e.before, ensure_ascii=False) if e.before else "",
        "After": json.dumps(e.after, ensure_ascii=False) if e.after else "",
    } for e in entries]), hide_index=True, width="stretch", key="audit_table")
    st.caption(f"Page {page_no}: {len(entries)} entries (newest first)")
