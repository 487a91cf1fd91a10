"""Pricing: the plan catalogue (create, version, archive), each customer's plan with overrides and a live
month-to-date preview, and threshold alerts. Managers see their own plan and preview, read-only.

Thin: widgets → core.billing.plans / core.billing.rating / core.billing.alerts → render. The parts live in
pages/pricing_plans.py (the Plans tab and the plan builder of pages/pricing_builder.py), pages/pricing_customers.py
(the Customers tab) and pages/pricing_view.py (shared rendering). The plan being edited is kept as a draft in the
stored form (`core.pricing.plan_to_dict`); core validates it when it is saved.
"""

from __future__ import annotations

import streamlit as st

from core.accounts import accounts
from core.billing import plan_builder, plans, rating
from core.usage.metrics import catalogue
from pages.common import plain, read, require
from pages.pricing_customers import customers_tab
from pages.pricing_plans import plans_tab
from pages.pricing_view import PricingContext, render_alerts, render_rating, render_spec

actor = require("plan.view")
st.title("Pricing")


# ------------------------------------------------------------------ Manager: own plan, read-only


if not actor.is_staff:
    current = read(plans.current_assignment, actor, actor.partner_id, actor.account_id)
    if current is None:
        st.info("Your account has no price plan yet.")
    else:
        st.subheader(plain(current.assignment.plan_name))
        st.caption(f"In force since {current.assignment.effective_from.isoformat()} · prices of version "
                   f"{current.version} (from {current.version_effective_from.isoformat()})")
        render_spec(current.spec)
        st.subheader("This month so far")
        render_rating(read(rating.preview_month_to_date, actor, actor.partner_id, actor.account_id),
                      "At this month's usage so far, you would pay")
    st.subheader("Alerts")
    render_alerts(actor, actor.partner_id, actor.account_id, "mgr_alerts")
    st.stop()


# ------------------------------------------------------------------ staff and admins


partner_id = actor.partner_id
if actor.is_admin:
    partners = read(accounts.list_partners, actor)
    names = {p.id: ("Platform plans (offered to partners)" if p.is_house else p.name) for p in partners}
    partner_id = st.selectbox("Partner", list(names), format_func=names.get, key="pr_partner")
all_metrics = {m.key: f"{m.name} ({m.unit})" for m in read(catalogue, actor)}
metric_keys = list(all_metrics)
metric_names = {m.key: f"{m.name} ({m.unit})" for m in read(plan_builder.partner_metrics, actor, partner_id)}
if st.session_state.get("pr_all_metrics"):
    metric_names = all_metrics
if st.session_state.get("open_account"):  # from the Customers page's "Pricing" button: that customer's tab
    st.session_state["pricing_tab"] = "Customers"
# keyed, with its state in the session: an action (and the banner it leaves) never jumps back to "Plans"
tab_plans, tab_customers, tab_alerts = st.tabs(["Plans", "Customers", "Alerts"], key="pricing_tab",
                                               on_change="rerun")
ctx = PricingContext(actor, partner_id, metric_names, metric_keys,
                     read(plan_builder.dimension_choices, actor, partner_id))

with tab_plans:
    plans_tab(ctx)
with tab_customers:
    customers_tab(ctx)
with tab_alerts:
    render_alerts(actor, partner_id, None, "staff_alerts")
