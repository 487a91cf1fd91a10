"""Overview: the landing page after login. Partner staff: money first (billed, unbilled, open statements,
the wallet and how long it lasts), then customers, usage and what needs attention."""

from __future__ import annotations

from collections import defaultdict

import streamlit as st

from core.billing.alerts import acknowledge_alert
from core.overview import BURN_DAYS, overview
from core.pricing.money import format_date, format_money, format_percent, format_quantity
from pages.common import plain, read, require, run_action

actor = require()

st.title(f"Welcome, {plain(actor.display_name)}")
st.caption(f"{actor.role_label} · {plain(actor.account_name or actor.partner_name)}")

data = read(overview, actor)
start, today = data.period


def _amounts(amounts: dict, currency: str) -> str:
    """One currency's amount (the partner's own first); others follow in the help text."""
    if not amounts:
        return format_money(0, currency)
    first = currency if currency in amounts else sorted(amounts)[0]
    return format_money(amounts[first], first)


def _others(amounts: dict, currency: str) -> str | None:
    rest = [format_money(v, c) for c, v in sorted(amounts.items()) if c != currency]
    return ("Also: " + ", ".join(rest)) if rest else None


if data.money is not None:
    m, cur = data.money, data.money.currency
    st.subheader("Money")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Billed this month so far", _amounts(m.billed_this_month, cur),
              help="Final statements to your customers issued this month. " + (_others(m.billed_this_month, cur) or ""))
    c2.metric("Billed last month", _amounts(m.billed_last_month, cur),
              help="Final statements to your customers issued last month. " + (_others(m.billed_last_month, cur) or ""))
    c3.metric("Unbilled usage", _amounts(m.unbilled, cur),
              help=f"This month ({format_date(start)} – {format_date(today)}) at the usage so far, with the "
                   "month's fees: not on a statement yet. " + (_others(m.unbilled, cur) or ""))
    c4.metric("Open statements", m.open_statements,
              help="Draft statements waiting to be finalised"
                   + (f": {', '.join(format_money(v, c) for c, v in sorted(m.open_amount.items()))}."
                      if m.open_amount else "."))
    if data.wallet_figures is not None:
        w = data.wallet_figures
        c1, c2, c3 = st.columns([1, 1, 2])
        c1.metric("Wallet balance", f"{format_quantity(w.balance, places=2)} credits")
        c2.metric("Days of credit left", "—" if w.days_left is None else w.days_left,
                  help=f"At the average draw of the last {BURN_DAYS} days: "
                       f"{format_quantity(w.burn_per_day, places=2)} credits a day.")
        if data.wallet is not None and data.wallet.low_balance_threshold is not None \
                and w.balance < data.wallet.low_balance_threshold:
            c3.warning(f"Below your reminder threshold of {format_quantity(data.wallet.low_balance_threshold, places=2)}"
                       " credits.", icon=":material/savings:")
        elif w.days_left is not None and w.days_left < 14:
            c3.warning(f"Credits run out in about {w.days_left} days at the current rate.", icon=":material/savings:")
        st.page_link("pages/wallet.py", label="Credits wallet", icon=":material/account_balance_wallet:")
        if data.wallet is not None and data.wallet.auto_buy_gave_up:
            st.error("Automatic purchase stopped after repeated declines: check the card on the Credits wallet page.")

if data.customers_active is not None:
    st.subheader("Customers")
    c1, c2, c3 = st.columns(3)
    c1.metric("Active customer accounts", format_quantity(data.customers_active))
    c2.metric("Suspended", format_quantity(data.customers_suspended))
    c3.metric("Active users", format_quantity(data.active_users))

if data.month_to_date is not None:
    st.subheader("This month so far")
    st.metric(f"At this month's usage so far ({plain(data.plan_name)})",
              format_money(data.month_to_date.total, data.month_to_date.currency))
    st.page_link("pages/pricing.py", label="See the lines and your plan", icon=":material/sell:")

if data.usage:
    st.subheader(f"Usage {format_date(start)} – {format_date(today)}")
    cols = st.columns(len(data.usage))
    for col, fig in zip(cols, data.usage, strict=True):
        change = fig.change
        col.metric(plain(fig.label), format_quantity(fig.value),
                   delta=None if change is None else f"{format_percent(change)} vs previous period",
                   delta_color="off" if change is not None and round(change, 3) == 0 else "normal")
elif data.usage == [] and not actor.is_admin:
    st.info("No usage recorded this month yet.")

if data.wallet is not None and data.wallet_figures is None and data.money is None:
    st.subheader("Credits wallet")
    st.metric("Balance", f"{format_quantity(data.wallet.balance, places=2)} credits")

if data.open_alerts:
    st.subheader("Needs attention")
    shown = len(data.open_alerts)
    if data.open_alerts_total > shown:
        st.caption(f"The {shown} newest of {data.open_alerts_total} open alerts.")
    groups: dict[tuple[int, int], list] = defaultdict(list)
    for a in data.open_alerts:
        groups[(a.partner_id, a.account_id)].append(a)
    for (pid, _aid), items in groups.items():
        first = items[0]
        with st.container(border=True):
            c1, c2 = st.columns([5, 1])
            c1.text(f"{first.account_name} · {len(items)} open alert{'s' if len(items) > 1 else ''} · "
                    f"latest {format_date(first.created_at)}")  # user text: never Markdown
            for a in items:
                c1.text(f"{format_date(a.created_at)}: {a.message}")
            if c2.button("Acknowledge", key=f"ack_{pid}_{first.account_id}", icon=":material/done_all:",
                         help="Mark these alerts as seen."):
                for a in items:
                    run_action(acknowledge_alert, actor, a.partner_id, a.id)
                st.session_state["flash"] = ("success", f"Alerts of {first.account_name} acknowledged.")
                st.rerun()
