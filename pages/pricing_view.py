"""Pricing page helpers: rendering shared by its parts (plans, prices, ratings, alerts) and the page's context."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from core.accounts.actor import Actor
from core.billing import alerts
from core.billing.describe import describe_spec
from core.pricing import format_money, format_quantity
from pages.common import form_errors, plain, read, run_action


@dataclass(frozen=True)
class PricingContext:
    """Who is pricing for which partner, the metrics offered (key -> "Name (unit)") and their declared
    dimensions."""

    actor: Actor
    partner_id: int
    metric_names: dict[str, str]
    metric_keys: list[str]
    dimensions: dict[str, dict[str, str]]  # metric -> declared event property -> label


def md_safe(text: object) -> str:
    """User text in a widget label (where Streamlit renders Markdown): the characters that make Markdown there
    (emphasis, code, links, colours, emoji, maths, HTML) are escaped; others stay, so labels read the same."""
    return re.sub(r"([\\`*_\[\]~$:<>])", r"\\\1", str(text))


def text_or_none(value: Any) -> str | None:
    """Widget text → stored form: blank means 'not set'."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    value = str(value).strip()
    return value or None


def show_spec_errors(form: str | None = None) -> None:
    """Every problem of the last refused save of `form`, with its path (e.g. charges[0].tiers[1])."""
    errors = form_errors(form)
    for key, msg in errors.items():
        if key == "_form":
            continue
        where = key.removeprefix("spec.") if key.startswith("spec.") else key
        st.error(f"{plain(where)}: {plain(msg)}")


def render_spec(spec) -> None:
    st.dataframe(pd.DataFrame(describe_spec(spec)), hide_index=True, width="stretch")
    st.caption(f"Currency {spec.currency} · fees billed {spec.timing.replace('_', ' ')} by default")


def render_rating(r, sentence: str) -> None:
    if not r.lines:
        st.info("No plan is in force this month, so nothing would be charged.")
        return
    st.dataframe(pd.DataFrame([{"Line": ln.label, "Metric": ln.metric or "",
                                "Quantity": format_quantity(ln.quantity) if ln.metric else "",
                                "Amount": format_money(ln.amount, r.currency), "Explanation": ln.explanation}
                               for ln in r.lines]), hide_index=True, width="stretch")
    st.markdown(f"**{plain(sentence)} {format_money(r.total, r.currency)}.**")


def render_alerts(actor: Actor, partner_id: int | None, account_id: int | None, key: str) -> None:
    rows = read(alerts.list_alerts, actor, partner_id, account_id)
    if not rows:
        st.info("No threshold alerts.")
        return
    st.dataframe(pd.DataFrame([{"Customer": r.account_name, "Month": r.period_start.strftime("%Y-%m"),
                                "Metric": r.metric, "Alert": r.message, "Raised": r.created_at,
                                "Acknowledged": r.acknowledged_at} for r in rows]),
                 hide_index=True, width="stretch")
    open_rows = {(r.partner_id, r.id): r for r in rows if r.acknowledged_at is None}
    if open_rows:
        pick = st.selectbox("Open alert", list(open_rows), key=f"{key}_pick",
                            format_func=lambda k: f"{open_rows[k].account_name}: {open_rows[k].message}")
        if st.button("Acknowledge", key=f"{key}_ack", icon=":material/done:"):
            if run_action(alerts.acknowledge_alert, actor, pick[0], pick[1], success="Alert acknowledged."):
                st.rerun()
