"""Overview: the landing page after login — what needs attention, and this month at a glance."""

from __future__ import annotations

import streamlit as st

from core.overview import overview
from core.pricing.money import format_money, format_quantity
from pages.common import plain, read, require

actor = require()

st.title(f"Welcome, {plain(actor.display_name)}")
st.caption(f"{actor.role_label} · {plain(actor.account_name or actor.partner_name)}")

data = read(overview, actor)
start, today = data.period

if data.customers_active is not None and actor.account_id is None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Active customer accounts", data.customers_active)
    c2.metric("Suspended", data.customers_suspended)
    c3.metric("Active users", data.active_users)

if data.month_to_date is not None:
    st.subheader("This month so far")
    st.metric(f"At this month's usage so far ({plain(data.plan_name)})",
              format_money(data.month_to_date.total, data.month_to_date.currency))
    st.page_link("pages/pricing.py", label="See the lines and your plan", icon=":material/sell:")

if data.usage:
    st.subheader(f"Usage {start:%d %b} – {today:%d %b %Y}")
    cols = st.columns(len(data.usage))
    for col, m in zip(cols, data.usage, strict=True):
        col.metric(plain(m.label), format_quantity(m.value),
                   delta=None if m.change is None else f"{m.change * 100:+.1f}% vs previous period")
elif data.usage == [] and actor.role != "platform_admin":
    st.info("No usage recorded this month yet.")

if data.wallet is not None:
    w = data.wallet
    st.subheader("Credits wallet")
    c1, c2 = st.columns(2)
    c1.metric("Balance (credits)", format_quantity(w.balance))
    if w.low_balance_threshold is not None and w.balance < w.low_balance_threshold:
        c2.warning(f"Below your reminder threshold of {format_quantity(w.low_balance_threshold)} credits.")
    if w.auto_buy_gave_up:
        st.error(f"Automatic purchase stopped after repeated declines: {plain(w.auto_buy_last_error or '')}")

if data.open_alerts:
    st.subheader("Needs attention")
    for a in data.open_alerts:
        st.warning(f"**{plain(a.account_name)}**: {plain(a.message)}", icon=":material/notification_important:")
