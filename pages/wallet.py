"""Credits wallet: the partner's prepaid credit balance, its ledger, per-customer draws, buying credits,
reminder / automatic-purchase / overdraft settings, payment methods (DEMO gateway) and sent messages."""

from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from core import clock
from core.accounts import accounts
from core.accounts.permissions import allowed
from core.billing import payments, wallet
from core.errors import DomainError
from core.notify import outbox as notify
from core.pricing.money import format_money, format_quantity
from db.models.wallet import LEDGER_KINDS
from pages.common import date_input_format, field_error, plain, read, require, run_action

actor = require("wallet.view")
st.title("Credits wallet")

partner_id = actor.partner_id
if actor.is_admin:
    options = {p.id: p.name for p in read(accounts.list_partners, actor)}
    partner_id = st.selectbox("Partner", list(options), format_func=options.get, key="wallet_partner")

can_manage = allowed(actor, "wallet.manage", partner_id)
view = read(wallet.wallet_view, actor, partner_id)
if view is None:
    st.info("This partner has no credit wallet yet. A wallet holds prepaid credits that pay for your "
            "customers' usage at once (billing mode 'Partner pays, prepaid').")
    if can_manage and st.button("Set up the credit wallet", type="primary", key="wallet_create"):
        if run_action(wallet.get_or_create_wallet, actor, partner_id, success="Credit wallet created."):
            st.rerun()
    st.stop()

credits = format_quantity
c1, c2, c3 = st.columns(3)
c1.metric("Balance (credits)", credits(view.balance))
c2.metric("Lowest allowed balance", credits(view.floor),
          help="0 when usage is refused once credits run out; below 0 with an overdraft.")
c3.metric("Automatic purchase", f"{credits(view.auto_buy_credits)} credits" if view.auto_buy_credits else "Off")
lots = read(wallet.lot_summary, actor, partner_id, clock.today())
d1, d2, d3 = st.columns(3)
d1.metric("Paid credits", credits(lots.paid), help="Bought credits left: refundable at the price paid.")
d2.metric("Free credits", credits(lots.promotional), help="Promotional credits left: drawn before paid ones.")
d3.metric("Expiring in the next 30 days", credits(lots.expiring_credits))
if lots.expiring:
    st.dataframe(pd.DataFrame([{"Expires on": lot.expires_on.isoformat(), "Kind": lot.kind,
                                "Credits left": credits(lot.remaining)} for lot in lots.expiring]),
                 hide_index=True, width="stretch", key="expiring_table")
if view.auto_buy_pending:
    st.info("An automatic credit purchase is being processed by the payment provider.")
if view.auto_buy_gave_up:
    st.error(f"Automatic purchases stopped after {view.auto_buy_failures} declined attempts "
             f"({plain(view.auto_buy_last_error)}). Buy credits or update the payment method to restart them.")
elif view.auto_buy_failures:
    st.warning(f"The last automatic purchase was declined ({plain(view.auto_buy_last_error)}); next attempt not before "
               f"{view.auto_buy_next_retry_at:%Y-%m-%d %H:%M} UTC.")
if view.balance < 0:
    st.warning("The wallet is in overdraft: buy credits to settle it.")

tab_names = ["Ledger", "Usage by customer", "Buy credits", "Receipts", "Settings", "Payment methods", "Messages"]
can_adjust = allowed(actor, "wallet.adjust", partner_id)
if can_adjust:
    tab_names.append("Adjust")
tabs = dict(zip(tab_names, st.tabs(tab_names), strict=True))

# ------------------------------------------------------------------ ledger
with tabs["Ledger"]:
    PAGE = 50
    f1, f2 = st.columns([2, 1])
    kind = f1.selectbox("Kind", ["(all)", *LEDGER_KINDS], key="ledger_kind")
    page_no = f2.number_input("Page", min_value=1, value=1, step=1, key="ledger_page")
    rows, total = read(wallet.list_ledger, actor, partner_id, kind=None if kind == "(all)" else kind, limit=PAGE,
                       offset=(page_no - 1) * PAGE)
    if not rows:
        st.info("No ledger entries here yet.")
    else:
        st.dataframe(pd.DataFrame([{
            "#": r.id, "When": r.created_at.strftime("%Y-%m-%d %H:%M:%S"), "Kind": r.kind.replace("_", " "),
            "Credits": credits(r.credits), "Balance after": credits(r.balance_after),
            "Money": format_money(r.amount, r.currency) if r.amount is not None and r.currency else "",
            "Customer": r.account_name or "", "Note": r.reason or ("overdraft" if r.overdraft else ""),
        } for r in rows]), hide_index=True, width="stretch", key="ledger_table")
        st.caption(f"Page {page_no} of {max(1, -(-total // PAGE))} · {total} entries (newest first)")

# ------------------------------------------------------------------ per-customer draws
with tabs["Usage by customer"]:
    today = clock.today()
    picked = st.date_input("Period", value=(today.replace(day=1), today), key="draws_period", format=date_input_format())
    if not isinstance(picked, tuple | list) or len(picked) < 2:
        st.info("Pick the first and the last day of the period.")
    else:
        per = read(wallet.draws_by_customer, actor, partner_id, picked[0], picked[1])
        if not per:
            st.info("No credits were drawn in this period.")
        else:
            st.dataframe(pd.DataFrame([{"Customer": p.account_name, "Credits drawn": credits(p.credits),
                                        "Draws": p.draws} for p in per]),
                         hide_index=True, width="stretch", key="draws_table")

# ------------------------------------------------------------------ buy
with tabs["Buy credits"]:
    steps = read(wallet.list_price_steps, actor, partner_id)
    if steps:
        st.caption("Price list (the whole purchase is priced at the highest step it reaches): " + " · ".join(
            f"from {credits(m)} credits: {p.normalize()} {view.currency} per credit" for m, p in steps))
    if not can_manage:
        st.info("Only partner staff can buy credits.")
    else:
        amount = st.number_input("Credits to buy", min_value=1, max_value=100_000_000, value=10_000, step=1000,
                                 key="buy_credits")
        try:
            q = read(wallet.quote, actor, partner_id, amount)
            st.markdown(f"**{credits(q.credits)} credits** at {q.price_per_credit.normalize()} {q.currency} per "
                        f"credit = **{format_money(q.amount, q.currency)}**")
        except DomainError as exc:
            st.error(plain(exc))
        field_error("credits")
        st.session_state.setdefault("buy_key", uuid.uuid4().hex)
        if st.button("Buy credits", type="primary", key="buy_submit"):
            done = run_action(wallet.buy_credits, actor, partner_id, amount,
                              idempotency_key=st.session_state["buy_key"], success="Credits bought.")
            if done:
                st.session_state["buy_key"] = uuid.uuid4().hex
                st.rerun()

# ------------------------------------------------------------------ receipts
with tabs["Receipts"]:
    receipts = read(wallet.list_receipts, actor, partner_id)
    if not receipts:
        st.info("No receipts yet: every credit purchase gets one.")
    else:
        st.dataframe(pd.DataFrame([{
            "Number": r.number, "Issued": r.issued_on.isoformat(), "Credits": credits(r.credits),
            "Net": format_money(r.net_amount, r.currency), "Tax": format_money(r.tax_amount, r.currency),
            "Total": format_money(r.total, r.currency)} for r in receipts]),
            hide_index=True, width="stretch", key="receipts_table")
        by_number = {r.number: r.id for r in receipts}
        pick = st.selectbox("Receipt", list(by_number), key="receipt_pick")
        st.download_button("Download receipt (PDF)", read(wallet.receipt_pdf, actor, partner_id, by_number[pick]),
                           file_name=f"receipt-{pick}.pdf", mime="application/pdf", key="receipt_pdf")

# ------------------------------------------------------------------ settings
with tabs["Settings"]:
    if not can_manage:
        st.info("Only partner staff can change the wallet settings.")
    else:
        with st.form("wallet_settings"):
            threshold = st.text_input("Low-balance reminder below (credits; empty = no reminder)",
                                      value="" if view.low_balance_threshold is None
                                      else credits(view.low_balance_threshold), key="set_threshold")
            field_error("low_balance_threshold")
            auto = st.text_input("Automatic purchase amount (credits; empty = off)",
                                 value="" if view.auto_buy_credits is None else credits(view.auto_buy_credits),
                                 key="set_auto")
            field_error("auto_buy_credits")
            policy_labels = {"refuse": "Refuse usage when credits run out",
                             "overdraft": "Allow an overdraft down to the limit"}
            policy = st.radio("When credits do not cover usage", list(policy_labels), format_func=policy_labels.get,
                              index=list(policy_labels).index(view.overdraft_policy), key="set_policy")
            field_error("overdraft_policy")
            limit = st.text_input("Overdraft limit (credits)", value=credits(view.overdraft_limit), key="set_limit")
            field_error("overdraft_limit")
            if st.form_submit_button("Save settings", type="primary"):
                if run_action(wallet.configure, actor, partner_id, low_balance_threshold=threshold,
                              auto_buy_credits=auto, overdraft_policy=policy, overdraft_limit=limit,
                              success="Wallet settings saved."):
                    st.rerun()

# ------------------------------------------------------------------ payment methods
with tabs["Payment methods"]:
    st.warning("DEMO payment gateway: no real money moves. Card 4242 4242 4242 4242 is approved; any card "
               "number ending in 0002 is declined; charges above the demo limit are declined.", icon="🧪")
    methods = read(payments.list_methods, actor, partner_id)
    if not methods:
        st.info("No payment method on file.")
    for m in methods:
        mc1, mc2 = st.columns([4, 1])
        mc1.markdown(f"{plain(m.label)}{' · **default**' if m.is_default else ''}")
        if can_manage and mc2.button("Remove", key=f"pm_remove_{m.id}"):
            if run_action(payments.remove_method, actor, partner_id, m.id, success="Payment method removed."):
                st.rerun()
    if can_manage:
        with st.form("demo_card", clear_on_submit=True):
            st.markdown("**Add a demo card**")
            number = st.text_input("Card number (demo)", key="card_number")
            field_error("number")
            e1, e2 = st.columns(2)
            exp_month = e1.number_input("Expiry month", min_value=1, max_value=12, value=12, key="card_month")
            exp_year = e2.number_input("Expiry year", min_value=2000, max_value=2100, value=clock.today().year + 2,
                                       key="card_year")
            field_error("exp_year")
            if st.form_submit_button("Add demo card"):
                if run_action(payments.add_card, actor, partner_id, number=number, exp_month=exp_month,
                              exp_year=exp_year, success="Card added."):
                    st.rerun()

# ------------------------------------------------------------------ outbox
with tabs["Messages"]:
    msgs = read(notify.list_outbox, actor, partner_id)
    if not msgs:
        st.info("No messages yet. Low-balance reminders and payment problems appear here (and are e-mailed "
                "when e-mail is configured).")
    else:
        st.dataframe(pd.DataFrame([{
            "When": m.created_at.strftime("%Y-%m-%d %H:%M"), "Subject": m.subject, "To": m.recipient or "",
            # the worker's note when unsent: "not sent: no SMTP" or "send failed: ..."
            "Sent": m.sent_at.strftime("%Y-%m-%d %H:%M") if m.sent_at else (m.error or "not e-mailed"),
            "Message": m.body,
        } for m in msgs]), hide_index=True, width="stretch", key="outbox_table")

# ------------------------------------------------------------------ adjust (platform only)
if can_adjust:
    with tabs["Adjust"]:
        with st.form("wallet_adjust"):
            adj = st.text_input("Credits (+ adds, - removes)", key="adj_credits")
            field_error("credits")
            reason = st.text_input("Reason (required)", key="adj_reason")
            field_error("reason")
            if st.form_submit_button("Record adjustment", type="primary"):
                if run_action(wallet.adjust, actor, partner_id, adj, reason, success="Adjustment recorded."):
                    st.rerun()
        with st.form("wallet_grant"):
            st.markdown("**Give free (promotional) credits**")
            grant = st.text_input("Credits", key="grant_credits")
            field_error("credits")
            expires = st.date_input("Expires on (optional)", value=None, key="grant_expires", format=date_input_format())
            field_error("expires_on")
            priority = st.number_input("Priority (0 is drawn first)", min_value=0, max_value=100, value=50,
                                       key="grant_priority")
            grant_reason = st.text_input("Reason (required)", key="grant_reason")
            if st.form_submit_button("Give credits", type="primary"):
                if run_action(wallet.grant_credits, actor, partner_id, grant, grant_reason, expires_on=expires,
                              priority=int(priority), success="Credits given."):
                    st.rerun()

