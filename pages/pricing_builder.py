"""The plan builder of the Pricing page: the draft plan (charges, fees, discounts) typed in forms that show only the
chosen model's fields, the tiers editor, prices per property value, the JSON editor and the price calculator.
Decisions and arithmetic are core.billing.plan_builder's; this module reads widgets and renders."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
import streamlit as st

from core.billing import plan_builder
from core.errors import ValidationError
from core.pricing import DISCOUNT_TARGETS, FEE_KINDS, format_money, registered
from pages.common import plain, read
from pages.pricing_view import PricingContext, md_safe, text_or_none

MODELS = {m.name: m for m in registered()}  # the charge models, each describing its own fields
TIER_LABELS = [label for label, _ in plan_builder.TIER_COLUMNS]


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


def dimension_picker(declared: dict[str, str], gen: int) -> str:
    """"The price depends on": one of the metric's declared event properties (kept per value at ingestion), or
    another property typed by name (priced exactly from the raw events, slower). "" = one price for all."""
    other = "\x00other"
    pick = st.selectbox("The price depends on", ["", *declared, other], key=f"pr_c_dim_pick_{gen}",
                        format_func=lambda k: "nothing: one price for every event" if k == "" else
                        "another event property…" if k == other else f"{declared[k]} ({k})",
                        help="Each value listed below gets its own price and its own statement line; other values "
                             "pay the price above.")
    if pick != other:
        return pick or ""
    return st.text_input("Event property", key=f"pr_c_dimension_{gen}", placeholder="campaign",
                         help="Not declared in the metric catalogue: priced exactly from the raw events, which is "
                              "slower on large volumes. A platform admin can declare it.")


def charge_form(ctx: PricingContext) -> dict | None:
    """The charge being added, as typed (None until it has an id): only the chosen model's fields."""
    gen = form_gen()
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("How it is priced", list(MODELS), key="pr_c_model", format_func=lambda n: MODELS[n].title)
    metrics = ctx.metric_names
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
        dimension = dimension_picker(ctx.dimensions.get(metric) or {}, gen)
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


def charge_builder(currency: str, ctx: PricingContext) -> dict | None:
    d = draft()
    if d["charges"]:
        remove_items(d, "charges")
    st.markdown("**Add a charge**")
    charge = charge_form(ctx)
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
        st.error(f"{plain(key.removeprefix('spec.').replace('charges[0]', 'charge'))}: {plain(msg)}")
    return charge


def remove_items(d: dict, key: str) -> None:
    """Let the user drop entries (charges, fees, discounts) from the plan being edited, by id."""
    drop = st.multiselect(f"Remove {key}", [x["id"] for x in d[key]], key=f"pr_drop_{key}")
    if drop and st.button(f"Remove selected {key}", key=f"pr_drop_{key}_btn"):
        d[key] = [x for x in d[key] if x["id"] not in drop]
        st.rerun()


def fee_builder(ctx: PricingContext) -> None:
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
        metric = c1.selectbox("Metric (feature fees)", ["", *ctx.metric_keys], key="pr_f_metric",
                              format_func=lambda k: ctx.metric_names.get(k, k))
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


def draft_prices(spec_dict: dict, ctx: PricingContext) -> None:
    """The draft's charges, fees and discounts with their prices in words, as soon as each is added."""
    rows = plan_builder.describe_draft(spec_dict)
    if rows:
        st.markdown("**This plan so far**")
        st.dataframe(pd.DataFrame([{"Item": r["item"], "Measured": ctx.metric_names.get(r["metric"], r["metric"]),
                                    "Price": r["price"]} for r in rows]), hide_index=True, width="stretch")


def calculator(spec_dict: dict, candidate: dict | None, ctx: PricingContext) -> None:
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
        quantities[m] = st.text_input(md_safe(ctx.metric_names.get(m, m)) + ": quantity this month", key=f"pr_calc_q_{m}",
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
            st.warning(f"{plain(key.removeprefix('spec.'))}: {plain(msg)}")
        return
    st.dataframe(pd.DataFrame([{"Line": ln.label, "Amount": format_money(ln.amount, r.currency),
                                "How": ln.explanation} for ln in r.lines]), hide_index=True, width="stretch")
    st.markdown(f"**Total per month: {format_money(r.total, r.currency)}**")


def pricing_inputs(currency: str, ctx: PricingContext) -> dict:
    form, calc = st.columns([3, 2], gap="large")
    with form:
        c1, c2 = st.columns(2)
        c1.selectbox("Fees billed by default", ["in_arrears", "in_advance"], key="pr_timing",
                     format_func=lambda t: t.replace("_", " "))
        c2.text_input("Plan minimum spend per month (optional)", key="pr_minimum")
        st.markdown("##### Usage charges")
        candidate = charge_builder(currency, ctx)
        st.markdown("##### Recurring fees")
        fee_builder(ctx)
        st.markdown("##### Discounts")
        discount_builder()
        spec_dict = draft_spec(currency)
        json_editor(spec_dict)
    with calc:
        draft_prices(spec_dict, ctx)
        calculator(spec_dict, candidate, ctx)
    return spec_dict
