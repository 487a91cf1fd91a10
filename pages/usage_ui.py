"""Shared widgets of the usage pages: the date range (kept in session state AND the URL) and charts.

Not a page itself (it is not in the navigation). No SQL, no arithmetic: core returns the numbers.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import plotly.express as px
import streamlit as st

from core import clock
from core.errors import ValidationError
from core.export import csv_text
from core.pricing.money import format_date
from core.usage.reports import PRESETS, check_range, preset_range
from pages.common import date_input_format

STATE_KEY = "usage_range"  # (preset, start, end), survives moving between pages


def _today() -> date:
    return clock.today()


def _from_url() -> tuple[str, date, date] | None:
    qp = st.query_params
    preset = qp.get("preset")
    try:
        if preset in PRESETS and preset != "custom":
            return (preset, *preset_range(preset, _today()))
        if qp.get("from") and qp.get("to"):
            a, b = date.fromisoformat(qp["from"]), date.fromisoformat(qp["to"])
            if a <= b:
                return "custom", a, b
    except ValueError:
        return None
    return None


def _to_url(preset: str, start: date, end: date) -> None:
    st.query_params.update({"preset": preset, "from": start.isoformat(), "to": end.isoformat()})


def date_range(key: str) -> tuple[date, date]:
    """The range picker: presets plus custom dates. Returns the inclusive (start, end)."""
    current = _from_url() or st.session_state.get(STATE_KEY) or ("this_month", *preset_range("this_month", _today()))
    preset, start, end = current
    keys = list(PRESETS)
    c1, c2 = st.columns([1, 2])
    choice = c1.selectbox("Date range", keys, index=keys.index(preset), format_func=PRESETS.get,
                          key=f"{key}_preset")
    if choice != "custom":
        start, end = preset_range(choice, _today())
    else:
        # In a form: typing the dates and pressing Enter applies them (as does "Apply"), not only leaving the field.
        with c2.form(f"{key}_range_form", border=False, enter_to_submit=True):
            d1, d2 = st.columns([4, 1], vertical_alignment="bottom")
            picked = d1.date_input("From – to", value=(start, end), key=f"{key}_dates", format=date_input_format())
            d2.form_submit_button("Apply", key=f"{key}_apply", width="stretch")
        if isinstance(picked, tuple | list) and len(picked) == 2:
            start, end = picked
        else:
            c2.caption("Pick the end date too; the previous range is shown meanwhile.")
    if choice != "custom":
        c2.caption(f"{format_date(start)} – {format_date(end)}")
    st.session_state[STATE_KEY] = (choice, start, end)
    _to_url(choice, start, end)
    try:
        check_range(start, end)
    except ValidationError as exc:  # e.g. a shared link with a range of more than three years
        st.error(" ".join(exc.errors.values()), icon=":material/date_range:")
        st.stop()
    return start, end


def daily_frame(df: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    """Fill days without usage with 0, so a daily series shows the whole range (not one lonely point)."""
    days = pd.date_range(start, end, freq="D")
    wide = df.assign(day=pd.to_datetime(df["day"])).pivot_table(index="day", columns="metric", values="value",
                                                                 aggfunc="sum")
    wide = wide.reindex(days, fill_value=0).fillna(0)
    wide.index.name = "day"
    return wide.reset_index().melt(id_vars="day", var_name="metric", value_name="value")


def csv_bytes(df: pd.DataFrame) -> bytes:
    """A table as CSV for a spreadsheet, through core.export (the one CSV writer): text that starts like a
    formula is quoted with a leading apostrophe, numbers stay numbers."""
    rows = [[None if pd.isna(v) else v for v in row] for row in df.itertuples(index=False, name=None)]
    return csv_text([str(c) for c in df.columns], rows).encode("utf-8")


def day_ticks(start, end) -> dict:
    """A short range gets one tick per day (plotly would otherwise tick every 12 hours: each date twice)."""
    return {"dtick": 86_400_000} if (end - start).days <= 14 else {}


def stacked_bars(points, *, title: str, legend: str, unit: str = ""):
    """Plotly stacked bar chart of TrendPoint(bucket, label, value)."""
    df = pd.DataFrame([{"date": p.bucket, legend: p.label, "value": float(p.value)} for p in points])
    fig = px.bar(df, x="date", y="value", color=legend, title=title, barmode="stack",
                 labels={"date": "Date", "value": unit.capitalize() if unit else "Quantity"})
    days = sorted({p.bucket for p in points})
    fig.update_xaxes(type="date", tickformat="%d %b %Y",  # days, not midnight timestamps
                     **(day_ticks(days[0], days[-1]) if days else {}))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), legend_title_text=legend)
    return fig


def no_data(start: date, end: date, what: str = "usage") -> None:
    st.info(f"No {what} recorded between {format_date(start)} and {format_date(end)}.")
