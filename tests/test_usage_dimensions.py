"""Per-value usage aggregates of declared dimensions (issue 13, "Aggregates needed for this are kept exact like the
others"): usage_dimension_daily always equals the raw events, whatever the batches (duplicates inside a batch,
replays, partial replays through the ON CONFLICT path, events in finalised periods), and rating reads it instead
of the raw events."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.billing import rating, usage_detail
from core.errors import ValidationError
from core.usage.dimensions import declare_dimension, declared
from core.usage.ingest import record_events
from core.usage.periods import lock_period
from db.models.usage import MetricDimension
from tests.billing_factories import make_plan
from tests.test_rating import assign

NOW = datetime(2024, 12, 31, tzinfo=UTC)
APR1, APR30 = date(2024, 4, 1), date(2024, 4, 30)

RAW_SQL = """
SELECT e.partner_id, e.account_id, e.metric, d.property, e.day, e.properties ->> d.property AS value,
       sum(e.quantity) AS qty_sum, count(*) AS events
FROM usage_events e JOIN metric_dimensions d ON d.metric = e.metric
WHERE NOT e.correction AND e.properties ->> d.property IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"""
AGG_SQL = """SELECT partner_id, account_id, metric, property, day, value, qty_sum, events FROM usage_dimension_daily
ORDER BY 1, 2, 3, 4, 5, 6"""


def record(engine, tenant, events):
    with Session(engine) as s, s.begin():
        return record_events(s, tenant.staff, tenant.partner_id, events, now=NOW)


def _snapshot(engine, sql):
    with engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


def _event(rng: random.Random, account_id: int, n: int) -> dict:
    metric = rng.choice(["messages", "messages", "documents", "api_requests", "pages"])
    props: dict | None = rng.choice([
        {"country": rng.choice(["NO", "SE", "DK", "Ωmega", "", "n o"])},
        # numbers, booleans, null and objects as the database reads them (->>)
        {"country": rng.choice([1, 1.5, 1e16, 2.50, True, None, {"b": [1, 2.0], "a": "x"}])},
        {"type": rng.choice(["invoice", "receipt"]), "country": "NO"},
        {"integration": rng.choice(["xero", "year_end"])},
        {"campaign": "spring"},
        None])
    ev = {"account_id": account_id, "event_id": f"e{n}", "metric": metric,
          "quantity": str(D(rng.randint(0, 10**6)) / 1000),
          "occurred_at": f"2024-04-{rng.randint(1, 30):02d}T{rng.randint(0, 23):02d}:00:00Z"}
    if props is not None:
        ev["properties"] = props
    return ev


def test_aggregates_equal_the_raw_events_for_random_batches_with_duplicates_and_replays(world, db, owner_engine):
    rng = random.Random(13)
    a, b = world.a, world.b
    accounts = [(a, a.account_id), (a, a.other_account_id), (b, b.account_id)]
    sent: list[tuple] = []
    n = 0
    for round_ in range(12):
        tenant, account = accounts[round_ % 3]
        batch = []
        for _ in range(rng.randint(1, 40)):
            n += 1
            batch.append(_event(rng, account, n))
        if sent and round_ % 2:  # a partial replay: some stored events again (the ON CONFLICT path)
            old_tenant, old_batch = rng.choice([x for x in sent if x[0] is tenant] or [sent[-1]])
            if old_tenant is tenant:
                batch += rng.sample(old_batch, min(len(old_batch), 5))
        batch += batch[:2]  # duplicates inside the batch
        rng.shuffle(batch)
        record(db, tenant, batch)
        sent.append((tenant, batch))
        if round_ == 5:  # April final for one account: later events there are corrections, left out
            with Session(db) as s, s.begin():
                lock_period(s, a.partner_id, a.other_account_id, APR1, APR30)
        if round_ % 4 == 3:  # a whole batch replayed: nothing changes
            record(db, tenant, batch)
    odd = [1, 1.5, 2.50, 1e16, True, False, "", "1", {"b": [1, 2.0], "a": "x"}, [1, "NO"], "Ωmega"]
    record(db, a, [{"account_id": a.account_id, "event_id": f"odd{i}", "metric": "messages", "quantity": "2",
                    "occurred_at": "2024-04-09T10:00:00Z", "properties": {"country": v}} for i, v in enumerate(odd)])
    agg = _snapshot(owner_engine, AGG_SQL)
    assert agg == _snapshot(owner_engine, RAW_SQL)
    assert len(agg) > 30 and {r[3] for r in agg} == {"country", "type", "integration"}
    assert {"1.5", "1", "true", "", '{"a": "x", "b": [1, 2.0]}'} <= {r[5] for r in agg}
    corrections = _snapshot(owner_engine, "SELECT count(*) FROM usage_events WHERE correction")[0][0]
    assert corrections > 0


def test_a_replayed_batch_with_one_new_event_adds_only_that_event(world, db, owner_engine):
    a = world.a
    batch = [{"account_id": a.account_id, "event_id": f"c{i}", "metric": "messages", "quantity": "1",
              "occurred_at": "2024-04-02T10:00:00Z", "properties": {"country": "NO"}} for i in range(20)]
    record(db, a, batch)
    record(db, a, [*batch, {**batch[0], "event_id": "c-new"}])  # the ON CONFLICT path: only c-new is new
    assert _snapshot(owner_engine, AGG_SQL) == _snapshot(owner_engine, RAW_SQL)
    assert _snapshot(owner_engine, "SELECT events FROM usage_dimension_daily")[0][0] == 21


SMS = {"currency": "EUR", "timing": "in_arrears", "charges": [
    {"id": "sms", "metric": "messages", "model": "per_unit", "unit_price": "0.08", "label": "SMS", "unit": "messages",
     "dimension": "country", "dimension_prices": [{"value": "NO", "label": "Norway", "unit_price": "0.05"},
                                                  {"value": "SE", "label": "Sweden", "unit_price": "0.06"}]},
    {"id": "camp", "metric": "messages", "model": "per_unit", "unit_price": "0", "label": "Campaigns",
     "dimension": "campaign", "dimension_prices": [{"value": "spring", "label": "Spring", "unit_price": "0.01"}]}],
    "fees": []}


def test_rating_reads_the_aggregates_and_prices_like_the_raw_events(world, db, session, monkeypatch):
    rng = random.Random(7)
    a = world.a
    _, plan_id = make_plan(db, a.staff, code="sms", spec_=SMS)
    assign(db, a.staff, a.partner_id, a.account_id, plan_id, date(2024, 1, 1))
    record(db, a, [_event(rng, a.account_id, i) for i in range(300)])
    raw = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    real_events = usage_detail._events
    read: list[tuple] = []

    def spy(s, p, acc, metric, start, end, dims):
        read.append((metric, tuple(dims)))
        return real_events(s, p, acc, metric, start, end, dims)

    monkeypatch.setattr(usage_detail, "_events", spy)
    with_aggregates = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert read == [("messages", ("campaign", "country"))]  # campaign is not declared: raw events, exactly
    assert with_aggregates == raw

    # declared: the aggregates alone, the same amounts as the raw events give
    admin = world.admin
    with Session(db) as s, s.begin():
        declare_dimension(s, admin, metric="messages", property="campaign", label="Campaign")
    read.clear()
    from_aggregates = rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30)
    assert read == []
    monkeypatch.setattr(usage_detail, "_from_aggregates", lambda *a, **k: pytest.fail("aggregates read"))
    monkeypatch.setattr(usage_detail.usage_dimensions, "declared", lambda s: {})
    assert rating.rate_account(session, a.staff, a.partner_id, a.account_id, APR1, APR30) == from_aggregates
    assert [ln.label for ln in from_aggregates.lines][:3] == ["SMS – Norway", "SMS – Sweden", "SMS – other values"]


def test_declaring_a_dimension_backfills_it_and_bad_declarations_are_refused(world, db, owner_engine):
    a = world.a
    record(db, a, [{"account_id": a.account_id, "event_id": f"p{i}", "metric": "pages", "quantity": "3",
                    "occurred_at": "2024-04-02T10:00:00Z", "properties": {"lang": lang}}
                   for i, lang in enumerate(["nb", "nb", "en"])])
    with Session(db) as s, s.begin():
        declare_dimension(s, world.admin, metric="pages", property="lang", label="Language")
        assert declared(s)["pages"] == {"lang": "Language"}
    rows = _snapshot(owner_engine, "SELECT value, qty_sum, events FROM usage_dimension_daily WHERE metric = 'pages'")
    assert rows == [("en", D(3), 1), ("nb", D(6), 2)]
    record(db, a, [{"account_id": a.account_id, "event_id": "p9", "metric": "pages", "quantity": "1",
                    "occurred_at": "2024-04-02T11:00:00Z", "properties": {"lang": "en"}}])
    assert _snapshot(owner_engine, AGG_SQL) == _snapshot(owner_engine, RAW_SQL)
    for kwargs, field in [(dict(metric="keywords", property="region", label="Region"), "metric"),
                          (dict(metric="nope", property="x", label="X"), "metric"),
                          (dict(metric="pages", property="lang", label="Again"), "property"),
                          (dict(metric="pages", property="bad key!", label="X"), "property")]:
        with Session(db) as s, s.begin(), pytest.raises(ValidationError) as err:
            declare_dimension(s, world.admin, **kwargs)
        assert field in err.value.errors


# ---------------------------------------------------------------- the admin page (Import usage)


def _field(at, label: str):
    return next(f for f in at.text_input if f.label == label)


def _dimensions_table(at):
    return next(d.value for d in at.dataframe if "label" in d.value.columns)


def _dimension_rows(db) -> list[tuple[str, str, str]]:
    with Session(db) as s:
        return [(d.metric, d.property, d.label) for d in s.scalars(select(MetricDimension).where(~MetricDimension.builtin))]


def test_admin_declares_a_dimension_on_the_page_and_bad_input_is_refused_under_its_form(world, db):
    from tests.apptest import app, texts

    record(db, world.a, [{"account_id": world.a.account_id, "event_id": "c1", "metric": "messages", "quantity": "2",
                          "occurred_at": "2024-04-02T10:00:00Z", "properties": {"campaign": "spring"}}])
    at = app(world.admin, "pages/usage_import.py")
    assert not at.exception and "Priced dimensions" in texts(at)
    shown = _dimensions_table(at)
    assert ("messages", "country") in set(zip(shown["metric"], shown["property"], strict=True))  # the built-ins
    assert "keywords" not in at.selectbox(key="dim_metric").options  # a max metric cannot be priced by value
    # a bad property: its message under this form, not under the metrics form; nothing written
    at.selectbox(key="dim_metric").set_value("messages")
    _field(at, "Event property").input("bad key!")
    _field(at, "Label").input("Campaign")
    at.button[[b.label for b in at.button].index("Declare dimension")].click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("Property names contain" in e for e in errors), errors
    assert sum("Property names contain" in e for e in errors) == 1  # once: not under the metrics form too
    assert _dimension_rows(db) == []
    # a good one: declared, backfilled, listed
    _field(at, "Event property").input("campaign")
    at.button[[b.label for b in at.button].index("Declare dimension")].click().run()
    assert not at.exception
    assert _dimension_rows(db) == [("messages", "campaign", "Campaign")]
    at.run()  # the rerun the page asks for (st.rerun), as the browser does it
    assert _field(at, "Event property").value == ""  # an empty form for the next one
    shown = _dimensions_table(at)
    assert ("messages", "campaign", "Campaign") in set(zip(shown["metric"], shown["property"], shown["label"],
                                                           strict=True))
    with Session(db) as s:
        assert s.execute(text("SELECT value, events FROM usage_dimension_daily WHERE property = 'campaign'")).all() \
            == [("spring", 1)]


def test_partner_staff_see_no_dimension_form_and_cannot_declare(world, db):
    from core.errors import PermissionDenied
    from tests.apptest import app, texts

    at = app(world.a.staff, "pages/usage_import.py")
    assert not at.exception and "Priced dimensions" not in texts(at)
    with Session(db) as s, s.begin(), pytest.raises(PermissionDenied):
        declare_dimension(s, world.a.staff, metric="messages", property="campaign", label="Campaign")
