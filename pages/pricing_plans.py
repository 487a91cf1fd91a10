"""The Plans tab of the Pricing page: the plan catalogue, a new plan, and new versions of a plan (archive too)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core import clock
from core.accounts import accounts
from core.billing import plans
from core.validation import currencies
from pages import margin_ui
from pages.common import plain, read, run_action
from pages.pricing_builder import load_draft, pricing_inputs
from pages.pricing_view import PricingContext, render_spec, show_spec_errors


def plans_tab(ctx: PricingContext) -> None:
    show_archived = st.toggle("Show archived plans", key="pr_show_archived")
    rows = read(plans.list_plans, ctx.actor, include_archived=show_archived)
    if rows:
        st.dataframe(pd.DataFrame([{"Plan": r.name, "Code": r.code, "Owner": r.owner, "Currency": r.currency,
                                    "For": r.subject, "Version": r.version, "Since": r.effective_from,
                                    "Archived": r.archived} for r in rows]), hide_index=True, width="stretch")
    else:
        st.info("No plans yet: create the first one below.")
    editable = {(r.partner_id, r.id): r for r in rows if r.partner_id == ctx.partner_id}
    choice = st.selectbox("Create or edit", ["new", *editable], key="pr_edit",
                          format_func=lambda k: "+ New plan" if k == "new" else
                          f"{editable[k].name} ({editable[k].code}, v{editable[k].version})")
    if choice == "new":
        load_draft("new", None)
        new_plan_form(ctx)
    else:
        detail = read(plans.get_plan, ctx.actor, *choice)
        load_draft(choice, detail.latest.spec)
        edit_plan_form(detail, ctx)


def new_plan_form(ctx: PricingContext) -> None:
    st.subheader("New plan")
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Plan name", key="pr_name")
    code = c2.text_input("Code", key="pr_code", placeholder="standard-2025")
    codes = sorted(currencies())
    default_cur = read(accounts.partner_settings, ctx.actor, ctx.partner_id).currency
    currency = c3.selectbox("Currency", codes, index=codes.index(default_cur), key="pr_currency")
    description = st.text_input("Description (optional)", key="pr_desc")
    subject = "account"
    if ctx.actor.is_admin and read(accounts.partner_settings, ctx.actor, ctx.partner_id).is_house:
        subject = st.radio("Prices", ["account", "partner"], horizontal=True, key="pr_subject",
                           format_func=lambda s: "customer accounts" if s == "account"
                           else "partners (partner-level fees, e.g. client-count bands)")
    effective = st.date_input("Effective from", value=clock.today(), key="pr_eff_new")
    spec_dict = pricing_inputs(currency, ctx)
    if st.button("Create plan", type="primary", key="pr_create", icon=":material/save:"):
        plan = run_action(plans.create_plan, ctx.actor, partner_id=ctx.partner_id, name=name, code=code, currency=currency,
                          description=description or None, subject=subject, spec=spec_dict,
                          effective_from=effective, success=None, form="pr_new")
        if plan is not None:
            st.session_state["flash"] = ("success", f"Plan “{plan.name}” created.")
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    show_spec_errors("pr_new")


def edit_plan_form(detail, ctx: PricingContext) -> None:
    plan = detail.plan
    st.subheader(f"{plain(plan.name)} ({plain(plan.code)})")
    st.caption(f"{plan.currency} · prices {plan.subject}s · " + ("archived" if plan.archived else "active"))
    st.dataframe(pd.DataFrame([{"Version": v.version, "Effective from": v.effective_from, "Note": v.note or "",
                                "Created": v.created_at} for v in reversed(detail.versions)]),
                 hide_index=True, width="stretch")
    if plan.archived:
        render_spec(detail.spec())
        if st.button("Unarchive plan", key="pr_unarchive", icon=":material/unarchive:"):
            if run_action(plans.unarchive_plan, ctx.actor, plan.partner_id, plan.id, success="Plan unarchived."):
                st.rerun()
        return
    spec_dict = pricing_inputs(plan.currency, ctx)
    margin_ui.draft_preview(ctx.actor, plan.partner_id, spec_dict, key="pr_edit")
    c1, c2 = st.columns(2)
    effective = c1.date_input("New version effective from", value=clock.today(), key="pr_eff_version")
    note = c2.text_input("What changed (optional)", key="pr_note")
    c1, c2 = st.columns(2)
    if c1.button("Save as new version", type="primary", key="pr_save_version", icon=":material/save:"):
        ver = run_action(plans.new_version, ctx.actor, plan.partner_id, plan.id, spec=spec_dict,
                         effective_from=effective, note=note or None, success=None, form="pr_version")
        if ver is not None:
            st.session_state["flash"] = ("success", f"Version {ver.version} saved, effective {ver.effective_from}.")
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    if c2.button("Archive plan", key="pr_archive", icon=":material/archive:"):
        if run_action(plans.archive_plan, ctx.actor, plan.partner_id, plan.id, success="Plan archived."):
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    show_spec_errors("pr_version")
