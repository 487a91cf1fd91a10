"""Customer usage drill-down: every metric over the range, the daily series, and the usage history (the
events themselves) with paging, filters and a CSV export of exactly what is shown."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from core.accounts.actor import CUSTOMER_ROLES
from core.pricing.money import format_quantity
from core.usage.metrics import catalogue
from core.usage.reports import account_names, account_series, account_totals, usage_history
from pages.common import pick_partner, plain, read, require
from pages.usage_ui import csv_bytes, daily_frame, date_range, day_ticks, no_data

PAGE_SIZES = (25, 50, 100, 200)

actor = require("usage.view")

if actor.role in CUSTOMER_ROLES:
    partner_id, account_id = actor.partner_id, actor.account_id
    st.title("Usage")
    st.caption(plain(actor.account_name or ""))
else:
    st.title("Customer usage")
    partner_id = actor.partner_id
    if actor.is_admin:
        partner_id = pick_partner(actor, "usage_acc_partner")
    names = read(account_names, actor, partner_id)
    if not names:
        st.info("This partner has no customer accounts yet.")
        st.stop()
    ids = [a for (_, a) in names]
    opened = st.session_state.pop("open_account", None)  # from the Customers page's "Reporting" button
    wanted = str(opened[1]) if opened and opened[0] == partner_id else st.query_params.get("account")
    index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in ids else 0
    if opened:
        st.session_state["usage_acc_account"] = ids[index]
    account_id = st.selectbox("Customer account", ids, index=index, format_func=lambda a: names[(partner_id, a)],
                              key="usage_acc_account")
    st.query_params["account"] = str(account_id)

start, end = date_range("usage_acc")
metrics = {m.key: m for m in read(catalogue, actor)}
totals = read(account_totals, actor, partner_id, account_id, start=start, end=end)
used = [m for m in metrics if totals.get(m)]

if not used:
    no_data(start, end)
else:
    cols = st.columns(min(4, len(used)))
    for i, m in enumerate(used):
        cols[i % len(cols)].metric(metrics[m].name, f"{format_quantity(totals[m])} {metrics[m].unit}")
    series = read(account_series, actor, partner_id, account_id, start=start, end=end)
    chosen = st.multiselect("Metrics in the chart", used, default=used[:3], format_func=lambda m: metrics[m].name,
                            key="usage_acc_chart_metrics")
    df = pd.DataFrame([{"day": p.bucket, "metric": metrics[p.label].name, "value": float(p.value)}
                       for p in series if p.label in chosen])
    if df.empty:
        st.caption("Choose at least one metric to draw.")
    else:
        df = daily_frame(df, start, end)
        fig = px.line(df, x="day", y="value", color="metric", markers=len(df) <= 62, title="Daily usage",
                      labels={"day": "Date", "value": "Quantity", "metric": "Metric"})
        fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10))
        fig.update_xaxes(type="date", tickformat="%d %b %Y", **day_ticks(start, end))
        st.plotly_chart(fig, width="stretch", key="usage_acc_chart")

st.subheader("Usage history")
f1, f2, f3, f4 = st.columns([2, 2, 2, 1])
metric_filter = f1.selectbox("Metric", ["", *metrics], format_func=lambda m: "All metrics" if not m else metrics[m].name,
                             key="usage_hist_metric")
prop_key = f2.text_input("Property", placeholder="e.g. mailing", key="usage_hist_prop").strip()
prop_value = f3.text_input("Value", placeholder="any value", key="usage_hist_value").strip()
size = f4.selectbox("Rows", PAGE_SIZES, index=1, key="usage_hist_size")
page_no = st.session_state.get("usage_hist_page", 1)
filters = (account_id, start, end, metric_filter, prop_key, prop_value, size)
if st.session_state.get("usage_hist_filters") != filters:  # new filters: back to the first page
    st.session_state["usage_hist_filters"] = filters
    page_no = 1
hist = read(usage_history, actor, partner_id, account_id, start=start, end=end, metric=metric_filter or None,
            prop_key=prop_key or None, prop_value=prop_value or None, limit=size, offset=(page_no - 1) * size)
if not hist.rows:
    no_data(start, end, "events match these filters" if (metric_filter or prop_key) else "usage events")
else:
    shown = pd.DataFrame([{
        "When": r["occurred_at"],
        "Metric": metrics[r["metric"]].name if r["metric"] in metrics else r["metric"],
        "Quantity": r["quantity"], "Event id": r["event_id"], "Source": r["source"],
        "Properties": ", ".join(f"{k}={v}" for k, v in (r["properties"] or {}).items()),
        "Status": "Needs a correction" if r["correction"] else "Billed",
    } for r in hist.rows])
    shown["Quantity"] = pd.to_numeric(shown["Quantity"])  # display: a numeric, right-aligned column
    st.dataframe(shown, hide_index=True, width="stretch", key="usage_hist_table", column_config={
        "When": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY, HH:mm:ss"),
        "Quantity": st.column_config.NumberColumn("Quantity", format="localized"),
        "Event id": st.column_config.TextColumn("Event id", help="The id your system sent with the event"),
    })
    first = hist.offset + 1
    st.caption(f"Events {first}–{hist.offset + len(hist.rows)}" + (" (more on the next page)" if hist.has_more else ""))
    b1, b2, b3 = st.columns([1, 1, 4])
    if b1.button("Previous", disabled=page_no <= 1, key="usage_hist_prev"):
        st.session_state["usage_hist_page"] = page_no - 1
        st.rerun()
    if b2.button("Next", disabled=not hist.has_more, key="usage_hist_next"):
        st.session_state["usage_hist_page"] = page_no + 1
        st.rerun()
    b3.download_button("Export CSV (this page)", csv_bytes(shown),
                       file_name=f"usage-{account_id}-{start}-{end}-p{page_no}.csv", mime="text/csv",
                       key="usage_hist_csv")
st.session_state["usage_hist_page"] = page_no
