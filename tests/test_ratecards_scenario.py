"""Scenario files express rate cards: the platform's standard cards ([[rate_cards]]) and a partner's negotiated
prices ([partners.rate_card], overrides or a whole card); loading settles usage at them; problems are reported
with their place and nothing is written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.billing import margin, ratecards
from db.models.ratecards import RateCard
from seeds.scenario import load_file
from seeds.scenario_format import ScenarioError

TODAY = date(2026, 11, 20)

SCENARIO = """
password = "demo-pass-2026"

[scenario]
name = "Two layers"
seed = "layers"

[[rate_cards]]
currency = "EUR"
name = "Standard EUR"
from = "2025-01-01"
credit_rates = { recipients = "1.05" }
credit_price_steps = [{ min_credits = 0, price_per_credit = "0.010" }, { min_credits = 100000, price_per_credit = "0.008" }]
revenue_share_percent = "10"
  [rate_cards.usage]
  charges = [{ id = "pages", metric = "pages", model = "graduated", tiers = [
    { first = 1, last = 1000, unit_price = "0.05" }, { first = 1001, unit_price = "0.04" } ] }]

[[partners]]
name = "Alpen Software GmbH"
currency = "EUR"
staff = [{ email = "layers-staff@example.com", name = "Paula Partner" }]
wallet = { buy = 200000 }
  [partners.rate_card]
  from = "2025-01-01"
  overrides = { "credit_rates.recipients" = "0.95" }

  [[partners.plans]]
  code = "per-recipient"
  name = "Per recipient"
    [[partners.plans.charges]]
    id = "mailings"
    metric = "recipients"
    model = "per_unit"
    unit_price = "0.02"

  [[partners.customers]]
  name = "Münchner Mandanten KG"
  country = "DE"
  plan = "per-recipient"
  mode = "partner_prepaid"
  usage = [{ metric = "recipients", monthly = 5000, day = 3 }]
"""


def test_rate_cards_load_and_price_the_partner(db, tmp_path):
    f = tmp_path / "layers.toml"
    f.write_text(SCENARIO, encoding="utf-8")
    summary = load_file(db, f, today=TODAY)
    assert summary.counts["rate cards"] == 2
    with Session(db) as s:
        pid = s.execute(text("SELECT id FROM partners WHERE name = 'Alpen Software GmbH'")).scalar_one()
        rc = ratecards.card_in_force(s, pid, date(2026, 10, 1))
        assert rc.source == "partner" and rc.card.credit_rates == {"recipients": D("0.95")}
        # usage settled at the card as it was loaded: 13 months × 5,000 × 0.95 = 61,750 credits drawn
        drawn = s.execute(text("SELECT -sum(credits) FROM wallet_ledger WHERE kind = 'usage_draw'")).scalar_one()
        assert drawn == D("61750")
        rows = [r for r in margin.compute_margins(s, pid, date(2026, 10, 1), date(2026, 10, 31)).rows
                if r.account_id is not None]
    # October: billed 5,000 × 0.02 = 100.00; 4,750 credits × 0.010 = 47.50; margin 52.50
    assert [(r.revenue, r.cost, r.margin) for r in rows] == [(D("100.00"), D("47.50"), D("52.50"))]


def test_bad_rate_cards_are_reported_with_their_place_and_nothing_is_written(db, tmp_path):
    broken = (SCENARIO.replace('credit_rates = { recipients = "1.05" }', 'credit_rates = { recipients = "-1" }')
              .replace('"credit_rates.recipients" = "0.95"', '"credit_rates.nope.deep" = "0.95"'))
    f = tmp_path / "broken.toml"
    f.write_text(broken, encoding="utf-8")
    with pytest.raises(ScenarioError) as e:
        load_file(db, f, today=TODAY)
    paths = {p.path for p in e.value.problems}
    assert "rate_cards[0].credit_rates.recipients" in paths
    assert any(p.startswith("partners[0].rate_card.overrides") for p in paths), paths
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(RateCard)) == 0


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
