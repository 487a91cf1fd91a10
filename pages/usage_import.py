"""Import usage CSV: upload, preview with per-row errors, then record (all or nothing, idempotent).
Platform admins also manage the metrics catalogue here."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.accounts.permissions import allowed
from core.errors import DomainError
from core.usage.csv_import import FIRST_DATA_LINE, REQUIRED, parse_csv
from core.usage.ingest import preview_events, record_events
from core.usage.metrics import AGGREGATIONS, add_metric, list_metrics
from core.usage.reports import partner_names
from core.usage.validation import BatchValidationError
from pages.common import field_error, read, require, run_action

actor = require("usage.import")

st.title("Import usage")
st.caption(f"CSV with a header row: {', '.join(REQUIRED)} (required), source, properties, prop.<name> "
           "(optional). See docs/usage-import.md. Event ids seen before are skipped as duplicates.")

partner_id = actor.partner_id
if actor.is_admin:
    partners = read(partner_names, actor)
    partner_id = st.selectbox("Partner", list(partners), format_func=partners.get, key="usage_imp_partner")

upload = st.file_uploader("Usage CSV", type=["csv"], key="usage_imp_file")
if upload is not None:
    events, preview, problems, file_error = [], None, None, None
    try:
        events = parse_csv(upload.getvalue())
        preview = read(preview_events, actor, partner_id, events, first_row=FIRST_DATA_LINE)
    except BatchValidationError as exc:
        problems = exc
    except DomainError as exc:
        file_error = str(exc)
    if file_error:
        st.error(file_error)
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
                                "counts as active": m.counts_as_active} for m in read(list_metrics)]),
                 hide_index=True, width="stretch", key="usage_metrics_table")
    with st.form("add_metric", clear_on_submit=False):
        c1, c2, c3 = st.columns(3)
        key = c1.text_input("Key", placeholder="e.g. signatures")
        field_error("key")
        name = c2.text_input("Name")
        field_error("name")
        unit = c3.text_input("Unit")
        field_error("unit")
        c4, c5, c6 = st.columns(3)
        aggregation = c4.selectbox("Aggregation", AGGREGATIONS)
        prop = c5.text_input("Property (unique count only)")
        field_error("property")
        active = c6.checkbox("Counts as active client")
        if st.form_submit_button("Add metric"):
            run_action(add_metric, actor, key=key, name=name, unit=unit, aggregation=aggregation,
                       property=prop or None, counts_as_active=active, success=f"Metric {key} added.")
