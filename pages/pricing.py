"""Pricing: the plan catalogue (create, version, archive), each customer's plan with overrides and a live
month-to-date preview, and threshold alerts. Managers see their own plan and preview, read-only.

Thin: widgets → core.billing.plans / core.billing.rating / core.billing.alerts → render. The plan being edited is kept as a draft
in the stored form (`core.pricing.plan_to_dict`); core validates it when it is saved.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from core.accounts import accounts
from core.billing import alerts, plan_builder, plans, rating
from core.billing.describe import describe_spec
from core.errors import ValidationError
from core.pricing import DISCOUNT_TARGETS, FEE_KINDS, format_money, format_quantity, get_model, registered
from core.usage.metrics import list_metrics
from core.validation import currencies
from pages import margin_ui
from pages.common import read, require, run_action

actor = require("plan.view")
st.title("Pricing")

MODELS = {m.name: m for m in registered()}  # the charge models, each describing its own fields
TIER_LABELS = [label for label, _ in plan_builder.TIER_COLUMNS]


# ------------------------------------------------------------------ shared rendering


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


def show_spec_errors() -> None:
    """Every problem of the last refused save, with its path (e.g. charges[0].tiers[1])."""
    errors = st.session_state.get("field_errors") or {}
    for key, msg in errors.items():
        if key == "_form":
            continue
        where = key.removeprefix("spec.") if key.startswith("spec.") else key
        st.error(f"{where}: {msg}")


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
    st.markdown(f"**{sentence} {format_money(r.total, r.currency)}.**")


def render_alerts(partner_id: int | None, account_id: int | None, key: str) -> None:
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


# ------------------------------------------------------------------ Manager: own plan, read-only


if not actor.is_staff:
    current = read(plans.current_assignment, actor, actor.partner_id, actor.account_id)
    if current is None:
        st.info("Your account has no price plan yet.")
    else:
        st.subheader(current.assignment.plan_name)
        st.caption(f"In force since {current.assignment.effective_from.isoformat()} · prices of version "
                   f"{current.version} (from {current.version_effective_from.isoformat()})")
        render_spec(current.spec)
        st.subheader("This month so far")
        render_rating(read(rating.preview_month_to_date, actor, actor.partner_id, actor.account_id),
                      "At this month's usage so far, you would pay")
    st.subheader("Alerts")
    render_alerts(actor.partner_id, actor.account_id, "mgr_alerts")
    st.stop()


# ------------------------------------------------------------------ staff and admins


partner_id = actor.partner_id
if actor.is_admin:
    partners = read(accounts.list_partners, actor)
    names = {p.id: ("Platform plans (offered to partners)" if p.is_house else p.name) for p in partners}
    partner_id = st.selectbox("Partner", list(names), format_func=names.get, key="pr_partner")
all_metrics = {m.key: f"{m.name} ({m.unit})" for m in read(list_metrics)}
metric_keys = list(all_metrics)
metric_names = {m.key: f"{m.name} ({m.unit})" for m in read(plan_builder.partner_metrics, actor, partner_id)}
if st.session_state.get("pr_all_metrics"):
    metric_names = all_metrics
tab_plans, tab_customers, tab_alerts = st.tabs(["Plans", "Customers", "Alerts"])


def draft() -> dict:
    d = st.session_state.setdefault("pr_draft", {"charges": [], "fees": []})
    d.setdefault("discounts", [])
    return d


def load_draft(key: Any, spec_dict: dict | None) -> None:
    """Start editing another plan: its latest prices become the draft."""
    if st.session_state.get("pr_draft_for") != key:
        st.session_state["pr_draft_for"] = key
        st.session_state["pr_draft"] = {"charges": list((spec_dict or {}).get("charges", [])),
                                        "fees": list((spec_dict or {}).get("fees", [])),
                                        "discounts": list((spec_dict or {}).get("discounts") or [])}
        if spec_dict:
            st.session_state["pr_timing"] = spec_dict.get("timing") or "in_arrears"
            st.session_state["pr_minimum"] = spec_dict.get("minimum_spend") or ""


def form_gen() -> int:
    """The charge form's generation: bumped after a charge is added, so its fields start empty again."""
    return st.session_state.setdefault("pr_c_gen", 0)


def tiers_editor(key: str, rows: list[dict] | None = None, blank: int = 4) -> list[dict]:
    """A tiers table that keeps every keystroke: the table it starts from is made once and kept (each edit reruns
    the page and is applied to the same table, not to a new one), and it starts with blank rows to type into, so
    a new tier never depends on the grid's add-row gesture (whose first keystroke only adds the row)."""
    base_key = f"{key}__base"
    if base_key not in st.session_state:
        start = [{label: ("" if r.get(k) is None else str(r.get(k))) for label, k in plan_builder.TIER_COLUMNS}
                 for r in (rows or [])]
        start += [{label: None for label in TIER_LABELS} for _ in range(max(0, blank - len(start)))]
        st.session_state[base_key] = pd.DataFrame(start, columns=TIER_LABELS, dtype="string")
    edited = st.data_editor(st.session_state[base_key], num_rows="dynamic", key=key, width="stretch",
                            hide_index=True,
                            column_config={label: st.column_config.TextColumn(label) for label in TIER_LABELS})
    return edited.to_dict("records")


def dimension_values(model, gen: int) -> list[dict]:
    """Prices per value of an event property: add one value at a time (value, how it is shown, its price)."""
    rows = st.session_state.setdefault(f"pr_c_dim_rows_{gen}", [])
    simple = [f for f in model.fields if f.kind != "tiers"]
    if rows:
        st.dataframe(pd.DataFrame([{"Value": r["value"], "Shown as": r.get("label") or "",
                                    **{f.label: r.get(f.name) or "" for f in simple}} for r in rows]),
                     hide_index=True, width="stretch")
    n = st.session_state.setdefault(f"pr_c_dv_n_{gen}", 0)  # bumped after each value: the inputs start empty
    cols = st.columns(2 + len(simple))
    value = cols[0].text_input("Value", key=f"pr_c_dv_value_{gen}_{n}", placeholder="NO")
    label = cols[1].text_input("Shown as", key=f"pr_c_dv_label_{gen}_{n}", placeholder="Norway")
    prices = {f.name: cols[2 + i].text_input(f.label, key=f"pr_c_dv_{f.name}_{gen}_{n}")
              for i, f in enumerate(simple)}
    c1, c2 = st.columns(2)
    if c1.button("Add value", key=f"pr_c_dv_add_{gen}", icon=":material/add:") and value.strip():
        rows[:] = [r for r in rows if r["value"] != value.strip()] + [
            {"value": value.strip(), "label": label.strip() or None, **{k: v.strip() for k, v in prices.items()}}]
        st.session_state[f"pr_c_dv_n_{gen}"] = n + 1
        st.rerun()
    if rows and c2.button("Clear values", key=f"pr_c_dv_clear_{gen}"):
        rows.clear()
        st.rerun()
    return rows


def charge_form(metrics: dict[str, str]) -> dict | None:
    """The charge being added, as typed (None until it has an id): only the chosen model's fields."""
    gen = form_gen()
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("How it is priced", list(MODELS), key="pr_c_model", format_func=lambda n: MODELS[n].title)
    metric = c2.selectbox("What is measured", list(metrics), key="pr_c_metric", format_func=metrics.get)
    cid = c3.text_input("Charge id (short, no dots)", key=f"pr_c_id_{gen}", placeholder=metric)
    c2.toggle("Show every metric", key="pr_all_metrics", help="Only the metrics this partner's plans and customers "
                                                              "use are listed; switch on to see the whole catalogue.")
    model = MODELS[name]
    st.caption(model.summary)
    simple = [f for f in model.fields if f.kind != "tiers"]
    values, tiers = {}, {}
    if simple:
        cols = st.columns(min(3, len(simple)))
        for i, f in enumerate(simple):
            values[f.name] = cols[i % len(cols)].text_input(
                f.label + ("" if f.required else " (optional)"), key=f"pr_c_{f.name}_{gen}", help=f.help or None)
    with st.expander("More options: statement wording, credits, a minimum, a price per property value"):
        c1, c2, c3 = st.columns(3)
        unit = c1.text_input("Unit on statements (plural)", key=f"pr_c_unit_{gen}", placeholder="messages")
        label = c2.text_input("Line label on statements", key=f"pr_c_label_{gen}", placeholder="SMS")
        minimum = c3.text_input("Minimum per month (optional)", key=f"pr_c_min_amount_{gen}")
        credit_rate, settle = None, "money"
        if model.credits_allowed:
            c1, c2 = st.columns(2)
            credit_rate = c1.text_input("Convert to credits: credits per unit (optional)",
                                        key=f"pr_c_credit_rate_{gen}")
            settle = "wallet" if c2.checkbox("Draw the credits from the prepaid wallet instead of billing them",
                                             key=f"pr_c_wallet_{gen}") else "money"
        dimension = st.text_input("The price depends on this event property (optional, e.g. country)",
                                  key=f"pr_c_dimension_{gen}", placeholder="country",
                                  help="Each value listed below gets its own price and its own statement line; "
                                       "other values pay the price above.")
        rows = dimension_values(model, gen) if dimension.strip() else []
    # Tiers are typed in a form: the page does not rerun on each cell, so no keystroke is lost while it reruns;
    # "Add charge" (or "Price it") sends the whole table at once.
    with st.form(f"pr_c_form_{name}_{gen}", border=False):
        for f in model.fields:
            if f.kind == "tiers":
                st.caption(f"{f.label}: {f.help}")
                tiers[f.name] = tiers_editor(f"pr_c_{f.name}_{name}_{gen}")
        c1, c2 = st.columns(2)
        add = c1.form_submit_button("Add charge", icon=":material/add:")
        if any(f.kind == "tiers" for f in model.fields):
            c2.form_submit_button("Price it in the calculator", icon=":material/calculate:")
    st.session_state["pr_c_add_clicked"] = add
    if not cid.strip():
        return None
    return plan_builder.charge_from_form(cid=cid, metric=metric, model=name, values=values, tiers=tiers, unit=unit,
                                         label=label, settle=settle, credit_rate=credit_rate, min_amount=minimum,
                                         dimension=dimension, dimension_rows=rows)


def charge_builder(currency: str, metrics: dict[str, str]) -> dict | None:
    d = draft()
    if d["charges"]:
        remove_items(d, "charges")
    st.markdown("**Add a charge**")
    charge = charge_form(metrics)
    if st.session_state.pop("pr_c_add_clicked", False):
        if charge is None:
            st.session_state["pr_c_errors"] = {"spec.charges[0].id": "Give the charge an id."}
        else:
            try:
                read(plan_builder.check_charge, charge, currency)
            except ValidationError as exc:
                st.session_state["pr_c_errors"] = exc.errors
            else:
                d["charges"] = [c for c in d["charges"] if c["id"] != charge["id"]] + [charge]
                st.session_state["pr_c_gen"] = form_gen() + 1
                st.session_state.pop("pr_c_errors", None)
                st.rerun()
    for key, msg in (st.session_state.get("pr_c_errors") or {}).items():
        st.error(f"{key.removeprefix('spec.').replace('charges[0]', 'charge')}: {msg}")
    return charge


def remove_items(d: dict, key: str) -> None:
    """Let the user drop entries (charges, fees, discounts) from the plan being edited, by id."""
    drop = st.multiselect(f"Remove {key}", [x["id"] for x in d[key]], key=f"pr_drop_{key}")
    if drop and st.button(f"Remove selected {key}", key=f"pr_drop_{key}_btn"):
        d[key] = [x for x in d[key] if x["id"] not in drop]
        st.rerun()


def fee_builder() -> None:
    d = draft()
    if d["fees"]:
        remove_items(d, "fees")
    with st.form("pr_fee_form", clear_on_submit=True):
        st.markdown("**Add a recurring fee** (amounts per month; prorated by days when partly in force)")
        c1, c2, c3, c4 = st.columns(4)
        fid = c1.text_input("Fee id", key="pr_f_id", placeholder="base")
        kind = c2.selectbox("Kind", FEE_KINDS, key="pr_f_kind",
                            help="base: monthly base fee · feature: per unit of a metric (e.g. per keyword) · "
                                 "access: per-client access fee · flat: any other fee")
        amount = c3.text_input("Amount", key="pr_f_amount")
        timing = c4.selectbox("Billed", ["plan default", "in_advance", "in_arrears"], key="pr_f_timing")
        c1, c2, c3, c4 = st.columns(4)
        metric = c1.selectbox("Metric (feature fees)", ["", *metric_keys], key="pr_f_metric",
                              format_func=lambda k: metric_names.get(k, k))
        start = c2.date_input("Starts (optional)", value=None, key="pr_f_start")
        end = c3.date_input("Ends (optional)", value=None, key="pr_f_end")
        label = c4.text_input("Line label", key="pr_f_label")
        if st.form_submit_button("Add fee", icon=":material/add:"):
            fee = {"id": fid.strip(), "kind": kind, "amount": text_or_none(amount), "metric": metric or None,
                   "timing": None if timing == "plan default" else timing,
                   "start": start.isoformat() if isinstance(start, date) else None,
                   "end": end.isoformat() if isinstance(end, date) else None, "label": text_or_none(label)}
            d["fees"] = [f for f in d["fees"] if f["id"] != fee["id"]] + [fee]
            st.rerun()


def discount_builder() -> None:
    d = draft()
    if d["discounts"]:
        remove_items(d, "discounts")
    with st.form("pr_discount_form", clear_on_submit=True):
        st.markdown("**Add a discount** (a negative line; a percent of the lines it applies to, or a fixed amount "
                    "per month; never below zero; customers can get their own value with an override such as "
                    "`discounts.loyal.percent = 15`)")
        c1, c2, c3, c4, c5 = st.columns(5)
        did = c1.text_input("Discount id", key="pr_d_id", placeholder="loyal")
        label = c2.text_input("Line label", key="pr_d_label", placeholder="Discount")
        percent = c3.text_input("Percent", key="pr_d_percent", placeholder="10")
        amount = c4.text_input("or fixed amount", key="pr_d_amount")
        applies = c5.selectbox("Applies to", list(DISCOUNT_TARGETS), index=2, key="pr_d_applies")
        if st.form_submit_button("Add discount", icon=":material/add:"):
            disc = {"id": did.strip(), "label": text_or_none(label), "percent": text_or_none(percent),
                    "amount": text_or_none(amount), "applies_to": applies, "charges": [], "start": None,
                    "end": None}
            d["discounts"] = [x for x in d["discounts"] if x["id"] != disc["id"]] + [disc]
            st.rerun()


def apply_json() -> None:
    """on_click callback (runs before the widgets exist, so it may set their values)."""
    try:
        data = json.loads(st.session_state.get("pr_json") or "", parse_float=str)  # prices stay exact strings
    except json.JSONDecodeError as exc:
        st.session_state["pr_json_error"] = f"Not valid JSON: {exc}"
        return
    if not isinstance(data, dict):
        st.session_state["pr_json_error"] = "The plan must be a JSON object."
        return
    st.session_state["pr_draft"] = {"charges": data.get("charges") or [], "fees": data.get("fees") or [],
                                    "discounts": data.get("discounts") or []}
    st.session_state["pr_timing"] = data.get("timing") or "in_arrears"
    st.session_state["pr_minimum"] = data.get("minimum_spend") or ""
    st.session_state.pop("pr_json", None)  # show the applied draft next time


def json_editor(spec_dict: dict) -> None:
    with st.expander("Advanced: edit the whole plan as JSON"):
        st.text_area("Plan JSON", value=json.dumps(spec_dict, indent=2), height=300, key="pr_json")
        st.button("Use this JSON", key="pr_json_apply", on_click=apply_json)
        error = st.session_state.pop("pr_json_error", None)
        if error:
            st.error(error)


def draft_spec(currency: str) -> dict:
    minimum = text_or_none(st.session_state.get("pr_minimum"))
    return {"currency": currency, "timing": st.session_state.get("pr_timing", "in_arrears"),
            "minimum_spend": minimum, **draft()}


def plans_tab() -> None:
    show_archived = st.toggle("Show archived plans", key="pr_show_archived")
    rows = read(plans.list_plans, actor, include_archived=show_archived)
    if rows:
        st.dataframe(pd.DataFrame([{"Plan": r.name, "Code": r.code, "Owner": r.owner, "Currency": r.currency,
                                    "For": r.subject, "Version": r.version, "Since": r.effective_from,
                                    "Archived": r.archived} for r in rows]), hide_index=True, width="stretch")
    else:
        st.info("No plans yet: create the first one below.")
    editable = {(r.partner_id, r.id): r for r in rows if r.partner_id == partner_id}
    choice = st.selectbox("Create or edit", ["new", *editable], key="pr_edit",
                          format_func=lambda k: "+ New plan" if k == "new" else
                          f"{editable[k].name} ({editable[k].code}, v{editable[k].version})")
    if choice == "new":
        load_draft("new", None)
        new_plan_form()
    else:
        detail = read(plans.get_plan, actor, *choice)
        load_draft(choice, detail.latest.spec)
        edit_plan_form(detail)


def draft_prices(spec_dict: dict) -> None:
    """The draft's charges, fees and discounts with their prices in words, as soon as each is added."""
    rows = plan_builder.describe_draft(spec_dict)
    if rows:
        st.markdown("**This plan so far**")
        st.dataframe(pd.DataFrame([{"Item": r["item"], "Measured": metric_names.get(r["metric"], r["metric"]),
                                    "Price": r["price"]} for r in rows]), hide_index=True, width="stretch")


def calculator(spec_dict: dict, candidate: dict | None) -> None:
    """Type quantities, see the amount and its explanation line by line (the charge being added included)."""
    st.markdown("**Price calculator**")
    spec = dict(spec_dict)
    if candidate is not None and candidate["id"] not in {c["id"] for c in spec["charges"]}:
        spec["charges"] = [*spec["charges"], candidate]
        st.text(f"Includes the charge being added ({candidate['id']}).")
    metrics = sorted({c.get("metric") for c in spec["charges"] if c.get("metric")}
                     | {f.get("metric") for f in spec["fees"] if f.get("metric")})
    if not metrics and not spec["fees"]:
        st.caption("Add a charge or a fee to see what it costs.")
        return
    extra = plan_builder.calculator_needs(spec)
    quantities, counts, transactions, per_value = {}, {}, {}, {}
    for m in metrics:
        quantities[m] = st.text_input(md_safe(metric_names.get(m, m)) + ": quantity this month", key=f"pr_calc_q_{m}",
                                      placeholder="1000")
        n = extra.get(m)
        if n is not None and (n.count or n.events):
            c1, c2 = st.columns(2)
            counts[m] = c1.text_input("Number of transactions", key=f"pr_calc_n_{m}")
            transactions[m] = c2.text_input("or each amount (200, 100, …)", key=f"pr_calc_t_{m}")
        if n is not None and n.values:
            cols = st.columns(min(3, len(n.values)))
            per_value[m] = {v: cols[i % len(cols)].text_input("of which " + md_safe(title), key=f"pr_calc_v_{m}_{v}")
                            for i, (v, title) in enumerate(n.values)}
    try:
        r = plan_builder.calculate(spec, plan_builder.CalculatorInput(quantities, counts, transactions, per_value))
    except ValidationError as exc:
        for key, msg in exc.errors.items():
            st.warning(f"{key.removeprefix('spec.')}: {msg}")
        return
    st.dataframe(pd.DataFrame([{"Line": ln.label, "Amount": format_money(ln.amount, r.currency),
                                "How": ln.explanation} for ln in r.lines]), hide_index=True, width="stretch")
    st.markdown(f"**Total per month: {format_money(r.total, r.currency)}**")


def pricing_inputs(currency: str) -> dict:
    form, calc = st.columns([3, 2], gap="large")
    with form:
        c1, c2 = st.columns(2)
        c1.selectbox("Fees billed by default", ["in_arrears", "in_advance"], key="pr_timing",
                     format_func=lambda t: t.replace("_", " "))
        c2.text_input("Plan minimum spend per month (optional)", key="pr_minimum")
        st.markdown("##### Usage charges")
        candidate = charge_builder(currency, metric_names)
        st.markdown("##### Recurring fees")
        fee_builder()
        st.markdown("##### Discounts")
        discount_builder()
        spec_dict = draft_spec(currency)
        json_editor(spec_dict)
    with calc:
        draft_prices(spec_dict)
        calculator(spec_dict, candidate)
    return spec_dict


def new_plan_form() -> None:
    st.subheader("New plan")
    c1, c2, c3 = st.columns(3)
    name = c1.text_input("Plan name", key="pr_name")
    code = c2.text_input("Code", key="pr_code", placeholder="standard-2025")
    codes = sorted(currencies())
    default_cur = read(accounts.get_partner, partner_id).currency
    currency = c3.selectbox("Currency", codes, index=codes.index(default_cur), key="pr_currency")
    description = st.text_input("Description (optional)", key="pr_desc")
    subject = "account"
    if actor.is_admin and read(accounts.get_partner, partner_id).is_house:
        subject = st.radio("Prices", ["account", "partner"], horizontal=True, key="pr_subject",
                           format_func=lambda s: "customer accounts" if s == "account"
                           else "partners (partner-level fees, e.g. client-count bands)")
    effective = st.date_input("Effective from", value=date.today(), key="pr_eff_new")
    spec_dict = pricing_inputs(currency)
    if st.button("Create plan", type="primary", key="pr_create", icon=":material/save:"):
        plan = run_action(plans.create_plan, actor, partner_id=partner_id, name=name, code=code, currency=currency,
                          description=description or None, subject=subject, spec=spec_dict,
                          effective_from=effective, success=None)
        if plan is not None:
            st.session_state["flash"] = ("success", f"Plan “{plan.name}” created.")
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    show_spec_errors()


def edit_plan_form(detail) -> None:
    plan = detail.plan
    st.subheader(f"{plan.name} ({plan.code})")
    st.caption(f"{plan.currency} · prices {plan.subject}s · " + ("archived" if plan.archived else "active"))
    st.dataframe(pd.DataFrame([{"Version": v.version, "Effective from": v.effective_from, "Note": v.note or "",
                                "Created": v.created_at} for v in reversed(detail.versions)]),
                 hide_index=True, width="stretch")
    if plan.archived:
        render_spec(detail.spec())
        if st.button("Unarchive plan", key="pr_unarchive", icon=":material/unarchive:"):
            if run_action(plans.unarchive_plan, actor, plan.partner_id, plan.id, success="Plan unarchived."):
                st.rerun()
        return
    spec_dict = pricing_inputs(plan.currency)
    margin_ui.draft_preview(actor, plan.partner_id, spec_dict, key="pr_edit")
    c1, c2 = st.columns(2)
    effective = c1.date_input("New version effective from", value=date.today(), key="pr_eff_version")
    note = c2.text_input("What changed (optional)", key="pr_note")
    c1, c2 = st.columns(2)
    if c1.button("Save as new version", type="primary", key="pr_save_version", icon=":material/save:"):
        ver = run_action(plans.new_version, actor, plan.partner_id, plan.id, spec=spec_dict,
                         effective_from=effective, note=note or None, success=None)
        if ver is not None:
            st.session_state["flash"] = ("success", f"Version {ver.version} saved, effective {ver.effective_from}.")
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    if c2.button("Archive plan", key="pr_archive", icon=":material/archive:"):
        if run_action(plans.archive_plan, actor, plan.partner_id, plan.id, success="Plan archived."):
            st.session_state.pop("pr_draft_for", None)
            st.rerun()
    show_spec_errors()


def assign_with_overrides(session, actor_, partner_id_, account_id, *, plan_key, effective_from, form_overrides,
                          overrides_text):
    """One action: the prices typed in the form and the advanced dotted-path lines (these win) → assign (both
    raise ValidationError before writing)."""
    overrides = {**form_overrides, **plans.parse_overrides_text(overrides_text)}
    return plans.assign_plan(session, actor_, partner_id_, account_id, plan_id=plan_key[1],
                             plan_partner_id=plan_key[0], effective_from=effective_from, overrides=overrides or None)


def customer_prices(spec, key: str) -> dict:
    """The plan's prices in the same fields as the plan builder, prefilled: what is changed becomes this
    customer's override."""
    edits, tier_edits, fee_edits, discount_edits = {}, {}, {}, {}
    for c in spec.charges:
        model = get_model(c.model)
        st.text(f"{c.label or c.id} · {model.title} · {metric_names.get(c.metric, c.metric)}")
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


def customers_tab() -> None:
    customers = read(accounts.list_accounts, actor, partner_id=partner_id)
    if not customers:
        st.info("No customer accounts yet.")
        return
    by_id = {r.id: r for r in customers}
    opened = st.session_state.pop("open_account", None)  # from the Customers page's "Pricing" button
    if opened and opened[0] == partner_id and opened[1] in by_id:
        st.session_state["pr_customer"] = opened[1]
        st.info(f"Showing {by_id[opened[1]].name}: see the Customers tab.")
    account_id = st.selectbox("Customer", list(by_id), key="pr_customer",
                              format_func=lambda i: f"{by_id[i].name} (#{i}, {by_id[i].currency})")
    acc = by_id[account_id]
    current = read(plans.current_assignment, actor, partner_id, account_id)
    if current is None:
        st.info(f"{acc.name} has no plan yet.")
    else:
        st.subheader(f"Current plan: {current.assignment.plan_name}")
        own = plan_builder.describe_overrides(current.spec, current.assignment.overrides)
        st.caption(f"Since {current.assignment.effective_from.isoformat()} · version {current.version}")
        if own:
            st.text("Own prices: " + " · ".join(own))
        render_spec(current.spec)
    history = read(plans.assignment_history, actor, partner_id, account_id)
    if history:
        st.markdown("**Plan history**")
        st.dataframe(pd.DataFrame([{"From": h.effective_from, "Plan": h.plan_name, "Code": h.plan_code,
                                    "Own prices": " · ".join(f"{k} = {v}" for k, v in (h.overrides or {}).items())}
                                   for h in history]),
                     hide_index=True, width="stretch")
    with st.expander("Assign a plan", icon=":material/assignment:", expanded=current is None):
        options = {(r.partner_id, r.id): r for r in read(plans.list_plans, actor) if r.subject == "account"}
        if not options:
            st.info("Create a plan first (tab Plans).")
        else:
            plan_key = st.selectbox("Plan", list(options), key="pr_assign_plan",
                                    format_func=lambda k: f"{options[k].name} ({options[k].currency}, "
                                                          f"{options[k].owner})")
            effective = st.date_input("Effective from", value=date.today().replace(day=1), key="pr_assign_eff")
            spec = read(plans.get_plan, actor, *plan_key).spec()
            st.markdown("###### This customer's prices (change a value to give them their own price)")
            form_overrides = customer_prices(spec, f"pr_ov_{plan_key[0]}_{plan_key[1]}")
            if form_overrides:
                st.text("Own prices: " + " · ".join(plan_builder.describe_overrides(spec, form_overrides)))
            with st.expander("Advanced: overrides as dotted paths"):
                overrides = st.text_area("One per line: path = value (these win over the fields above)",
                                         key="pr_assign_overrides",
                                         placeholder="charges.pages.unit_price = 0.09\nfees.base.amount = 79")
            if st.button("Assign plan", type="primary", key="pr_assign_btn"):
                if run_action(assign_with_overrides, actor, partner_id, account_id, plan_key=plan_key,
                              effective_from=effective, form_overrides=form_overrides, overrides_text=overrides,
                              success="Plan assigned."):
                    st.rerun()
            show_spec_errors()
    st.subheader("Live preview")
    render_rating(read(rating.preview_month_to_date, actor, partner_id, account_id),
                  "At this month's usage so far, this customer would pay")
    margin_ui.customer_preview(actor, partner_id, account_id, current.spec if current else None, key="pr_cust")
    partner_plan_section()


def partner_plan_section() -> None:
    """Partner-level fees (client-count bands): read-only for staff, assignable by platform admins."""
    current = read(plans.current_assignment, actor, partner_id, None)
    if current is None and not actor.is_admin:
        return
    st.divider()
    st.subheader("Partner-level plan")
    if current is not None:
        st.caption(f"{current.assignment.plan_name} since {current.assignment.effective_from.isoformat()}")
        start, end = rating.month_of(date.today())
        st.metric("Active clients this month", read(rating.partner_active_clients, partner_id, start, end))
        render_rating(read(rating.rate_partner, actor, partner_id, start, end, date.today()),
                      "This month, the partner would pay")
    if actor.is_admin:
        options = {r.id: r for r in read(plans.list_plans, actor, subject="partner")}
        if options:
            with st.form("pr_partner_plan_form"):
                plan_id = st.selectbox("Partner plan", list(options), format_func=lambda i: options[i].name,
                                       key="pr_pplan")
                eff = st.date_input("Effective from", value=date.today().replace(day=1), key="pr_pplan_eff")
                if st.form_submit_button("Assign partner plan"):
                    if run_action(plans.assign_partner_plan, actor, partner_id, plan_id=plan_id, effective_from=eff,
                                  success="Partner plan assigned."):
                        st.rerun()


with tab_plans:
    plans_tab()
with tab_customers:
    customers_tab()
with tab_alerts:
    render_alerts(partner_id, None, "staff_alerts")
