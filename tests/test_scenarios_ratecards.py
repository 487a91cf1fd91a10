"""Rate cards in a scenario (issue 16, item 10; the format of seeds/scenario_ratecards.py, docs/scenarios.md):
the platform's standard card and a partner's negotiated overrides from a date in the history, loaded through
core.billing.ratecard_admin; a bad value inside a card is reported at its line and nothing is written."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing.ratecards import card_in_force
from db.models import Partner
from seeds.scenario import load_file
from seeds.scenario_format import ScenarioError

TODAY = date(2026, 5, 20)

CARDS = """\
password = "demo-pass-2026"

[scenario]
start = "2026-01-01"

[[rate_cards]]
currency = "EUR"
name = "Standard EUR"
from = "2026-01-01"
credit_price_steps = [{ min_credits = 0, price_per_credit = "0.01" }]
revenue_share_percent = "10"
usage = { charges = [{ id = "pages", metric = "pages", model = "per_unit", unit_price = "0.02" }] }

[[partners]]
name = "Kort Partner AS"
currency = "EUR"
  [partners.rate_card]
  from = "2026-02-01"
  overrides = { "usage.charges.pages.unit_price" = "0.015" }
"""


def test_standard_card_and_a_partners_negotiated_prices_from_their_date(db, tmp_path):
    f = tmp_path / "cards.toml"
    f.write_text(CARDS, encoding="utf-8")
    load_file(db, f, today=TODAY)
    with Session(db) as s:
        pid = s.scalar(select(Partner.id).where(Partner.name == "Kort Partner AS"))
        jan, feb = card_in_force(s, pid, date(2026, 1, 15)), card_in_force(s, pid, date(2026, 2, 15))
        assert (jan.source, jan.card.usage.charges[0].unit_price) == ("standard", D("0.02"))
        assert (feb.source, feb.card.usage.charges[0].unit_price) == ("partner", D("0.015"))


def test_a_bad_value_inside_a_card_is_reported_at_its_line(db, tmp_path):
    body = CARDS.replace('unit_price = "0.02"', 'unit_price = "-1"')
    f = tmp_path / "cards.toml"
    f.write_text(body, encoding="utf-8")
    with pytest.raises(ScenarioError) as exc:
        load_file(db, f, today=TODAY)
    line = next(n for n, ln in enumerate(body.splitlines(), start=1) if '"-1"' in ln)
    assert any(p.path.startswith("rate_cards[0].usage") and p.line == line for p in exc.value.problems), \
        exc.value.report()
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(Partner).where(~Partner.is_house)) == 0


@pytest.fixture
def engine(owner_engine):
    """Scenario files are loaded by a set-up tool that runs as the database owner (seeds.setup, the scenario
    command): it stamps history at the dates it happened, re-dating audit and ledger rows of its own load
    transaction, which the app's role may never change."""
    return owner_engine
