"""Usage — partner overview: totals, top customers, trend stacked by customer, change vs. the previous
period, and threshold alerts. Platform admins see every partner; customer roles see their own account."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts.actor import CUSTOMER_ROLES
from core.billing.alerts import list_alerts
from core.pricing.money import format_quantity
from core.usage.metrics import catalogue
from core.usage.reports import GRAINS, partner_names, usage_summary, usage_trend
from pages.common import plain, read, require
from pages.usage_ui import date_range, no_data, stacked_bars

actor = require("usage.view")

if actor.role in CUSTOMER_ROLES:
    # A customer sees one account: the drill-down is their dashboard.
    st.switch_page("pages/usage_account.py")

st.title("Usage")
partner_id = None
if actor.is_admin:
    partners = read(partner_names, actor)
    options = [None, *partners]
    partner_id = st.selectbox("Partner", options, format_func=lambda p: "All partners" if p is None else partners[p],
                              key="usage_dash_partner")
start, end = date_range("usage_dash")
summary = read(usage_summary, actor, start=start, end=end, partner_id=partner_id)
labels = {m.key: f"{m.name} ({m.unit})" for m in read(catalogue, actor)}

if not summary.has_data:
    no_data(start, end)
else:
    used = [m for m, v in sorted(summary.totals.items()) if v]
    cols = st.columns(min(4, len(used)))
    for i, m in enumerate(used):
        change = summary.change(m)
        cols[i % len(cols)].metric(labels.get(m, m), format_quantity(summary.totals[m]),
                                   delta=None if change is None else f"{change * 100:+.1f}%",
                                   help=f"Previous period {summary.previous[0]} – {summary.previous[1]}: "
                                        f"{format_quantity(summary.previous_totals.get(m, 0))}")
    c1, c2 = st.columns([2, 1])
    metric = c1.selectbox("Metric", used, format_func=lambda m: labels.get(m, m), key="usage_dash_metric")
    grain = c2.radio("Trend by", GRAINS, horizontal=True, key="usage_dash_grain")
    points = read(usage_trend, actor, metric=metric, start=start, end=end, grain=grain, partner_id=partner_id)
    who = "Partner" if summary.by == "partner" else "Customer"
    st.plotly_chart(stacked_bars(points, title=f"{labels.get(metric, metric)} by {grain}", legend=who),
                    width="stretch", key="usage_dash_chart")
    st.subheader(f"Top {who.lower()}s — {plain(labels.get(metric, metric))}")
    top = pd.DataFrame([{who: name, "Quantity": format_quantity(v)} for name, v in summary.top.get(metric, [])])
    st.dataframe(top, hide_index=True, width="stretch", key="usage_dash_top")

st.subheader("Alerts")
alerts = read(list_alerts, actor, partner_id=partner_id, start=start, end=end)
if alerts:
    st.caption("Customers whose usage crossed a threshold in their price plan: a good moment to talk to them.")
    st.dataframe(pd.DataFrame([{
        "When": a.created_at.strftime("%Y-%m-%d %H:%M"), "Customer": a.account_name, "Metric": a.metric,
        "Threshold": format_quantity(a.threshold), "Usage": format_quantity(a.quantity), "Message": a.message,
        "Acknowledged": a.acknowledged_at.strftime("%Y-%m-%d") if a.acknowledged_at else "",
    } for a in alerts]), hide_index=True, width="stretch", key="usage_dash_alerts")
else:
    st.caption("No threshold alerts in this range.")
