"""Usage — partner overview: totals, the trend stacked by customer, change vs. the previous period, every
customer for the chosen metric (sortable, exportable), and threshold alerts. Platform admins see every
partner; customer roles see their own account."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts.actor import CUSTOMER_ROLES
from core.billing.alerts import list_alerts
from core.pricing.money import format_date, format_percent, format_quantity
from core.usage.metrics import catalogue
from core.usage.reports import GRAINS, partner_names, usage_by_customer, usage_summary, usage_trend
from pages.common import plain, read, require
from pages.usage_ui import csv_bytes, date_range, no_data, stacked_bars

GRAIN_LABELS = {"day": "Day", "week": "Week", "month": "Month"}

actor = require("usage.view")


# Catalogue reads, cached for a minute. The metric catalogue is global reference data (the same for every
# tenant, and the caller already has usage.view); the partner list is cached per admin (the user id is in
# the key), so nothing cached ever crosses a tenant.
@st.cache_data(ttl=60, show_spinner=False)
def metric_catalogue(_actor) -> dict[str, tuple[str, str]]:
    return {m.key: (m.name, m.unit) for m in read(catalogue, _actor)}


@st.cache_data(ttl=60, show_spinner=False)
def admin_partner_names(user_id: int, _actor) -> dict[int, str]:
    return read(partner_names, _actor)


if actor.role in CUSTOMER_ROLES:
    # A customer sees one account: the drill-down is their dashboard.
    st.switch_page("pages/usage_account.py")

st.title("Usage")
partner_id = None
if actor.is_admin:
    partners = admin_partner_names(actor.user_id, actor)
    options = [None, *partners]
    partner_id = st.selectbox("Partner", options, format_func=lambda p: "All partners" if p is None else partners[p],
                              key="usage_dash_partner")
start, end = date_range("usage_dash")
summary = read(usage_summary, actor, start=start, end=end, partner_id=partner_id)
metrics = metric_catalogue(actor)
if any(m not in metrics for m in summary.totals):  # a metric added since the catalogue was cached
    metric_catalogue.clear()
    metrics = metric_catalogue(actor)


def name(m: str) -> str:
    return metrics[m][0] if m in metrics else m


def unit(m: str) -> str:
    return metrics[m][1] if m in metrics else ""


def value_label(m: str) -> str:
    """The table's column: "Pages", "Storage (GB)" — never "Credits (credits)"."""
    u = unit(m)
    return name(m) if not u or u.lower() in name(m).lower() else f"{name(m)} ({u})"


if not summary.has_data:
    no_data(start, end)
else:
    used = [m for m, v in sorted(summary.totals.items(), key=lambda kv: name(kv[0])) if v]
    cols = st.columns(min(4, len(used)))
    for i, m in enumerate(used):
        change = summary.change(m)
        neutral = change is not None and round(change, 3) == 0
        cols[i % len(cols)].metric(name(m), f"{format_quantity(summary.totals[m])} {unit(m)}",
                                   delta=None if change is None else format_percent(change),
                                   delta_color="off" if neutral else "normal",
                                   help=f"Previous period {format_date(summary.previous[0])} – "
                                        f"{format_date(summary.previous[1])}: "
                                        f"{format_quantity(summary.previous_totals.get(m, 0))} {unit(m)}")
    c1, c2 = st.columns([2, 1])
    metric = c1.selectbox("Metric", used, format_func=name, key="usage_dash_metric")
    grain = c2.radio("Trend by", GRAINS, horizontal=True, key="usage_dash_grain", format_func=GRAIN_LABELS.get)
    points = read(usage_trend, actor, metric=metric, start=start, end=end, grain=grain, partner_id=partner_id)
    who = "Partner" if summary.by == "partner" else "Customer"
    st.plotly_chart(stacked_bars(points, title=f"{name(metric)} by {grain}", legend=who, unit=unit(metric)),
                    width="stretch", key="usage_dash_chart")

    st.subheader(f"Every customer — {plain(name(metric))}")
    rows = read(usage_by_customer, actor, metric=metric, start=start, end=end, partner_id=partner_id)
    table = pd.DataFrame([{
        **({"Partner": r.partner} if partner_id is None and actor.is_admin else {}),
        "Customer": r.customer,
        value_label(metric): r.value,
        "Previous period": r.previous,
        "Change": r.change,
    } for r in rows])
    value_col = value_label(metric)
    for col in (value_col, "Previous period", "Change"):
        table[col] = pd.to_numeric(table[col], errors="coerce")  # display: numeric columns sort and align right
    st.dataframe(table, hide_index=True, width="stretch", key="usage_dash_top", column_config={
        value_col: st.column_config.NumberColumn(value_col, format="localized"),
        "Previous period": st.column_config.NumberColumn(
            "Previous period", format="localized",
            help=f"{format_date(summary.previous[0])} – {format_date(summary.previous[1])}"),
        "Change": st.column_config.NumberColumn("Change", format="percent"),
    })
    st.caption(f"{len(rows)} customers with usage · click a column header to sort")
    st.download_button("Export CSV", lambda: csv_bytes(table),  # built only when clicked file_name=f"usage-{metric}-{start}-{end}.csv",
                       mime="text/csv", key="usage_dash_csv", icon=":material/download:")

st.subheader("Alerts")
alerts = read(list_alerts, actor, partner_id=partner_id, start=start, end=end)
if alerts:
    st.caption("Customers whose usage crossed a threshold in their price plan: a good moment to talk to them.")
    df = pd.DataFrame([{
        "When": a.created_at, "Customer": a.account_name, "Metric": name(a.metric),
        "Threshold": a.threshold, "Usage": a.quantity, "Message": a.message,
        "Acknowledged": a.acknowledged_at,
    } for a in alerts])
    for col in ("Threshold", "Usage"):
        df[col] = pd.to_numeric(df[col])
    st.dataframe(df, hide_index=True, width="stretch", key="usage_dash_alerts", column_config={
        "When": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY, HH:mm"),
        "Threshold": st.column_config.NumberColumn("Threshold", format="localized"),
        "Usage": st.column_config.NumberColumn("Usage", format="localized"),
        "Acknowledged": st.column_config.DatetimeColumn("Acknowledged", format="D MMM YYYY"),
    })
else:
    st.caption("No threshold alerts in this range.")
