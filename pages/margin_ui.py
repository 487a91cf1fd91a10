"""The margin preview on the Pricing page: for a customer's usage of last month, what the client would pay
under a plan, what the platform charges the partner for it (its rate card) and the margin. A plan below cost
gets a warning, never a refusal. Figures come from core.billing.margin.preview."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core import clock
from core.accounts import accounts
from core.accounts.actor import Actor
from core.accounts.permissions import allowed
from core.billing import margin, plans
from core.errors import DomainError
from core.pricing import PlanValidationError, format_money, plan_from_dict
from pages.common import read


def render(actor: Actor, partner_id: int, account_id: int, spec: Any, *, key: str) -> None:
    """Client price, platform charge and margin of `spec` (PlanSpec or stored dict) for one customer."""
    if not allowed(actor, "margin.view", partner_id) or not allowed(actor, "plan.manage", partner_id):
        return
    try:
        parsed = plan_from_dict(spec) if isinstance(spec, dict) else spec
        p = read(margin.preview, actor, partner_id, account_id, parsed, clock.today())
    except PlanValidationError:
        st.caption("Complete the plan to see its margin.")
        return
    except DomainError as exc:
        st.caption(f"No margin preview: {exc}")
        return
    month = p.start.strftime("%B %Y")
    c1, c2, c3 = st.columns(3)
    c1.metric(f"Client price ({month} usage)", format_money(p.client_price, p.currency))
    c2.metric("Platform charge (rate card)",
              "no rate card" if p.platform_charge is None else format_money(p.platform_charge, p.currency))
    c3.metric("Margin", "unknown" if p.margin is None else format_money(p.margin, p.currency))
    if p.below_cost:
        st.warning(f"Below cost: at {month}'s usage this plan brings in {format_money(p.client_price, p.currency)} "
                   f"but the platform charges {format_money(p.platform_charge, p.currency)} for the same usage "
                   f"(margin {format_money(p.margin, p.currency)}). You can still save or assign it.",
                   icon=":material/trending_down:")


def customer_preview(actor: Actor, partner_id: int, account_id: int, current_spec: Any, *, key: str) -> None:
    """The margin of the customer's current plan, or of another plan before assigning it."""
    if not allowed(actor, "margin.view", partner_id) or not allowed(actor, "plan.manage", partner_id):
        return
    st.subheader("Margin preview")
    options = {(r.partner_id, r.id): r for r in read(plans.list_plans, actor) if r.subject == "account"}
    choices: list[Any] = (["current"] if current_spec is not None else []) + list(options)
    if not choices:
        return
    pick = st.selectbox("Plan to preview", choices, key=f"{key}_margin_plan",
                        format_func=lambda k: "Current plan" if k == "current" else
                        f"{options[k].name} ({options[k].owner})")
    if pick == "current":
        spec = current_spec
    else:
        spec = read(plans.get_plan, actor, pick[0], pick[1]).spec()
    render(actor, partner_id, account_id, spec, key=key)


def draft_preview(actor: Actor, partner_id: int, spec_dict: dict, *, key: str) -> None:
    """While a plan is edited: its margin for a customer the partner picks."""
    if not allowed(actor, "margin.view", partner_id) or not allowed(actor, "plan.manage", partner_id):
        return
    customers = {r.id: r.name for r in read(accounts.list_accounts, actor, partner_id=partner_id)}
    if not customers:
        return
    with st.expander("Margin preview for a customer", icon=":material/savings:", expanded=True):
        account_id = st.selectbox("Customer", list(customers), format_func=customers.get, key=f"{key}_margin_cust")
        render(actor, partner_id, account_id, spec_dict, key=key)
