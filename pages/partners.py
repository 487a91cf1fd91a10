"""Partners: platform admins create reseller partners (tenants) and their staff."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.validation import countries, currencies
from pages.common import field_error, read, require, run_action

actor = require("partner.list")
st.title("Partners")

partners = read(accounts.list_partners, actor)
st.dataframe(pd.DataFrame([{"Id": p.id, "Partner": p.name + (" (platform)" if p.is_house else ""),
                            "Currency": p.currency, "Country": p.country or "", "Contact": p.contact_email or "",
                            "Active": "yes" if p.active else "no"} for p in partners]),
             hide_index=True, width="stretch", key="partners_table")

currency_codes = sorted(currencies())
country_codes = sorted(countries(), key=lambda c: countries()[c])

with st.expander("New partner", icon=":material/add:"):
    with st.form("new_partner"):
        name = st.text_input("Partner name", key="np_name")
        field_error("name")
        email = st.text_input("Contact e-mail", key="np_email")
        field_error("contact_email")
        c1, c2 = st.columns(2)
        currency = c1.selectbox("Currency", currency_codes, index=currency_codes.index("EUR"), key="np_currency")
        country = c2.selectbox("Country", country_codes, index=country_codes.index("NO"),
                               format_func=lambda c: f"{countries()[c]} ({c})", key="np_country")
        if st.form_submit_button("Create partner", type="primary"):
            p = run_action(accounts.create_partner, actor, name=name, contact_email=email or None, currency=currency,
                           country=country)
            if p is not None:
                st.session_state["flash"] = ("success", f"Partner “{p.name}” created.")
                st.rerun()

st.subheader("Partner staff")
options = {p.id: p.name for p in partners}
pid = st.selectbox("Partner", list(options), format_func=options.get, key="staff_partner")
staff = read(accounts.list_users, actor, pid, None)
if staff:
    st.dataframe(pd.DataFrame([{"Name": u.display_name, "E-mail": u.email, "Role": u.role,
                                "Active": "yes" if u.active else "no"} for u in staff]),
                 hide_index=True, width="stretch", key="staff_table")
else:
    st.info("No staff yet.")
with st.form("new_staff"):
    c1, c2 = st.columns(2)
    sname = c1.text_input("Name", key="ns_name")
    with c1:
        field_error("display_name")
    semail = c2.text_input("E-mail", key="ns_email")
    with c2:
        field_error("email")
    spw = st.text_input("Initial password", type="password", key="ns_password")
    field_error("password")
    if st.form_submit_button("Add staff member", type="primary"):
        u = run_action(accounts.create_staff, actor, partner_id=pid, email=semail, display_name=sname, password=spw)
        if u is not None:
            st.session_state["flash"] = ("success", f"{u.display_name} added as partner staff.")
            st.rerun()
