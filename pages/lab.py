"""Billing-model lab: what a customer would pay under different price models, side by side.

Thin: widgets → core.lab.compare (re-pricing with the billing engine, break-even) → render. Nothing is saved
unless a model is applied to the customer (core.lab.compare.apply_model: plan assignment with an effective date,
audited).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import plotly.express as px
import streamlit as st

from core import clock
from core.accounts import accounts
from core.errors import ValidationError
from core.lab import compare as lab
from core.pricing import format_money, format_quantity
from pages.common import date_input_format, field_error, plain, read, require, run_action, show_flash

actor = require("plan.manage")
st.title("Billing-model lab")
show_flash()
st.caption("Re-price the same usage under several price models and compare. Nothing is saved unless you apply "
           "a model to the customer.")

MAX_CUSTOM = 4
TIER_DEFAULT = pd.DataFrame([{"first": 1, "last": 1000, "unit_price": "0.40"},
                             {"first": 1001, "last": None, "unit_price": "0.30"}])


def first_of_next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


# ------------------------------------------------------------------ whose usage


if actor.is_admin:
    partners = [p for p in read(accounts.list_partners, actor) if not p.is_house]
    if not partners:
        st.info("No partners yet.")
        st.stop()
    partner = st.selectbox("Partner", partners, format_func=lambda p: p.name, key="lab_partner")
    partner_id, partner_currency = partner.id, partner.currency
else:
    partner_id = actor.partner_id
    partner_currency = read(accounts.partner_settings, actor, partner_id).currency

today = clock.today()
default_start = date(today.year - 1, today.month, 1)  # 13 calendar months ending today
rng = st.date_input("Date range", value=(default_start, today), key="lab_range", format=date_input_format())
if not isinstance(rng, (tuple, list)) or len(rng) < 2:
    st.info("Pick the end of the date range.")
    st.stop()
start, end = rng[0], rng[1]

source = st.radio("Usage", ["A customer's real usage", "A synthetic profile"], horizontal=True, key="lab_source")
account_id = None
current = None
detail: dict = {}  # per month: usage per property value, for charges priced per value
if source == "A customer's real usage":
    rows = read(accounts.list_accounts, actor, partner_id=partner_id, statuses=("active", "suspended"))
    if not rows:
        st.info("This partner has no customers yet: try a synthetic profile.")
        st.stop()
    ids = [r.id for r in rows]
    opened = st.session_state.get("open_account")
    index = ids.index(opened[1]) if opened and opened[0] == partner_id and opened[1] in ids else 0
    chosen = st.selectbox("Customer", rows, index=index, format_func=lambda r: f"{r.name} (#{r.id})",
                          key="lab_account")
    account_id = chosen.id
    try:
        acc = read(lab.lab_for_account, actor, partner_id, account_id, start, end)
    except ValidationError as exc:
        st.error(plain("; ".join(exc.errors.values())))
        st.stop()
    usage, currency, current, detail = acc.usage, acc.currency, acc.current, acc.detail
    if current is None:
        st.info(f"{plain(acc.account_name)} has no plan in force on {end.isoformat()}: the first model is the baseline.")
else:
    profile = st.selectbox("Profile", list(lab.PROFILES), key="lab_profile",
                           format_func=lambda p: f"{p} document customer ({format_quantity(lab.PROFILES[p][0])} "
                                                 f"documents, {format_quantity(lab.PROFILES[p][1])} pages a month, "
                                                 "+3 % a month)")
    usage, currency = lab.synthetic_usage(profile, start, end), partner_currency

with st.expander("Usage per month", expanded=False):
    metrics_used = sorted({k for u in usage.values() for k in u})
    st.dataframe(pd.DataFrame([{"Month": m.strftime("%Y-%m"), **{k: format_quantity(u.get(k, 0)) for k in metrics_used}}
                               for m, u in usage.items()]), hide_index=True, width="stretch")


# ------------------------------------------------------------------ models


existing = read(lab.comparable_plans, actor, partner_id, currency)
by_name = {m.name: m for m in existing}
picked = st.multiselect(f"Existing plans ({currency})", list(by_name), key="lab_plans")
n_custom = st.number_input("Models built here", min_value=0, max_value=MAX_CUSTOM, value=1, step=1, key="lab_n")

# The models built here start as the customer's dominant billable metric (pages → per page, documents → per
# document, credits → credits, others → per unit of it). Another customer or profile resets them; a new date
# range with another dominant metric changes only the models whose type nobody changed.
default_kind, default_metric = lab.default_model(usage, current)
metric_options = ["documents", "pages", *[k for k in metrics_used if k not in ("documents", "pages")]]
whose = (source, account_id, st.session_state.get("lab_profile"))
before = st.session_state.get("lab_defaults")
if before != (whose, default_kind, default_metric):
    for i in range(MAX_CUSTOM):
        if before is None or before[0] != whose or st.session_state.get(f"lab_kind_{i}") in (None, before[1]):
            st.session_state[f"lab_kind_{i}"] = default_kind
            st.session_state[f"lab_metric_{i}"] = default_metric
    st.session_state["lab_defaults"] = (whose, default_kind, default_metric)

custom: list[lab.LabModel] = []
for i in range(int(n_custom)):
    with st.expander(f"Model {i + 1}", expanded=True):
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name", value=f"Model {i + 1}", key=f"lab_name_{i}")
        kind = c2.selectbox("Model", list(lab.MODEL_KINDS), format_func=lab.MODEL_KINDS.get, key=f"lab_kind_{i}")
        fee = c3.text_input("Monthly fee", value="", key=f"lab_fee_{i}", placeholder="none")
        params: dict = {"base_fee": fee}
        if kind in ("credits", "tiers", "allowance", "package", "per_unit"):
            params["metric"] = st.selectbox("Metric", metric_options, key=f"lab_metric_{i}")
        if kind in ("per_document", "per_page", "per_unit"):
            # one widget per type (its own default price): a shared key would keep another type's price
            params["unit_price"] = st.text_input("Price per unit", key=f"lab_price_{i}_{kind}",
                                                 value={"per_document": "0.30", "per_page": "0.06"}.get(kind, "0.01"))
        elif kind == "credits":
            a, b = st.columns(2)
            per_credit = params["metric"] == "credits"  # the customer already uses credits: 1 credit per credit
            tag = "credits" if per_credit else "units"
            params["credit_rate"] = a.text_input("Credits per unit", value="1" if per_credit else "5",
                                                 key=f"lab_rate_{i}_{tag}")
            params["unit_price"] = b.text_input("Price per credit", value="0.01" if per_credit else "0.06",
                                                key=f"lab_price_{i}_credits_{tag}")
        elif kind == "tiers":
            params["tier_mode"] = st.radio("Tiers price", ["volume", "graduated"], horizontal=True,
                                           key=f"lab_tmode_{i}",
                                           format_func=lambda v: "every unit at the band reached (volume)"
                                           if v == "volume" else "each unit by its band (graduated)")
            edited = st.data_editor(TIER_DEFAULT, num_rows="dynamic", key=f"lab_tiers_{i}", hide_index=True,
                                    column_config={"last": st.column_config.NumberColumn("last (empty = open)")})
            params["tiers"] = [{k: (None if pd.isna(v) else v) for k, v in row.items()}
                               for row in edited.to_dict("records")]
        elif kind == "allowance":
            a, b = st.columns(2)
            params["included_units"] = a.text_input("Included units", value="5000", key=f"lab_incl_{i}")
            params["overage_price"] = b.text_input("Overage price", value="0.25", key=f"lab_over_{i}")
        else:
            a, b = st.columns(2)
            params["package_size"] = a.text_input("Package size", value="1000", key=f"lab_size_{i}")
            params["unit_price"] = b.text_input("Price per package", value="280", key=f"lab_price_{i}_package")
        try:
            custom.append(lab.LabModel(name.strip() or f"Model {i + 1}", lab.model_spec(currency, kind, **params)))
        except ValidationError as exc:
            for key, msg in exc.errors.items():
                st.error(f"{plain(key)}: {plain(msg)}")

models = ([current] if current else []) + [by_name[n] for n in picked] + custom
seen: set[str] = set()
for j, m in enumerate(models):  # column names must be unique
    if m.name in seen:
        models[j] = lab.LabModel(f"{m.name} ({j + 1})", m.spec, m.current, m.plan_partner_id, m.plan_id)
    seen.add(models[j].name)
if len(models) < 2:
    st.info("Pick at least two models to compare (the customer's current plan counts as one).")
    st.stop()


# ------------------------------------------------------------------ results


result = lab.reprice(usage, models, detail=detail, cost=read(lab.platform_cost_plan, actor, partner_id, end))
cur = result.currency
BASE = "" if current is not None else " (baseline)"  # the current plan is named "Current: …"
st.subheader("Side by side")
base_comparable = next(r.comparable for r in result.models if r.current)


def compared(r: lab.ModelResult) -> bool:
    """A saving means something only when both this model and the baseline price usage the customer has."""
    return not r.current and r.comparable and base_comparable


cols = st.columns(len(result.models))
for col, r in zip(cols, result.models, strict=True):
    if r.current:
        delta = None
    elif not compared(r):
        delta = "not comparable"
    elif r.saving == 0:
        delta = "same cost"
    else:
        delta = f"{'saves' if r.saving > 0 else 'costs'} {format_money(abs(r.saving), cur)}"
    col.metric(plain(r.name) + (BASE if r.current else ""), format_money(r.total, cur), delta=delta,
               delta_color="normal" if r.current else ("off" if not compared(r) or r.saving == 0
                                                        else "normal" if r.saving > 0 else "inverse"))
if any(r.per_value for r in result.models):
    st.markdown("**Per value** (charges priced per value of an event property)")
    lines = sorted({k for r in result.models for k in r.per_value})
    st.dataframe(pd.DataFrame([{"Line": k, **{r.name: format_money(r.per_value.get(k, 0), cur) for r in result.models}}
                               for k in lines]), hide_index=True, width="stretch")
whom = chosen.name if account_id is not None else "this profile"
for r in result.models:
    if not r.comparable:
        st.warning(f"**{plain(r.name)}** prices {plain(', '.join(r.unused_metrics))}, which {plain(whom)} did not use in this date "
                   f"range: it would bill only its fees ({format_money(r.total, cur)}). That is not a saving — "
                   "choose a model on a metric the customer uses to compare.")

st.dataframe(pd.DataFrame([{
    "Model": r.name + (BASE if r.current else ""), "Total": format_money(r.total, cur),
    "Difference": format_money(r.difference, cur) if compared(r) or r.current else "—",
    "Saving": format_money(r.saving, cur) if compared(r) or r.current else "—",
    "Saving %": "" if r.saving_pct is None or not (compared(r) or r.current) else f"{r.saving_pct} %",
    "Per document": "" if r.per_document is None else format_quantity(r.per_document),
    "Per page": "" if r.per_page is None else format_quantity(r.per_page)} for r in result.models]),
    hide_index=True, width="stretch")

long = pd.DataFrame([{"Month": m.strftime("%Y-%m"), "Model": r.name, "Amount": float(r.per_month[m])}
                     for r in result.models for m in result.months])
fig = px.bar(long, x="Month", y="Amount", color="Model", barmode="group", labels={"Amount": f"Amount ({cur})"})
fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 10}, legend_title_text="")
st.plotly_chart(fig, width="stretch")

st.dataframe(pd.DataFrame([{"Month": row["month"], **{k: format_money(v, cur) for k, v in row.items() if k != "month"}}
                           for row in result.table()]), hide_index=True, width="stretch")

if result.platform_cost is not None:
    st.subheader("Your margin under each model")
    st.caption("What the customer would pay you − what the platform charges you for the same usage (your rate "
               "card).")
    st.dataframe(pd.DataFrame([{"Model": r.name, "Customer pays": format_money(r.total, cur),
                                "Platform charge": format_money(r.platform_charge, cur),
                                "Margin": format_money(r.margin, cur),
                                "Flag": "below cost" if r.margin < 0 else ""} for r in result.models]),
                 hide_index=True, width="stretch", key="lab_margins")
    for be in result.margin_break_even:
        if be.volume is not None:
            st.markdown(f"- **{be.model}** breaks even with the platform's charge at "
                        f"**{format_quantity(be.volume)} {be.metric}** a month; below that "
                        f"{'it is under cost' if be.cheaper_below == be.model else 'it earns a margin'}.")

st.subheader("Break-even")
if not result.break_even:
    st.caption("No metric in common to compare.")
for be in result.break_even:
    if be.volume is None:
        st.markdown(f"- **{plain(be.model)}** vs **{plain(be.against)}**: no break-even up to the volumes looked at; "
                    f"{plain(be.cheaper_below or 'they cost the same')} is cheaper throughout.")
    else:
        st.markdown(f"- **{plain(be.model)}** vs **{plain(be.against)}**: they swap at **{format_quantity(be.volume)} "
                    f"{plain(be.metric)}** a month; below that {plain(be.cheaper_below or 'neither')} is cheaper "
                    "(other usage at its monthly average).")


# ------------------------------------------------------------------ apply


if account_id is not None:
    st.subheader("Apply to customer")
    choices = [m for m in models if not m.current]
    with st.form("lab_apply"):
        target = st.selectbox("Model", [m.name for m in choices], key="lab_apply_model")
        eff = st.date_input("Effective from", value=first_of_next_month(today), key="lab_apply_date", format=date_input_format())
        field_error("effective_from")
        field_error("plan")
        submitted = st.form_submit_button("Apply to customer")
    if submitted:
        m = next(x for x in choices if x.name == target)
        kwargs = ({"plan_id": m.plan_id, "plan_partner_id": m.plan_partner_id} if m.plan_id is not None
                  else {"spec": m.spec, "name": f"{m.name} – {chosen.name}"})
        if run_action(lab.apply_model, actor, partner_id, account_id, effective_from=eff,
                      success=f"{target} applies to {chosen.name} from {eff.isoformat()}.", **kwargs):
            st.rerun()
