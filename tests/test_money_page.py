"""AppTest: the Money page (margins for partner staff, platform revenue for admins) and the Rate cards page
(admins set a partner's prices; partner staff only read their own)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from core import clock
from core.billing import ratecard_admin, ratecards
from tests.apptest import app, page_alone, texts
from tests.statements_helpers import END, START
from tests.test_margin import build
from tests.test_ratecards import standard

MONEY = "pages/money.py"
CARDS = "pages/ratecards.py"


def _df(at, first_column: str, *more: str):
    """The dataframe whose columns start with these names (AppTest does not look dataframes up by key)."""
    want = [first_column, *more]
    for d in at.dataframe:
        if list(d.value.columns[:len(want)]) == want:
            return d.value
    raise AssertionError(f"no table with columns {want}")


def _range(at):
    at.date_input(key="money_from").set_value(START).run()
    at.date_input(key="money_to").set_value(END).run()
    return at


def test_staff_see_revenue_cost_margin_and_the_customer_sold_below_cost(world, db):
    build(world, db)
    at = _range(app(world.a.staff, MONEY))
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Revenue from clients": "EUR 141.00", "Platform charges": "EUR 557.50",
                       "Margin": "EUR -416.50"}
    by_customer = _df(at, "Customer", "Revenue", "Platform charge", "Margin", "Flag")
    rows = {r["Customer"]: r for r in by_customer.to_dict("records")}
    assert rows["Pages Co"]["Margin"] == -22 and rows["Pages Co"]["Flag"] == "below cost"  # numbers, not text
    assert pd.isna(rows["Orphan Co"]["Margin"]) and rows["Orphan Co"]["Flag"] == "margin unknown"
    assert rows["Mail Co"]["Margin"] == 47.5 and rows["Mail Co"]["Flag"] == ""
    assert "1 client month(s) sold below cost" in texts(at)
    assert "- Pages Co, Oct 2026: margin EUR -22.00" in texts(at)  # named, with how far below
    top = _df(at, "Customer", "Margin")["Customer"].tolist()
    assert top == ["Mail Co", "Direct Co", "Pages Co"]
    assert _df(at, "Month", "Revenue")["Month"].tolist() == ["Oct 2026"]


def test_admin_sees_platform_revenue_per_partner(world, db):
    build(world, db)
    at = _range(app(world.admin, MONEY))
    assert not at.exception, at.exception
    table = _df(at, "Partner", "Currency", "Usage at rate card")
    row = table[table["Partner"] == "Partner A"].iloc[0]
    assert row["Platform revenue"] == 607.5 and row["Partner fees"] == 447 and row["Currency"] == "EUR"


@pytest.mark.parametrize("role", ["manager", "user", "annotation_manager", "annotator"])
def test_customer_roles_have_no_money_or_rate_card_page(world, db, role):
    for page in (MONEY, CARDS):
        at = page_alone(world.actor(role), page)
        assert "You do not have access to this page." in texts(at), (role, page)


def test_admin_sets_a_partners_rate_card_and_staff_only_read_it(world, db):
    standard(db, world.admin)
    at = app(world.admin, CARDS)
    assert not at.exception, at.exception
    at.selectbox(key="rc_partner").select(world.a.partner_id).run()
    at.date_input(key="rc_eff").set_value(date(2024, 2, 1))
    at.text_area(key="rc_text").input("credit_rates.recipients = 0.95\nrevenue_share_percent = 12")
    next(b for b in at.button if b.label == "Save prices").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        card = ratecards.card_in_force(s, world.a.partner_id, date(2024, 2, 1)).card
    assert card.credit_rates["recipients"] == D("0.95") and card.revenue_share_percent == D("12")
    # a bad path is refused with its message, nothing written
    at.text_area(key="rc_text").input("credit_rates = 1")
    next(b for b in at.button if b.label == "Save prices").click().run()
    assert any("Unknown rate-card path" in e.value for e in at.error)

    staff = app(world.a.staff, CARDS)
    assert not staff.exception, staff.exception
    assert "negotiated prices" in texts(staff)
    assert not [b for b in staff.button if b.label == "Save prices"]
    assert not [f for f in staff.text_area if f.key == "rc_text"]


def test_a_card_name_is_shown_as_text_never_as_markdown(world, db):
    from db.engine import unit_of_work
    from tests.test_ratecards import STANDARD

    with unit_of_work(db) as s:
        ratecard_admin.set_partner_card(s, world.admin, world.a.partner_id, effective_from=date(2024, 1, 1),
                                        card=STANDARD, name="**Evil** [click](http://evil.example)")
    at = app(world.a.staff, CARDS)
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown if "Evil" in str(m.value)]
    assert shown and all("\\*\\*Evil\\*\\*" in v and "\\[click\\]" in v for v in shown), shown


def test_admin_creates_the_standard_card_from_the_page_and_a_bad_one_is_refused(world, db):
    import json

    from db.models.ratecards import RateCard

    at = app(world.admin, CARDS)
    assert not at.exception, at.exception
    body = json.loads(at.text_area(key="rc_std_text").value)
    at.text_area(key="rc_std_text").input(json.dumps({**body, "credit_rates": {"recipients": "-1"}}))
    next(b for b in at.button if b.label == "Save standard card").click().run()
    assert any("credit_rates.recipients" in e.value for e in at.error), [e.value for e in at.error]
    with Session(db) as s:
        assert s.query(RateCard).count() == 0
    at.text_area(key="rc_std_text").input(json.dumps(body))
    next(b for b in at.button if b.label == "Save standard card").click().run()
    assert not at.exception
    with Session(db) as s:
        assert [(c.kind, c.currency) for c in s.query(RateCard)] == [("standard", "EUR")]
        rc = ratecards.card_in_force(s, world.a.partner_id, clock.today())
        assert rc is not None and rc.source == "standard"


def test_the_date_inputs_refuse_a_reversed_or_too_long_range_with_a_message(world, db):
    """The Money page's From/To: a range that ends before it starts, or spans more than three years, gets a
    clear message and no figures; a one-day range and a range across a year end work."""
    build(world, db)
    at = app(world.a.staff, MONEY)
    at.date_input(key="money_from").set_value(date(2026, 10, 31)).run()
    at.date_input(key="money_to").set_value(date(2026, 10, 1)).run()
    assert not at.exception, at.exception
    assert any("ends before it starts" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.metric and not at.dataframe
    at.date_input(key="money_from").set_value(date(2022, 1, 1)).run()
    at.date_input(key="money_to").set_value(date(2026, 10, 31)).run()
    assert any("at most three years" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.metric
    # the usage day alone: the whole month's figures of the client months it touches, fees prorated
    at.date_input(key="money_from").set_value(date(2026, 10, 15)).run()
    at.date_input(key="money_to").set_value(date(2026, 10, 15)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _df(at, "Month", "Revenue")["Month"].tolist() == ["Oct 2026"]
    # across a year end: one row per month, in order
    at.date_input(key="money_from").set_value(date(2026, 10, 1)).run()
    at.date_input(key="money_to").set_value(date(2027, 1, 31)).run()
    assert not at.exception and not at.error
    assert _df(at, "Month", "Revenue")["Month"].tolist() == ["Oct 2026", "Nov 2026", "Dec 2026", "Jan 2027"]


def test_a_customer_sold_below_cost_is_named_as_text_never_as_markdown(world, db):
    from core.accounts import accounts
    from core.accounts.actor import SYSTEM
    from db.engine import unit_of_work

    build(world, db)
    with unit_of_work(db) as s:
        accounts.update_account(s, SYSTEM, world.a.partner_id, world.a.other_account_id,
                                name="**Evil** [click](http://evil.example)")
    at = _range(app(world.a.staff, MONEY))
    assert not at.exception, at.exception
    (warning,) = [w.value for w in at.warning if "sold below cost" in w.value]
    assert "\\*\\*Evil\\*\\*" in warning and "\\[click\\]" in warning and "](http" not in warning
    assert "margin EUR -22.00" in texts(at)


def test_receipts_of_on_demand_charges_are_listed_and_downloadable(world, db):
    build(world, db)  # Pages Co is paid for on demand: 58.00 charged to Partner A's card
    at = _range(app(world.a.staff, MONEY))
    assert not at.exception, at.exception
    table = _df(at, "Number", "Issued", "Customer", "Total")
    assert table["Customer"].tolist() == ["Pages Co"] and table["Total"].tolist() == [58.0]
    assert table["Number"].iloc[0].startswith("OD-")
    assert at.selectbox(key="money_receipt").value is not None
