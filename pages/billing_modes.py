"""Billing modes: who pays for each customer's usage (customer, partner prepaid, partner on demand,
agency), changed from a chosen date on."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.billing import modes as billing_modes
from core.billing.modes import MODE_LABELS
from db.models.wallet import BILLING_MODES
from pages.common import field_error, read, require, run_action

actor = require("billing.manage")
st.title("Billing modes")
st.caption("Who pays for each customer's usage. A change applies from the chosen day on; earlier usage "
           "stays as it was settled.")

partner_id = actor.partner_id
if actor.is_admin:
    options = {p.id: p.name for p in read(accounts.list_partners, actor)}
    partner_id = st.selectbox("Partner", list(options), format_func=options.get, key="modes_partner")

rows = read(billing_modes.list_modes, actor, partner_id)
DECLINE_LABELS = {"block": "Block the usage", "flag": "Accept and flag the usage"}

if not rows:
    st.info("No customer accounts yet.")
    st.stop()

st.dataframe(pd.DataFrame([{
    "Customer": r.account_name,
    "Status": r.account_status,
    "Current mode": MODE_LABELS[r.mode],
    "Since": r.effective_from.isoformat() if r.effective_from else "(default)",
    "Declined charge": DECLINE_LABELS.get(r.on_decline or "", ""),
    "Next change": f"{MODE_LABELS[r.next_mode]} from {r.next_effective_from.isoformat()}" if r.next_mode else "",
} for r in rows]), hide_index=True, width="stretch", key="modes_table")

st.subheader("Change mode")
names = {r.account_id: r.account_name for r in rows}
with st.form("change_mode"):
    account_id = st.selectbox("Customer", list(names), format_func=names.get, key="mode_account")
    mode = st.selectbox("Mode", list(BILLING_MODES), format_func=MODE_LABELS.get, key="mode_mode")
    field_error("mode")
    on_decline = st.radio("If an on-demand charge is declined (on-demand mode only)", list(DECLINE_LABELS),
                          format_func=DECLINE_LABELS.get, key="mode_on_decline", horizontal=True)
    field_error("on_decline")
    effective = st.date_input("Effective from", value=date.today(), min_value=date.today(), key="mode_from")
    field_error("effective_from")
    if st.form_submit_button("Change mode", type="primary"):
        if run_action(billing_modes.set_mode, actor, partner_id, account_id, mode, effective, on_decline=on_decline,
                      success="Billing mode changed."):
            st.rerun()
