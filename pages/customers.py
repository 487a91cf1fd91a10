"""Customers: the partner's customer accounts — search, filter, create; per client: Edit, Delete,
Suspend/Reactivate, Reporting, Billing, Pricing, Log in as; and the client's users."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import accounts, impersonation
from core.accounts.permissions import allowed
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

# Pages a client row links to (they read st.session_state["open_account"] to preselect the client).
CLIENT_LINKS = [
    ("pages/usage_account.py", "Reporting", ":material/monitoring:"),
    ("pages/statements.py", "Billing", ":material/receipt_long:"),
    ("pages/pricing.py", "Pricing", ":material/sell:"),
]


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
    return submitted, {k: v or None for k, v in data.items()}


def close_dialog() -> None:
    st.session_state.pop("cust_dialog", None)


@st.dialog("Edit customer account", width="large", on_dismiss=close_dialog)
def edit_dialog(acc) -> None:
    submitted, data = account_form(f"edit{acc.id}", accounts.account_snapshot(acc), "Save changes")
    if submitted and run_action(accounts.update_account, actor, partner_id, acc.id, success="Changes saved.",
                                **data) is not None:
        close_dialog()
        st.rerun()


@st.dialog("Delete customer account", on_dismiss=close_dialog)
def delete_dialog(acc) -> None:
    st.write(f"Deleting **{acc.name}** ends its users' access. The account and its history are kept; "
             "a platform admin can restore it.")
    confirm = st.text_input(f"Type the account name “{acc.name}” to confirm", key="cust_del_confirm")
    c1, c2 = st.columns(2)
    if c1.button("Delete account", key="cust_delete", type="primary", icon=":material/delete:",
                 disabled=confirm.strip() != acc.name):
        if run_action(accounts.delete_account, actor, partner_id, acc.id, success=f"“{acc.name}” deleted."):
            close_dialog()
            st.session_state.pop("cust_open", None)
            st.rerun()
    if c2.button("Cancel", key="cust_delete_cancel"):
        close_dialog()
        st.rerun()


def client_actions(acc) -> None:
    """Everything one can do with a client, in one bar."""
    active = acc.status != "deleted"
    buttons = []
    if active:
        buttons.append(("Edit", ":material/edit:", "cust_edit"))
    for path, label, icon in CLIENT_LINKS:
        if any(p[1] == path for p in visible_pages(actor)):
            buttons.append((label, icon, f"cust_go_{label.lower()}"))
    if acc.status == "active" and allowed(actor, "impersonate", partner_id, acc.id):
        buttons.append(("Log in as", ":material/login:", "cust_impersonate"))
    if acc.status == "active":
        buttons.append(("Suspend", ":material/pause_circle:", "cust_suspend"))
    elif acc.status == "suspended":
        buttons.append(("Reactivate", ":material/play_circle:", "cust_reactivate"))
    if active:
        buttons.append(("Delete", ":material/delete:", "cust_delete_open"))
    elif allowed(actor, "account.restore", partner_id, acc.id):
        buttons.append(("Restore", ":material/restore:", "cust_restore"))
    cols = st.columns(len(buttons))
    clicked = None
    for col, (label, icon, key) in zip(cols, buttons, strict=True):
        if col.button(label, key=key, icon=icon, width="stretch"):
            clicked = key
    if clicked == "cust_edit":
        st.session_state["cust_dialog"] = ("edit", acc.id)
    elif clicked == "cust_delete_open":
        st.session_state["cust_dialog"] = ("delete", acc.id)
    elif clicked and clicked.startswith("cust_go_"):
        path = next(p for p, label, _ in CLIENT_LINKS if f"cust_go_{label.lower()}" == clicked)
        st.session_state["open_account"] = (partner_id, acc.id)
        st.switch_page(path)
    elif clicked == "cust_impersonate":
        target = run_action(impersonation.start, actor, partner_id, acc.id)
        if target is not None:
            start_impersonation(target)
            st.rerun()
    elif clicked in ("cust_suspend", "cust_reactivate", "cust_restore"):
        fn, msg = {"cust_suspend": (accounts.suspend_account, "Account suspended: its users cannot log in."),
                   "cust_reactivate": (accounts.reactivate_account, "Account reactivated."),
                   "cust_restore": (accounts.restore_account, "Account restored.")}[clicked]
        if run_action(fn, actor, partner_id, acc.id, success=msg):
            st.rerun()
    dialog = st.session_state.get("cust_dialog")
    if dialog == ("edit", acc.id):
        edit_dialog(acc)
    elif dialog == ("delete", acc.id):
        delete_dialog(acc)


# ------------------------------------------------------------------ list
c1, c2 = st.columns([3, 2])
search = c1.text_input("Search by name, e-mail or id", key="cust_search", placeholder="e.g. Fjord")
statuses = c2.multiselect("Status", STATUS_OPTIONS, default=["active", "suspended"], key="cust_status")
rows = read(accounts.list_accounts, actor, search=search, statuses=tuple(statuses), partner_id=partner_id)

if rows:
    df = pd.DataFrame([{"Id": r.id, "Customer": r.name, "Contact": r.contact_email or "", "Country": r.country,
                        "Currency": r.currency, "Status": r.status, "Users": r.users,
                        "Created": r.created_at.date()} for r in rows])
    event = st.dataframe(df, hide_index=True, width="stretch", key="cust_table", on_select="rerun",
                         selection_mode="single-row")
    picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
    if picked and picked[0] < len(rows):
        st.session_state["cust_pick"] = rows[picked[0]].id
    st.caption(f"{len(rows)} customer account(s) · select a row to work with it")
else:
    st.info("No customer accounts match." if search or statuses != ["active", "suspended"]
            else "No customer accounts yet: create the first one below.")

# ------------------------------------------------------------------ create
with st.expander("New customer account", icon=":material/add:", expanded=not rows):
    submitted, data = account_form("new", {"currency": read(accounts.get_partner, partner_id).currency},
                                   "Create customer")
    if submitted:
        acc = run_action(accounts.create_account, actor, partner_id=partner_id, **data)
        if acc is not None:
            st.session_state["flash"] = ("success", f"Customer account “{acc.name}” created.")
            st.session_state["cust_open"] = acc.id
            st.session_state.pop("cust_pick", None)
            st.rerun()

# ------------------------------------------------------------------ one client
if rows:
    ids = [r.id for r in rows]
    by_id = {r.id: r for r in rows}
    opened = st.session_state.pop("cust_open", None)
    if opened in ids:
        st.session_state["cust_pick"] = opened
    if st.session_state.get("cust_pick") not in ids:
        st.session_state.pop("cust_pick", None)
    st.divider()
    open_id = st.selectbox("Customer account", ids,
                           format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].status})", key="cust_pick")
    acc = read(accounts.get_account, actor, partner_id, open_id)
    st.subheader(acc.name)
    st.caption(f"Customer #{acc.id} · {acc.status} · {countries().get(acc.country, acc.country)} · {acc.currency}"
               + (f" · {acc.contact_email}" if acc.contact_email else ""))
    client_actions(acc)
    st.markdown("#### Users")
    render_users(actor, partner_id, acc.id, key_prefix=f"cu{acc.id}")
