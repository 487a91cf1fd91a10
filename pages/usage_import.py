"""Import usage CSV: upload, preview with per-row errors, then record (all or nothing, idempotent).
Platform admins also manage the metrics catalogue and the priced dimensions (event properties a price may depend
on) here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts.permissions import allowed
from core.errors import DomainError
from core.usage.csv_import import FIRST_DATA_LINE, REQUIRED, parse_csv
from core.usage.dimensions import declare_dimension, dimension_metrics, list_dimensions
from core.usage.ingest import preview_events, record_events
from core.usage.metrics import AGGREGATIONS, add_metric, catalogue
from core.usage.reports import partner_names
from core.usage.validation import BatchValidationError
from pages.common import field_error, plain, read, require, run_action

actor = require("usage.import")

st.title("Import usage")
st.caption(f"CSV with a header row: {', '.join(REQUIRED)} (required), source, properties, prop.<name> "
           "(optional). See docs/usage-import.md. Event ids seen before are skipped as duplicates.")

partner_id = actor.partner_id
if actor.is_admin:
    partners = read(partner_names, actor)
    partner_id = st.selectbox("Partner", list(partners), format_func=partners.get, key="usage_imp_partner")

upload = st.file_uploader("Usage CSV", type=["csv"], key="usage_imp_file")
if upload is None:
    st.session_state.pop("usage_imp_parsed", None)
else:
    parsed = st.session_state.get("usage_imp_parsed")
    if parsed is None or parsed[0] != (upload.file_id, partner_id):  # parse a file once, not on every rerun
        events, preview, problems, file_error = [], None, None, None
        try:
            events = parse_csv(upload.getvalue())
            preview = read(preview_events, actor, partner_id, events, first_row=FIRST_DATA_LINE)
        except BatchValidationError as exc:
            problems = exc
        except DomainError as exc:
            file_error = str(exc)
        st.session_state["usage_imp_parsed"] = ((upload.file_id, partner_id), events, preview, problems, file_error)
    _, events, preview, problems, file_error = st.session_state["usage_imp_parsed"]
    if file_error:
        st.error(plain(file_error))
    else:
        st.subheader("Preview")
        st.dataframe(pd.DataFrame(events[:20]).drop(columns=["_blank", "_extra_cells"], errors="ignore"),
                     hide_index=True, width="stretch", key="usage_imp_preview")
        st.caption(f"{len(events)} row(s); the first 20 are shown.")
        if problems is not None:
            st.error(problems.errors.get("_form", "The file has errors; nothing was imported."))
            st.dataframe(pd.DataFrame([{"line": n, "problem": "; ".join(msgs)} for n, msgs in
                                       sorted(problems.rows.items())]),
                         hide_index=True, width="stretch", key="usage_imp_errors")
        elif preview is not None:
            st.success(f"Ready: {preview.new} new event(s), {preview.duplicates} duplicate(s) to skip"
                       + (f", {preview.corrections} in a finalised period (need a correction)"
                          if preview.corrections else "") + ".")
            if st.button("Import", type="primary", key="usage_imp_go"):
                result = run_action(record_events, actor, partner_id, events, default_source="csv",
                                    first_row=FIRST_DATA_LINE)
                if result is not None:
                    st.session_state.pop("usage_imp_parsed", None)  # a new preview would show them as duplicates
                    st.success(f"Imported {result.inserted} event(s); {result.duplicates} duplicate(s) skipped.")
                    if result.corrections:
                        st.warning(f"{result.corrections} event(s) fall in a finalised period: they need a "
                                   "correction and are not in the statement.")
                        st.dataframe(pd.DataFrame([{"account": g.account_id, "metric": g.metric, "day": g.day,
                                                    "events": g.events, "quantity": str(g.quantity)}
                                                   for g in result.correction_groups]),
                                     hide_index=True, key="usage_imp_corrections")

if allowed(actor, "metric.manage"):
    st.divider()
    st.subheader("Metrics catalogue")
    st.dataframe(pd.DataFrame([{"key": m.key, "name": m.name, "unit": m.unit, "aggregation": m.aggregation,
                                "property": m.property or "", "built-in": m.builtin,
                                "counts as active": m.counts_as_active} for m in read(catalogue, actor)]),
                 hide_index=True, width="stretch", key="usage_metrics_table")
    with st.form("add_metric", clear_on_submit=False):
        c1, c2, c3 = st.columns(3)
        key = c1.text_input("Key", placeholder="e.g. signatures")
        field_error("key", "add_metric")
        name = c2.text_input("Name")
        field_error("name", "add_metric")
        unit = c3.text_input("Unit")
        field_error("unit", "add_metric")
        c4, c5, c6 = st.columns(3)
        aggregation = c4.selectbox("Aggregation", AGGREGATIONS)
        prop = c5.text_input("Property (unique count only)")
        field_error("property", "add_metric")
        active = c6.checkbox("Counts as active client")
        if st.form_submit_button("Add metric"):
            if run_action(add_metric, actor, key=key, name=name, unit=unit, aggregation=aggregation,
                          property=prop or None, counts_as_active=active, form="add_metric",
                          success=f"Metric {key} added.") is not None:
                st.rerun()  # the catalogue above shows it, and the banner says so

    st.divider()
    st.subheader("Priced dimensions")
    st.caption("An event property that a price may depend on (messages by country). Declaring one keeps exact "
               "usage per value from now on and counts every stored event once, now.")
    dims = read(list_dimensions, actor)
    st.dataframe(pd.DataFrame([{"metric": d.metric, "property": d.property, "label": d.label,
                                "built-in": d.builtin} for d in dims],
                              columns=["metric", "property", "label", "built-in"]),
                 hide_index=True, width="stretch", key="usage_dimensions_table")
    priceable = read(dimension_metrics, actor)
    gen = st.session_state.get("dim_gen", 0)  # a new generation of fields after each declaration: empty again
    with st.form("declare_dimension", clear_on_submit=False):
        d1, d2, d3 = st.columns(3)
        dim_metric = d1.selectbox("Metric", list(priceable), format_func=priceable.get, key="dim_metric")
        field_error("metric", "declare_dimension")
        dim_prop = d2.text_input("Event property", placeholder="e.g. country", key=f"dim_property_{gen}")
        field_error("property", "declare_dimension")
        dim_label = d3.text_input("Label", placeholder="e.g. Destination country", key=f"dim_label_{gen}")
        field_error("label", "declare_dimension")
        if st.form_submit_button("Declare dimension"):
            if run_action(declare_dimension, actor, metric=dim_metric, property=dim_prop, label=dim_label,
                          form="declare_dimension",
                          success=f"{dim_metric} can now be priced by {dim_prop.strip()}.") is not None:
                st.session_state["dim_gen"] = gen + 1  # an empty form for the next one (kept on an error)
                st.rerun()
