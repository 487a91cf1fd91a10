"""AppTest of the usage pages: dashboard, drill-down with history, import; per role."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core import clock
from core.accounts.permissions import ROLES
from core.usage.ingest import record_events
from pages.common import visible_pages
from tests.apptest import app, texts

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)

USAGE_PAGES = {
    "pages/usage_dashboard.py": {"platform_admin", "partner_staff"},  # customers: their drill-down instead
    "pages/usage_account.py": set(ROLES),
    "pages/usage_import.py": {"platform_admin", "partner_staff"},
}


def _today():
    return clock.now().replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture
def used(world, db, on_day):
    a = world.a
    t0 = _today()
    with Session(db) as s:
        events = [{"account_id": a.account_id if i % 3 else a.other_account_id, "event_id": f"p{i}",
                   "metric": "documents" if i % 2 else "pages", "quantity": 1 + i % 4,
                   "occurred_at": t0 - timedelta(hours=5 * i), "properties": {"mailing": f"M{i % 2}"}}
                  for i in range(60)]
        record_events(s, a.staff, a.partner_id, events)
        s.commit()
    return world


def test_navigation_per_role(world):
    for role in ROLES:
        paths = {p[1] for p in visible_pages(world.actor(role))}
        for page, roles in USAGE_PAGES.items():
            assert (page in paths) == (role in roles), (role, page)


@pytest.mark.parametrize("role", ROLES)
def test_pages_render_per_role(used, role):
    actor = used.actor(role)
    for page, roles in USAGE_PAGES.items():
        if role not in roles:
            continue
        at = app(actor, page)
        assert not at.exception, (role, page, at.exception)
        body = texts(at)
        assert "You do not have access" not in body
        if role in ("manager", "user", "annotation_manager", "annotator") and page != "pages/usage_import.py":
            assert "Customer a2" not in body  # never another account


def test_dashboard_shows_chart_and_range_in_url(used):
    at = app(used.a.staff, "pages/usage_dashboard.py")
    assert not at.exception
    assert at.get("plotly_chart"), texts(at)
    assert at.query_params["preset"] == "this_month" or at.query_params["preset"] == ["this_month"]
    names = {r for r in at.dataframe[0].value.iloc[:, 0]}
    assert names <= {"Customer a1", "Customer a2"} and names
    at.selectbox(key="usage_dash_preset").select("custom").run()
    at.date_input(key="usage_dash_dates").set_value((datetime(2020, 1, 1).date(), datetime(2020, 1, 31).date()))
    at.button(key="usage_dash_apply").click().run()
    assert not at.exception
    assert "No usage recorded between 1 Jan 2020 and 31 Jan 2020" in texts(at)
    assert not at.get("plotly_chart")


def test_range_survives_page_switch(used):
    at = app(used.a.staff, "pages/usage_dashboard.py")
    at.selectbox(key="usage_dash_preset").select("last_month").run()
    at.switch_page("pages/usage_account.py").run()
    assert not at.exception
    assert at.selectbox(key="usage_acc_preset").value == "last_month"


def test_drilldown_history_paging_and_filter(used):
    at = app(used.a.staff, "pages/usage_account.py")
    assert not at.exception
    at.selectbox(key="usage_acc_preset").select("last_30_days").run()
    at.selectbox(key="usage_hist_size").select(25).run()
    df = at.dataframe[-1].value
    assert len(df) == 25
    at.button(key="usage_hist_next").click().run()
    df2 = at.dataframe[-1].value
    assert len(df2) == 15 and set(df2["Event id"]).isdisjoint(df["Event id"])
    at.text_input(key="usage_hist_prop").input("mailing").run()
    at.text_input(key="usage_hist_value").input("M1").run()
    df3 = at.dataframe[-1].value
    assert set(df3["Properties"]) == {"mailing=M1"} and len(df3) == 20


def test_import_page_preview_errors_and_import(used):
    a = used.a
    at = app(a.staff, "pages/usage_import.py")
    assert not at.exception
    assert "Import usage" in texts(at)


# ---------------------------------------------------------------- issue 15: every metric, every range


@pytest.fixture
def every_metric(world, db):
    """Usage of EVERY metric in the catalogue (sum, count, max, latest, unique_count) for the partner."""
    from core.usage.metrics import list_metrics

    a = world.a
    t0 = _today()
    with Session(db) as s:
        metrics = list_metrics(s)
        events = []
        for j, m in enumerate(metrics):
            for i in range(3):
                props = {m.property: f"v{i}"} if m.property else {}
                events.append({"account_id": a.account_id if i else a.other_account_id, "event_id": f"m{j}-{i}",
                               "metric": m.key, "quantity": 1 + i, "occurred_at": t0 - timedelta(hours=i + 1),
                               "properties": props})
        record_events(s, a.staff, a.partner_id, events)
        s.commit()
        keys = [m.key for m in metrics]
    return world, keys


def test_every_metric_of_every_aggregation_has_a_trend(every_metric, session):
    """The max/latest branch of the core query named its column: a trend of only such a metric crashed."""
    from core.usage.reports import usage_trend

    world, keys = every_metric
    start = _today().date().replace(day=1)
    for actor, pid in ((world.a.staff, None), (world.admin, None), (world.admin, world.a.partner_id)):
        for key in keys:
            for grain in ("day", "week", "month"):
                points = usage_trend(session, actor, metric=key, start=start, end=_today().date(), grain=grain,
                                     partner_id=pid)
                assert points and all(p.value > 0 for p in points), (key, grain)


def test_dashboard_every_metric_option_renders(every_metric):
    world, keys = every_metric
    for actor in (world.a.staff, world.admin):
        at = app(actor, "pages/usage_dashboard.py")
        assert not at.exception
        options = at.selectbox(key="usage_dash_metric").options
        assert len(options) == len(keys)
        for i in range(len(options)):
            at.selectbox(key="usage_dash_metric").set_value(at.selectbox(key="usage_dash_metric").value).run()
            at.selectbox(key="usage_dash_metric").select_index(i).run()
            assert not at.exception, (actor.role, options[i], at.exception)
            for grain in ("day", "week", "month"):
                at.radio(key="usage_dash_grain").set_value(grain).run()
                assert not at.exception, (actor.role, options[i], grain, at.exception)


def test_a_range_longer_than_three_years_gets_the_friendly_message(used):
    at = app(used.a.staff, "pages/usage_dashboard.py")
    at.selectbox(key="usage_dash_preset").select("custom").run()
    at.date_input(key="usage_dash_dates").set_value((datetime(2019, 1, 1).date(), _today().date()))
    at.button(key="usage_dash_apply").click().run()
    assert not at.exception, at.exception
    assert "at most three years" in texts(at)
    at = app(used.a.staff, "pages/usage_account.py")
    at.selectbox(key="usage_acc_preset").select("custom").run()
    at.date_input(key="usage_acc_dates").set_value((datetime(2019, 1, 1).date(), _today().date()))
    at.button(key="usage_acc_apply").click().run()
    assert not at.exception, at.exception
    assert "at most three years" in texts(at)


def test_dashboard_table_has_every_customer_numeric_and_exportable(used):
    at = app(used.a.staff, "pages/usage_dashboard.py")
    at.selectbox(key="usage_dash_metric").select("documents").run()
    df = at.dataframe[0].value
    assert set(df["Customer"]) == {"Customer a1", "Customer a2"}  # every customer, not a top list
    value_col = [c for c in df.columns if "ocuments" in c]
    assert value_col, df.columns
    value_col = value_col[0]
    assert "(documents)" not in value_col  # issue 15: no "Documents (documents)"
    assert df[value_col].dtype.kind in "fi" and list(df[value_col]) == sorted(df[value_col], reverse=True)
    assert at.get("download_button")


def test_csv_export_neutralises_formulas():
    import pandas as pd

    from pages.usage_ui import csv_bytes

    out = csv_bytes(pd.DataFrame([{"Customer": "=HYPERLINK(1)", "n": 1}])).decode()
    assert "'=HYPERLINK" in out


def test_customer_usage_change_against_the_previous_period():
    from decimal import Decimal as Dec

    from core.usage.reports import CustomerUsage

    assert CustomerUsage("P", "C", Dec(125), Dec(100)).change == Dec("0.25")
    assert CustomerUsage("P", "C", Dec(5), Dec(0)).change is None  # nothing before: no ratio, not infinity


def test_custom_range_is_a_form_applied_by_enter_or_apply(used):
    """Issue 15: the custom range is a form (Enter in the field submits it in the browser, as does "Apply"),
    so it applies at once, not only when the field loses focus; the range goes to the URL."""
    at = app(used.a.staff, "pages/usage_dashboard.py")
    at.selectbox(key="usage_dash_preset").select("custom").run()
    at.date_input(key="usage_dash_dates").set_value((datetime(2020, 1, 1).date(), datetime(2020, 1, 31).date()))
    at.button(key="usage_dash_apply").click().run()
    assert not at.exception
    assert at.query_params["from"] in ("2020-01-01", ["2020-01-01"]), at.query_params
    assert at.query_params["to"] in ("2020-01-31", ["2020-01-31"]), at.query_params
    assert at.date_input(key="usage_dash_dates").form_id == "usage_dash_range_form"
