"""Statements: a month's statements per customer (and the partner's collective invoice) — generate drafts,
open one with its lines and explanations, finalise, void, credit notes, PDF / CSV downloads — and the
partner's statement branding and language. Managers see their own account's final statements, read-only."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.accounts.permissions import allowed
from core.errors import DomainError
from core.pricing.money import format_date, format_money, format_quantity
from core.statements import lifecycle, reading, settings
from core.statements.i18n import LANGUAGES, line_explanation, line_label
from pages.common import field_error, money_format, numeric, plain, read, require, run_action, show_flash

CREDIT_DECIMALS = 2
PLATFORM_PRIMARY, PLATFORM_SIDEBAR = "#2563eb", "#f3f6fb"  # .streamlit/config.toml's theme


actor = require("statement.view")
st.title("Statements")
show_flash()

opened = st.session_state.get("open_account")  # (partner_id, account_id) from the Customers page
partner_id = actor.partner_id
if actor.is_admin:
    options = {p.id: p.name for p in read(accounts.list_partners, actor)}
    ids = list(options)
    default = ids.index(opened[0]) if opened and opened[0] in options else 0
    partner_id = st.selectbox("Partner", ids, index=default, format_func=options.get, key="stm_partner")

STATUS = {"draft": "Draft", "final": "Final", "void": "Void"}
KIND = {"statement": "Statement", "collective": "Collective invoice", "commission": "Commission statement",
        "credit_note": "Credit note"}
can_manage = allowed(actor, "billing.manage", partner_id)
can_brand = allowed(actor, "partner.settings", partner_id)
tab_names = ["Statements"] + (["Branding & language"] if can_brand else [])
tabs = dict(zip(tab_names, st.tabs(tab_names), strict=True))

with tabs["Statements"]:
    months = reading.recent_months()
    latest = read(reading.latest_month, actor, partner_id)  # open on the newest month that has a statement
    if latest and latest not in months:
        months.append(latest)
    c1, c2 = st.columns([1, 2])
    month = c1.selectbox("Month", months, index=months.index(latest) if latest else 1, key="stm_month")
    account_filter = None
    if actor.is_staff:
        accs = read(accounts.list_accounts, actor, partner_id=partner_id, statuses=("active", "suspended", "deleted"))
        names = {a.id: a.name for a in accs}
        choices = [None, *names]
        pre = opened[1] if opened and opened[0] == partner_id and opened[1] in names else None
        account_filter = c2.selectbox("Customer", choices, index=choices.index(pre),
                                      format_func=lambda i: "(all customers and the collective invoice)"
                                      if i is None else names[i], key="stm_customer")
    if can_manage:
        if st.button(f"Generate drafts for {month}", type="primary", key="stm_generate",
                     help="Creates or recomputes every draft of the month; final statements are left alone."):
            out = run_action(lifecycle.generate_month, actor, partner_id, month)
            if out is not None:
                counts: dict[str, int] = {}
                for o in out:
                    counts[o.action] = counts.get(o.action, 0) + 1
                summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to bill"
                st.session_state["flash"] = ("success", f"Drafts for {month}: {summary}.")
                st.rerun()

    rows = read(reading.list_statements, actor, partner_id, month=month, account_id=account_filter)
    if not rows:
        st.info(f"No statements for {month} yet." + (" Generate the drafts above." if can_manage else ""))
    else:
        # numbers as right-aligned numeric columns with the currency's decimals (never cut off, never text)
        currencies = sorted({r.currency for r in rows})
        one = currencies[0] if len(currencies) == 1 else None
        st.dataframe(numeric(pd.DataFrame([{
            "Customer": r.addressee, "Kind": KIND[r.kind], "Status": STATUS[r.status], "Number": r.number or "",
            "Issuer": r.issuer, "Currency": r.currency, "Total": r.total, "Credits drawn": r.credits_drawn,
        } for r in rows]), "Total", "Credits drawn"), hide_index=True, width="stretch", key="stm_table", column_order=[
            "Customer", "Kind", "Status", "Number", "Issuer", *([] if one else ["Currency"]), "Total",
            *(["Credits drawn"] if any(r.credits_drawn is not None for r in rows) else [])], column_config={
            "Customer": st.column_config.TextColumn(width="medium"),
            "Total": st.column_config.NumberColumn(f"Total ({one})" if one else "Total",
                                                   format=money_format(one or "EUR"), width="small"),
            "Credits drawn": st.column_config.NumberColumn(format=f"%,.{CREDIT_DECIMALS}f", width="small")})
        # exports are built when the button is clicked (a callable runs then), not on every rerun
        st.download_button(f"Export {month} as CSV", lambda: read(reading.export_month_csv, actor, partner_id, month),
                           file_name=f"statements-{month}.csv", mime="text/csv", key="stm_month_csv")

        by_id = {r.id: r for r in rows}
        sid = st.selectbox("Open statement", list(by_id), key="stm_open",
                           format_func=lambda i: f"{by_id[i].addressee} · {KIND[by_id[i].kind]} from "
                                                 f"{by_id[i].issuer} · {by_id[i].number or by_id[i].status}")
        row = by_id[sid]
        doc = read(reading.get_statement, actor, partner_id, sid)
        st.subheader(f"{KIND[row.kind]} {doc.number or '(draft)'}")
        st.markdown(f"**Issuer:** {plain(doc.issuer.name)} · **To:** {plain(doc.addressee.name)} · "
                    f"**Period:** {format_date(doc.period_start)} – {format_date(doc.period_end)} · "
                    f"**Status:** {STATUS[row.status]}")
        if doc.modes and row.kind == "statement":
            st.caption("Billing mode: " + "; ".join(
                f"{reading.mode_label(m[2])} {format_date(date.fromisoformat(m[0]))} – "
                f"{format_date(date.fromisoformat(m[1]))}" for m in doc.modes))
        if doc.reason:
            st.caption(f"Reason: {plain(doc.reason)} (credit note for {doc.credit_note_for})")
        if doc.void_reason:
            st.warning(f"Void: {plain(doc.void_reason)}")
        cur = doc.currency
        if doc.lines:
            sections = any(ln.section for ln in doc.lines)
            st.dataframe(numeric(pd.DataFrame([{
                "#": ln.line_no, "Section": ln.section or "", "Description": line_label(ln, doc.language),
                "Quantity": ln.quantity, "Amount": ln.amount, "Explanation": line_explanation(ln, doc.language),
            } for ln in doc.lines]), "Quantity", "Amount"), hide_index=True, width="stretch", key="stm_lines",
                column_order=["#", *(["Section"] if sections else []), "Description", "Quantity", "Amount",
                              "Explanation"], column_config={
                "#": st.column_config.NumberColumn(width=40),
                "Quantity": st.column_config.NumberColumn(format="localized", width="small"),
                "Amount": st.column_config.NumberColumn(f"Amount ({cur})", format=money_format(cur), width="small"),
                "Explanation": st.column_config.TextColumn(width="large")})
        else:
            st.info("No charges in this period.")
        with st.container(horizontal=True, gap="large"):  # each figure as wide as it needs: never cut off
            st.metric("Subtotal", format_money(doc.subtotal, cur), width="content")
            st.metric(f"Tax {format_quantity(doc.tax_rate or 0)} %", format_money(doc.tax_amount, cur),
                      width="content")
            st.metric("Total", format_money(doc.total, cur), width="content")
        if doc.credits_drawn:
            st.caption(f"Paid by {plain(doc.issuer.name)} with prepaid credits: {format_quantity(doc.credits_drawn)} "
                       "credits drawn.")
        if doc.charged_on_demand:
            st.caption(f"Charged on demand to {plain(doc.issuer.name)}: {format_money(doc.charged_on_demand, cur)}.")

        d1, d2 = st.columns(2)
        stem = (doc.number or f"draft-{sid}").lower()
        # built when clicked (the callable runs then), not on every rerun of the page
        d1.download_button("Download PDF", lambda: read(reading.export_pdf, actor, partner_id, sid),
                           file_name=f"{stem}.pdf", mime="application/pdf", key="stm_pdf")
        d2.download_button("Download CSV", lambda: read(reading.export_csv, actor, partner_id, sid),
                           file_name=f"{stem}.csv", mime="text/csv", key="stm_csv")

        if reading.may_issue(actor, partner_id, row.issuer_partner_id) and row.kind != "credit_note":
            if row.status == "draft":
                b1, b2 = st.columns(2)
                if b1.button("Finalise", type="primary", key="stm_finalise",
                             help="Numbers the statement and freezes it; late usage becomes a correction."):
                    if run_action(lifecycle.finalise, actor, partner_id, sid, success="Statement finalised."):
                        st.rerun()
                if b2.button("Void draft", key="stm_void_draft"):
                    if run_action(lifecycle.void, actor, partner_id, sid, success="Draft voided."):
                        st.rerun()
            elif row.status == "final":
                with st.expander("Credit note or void"):
                    reason = st.text_input("Reason", key="stm_reason")
                    field_error("reason")
                    picked = st.multiselect("Lines to credit (none = all open lines)",
                                            [ln.line_no for ln in doc.lines], key="stm_cn_lines",
                                            format_func=lambda n: f"{n}: {doc.lines[n - 1].label}")
                    field_error("lines")
                    b1, b2 = st.columns(2)
                    if b1.button("Issue credit note", key="stm_credit"):
                        if run_action(lifecycle.create_credit_note, actor, partner_id, sid, reason,
                                      picked or None, success="Credit note issued."):
                            st.rerun()
                    if b2.button("Void with full credit note", key="stm_void"):
                        if run_action(lifecycle.void, actor, partner_id, sid, reason,
                                      success="Statement voided; credit note issued."):
                            st.rerun()
        elif can_manage and row.status == "draft" and row.kind != "credit_note":
            st.caption("The platform issues this statement: it finalises it.")

if "Branding & language" in tabs:
    with tabs["Branding & language"]:
        b = read(settings.get_settings, actor, partner_id)
        st.caption("How your statements look to the customers you bill yourself (partner-pays modes). "
                   "Final statements keep the branding they were issued with.")
        with st.form("stm_settings"):
            c1, c2 = st.columns(2)
            display_name = c1.text_input("Name on statements", value=b.display_name, key="set_name")
            with c1:
                field_error("display_name")
            logo_text = c2.text_input("Logo text", value=b.logo_text, key="set_logo")
            address = c1.text_area("Address", value=b.address, key="set_address", height=90)
            footer = c2.text_area("Footer", value=b.footer, key="set_footer", height=90)
            langs = list(LANGUAGES)
            language = c1.selectbox("Language", langs, index=langs.index(b.language), format_func=LANGUAGES.get,
                                    key="set_language")
            tax = c2.text_input("Tax rate % (empty = no tax)",
                                value="" if b.tax_rate is None else format_quantity(b.tax_rate), key="set_tax")
            with c2:
                field_error("tax_rate")
            terms = c1.number_input("Payment terms (days)", min_value=0, max_value=365,
                                    value=int(b.payment_terms_days), key="set_terms")
            prefix = c2.text_input("Number prefix", value=b.number_prefix, key="set_prefix")
            with c2:
                field_error("number_prefix")
            vat_id = c1.text_input("VAT id (shown on statements)", value=b.vat_id, key="set_vat")
            with c1:
                field_error("vat_id")
            st.markdown("**Your brand in the app** — the customers you bill see your name, logo text and colours, "
                        "never the platform's.")
            k1, k2, k3 = st.columns([2, 1, 1], vertical_alignment="bottom")
            own_colours = k1.checkbox("Show my colours to my clients", value=bool(b.primary_colour or b.sidebar_colour),
                                      key="set_own_colours")
            primary = k2.color_picker("Primary colour", value=b.primary_colour or PLATFORM_PRIMARY, key="set_primary")
            sidebar = k3.color_picker("Sidebar colour", value=b.sidebar_colour or PLATFORM_SIDEBAR, key="set_sidebar")
            field_error("primary_colour")
            field_error("sidebar_colour")
            overrides = st.text_area("Label overrides (one `key = text` per line, e.g. `total = Amount due`)",
                                     value="\n".join(f"{k} = {v}" for k, v in b.labels.items()), key="set_labels")
            field_error("labels")
            if st.form_submit_button("Save branding", type="primary"):
                try:
                    parsed = settings.parse_label_overrides(overrides)
                except DomainError as exc:
                    st.session_state["field_errors"] = {"labels": str(exc)}
                    parsed = None
                if parsed is not None and run_action(
                        settings.save_settings, actor, partner_id, display_name=display_name, address=address,
                        logo_text=logo_text, footer=footer, labels_=parsed, language=language, tax_rate=tax,
                        payment_terms_days=terms, number_prefix=prefix, vat_id=vat_id,
                        primary_colour=primary if own_colours else None, sidebar_colour=sidebar if own_colours else None,
                        success="Branding saved."):
                    st.rerun()
