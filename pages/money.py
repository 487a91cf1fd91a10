"""Money: what the partner earns from its clients, what the platform charges it for them, and the margin —
by customer, as a monthly trend, top customers, customers sold below cost — with a CSV export of what is
shown. Platform admins also see the platform's revenue per partner. The receipts of on-demand charges (platform
→ partner) are listed and downloadable as PDF.

Thin: widgets → core.billing.margin → render. Every figure (sums, margins, flags) comes from core.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.accounts import accounts
from core.billing import margin, receipts
from core.errors import DomainError
from core.pricing.money import format_money
from pages.common import date_input_format, md_escape, read, require

actor = require("margin.view")
st.title("Money")

today = date.today()
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
            st.dataframe(pd.DataFrame([{
                "Partner": r.partner, "Usage at rate card": format_money(r.usage_charges, r.currency),
                "Partner fees": format_money(r.partner_fees, r.currency),
                "Billed to customer-pays clients": format_money(r.customer_billed, r.currency),
                "Revenue share paid": format_money(r.revenue_share, r.currency),
                "Platform revenue": format_money(r.total, r.currency),
                "Client months without a card": r.unknown,
            } for r in rows]), hide_index=True, width="stretch", key="money_platform")
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
            f"- {md_escape(r.customer)}, {r.month:%Y-%m}: margin {md_escape(money(r.margin))}" for r in below[:20]))

    st.subheader("By customer")
    by_customer = report.by_customer()
    if not by_customer:
        st.info("No customers in this range.")
    else:
        st.dataframe(pd.DataFrame([{
            "Customer": c.label, "Revenue": money(c.revenue), "Platform charge": money(c.cost),
            "Margin": money(c.margin) if c.known else "unknown",
            "Flag": "below cost" if c.below_cost and c.key is not None else ("margin unknown" if c.unknown else ""),
        } for c in by_customer]), hide_index=True, width="stretch", key="money_by_customer")

    st.subheader("Monthly trend")
    months = report.monthly()
    if months:
        fig = go.Figure([go.Bar(name=name, x=[m.label for m in months], y=[float(getattr(m, attr)) for m in months])
                         for name, attr in (("Revenue", "revenue"), ("Platform charge", "cost"), ("Margin", "margin"))])
        fig.update_layout(barmode="group", height=320, margin={"t": 10, "b": 10}, yaxis_title=cur,
                          xaxis={"type": "category", "title": "Month"}, legend={"orientation": "h"})
        st.plotly_chart(fig, width="stretch", key="money_trend")
        st.dataframe(pd.DataFrame([{"Month": m.label, "Revenue": money(m.revenue), "Platform charge": money(m.cost),
                                    "Margin": money(m.margin), "Unknown": m.unknown} for m in months]),
                     hide_index=True, width="stretch", key="money_monthly")

    st.subheader("Top customers by margin")
    top = report.top_customers()
    if top:
        st.dataframe(pd.DataFrame([{"Customer": c.label, "Margin": money(c.margin)} for c in top]),
                     hide_index=True, width="stretch", key="money_top")

    st.subheader("Every client month")
    st.dataframe(pd.DataFrame([{
        "Customer": r.customer, "Month": r.month.strftime("%Y-%m"), "Mode": r.mode.replace("_", " "),
        "Revenue": money(r.revenue), "Platform charge": money(r.cost), "Margin": money(r.margin),
        "Flag": "below cost" if r.below_cost else ("margin unknown" if r.margin is None else ""),
    } for r in report.rows]), hide_index=True, width="stretch", key="money_rows")
    st.download_button("Download CSV", margin.report_csv(report), file_name="margins.csv", mime="text/csv",
                       key="money_csv")

    st.subheader("Receipts for on-demand charges")
    issued = read(receipts.list_charge_receipts, actor, partner_id)
    if not issued:
        st.caption("No usage has been charged on demand yet.")
    else:
        st.dataframe(pd.DataFrame([{"Number": r.number, "Issued": r.issued_on.isoformat(), "Customer": r.customer,
                                    "Total": format_money(r.total, r.currency)} for r in issued]),
                     hide_index=True, width="stretch", key="money_receipts")
        numbers = {r.id: f"{r.number} · {r.customer or ''} · {format_money(r.total, r.currency)}" for r in issued}
        pick = st.selectbox("Receipt", list(numbers), format_func=numbers.get, key="money_receipt")
        st.download_button("Download receipt (PDF)", read(receipts.charge_receipt_pdf, actor, partner_id, pick),
                           file_name=f"{numbers[pick].split(' · ')[0]}.pdf", mime="application/pdf",
                           key="money_receipt_pdf")
