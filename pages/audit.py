"""Audit log: every change, with who, what, which record, before and after, when — in words."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.accounts import accounts, audit
from core.accounts.actor import ROLE_LABELS
from core.billing.modes import MODE_LABELS
from core.usage.reports import account_names
from pages.common import read, require

ENTITIES = {
    "customer_account": "Customer account", "user": "User", "partner": "Partner", "plan": "Price plan",
    "plan_assignment": "Plan assignment", "billing_mode": "Billing mode", "billing_alert": "Usage alert",
    "wallet": "Credits wallet", "payment_method": "Payment method", "statement": "Statement",
    "statement_settings": "Statement branding", "metric": "Metric", "usage_batch": "Usage import",
}
ACTIONS = {
    "create": "Created", "update": "Changed", "delete": "Deleted", "restore": "Restored", "activate": "Activated",
    "acknowledge": "Acknowledged", "adjust": "Adjusted", "archive": "Archived", "assign_plan": "Assigned a plan",
    "buy_credits": "Bought credits", "change_mode": "Changed the billing mode", "change_password": "Changed the password",
    "change_role": "Changed the role", "configure": "Changed the settings", "expire": "Expired credits",
    "finalise": "Finalised", "generate": "Generated", "new_version": "Saved a new version", "refund": "Refunded",
    "regenerate": "Regenerated", "reset_password": "Reset the password", "signup": "Signed up",
    "void": "Voided", "usage.import": "Imported usage",
}
VALUE_WORDS: dict[str, str] = {**ROLE_LABELS, **MODE_LABELS, "active": "Active", "suspended": "Suspended",
                               "deleted": "Deleted", "in_arrears": "In arrears", "draft": "Draft", "final": "Final",
                               "void": "Void"}


def _words(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _value(v: Any) -> str:
    if v is None or v == "":
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        return "; ".join(f"{_words(str(k))}: {_value(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(_value(x) for x in v)
    return VALUE_WORDS.get(str(v), str(v))


def _change(before: dict | None, after: dict | None) -> str:
    """'Name: Old → New' per field; a created record lists its fields, a deleted one what it had."""
    before, after = before or {}, after or {}
    parts = []
    for k in list(dict.fromkeys([*before, *after])):
        if k in before and k in after:
            parts.append(f"{_words(k)}: {_value(before[k])} → {_value(after[k])}")
        elif k in after:
            parts.append(f"{_words(k)}: {_value(after[k])}")
        else:
            parts.append(f"{_words(k)}: {_value(before[k])} (removed)")
    return " · ".join(parts)


actor = require("audit.view")
st.title("Audit log")

partner_id = actor.partner_id
if actor.is_admin:
    options = {0: "All partners", **{p.id: p.name for p in read(accounts.list_partners, actor)}}
    choice = st.selectbox("Partner", list(options), format_func=options.get, key="audit_partner")
    partner_id = choice or None

c1, c2 = st.columns([2, 1])
kinds = [None, *ENTITIES]
entity = c1.selectbox("Record type", kinds, format_func=lambda k: "All records" if k is None else ENTITIES[k],
                      key="audit_entity")
page_no = c2.number_input("Page", min_value=1, value=1, step=1, key="audit_page")
PAGE = 50
entries = read(audit.list_entries, actor, partner_id=partner_id, limit=PAGE, offset=(page_no - 1) * PAGE,
               entity=entity)
if not entries:
    st.info("No audit entries here.")
else:
    names = read(account_names, actor, partner_id)
    st.dataframe(pd.DataFrame([{
        "When": e.at,
        "Who": (e.actor_email or "the system") + (f" (logged in as by {e.impersonator_email})"
                                                  if e.impersonator_email else ""),
        "What": ACTIONS.get(e.action, _words(e.action)),
        "Record": ENTITIES.get(e.entity, _words(e.entity)),
        "Customer": names.get((e.partner_id, e.account_id), "") if e.account_id else "",
        "Change": _change(e.before, e.after),
    } for e in entries]), hide_index=True, width="stretch", key="audit_table", column_config={
        "When": st.column_config.DatetimeColumn("When (UTC)", format="D MMM YYYY, HH:mm:ss"),
        "Change": st.column_config.TextColumn("Change", width="large"),
    })
    st.caption(f"Page {page_no}: {len(entries)} entries (newest first)")
