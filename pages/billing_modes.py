"""Billing modes: who pays for each customer's usage (customer, partner prepaid, partner on demand,
agency), changed from a chosen date on."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import clock
from core.billing import modes as billing_modes
from core.billing import wallet
from core.billing.modes import MODE_LABELS
from core.pricing.money import format_date
from db.models.wallet import BILLING_MODES
from pages.common import date_input_format, field_error, pick_partner, read, require, run_action

actor = require("billing.manage")
st.title("Billing modes")
st.caption("Who pays for each customer's usage. A change applies from the chosen day on; earlier usage "
           "stays as it was settled.")

partner_id = actor.partner_id
if actor.is_admin:
    partner_id = pick_partner(actor, "modes_partner")

rows = read(billing_modes.list_modes, actor, partner_id)
DECLINE_LABELS = {"block": "Block the usage", "flag": "Accept and flag the usage"}

if not rows:
    st.info("No customer accounts yet.")
    st.stop()

st.dataframe(pd.DataFrame([{
    "Customer": r.account_name,
    "Status": r.account_status.capitalize(),
    "Current mode": MODE_LABELS[r.mode],
    "Since": format_date(r.effective_from) if r.effective_from else "(default)",
    "Declined charge": DECLINE_LABELS.get(r.on_decline or "", ""),
    "Next change": f"{MODE_LABELS[r.next_mode]} from {format_date(r.next_effective_from)}" if r.next_mode else "",
} for r in rows]), hide_index=True, width="stretch", key="modes_table")

st.subheader("Change mode")
names = {r.account_id: r.account_name for r in rows}
with st.form("change_mode"):
    account_id = st.selectbox("Customer", list(names), format_func=names.get, key="mode_account")
    mode = st.selectbox("Mode", list(BILLING_MODES), format_func=MODE_LABELS.get, key="mode_mode")
    field_error("mode", "change_mode")
    on_decline = st.radio("If an on-demand charge is declined (on-demand mode only)", list(DECLINE_LABELS),
                          format_func=DECLINE_LABELS.get, key="mode_on_decline", horizontal=True)
    field_error("on_decline", "change_mode")
    effective = st.date_input("Effective from", value=clock.today(), min_value=clock.today(), key="mode_from", format=date_input_format())
    field_error("effective_from", "change_mode")
    submitted = st.form_submit_button("Change mode", type="primary")


def _change(args: tuple) -> None:
    if run_action(billing_modes.set_mode, actor, partner_id, *args[:3], on_decline=args[3],
                  success="Billing mode changed.", form="change_mode"):
        st.session_state.pop("mode_confirm", None)
        st.rerun()


if submitted:
    args = (account_id, mode, effective, on_decline)
    view = read(wallet.wallet_view, actor, partner_id) if mode == "partner_prepaid" else None
    # (no wallet at all: the service itself refuses, with its message next to the field)
    empty = view is not None and view.balance <= view.floor
    no_auto_buy = view is not None and not (view.auto_buy_credits and view.auto_buy_armed)
    if empty and no_auto_buy:  # the customer's usage would be refused at once: ask first
        st.session_state["mode_confirm"] = args
    else:
        _change(args)
pending = st.session_state.get("mode_confirm")
if pending:
    st.warning(f"The credits wallet is empty and automatic purchase is off: from "
               f"{format_date(pending[2])} on, {names.get(pending[0], 'this customer')}'s usage will be refused "
               "until you buy credits. Switch to prepaid anyway?", icon=":material/account_balance_wallet:")
    c1, c2, c3 = st.columns([1, 1, 2])
    if c1.button("Switch anyway", key="mode_confirm_yes", type="primary"):
        _change(pending)
    if c2.button("Cancel", key="mode_confirm_no"):
        st.session_state.pop("mode_confirm", None)
        st.rerun()
    c3.page_link("pages/wallet.py", label="Buy credits first", icon=":material/account_balance_wallet:")
