"""The Customers tab of the Pricing page: each customer's plan, its history, assigning a plan with the customer's own
prices (the builder's fields, or dotted paths as an advanced option), the live preview, and the partner-level plan."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import clock
from core.accounts import accounts
from core.billing import plan_builder, plans, rating
from core.pricing import get_model
from pages import margin_ui
from pages.common import form_expander, plain, read, run_action
from pages.pricing_builder import tiers_editor
from pages.pricing_view import PricingContext, md_safe, render_rating, render_spec, show_spec_errors


def assign_with_overrides(session, actor_, partner_id_, account_id, *, plan_key, effective_from, form_overrides,
                          overrides_text):
    """One action: the prices typed in the form and the advanced dotted-path lines (these win) → assign (both
    raise ValidationError before writing)."""
    overrides = {**form_overrides, **plans.parse_overrides_text(overrides_text)}
    return plans.assign_plan(session, actor_, partner_id_, account_id, plan_id=plan_key[1],
                             plan_partner_id=plan_key[0], effective_from=effective_from, overrides=overrides or None)


def customer_prices(spec, key: str, ctx: PricingContext) -> dict:
    """The plan's prices in the same fields as the plan builder, prefilled: what is changed becomes this
    customer's override."""
    edits, tier_edits, fee_edits, discount_edits = {}, {}, {}, {}
    for c in spec.charges:
        model = get_model(c.model)
        st.text(f"{c.label or c.id} · {model.title} · {ctx.metric_names.get(c.metric, c.metric)}")
        simple = [f for f in model.fields if f.kind != "tiers"]
        if simple:
            cols = st.columns(min(3, len(simple)))
            edits[c.id] = {f.name: cols[i % len(cols)].text_input(
                f.label, value="" if c.field(f.name) is None else str(c.field(f.name)),
                key=f"{key}_{c.id}_{f.name}") for i, f in enumerate(simple)}
        if c.tiers:
            tier_edits[c.id] = tiers_editor(f"{key}_{c.id}_tiers", blank=0, rows=
                                            [{"first": t.first, "last": t.last, "unit_price": t.unit_price,
                                              "flat_fee": t.flat_fee, "block_size": t.block_size} for t in c.tiers])
    if spec.fees or spec.discounts:
        cols = st.columns(3)
        i = 0
        for f in spec.fees:
            fee_edits[f.id] = cols[i % 3].text_input(md_safe(f.label or f.id) + " (fee per month)", value=str(f.amount),
                                                     key=f"{key}_fee_{f.id}")
            i += 1
        for d in spec.discounts:
            what = "discount %" if d.percent is not None else "discount per month"
            discount_edits[d.id] = cols[i % 3].text_input(
                md_safe(d.label or d.id) + f" ({what})", value=str(d.percent if d.percent is not None else d.amount),
                key=f"{key}_disc_{d.id}")
            i += 1
    return plan_builder.overrides_from_form(spec, edits, tier_edits, fee_edits, discount_edits)


def customers_tab(ctx: PricingContext) -> None:
    customers = read(accounts.list_accounts, ctx.actor, partner_id=ctx.partner_id)
    if not customers:
        st.info("No customer accounts yet.")
        return
    by_id = {r.id: r for r in customers}
    opened = st.session_state.pop("open_account", None)  # from the Customers page's "Pricing" button
    if opened and opened[0] == ctx.partner_id and opened[1] in by_id:
        st.session_state["pr_customer"] = opened[1]
        st.info(f"Showing {plain(by_id[opened[1]].name)}: see the Customers tab.")
    account_id = st.selectbox("Customer", list(by_id), key="pr_customer",
                              format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].currency})")
    acc = by_id[account_id]
    current = read(plans.current_assignment, ctx.actor, ctx.partner_id, account_id)
    if current is None:
        st.info(f"{plain(acc.name)} has no plan yet.")
    else:
        st.subheader(f"Current plan: {plain(current.assignment.plan_name)}")
        own = plan_builder.describe_overrides(current.spec, current.assignment.overrides)
        st.caption(f"Since {current.assignment.effective_from.isoformat()} · version {current.version}")
        if own:
            st.text("Own prices: " + " · ".join(own))
        render_spec(current.spec)
    history = read(plans.assignment_history, ctx.actor, ctx.partner_id, account_id)
    if history:
        st.markdown("**Plan history**")
        st.dataframe(pd.DataFrame([{"From": h.effective_from, "Plan": h.plan_name, "Code": h.plan_code,
                                    "Own prices": " · ".join(f"{k} = {v}" for k, v in (h.overrides or {}).items())}
                                   for h in history]),
                     hide_index=True, width="stretch")
    with form_expander("Assign a plan", "pr_assign", icon=":material/assignment:", expanded=current is None):
        options = {(r.partner_id, r.id): r for r in read(plans.list_plans, ctx.actor) if r.subject == "account"}
        if not options:
            st.info("Create a plan first (tab Plans).")
        else:
            plan_key = st.selectbox("Plan", list(options), key="pr_assign_plan",
                                    format_func=lambda k: f"{options[k].name} ({options[k].currency}, "
                                                          f"{options[k].owner})")
            chosen = options[plan_key]
            month_start = clock.today().replace(day=1)
            # a day the plan covers: the 1st of the month, unless the plan only starts later this month
            default_eff = max(month_start, chosen.effective_from) if chosen.version == 1 else month_start
            effective = st.date_input("Effective from", value=default_eff, key=f"pr_assign_eff_{plan_key}",
                                      help="From a day other than the 1st, that month is priced in two parts: "
                                           "the days before keep the previous plan (or none), and this plan's "
                                           "monthly fees are prorated for the days it covers.")
            if default_eff != month_start:
                st.caption(f"{chosen.name} starts on {default_eff:%d %b %Y}: this month is priced in two parts, "
                           "and its monthly fees are prorated for the days from then on.")
            spec = read(plans.get_plan, ctx.actor, *plan_key).spec()
            st.markdown("###### This customer's prices (change a value to give them their own price)")
            form_overrides = customer_prices(spec, f"pr_ov_{plan_key[0]}_{plan_key[1]}", ctx)
            if form_overrides:
                st.text("Own prices: " + " · ".join(plan_builder.describe_overrides(spec, form_overrides)))
            with st.expander("Advanced: overrides as dotted paths"):
                overrides = st.text_area("One per line: path = value (these win over the fields above)",
                                         key="pr_assign_overrides",
                                         placeholder="charges.pages.unit_price = 0.09\nfees.base.amount = 79")
            if st.button("Assign plan", type="primary", key="pr_assign_btn"):
                if run_action(assign_with_overrides, ctx.actor, ctx.partner_id, account_id, plan_key=plan_key,
                              effective_from=effective, form_overrides=form_overrides, overrides_text=overrides,
                              success="Plan assigned.", form="pr_assign"):
                    st.rerun()
            show_spec_errors("pr_assign")
    st.subheader("Live preview")
    render_rating(read(rating.preview_month_to_date, ctx.actor, ctx.partner_id, account_id),
                  "At this month's usage so far, this customer would pay")
    margin_ui.customer_preview(ctx.actor, ctx.partner_id, account_id, current.spec if current else None, key="pr_cust")
    partner_plan_section(ctx)


def partner_plan_section(ctx: PricingContext) -> None:
    """Partner-level fees (client-count bands): read-only for staff, assignable by platform admins."""
    current = read(plans.current_assignment, ctx.actor, ctx.partner_id, None)
    if current is None and not ctx.actor.is_admin:
        return
    st.divider()
    st.subheader("Partner-level plan")
    if current is not None:
        st.caption(f"{plain(current.assignment.plan_name)} since {current.assignment.effective_from.isoformat()}")
        start, end = rating.month_of(clock.today())
        st.metric("Active clients this month", read(rating.active_clients, ctx.actor, ctx.partner_id, start, end))
        render_rating(read(rating.rate_partner, ctx.actor, ctx.partner_id, start, end, clock.today()),
                      "This month, the partner would pay")
    if ctx.actor.is_admin:
        options = {r.id: r for r in read(plans.list_plans, ctx.actor, subject="partner")}
        if options:
            with st.form("pr_partner_plan_form"):
                plan_id = st.selectbox("Partner plan", list(options), format_func=lambda i: options[i].name,
                                       key="pr_pplan")
                eff = st.date_input("Effective from", value=clock.today().replace(day=1), key="pr_pplan_eff")
                if st.form_submit_button("Assign partner plan"):
                    if run_action(plans.assign_partner_plan, ctx.actor, ctx.partner_id, plan_id=plan_id, effective_from=eff,
                                  success="Partner plan assigned."):
                        st.rerun()
