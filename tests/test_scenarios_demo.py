"""Demo data that looks like a real business (issue 16): usage that grows, declines, has seasons, weekday
patterns, a churned and a mid-year customer, and a customer whose mix shifts so that per page and per
document swap places: the billing-model lab shows a real break-even on it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM
from core.lab.compare import comparable_plans, lab_for_account, reprice
from db.models import CustomerAccount
from seeds.scenario import SCENARIOS_DIR, customer_events, load_file
from seeds.scenario_format import add_months, read_scenario

TODAY = date(2026, 11, 20)


def _customer(sc, name):
    return next(c for p in sc.partners for c in p.customers if c.fields["name"] == name)


def _monthly(events, metric):
    out: dict[date, D] = defaultdict(D)
    for e in events:
        if e["metric"] == metric:
            out[e["occurred_at"].date().replace(day=1)] += e["quantity"]
    return out


def test_usage_has_seasons_weekdays_churn_and_a_mid_year_start(db):
    with Session(db) as s:
        sc = read_scenario(SCENARIOS_DIR / "docai.toml", s, today=TODAY)
        acc = read_scenario(SCENARIOS_DIR / "accounting.toml", s, today=TODAY)
    # weekdays: Fjord Logistics works Mondays much more than Fridays and hardly at weekends
    by_day: dict[int, D] = defaultdict(D)
    for e in customer_events(_customer(sc, "Fjord Logistics"), 1):
        by_day[e["occurred_at"].weekday()] += e["quantity"]
    assert by_day[0] > by_day[4] > 10 * by_day[5] and by_day[6] == 0
    # seasons: Bergen Bygg's July shutdown; the accounting agency's year-end peak
    bergen = _monthly(customer_events(_customer(sc, "Bergen Bygg"), 1), "pages")
    assert bergen[date(2026, 7, 1)] < D("0.6") * bergen[date(2026, 6, 1)]
    kyst = _monthly(customer_events(_customer(acc, "Kystbyrået"), 1), "api_requests")
    assert kyst[date(2026, 1, 1)] > D("1.3") * kyst[date(2026, 6, 1)]
    # churn and a mid-year start
    legal = _customer(sc, "Lillehammer Legal")
    assert legal.deleted == date(2026, 8, 11)
    assert max(e["occurred_at"].date() for e in customer_events(legal, 1)) < legal.deleted
    arkiv = _customer(sc, "Ålesund Arkiv")
    assert min(e["occurred_at"].date() for e in customer_events(arkiv, 1)) == date(2026, 6, 1)
    # deterministic: the same file and day give the same events
    with Session(db) as s:
        sc2 = read_scenario(SCENARIOS_DIR / "docai.toml", s, today=TODAY)
    assert customer_events(_customer(sc2, "Trondheim Tolk"), 1) == customer_events(_customer(sc, "Trondheim Tolk"), 1)


def test_the_lab_shows_a_real_break_even_on_the_demo_data(db):
    load_file(db, SCENARIOS_DIR / "docai.toml", today=TODAY)
    with Session(db) as s:
        acc = s.scalar(select(CustomerAccount).where(CustomerAccount.name == "Trondheim Tolk"))
        start = add_months(TODAY.replace(day=1), -12)
        lab = lab_for_account(s, SYSTEM, acc.partner_id, acc.id, start, date(2026, 10, 31))
        models = [lab.current] + [m for m in comparable_plans(s, SYSTEM, acc.partner_id, "EUR")
                                  if m.name.endswith("(per-page)")]
        result = reprice(lab.usage, models)
    current, per_page = result.models
    months = sorted(lab.usage)
    first, last = months[0], months[-1]
    # per document is cheaper at first, per page by the end: the cheaper plan swaps mid-year
    assert current.per_month[first] < per_page.per_month[first]
    assert per_page.per_month[last] < current.per_month[last]
    swaps = [m for m, n in zip(months, months[1:], strict=False)
             if (current.per_month[m] < per_page.per_month[m]) != (current.per_month[n] < per_page.per_month[n])]
    assert len(swaps) == 1 and date(2026, 2, 1) <= swaps[0] <= date(2026, 8, 1), swaps
    # and a break-even volume the page can show
    (be,) = [b for b in result.break_even if b.volume is not None]
    assert be.volume > 0 and be.metric in ("pages", "documents")


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
