"""Webhooks and automation: endpoints that hear about events, their delivery log (replay), and the
automatic billing cycle's settings."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.accounts.permissions import allowed
from core.notify import webhooks
from core.worker import cycle
from pages.common import field_error, read, require, run_action, show_flash

actor = require("webhook.manage")
st.title("Webhooks & automation")
show_flash()

partner_id = actor.partner_id
if actor.is_admin:
    partners = {p.id: p.name for p in read(accounts.list_partners, actor)}
    partner_id = st.selectbox("Partner", list(partners), format_func=partners.get, key="hooks_partner")

tab_ep, tab_log, tab_cycle = st.tabs(["Endpoints", "Delivery log", "Billing cycle"])

with tab_ep:
    secret = st.session_state.pop("new_webhook_secret", None)
    if secret:
        st.success("Signing secret of the endpoint (keep it on your receiver to verify signatures):")
        st.code(secret, language=None)
    with st.form("new_endpoint", clear_on_submit=True):
        st.subheader("New endpoint")
        url = st.text_input("URL", placeholder="https://example.com/hooks/reseller", key="hook_url")
        field_error("url")
        description = st.text_input("Description (optional)", key="hook_description")
        types = st.multiselect("Events", list(webhooks.EVENT_TYPES), key="hook_types",
                               format_func=lambda t: f"{t} — {webhooks.EVENT_TYPES[t]}")
        field_error("event_types")
        if st.form_submit_button("Add endpoint", key="hook_create"):
            new = run_action(webhooks.create_endpoint, actor, partner_id, url=url, event_types=types,
                             description=description, success="Endpoint added.")
            if new is not None:
                st.session_state["new_webhook_secret"] = new.secret
                st.rerun()
    endpoints = read(webhooks.list_endpoints, actor, partner_id)
    if not endpoints:
        st.info("No endpoints yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "Id": e.id, "URL": e.url, "Events": ", ".join(e.event_types), "Description": e.description or "",
            "Active": e.active, "Created": e.created_at.strftime("%Y-%m-%d %H:%M")} for e in endpoints]),
            hide_index=True, width="stretch", key="hooks_table")
        labels = {e.id: f"#{e.id} {e.url}" for e in endpoints}
        c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        pick = c1.selectbox("Endpoint", list(labels), format_func=labels.get, key="hook_pick")
        active = next(e.active for e in endpoints if e.id == pick)
        if c2.button("Disable" if active else "Enable", key="hook_toggle"):
            run_action(webhooks.set_endpoint_active, actor, partner_id, pick, not active,
                       success="Endpoint disabled." if active else "Endpoint enabled.")
            st.rerun()
        if c3.button("New secret", key="hook_rotate"):
            new_secret = run_action(webhooks.rotate_secret, actor, partner_id, pick, success="New secret made.")
            if new_secret:
                st.session_state["new_webhook_secret"] = new_secret
                st.rerun()

with tab_log:
    status = st.selectbox("Status", ["(all)", "pending", "delivered", "failed"], key="hook_log_status")
    deliveries = read(webhooks.list_deliveries, actor, partner_id, status=None if status == "(all)" else status)
    urls = {e.id: e.url for e in read(webhooks.list_endpoints, actor, partner_id)}
    if not deliveries:
        st.info("No deliveries yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "Id": d.id, "Created": d.created_at.strftime("%Y-%m-%d %H:%M:%S"), "Event": d.event_type,
            "Endpoint": urls.get(d.endpoint_id, str(d.endpoint_id)), "Status": d.status, "Attempts": d.attempts,
            "Response": "" if d.response_code is None else str(d.response_code),
            "Last error": d.last_error or "",
            "Next attempt": d.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if d.status == "pending" else "",
            "Replay of": "" if d.replay_of is None else str(d.replay_of)} for d in deliveries]),
            hide_index=True, width="stretch", key="hook_log_table")
        ids = [d.id for d in deliveries]
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        which = c1.selectbox("Delivery", ids, key="hook_replay_pick")
        if c2.button("Replay", key="hook_replay"):
            run_action(webhooks.replay, actor, partner_id, which, success="Delivery queued again.")
            st.rerun()

with tab_cycle:
    if not allowed(actor, "billing.manage", partner_id):
        st.info("The billing cycle is managed by staff who may manage billing.")
    else:
        st.caption("On the 1st the worker generates last month's drafts; after the review window it finalises "
                   "them and e-mails each statement's PDF to the customer's billing e-mail.")
        current = read(cycle.get_settings, actor, partner_id)
        with st.form("cycle_settings"):
            enabled = st.checkbox("Run the billing cycle automatically", value=current.enabled, key="cycle_enabled")
            days = st.number_input("Review window (days)", min_value=0, max_value=28, value=current.review_days,
                                   step=1, key="cycle_days")
            field_error("review_days")
            if st.form_submit_button("Save", key="cycle_save"):
                run_action(cycle.save_settings, actor, partner_id, enabled=enabled, review_days=days,
                           success="Billing cycle saved.")
                st.rerun()
        cycles = read(cycle.list_cycles, actor, partner_id)
        if cycles:
            st.dataframe(pd.DataFrame([{
                "Month": c.period_start.strftime("%Y-%m"), "Status": c.status,
                "Drafts at": c.drafts_at.strftime("%Y-%m-%d %H:%M") if c.drafts_at else "",
                "Drafts": c.drafts, "Closed at": c.closed_at.strftime("%Y-%m-%d %H:%M") if c.closed_at else "",
                "Final statements": c.finalised} for c in cycles]), hide_index=True, width="stretch",
                key="cycle_table")
