"""Rate cards: what the platform charges each partner (the first price layer). Platform admins set the
standard card per currency and each partner's negotiated prices; partner staff read their own card.

Thin: widgets → core.billing.ratecards → render. Core validates and checks permissions.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import streamlit as st

from core import clock
from core.accounts import accounts
from core.accounts.permissions import allowed
from core.billing import plans, ratecard_admin, ratecards
from core.errors import ValidationError
from pages.common import read, require, run_action, show_flash

actor = require("ratecard.view")
st.title("Rate cards")
st.caption("What the platform charges a partner for its clients' usage. Your own plans (Pricing) decide what "
           "your clients pay you; the difference is your margin (Money).")
show_flash()

TEMPLATE = {
    "currency": "EUR",
    "tier_basis": "client",
    "credit_rates": {"recipients": "1.05"},
    "credit_price_steps": [{"min_credits": "0", "price_per_credit": "0.010"},
                           {"min_credits": "100000", "price_per_credit": "0.008"}],
    "usage": {"charges": [{"id": "pages", "metric": "pages", "model": "graduated", "unit": "pages",
                           "tiers": [{"first": 1, "last": 10000, "unit_price": "0.05"},
                                     {"first": 10001, "last": None, "unit_price": "0.04"}]}]},
    "partner_fees": {"charges": [{"id": "access", "metric": "active_clients", "model": "per_unit",
                                  "unit_price": "149", "unit": "clients"}]},
    "revenue_share_percent": "10",
}


def plain(text: str) -> str:
    """User text shown inside Markdown: every Markdown character escaped (a name is data, never markup)."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~:$])", r"\\\1", text)


def show_errors() -> None:
    for key, msg in (st.session_state.get("field_errors") or {}).items():
        if key != "_form":
            st.error(f"{key}: {msg}")


def render_card(rc: ratecards.ResolvedCard | None, who: str) -> None:
    if rc is None:
        st.info(f"No rate card prices {who} today: the platform has not set one yet.")
        return
    source = "the platform's standard card" if rc.source == "standard" else "negotiated prices"
    st.markdown(f"**{plain(rc.name)}** · {source} · in force since {rc.effective_from.isoformat()}")
    st.dataframe(pd.DataFrame(ratecards.describe_card(rc.card)), hide_index=True, width="stretch",
                 key=f"card_{who}")
    if rc.overrides:
        st.caption("Negotiated changes to the standard card:")
        st.dataframe(pd.DataFrame([{"Path": k, "Value": "" if v is None else str(v)}
                                   for k, v in rc.overrides.items()]), hide_index=True, width="stretch")


def set_with_text(session, actor_, partner_id_, *, mode, effective_from, text, name):
    """One action: parse the typed overrides or card JSON, then save (both raise before writing)."""
    if mode == "overrides":
        return ratecard_admin.set_partner_card(session, actor_, partner_id_, effective_from=effective_from,
                                          overrides=plans.parse_overrides_text(text), name=name or None)
    try:
        card = json.loads(text or "")
    except ValueError as exc:
        raise ValidationError({"card": f"Not valid JSON: {exc}"}) from None
    return ratecard_admin.set_partner_card(session, actor_, partner_id_, effective_from=effective_from, card=card,
                                      name=name or None)


partner_id: int | None = actor.partner_id
if actor.is_admin:
    partners = {p.id: p for p in read(accounts.list_partners, actor) if not p.is_house}
    partner_id = None
    if not partners:
        st.info("No partners yet.")
    else:
        partner_id = st.selectbox("Partner", list(partners), format_func=lambda i: partners[i].name,
                                  key="rc_partner")

if partner_id is not None:
    day = st.date_input("Prices in force on", value=clock.today(), key="rc_day")
    rc = read(ratecards.get_card, actor, partner_id, day)
    render_card(rc, "this partner")
    history = read(ratecards.card_history, actor, partner_id)
    if history:
        with st.expander("Versions", icon=":material/history:"):
            st.dataframe(pd.DataFrame([{"Card": h.card, "Kind": h.kind, "Version": h.version,
                                        "Effective from": h.effective_from, "Note": h.note or "",
                                        "Prices": json.dumps(h.spec)} for h in history]),
                         hide_index=True, width="stretch")

    if allowed(actor, "ratecard.manage", partner_id):
        st.subheader("Set this partner's prices")
        with st.form("rc_partner_form"):
            mode = st.radio("How", ["overrides", "own card"], horizontal=True, key="rc_mode",
                            format_func=lambda m: {"overrides": "Change some standard prices",
                                                   "own card": "A whole card of its own (JSON)"}[m])
            eff = st.date_input("Effective from", value=clock.today().replace(day=1), key="rc_eff")
            name = st.text_input("Card name (first time only, optional)", key="rc_name")
            text = st.text_area("Overrides (one per line: path = value) or the card as JSON", key="rc_text",
                                height=180, placeholder="credit_rates.recipients = 0.95\n"
                                                        "usage.charges.pages.unit_price = 0.04\n"
                                                        "credit_price_steps = 0: 0.009, 100000: 0.007\n"
                                                        "revenue_share_percent = 12")
            if st.form_submit_button("Save prices", type="primary"):
                if run_action(set_with_text, actor, partner_id, mode=mode, effective_from=eff, text=text,
                              name=name, success="Rate card saved."):
                    st.rerun()
        show_errors()

if actor.is_admin:
    st.divider()
    st.subheader("Standard cards (list prices per currency)")
    rows = read(ratecards.list_cards, actor)
    if rows:
        st.dataframe(pd.DataFrame([{"Card": r.name, "Kind": r.kind, "Owner": r.owner, "Currency": r.currency,
                                    "Latest version": r.version, "From": r.effective_from} for r in rows]),
                     hide_index=True, width="stretch", key="rc_all")
    with st.form("rc_standard_form"):
        currency = st.text_input("Currency", value="EUR", max_chars=3, key="rc_std_currency")
        std_name = st.text_input("Name (new card only)", value="Standard", key="rc_std_name")
        std_eff = st.date_input("Effective from", value=clock.today().replace(day=1), key="rc_std_eff")
        std_text = st.text_area("Card (JSON)", value=json.dumps(TEMPLATE, indent=2), height=300, key="rc_std_text")
        if st.form_submit_button("Save standard card"):
            existing = {r.currency for r in rows if r.kind == "standard"}
            try:
                card = json.loads(std_text)
            except ValueError as exc:
                st.error(f"Not valid JSON: {exc}")
            else:
                cur = currency.strip().upper()
                if cur in existing:
                    ok = run_action(ratecard_admin.new_standard_version, actor, cur, card=card, effective_from=std_eff,
                                    success="New standard version saved.")
                else:
                    ok = run_action(ratecard_admin.create_standard_card, actor, currency=cur, name=std_name,
                                    card=card, effective_from=std_eff, success="Standard card created.")
                if ok:
                    st.rerun()
    show_errors()
