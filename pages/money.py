"""Money: what the partner earns from its clients, what the platform charges it for them, and the margin —
by customer, as a monthly trend, top customers, customers sold below cost — with a CSV export of what is
shown. Platform admins also see the platform's revenue per partner. The receipts of on-demand charges (platform
→ partner) are listed and downloadable as PDF.

Thin: widgets → core.billing.margin → render. Every figure (sums, margins, flags) comes from core.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core import clock
from core.accounts import accounts
from core.billing import margin, receipts
from core.billing.modes import MODE_LABELS
from core.errors import DomainError
from core.pricing.money import format_date, format_money, format_month
from pages.common import date_input_format, md_escape, money_format, numeric, read, require

actor = require("margin.view")
st.title("Money")

today = clock.today()
default_start = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
c1, c2 = st.columns(2)
start = c1.date_input("From", value=default_start, key="money_from", format=date_input_format())
end = c2.date_input("To", value=today, key="money_to", format=date_input_format())

partner_id: int | None = actor.partner_id
if actor.is_admin:
    tab_platform, tab_partner = st.tabs(["Platform revenue per partner", "One partner's margins"])
    with tab_platform:
        try:
            rows = read(margin.platform_revenue, actor, start, end)
        except DomainError as exc:  # a bad range: the message is for the user
            st.error(str(exc))
            rows = []
        if rows:
            amounts = ["Usage at rate card", "Partner fees", "Billed to customer-pays clients", "Revenue share paid",
                       "Platform revenue"]
            st.dataframe(numeric(pd.DataFrame([{
                "Partner": r.partner, "Currency": r.currency, "Usage at rate card": r.usage_charges,
                "Partner fees": r.partner_fees, "Billed to customer-pays clients": r.customer_billed,
                "Revenue share paid": r.revenue_share, "Platform revenue": r.total,
                "Client months without a card": r.unknown,
            } for r in rows]), *amounts), hide_index=True, width="stretch", key="money_platform",
                column_config={a: st.column_config.NumberColumn(a, format="%,.2f") for a in amounts})
            st.download_button("Download CSV", margin.table_csv(
                ["partner", "currency", "usage_at_rate_card", "partner_fees", "customer_pays_billed",
                 "revenue_share", "platform_revenue"],
                [[r.partner, r.currency, r.usage_charges, r.partner_fees, r.customer_billed, r.revenue_share,
                  r.total] for r in rows]), file_name="platform-revenue.csv", mime="text/csv", key="money_platform_csv")
    partners = {p.id: p.name for p in read(accounts.list_partners, actor) if not p.is_house}
    with tab_partner:
        partner_id = st.selectbox("Partner", list(partners), format_func=partners.get, key="money_partner") \
            if partners else None
    container = tab_partner
else:
    container = st.container()

with container:
    if partner_id is None:
        st.info("No partners yet.")
        st.stop()
    try:
        report = read(margin.margins, actor, partner_id, start, end)
    except DomainError as exc:
        st.error(str(exc))
        st.stop()
    cur = report.currency

    def money(v):
        return "unknown" if v is None else format_money(v, cur)

    AMOUNTS = ("Revenue", "Platform charge", "Margin")  # numeric columns; an unknown margin is an empty cell
    money_columns = {a: st.column_config.NumberColumn(f"{a} ({cur})", format=money_format(cur)) for a in AMOUNTS}

    t = report.total
    m1, m2, m3 = st.columns(3)
    m1.metric("Revenue from clients", money(t.revenue))
    m2.metric("Platform charges", money(t.cost))
    m3.metric("Margin", money(t.margin))
    if t.unknown:
        st.caption(f"{t.unknown} client month(s) have no plan, so their margin is unknown and left out "
                   "of these sums.")

    below = report.below_cost()
    if below:  # named here as text (tables are drawn on a canvas): who, which month, how far below
        st.warning(f"{len(below)} client month(s) sold below cost: see the flagged rows.\n\n" + "\n".join(
            f"- {md_escape(r.customer)}, {format_month(r.month)}: margin {md_escape(money(r.margin))}" for r in below[:20]))

    st.subheader("By customer")
    by_customer = report.by_customer()
    if not by_customer:
        st.info("No customers in this range.")
    else:
        st.dataframe(numeric(pd.DataFrame([{
            "Customer": c.label, "Revenue": c.revenue, "Platform charge": c.cost,
            "Margin": c.margin if c.known else None,
            "Flag": "below cost" if c.below_cost and c.key is not None else ("margin unknown" if c.unknown else ""),
        } for c in by_customer]), *AMOUNTS), hide_index=True, width="stretch", key="money_by_customer",
            column_config=money_columns)

    st.subheader("Monthly trend")
    months = report.monthly()
    if months:
        fig = go.Figure([go.Bar(name=name, x=[format_month(m.key) for m in months], y=[float(getattr(m, attr)) for m in months])
                         for name, attr in (("Revenue", "revenue"), ("Platform charge", "cost"), ("Margin", "margin"))])
        fig.update_layout(barmode="group", height=320, margin={"t": 10, "b": 10}, yaxis_title=cur,
                          xaxis={"type": "category", "title": "Month"}, legend={"orientation": "h"})
        st.plotly_chart(fig, width="stretch", key="money_trend")
        st.dataframe(numeric(pd.DataFrame([{"Month": format_month(m.key), "Revenue": m.revenue,
                                            "Platform charge": m.cost, "Margin": m.margin,
                                            "Client months without a plan": m.unknown} for m in months]), *AMOUNTS),
                     hide_index=True, width="stretch", key="money_monthly", column_config=money_columns)

    st.subheader("Top customers by margin")
    top = report.top_customers()
    if top:
        st.dataframe(numeric(pd.DataFrame([{"Customer": c.label, "Margin": c.margin} for c in top]), "Margin"),
                     hide_index=True, width="stretch", key="money_top", column_config=money_columns)

    st.subheader("Every client month")
    st.dataframe(numeric(pd.DataFrame([{
        "Customer": r.customer, "Month": format_month(r.month), "Who pays": MODE_LABELS.get(r.mode, r.mode),
        "Revenue": r.revenue, "Platform charge": r.cost, "Margin": r.margin,
        "Flag": "below cost" if r.below_cost else ("margin unknown" if r.margin is None else ""),
    } for r in report.rows]), *AMOUNTS), hide_index=True, width="stretch", key="money_rows",
        column_config=money_columns)
    st.download_button("Download CSV", margin.report_csv(report), file_name="margins.csv", mime="text/csv",
                       key="money_csv")

    st.subheader("Receipts for on-demand charges")
    issued = read(receipts.list_charge_receipts, actor, partner_id)
    if not issued:
        st.caption("No usage has been charged on demand yet.")
    else:
        st.dataframe(numeric(pd.DataFrame([{"Number": r.number, "Issued": format_date(r.issued_on),
                                            "Customer": r.customer, "Total": r.total} for r in issued]), "Total"),
                     hide_index=True, width="stretch", key="money_receipts",
                     column_config={"Total": st.column_config.NumberColumn(f"Total ({cur})", format=money_format(cur))})
        numbers = {r.id: f"{r.number} · {r.customer or ''} · {format_money(r.total, r.currency)}" for r in issued}
        pick = st.selectbox("Receipt", list(numbers), format_func=numbers.get, key="money_receipt")
        st.download_button("Download receipt (PDF)", read(receipts.charge_receipt_pdf, actor, partner_id, pick),
                           file_name=f"{numbers[pick].split(' · ')[0]}.pdf", mime="application/pdf",
                           key="money_receipt_pdf")
