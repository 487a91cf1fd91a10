"""Customers: the partner's customer accounts — search, filter, create, edit, suspend, delete, restore."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import accounts, impersonation
from core.permissions import allowed
from core.validation import countries, currencies
from pages.common import field_error, read, require, run_action, start_impersonation, visible_pages
from pages.user_admin import render_users

actor = require("account.create")

st.title("Customers")

partner_id = actor.partner_id
if actor.is_admin:
    partners = read(accounts.list_partners, actor)
    options = {p.id: p.name for p in partners}
    partner_id = st.selectbox("Partner", list(options), format_func=options.get, key="cust_partner")

country_codes = sorted(countries(), key=lambda c: countries()[c])
currency_codes = sorted(currencies())
STATUS_OPTIONS = ["active", "suspended", "deleted"]


def account_form(prefix: str, values: dict, submit_label: str) -> tuple[bool, dict]:
    """The account fields; returns (submitted, data)."""
    with st.form(f"{prefix}_form", clear_on_submit=False):
        c1, c2 = st.columns(2)
        data = {"name": c1.text_input("Organisation name", value=values.get("name") or "", key=f"{prefix}_name")}
        with c1:
            field_error("name")
        data["vat_id"] = c2.text_input("VAT id (optional)", value=values.get("vat_id") or "", key=f"{prefix}_vat")
        with c2:
            field_error("vat_id")
        data["contact_name"] = c1.text_input("Contact name", value=values.get("contact_name") or "", key=f"{prefix}_cname")
        data["contact_email"] = c2.text_input("Contact e-mail", value=values.get("contact_email") or "",
                                              key=f"{prefix}_cemail")
        with c2:
            field_error("contact_email")
        data["billing_email"] = c1.text_input("Billing e-mail", value=values.get("billing_email") or "",
                                              key=f"{prefix}_bemail")
        with c1:
            field_error("billing_email")
        data["address"] = c2.text_area("Address", value=values.get("address") or "", key=f"{prefix}_addr", height=68)
        country = values.get("country") or "NO"
        data["country"] = c1.selectbox("Country", country_codes, index=country_codes.index(country),
                                       format_func=lambda c: f"{countries()[c]} ({c})", key=f"{prefix}_country")
        currency = values.get("currency") or "EUR"
        data["currency"] = c2.selectbox("Currency", currency_codes, index=currency_codes.index(currency),
                                        key=f"{prefix}_currency")
        submitted = st.form_submit_button(submit_label, type="primary")
    return submitted, data


def render_client_actions(actor, partner_id: int, acc) -> None:
    """The row actions for one client: Reporting, Billing, Log in as (Edit and Delete are the tabs below)."""
    cols = st.columns(4)
    for col, (path, label, icon) in zip(cols, CLIENT_LINKS, strict=False):
        if any(p[1] == path for p in visible_pages(actor)):
            if col.button(label, key=f"cust_go_{path}", icon=icon, use_container_width=True):
                st.session_state["open_account"] = (partner_id, acc.id)
                st.switch_page(path)
    if allowed(actor, "impersonate", partner_id, acc.id) and acc.status == "active":
        if cols[3].button("Log in as", key="cust_impersonate", icon=":material/login:", use_container_width=True,
                          help="See the app as this customer's Manager. Every action is recorded under both names."):
            target = run_action(impersonation.start, actor, partner_id, acc.id)
            if target is not None:
                start_impersonation(target)
                st.rerun()


# Pages a client row links to (they read st.session_state["open_account"] to preselect the client).
CLIENT_LINKS = [
    ("pages/usage_account.py", "Reporting", ":material/monitoring:"),
    ("pages/statements.py", "Billing", ":material/receipt_long:"),
    ("pages/pricing.py", "Pricing", ":material/sell:"),
]

# ------------------------------------------------------------------ list
c1, c2 = st.columns([3, 2])
search = c1.text_input("Search by name, e-mail or id", key="cust_search", placeholder="e.g. Fjord")
statuses = c2.multiselect("Status", STATUS_OPTIONS, default=["active", "suspended"], key="cust_status")
rows = read(accounts.list_accounts, actor, search=search, statuses=tuple(statuses), partner_id=partner_id)

if rows:
    df = pd.DataFrame([{"Id": r.id, "Customer": r.name, "Contact": r.contact_email or "", "Country": r.country,
                        "Currency": r.currency, "Status": r.status, "Users": r.users,
                        "Created": r.created_at.date()} for r in rows])
    st.dataframe(df, hide_index=True, use_container_width=True, key="cust_table")
    st.caption(f"{len(rows)} customer account(s)")
else:
    st.info("No customer accounts match." if search or statuses != ["active", "suspended"]
            else "No customer accounts yet: create the first one below.")

# ------------------------------------------------------------------ create
with st.expander("New customer account", icon=":material/add:", expanded=not rows):
    submitted, data = account_form("new", {"currency": read(accounts.get_partner, partner_id).currency}, "Create customer")
    if submitted:
        acc = run_action(accounts.create_account, actor, partner_id=partner_id, success=None,
                         **{k: v or None for k, v in data.items()})
        if acc is not None:
            st.session_state["flash"] = ("success", f"Customer account “{acc.name}” created.")
            st.session_state["cust_open"] = acc.id
            st.rerun()

# ------------------------------------------------------------------ detail
if rows:
    ids = [r.id for r in rows]
    by_id = {r.id: r for r in rows}
    default = st.session_state.get("cust_open")
    st.divider()
    open_id = st.selectbox("Open customer account", ids, index=ids.index(default) if default in ids else 0,
                           format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].status})", key="cust_pick")
    acc = read(accounts.get_account, actor, partner_id, open_id)
    st.subheader(acc.name)
    st.caption(f"Customer #{acc.id} · {acc.status} · {countries().get(acc.country, acc.country)} · {acc.currency}")
    render_client_actions(actor, partner_id, acc)
    tab_details, tab_users, tab_actions = st.tabs(["Details", "Users", "Status"])
    with tab_details:
        if acc.status == "deleted":
            st.info("This account is deleted. A platform admin can restore it.")
        else:
            submitted, data = account_form(f"edit{acc.id}", accounts.account_snapshot(acc), "Save changes")
            if submitted:
                if run_action(accounts.update_account, actor, partner_id, acc.id, success="Changes saved.",
                              **{k: v or None for k, v in data.items()}) is not None:
                    st.rerun()
    with tab_users:
        render_users(actor, partner_id, acc.id, key_prefix=f"cu{acc.id}")
    with tab_actions:
        if acc.status == "active":
            if st.button("Suspend account", key="cust_suspend", icon=":material/pause_circle:"):
                if run_action(accounts.suspend_account, actor, partner_id, acc.id, success="Account suspended."):
                    st.rerun()
            st.caption("Suspending blocks the account's users from logging in until it is reactivated.")
        elif acc.status == "suspended":
            if st.button("Reactivate account", key="cust_reactivate", icon=":material/play_circle:"):
                if run_action(accounts.reactivate_account, actor, partner_id, acc.id, success="Account reactivated."):
                    st.rerun()
        if acc.status in ("active", "suspended"):
            st.markdown("**Delete account**")
            confirm = st.text_input(f"Type the account name “{acc.name}” to confirm deletion", key="cust_del_confirm")
            if st.button("Delete account", key="cust_delete", type="primary", icon=":material/delete:",
                         disabled=confirm.strip() != acc.name):
                if run_action(accounts.delete_account, actor, partner_id, acc.id, success=f"“{acc.name}” deleted."):
                    st.session_state.pop("cust_open", None)
                    st.rerun()
        if acc.status == "deleted" and allowed(actor, "account.restore", partner_id, acc.id):
            if st.button("Restore account", key="cust_restore", icon=":material/restore:"):
                if run_action(accounts.restore_account, actor, partner_id, acc.id, success="Account restored."):
                    st.rerun()
