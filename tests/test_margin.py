"""The margin: what the partner billed − what the platform charged for it, per client and month, against
hand computation; unknown (None), never zero, without a plan of the partner's own."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import SYSTEM
from core.billing import margin, plans
from core.errors import PermissionDenied, ValidationError
from core.pricing import plan_from_dict
from db.engine import unit_of_work
from tests.billing_factories import make_plan
from tests.statements_helpers import END, START, assign, record, set_mode
from tests.test_ratecards import MAIL_PLAN, standard
from tests.wallet_helpers import setup_wallet

PAGES_LOW = {"currency": "EUR", "charges": [{"id": "pages", "metric": "pages", "model": "per_unit",
                                             "unit_price": "0.03"}]}
PLATFORM_PAGES = {"currency": "EUR", "charges": [{"id": "pages", "metric": "pages", "model": "per_unit",
                                                  "unit_price": "0.10"}]}


def build(world, engine):
    """Partner A on the standard card (1.05 credits per recipient, credit 0.01; pages 1–1000 at 0.05 then
    0.04; 149 per active client; revenue share 10 %), in October 2026:

    - Mail Co (prepaid): 5,000 recipients at the partner's 0.02 → billed 100.00; 5,250 credits × 0.01 = 52.50;
    - Pages Co (on demand): 1,200 pages at the partner's 0.03 → 36.00; the card: 50.00 + 8.00 = 58.00;
    - Orphan Co (agency, no plan of the partner's): 100 pages, cost 5.00, margin unknown;
    - Direct Co (customer pays, the platform's plan 0.10): 500 pages, platform bills 50.00, share 5.00.
    """
    a = world.a
    standard(engine, world.admin)
    setup_wallet(engine, a.staff, a.partner_id, buy=50_000)
    with unit_of_work(engine) as s:
        orphan = accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name="Orphan Co", country="NO").id
        direct = accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name="Direct Co", country="NO").id
        accounts.update_account(s, SYSTEM, a.partner_id, a.account_id, name="Mail Co")
        accounts.update_account(s, SYSTEM, a.partner_id, a.other_account_id, name="Pages Co")
    assign(engine, a.staff, a.partner_id, a.account_id, MAIL_PLAN, "mail")
    assign(engine, a.staff, a.partner_id, a.other_account_id, PAGES_LOW, "low")
    with unit_of_work(engine) as s:
        house = house_partner(s).id
    _, platform_plan = make_plan(engine, world.admin, code="direct", spec_=PLATFORM_PAGES, partner_id=house)
    with unit_of_work(engine) as s:
        plans.assign_plan(s, a.staff, a.partner_id, direct, plan_id=platform_plan, plan_partner_id=house,
                          effective_from=date(2024, 1, 1))
    set_mode(engine, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    set_mode(engine, a.staff, a.partner_id, a.other_account_id, "partner_on_demand", on_decline="block")
    set_mode(engine, a.staff, a.partner_id, orphan, "agency")
    record(engine, a.staff, a.partner_id, a.account_id, "recipients", 5000, "mail-1")
    record(engine, a.staff, a.partner_id, a.other_account_id, "pages", 1200, "pages-1")
    record(engine, a.staff, a.partner_id, orphan, "pages", 100, "orphan-1")
    record(engine, a.staff, a.partner_id, direct, "pages", 500, "direct-1")
    return orphan, direct


def test_margin_per_client_and_month_equals_hand_computation(world, engine):
    orphan, direct = build(world, engine)
    a = world.a
    with Session(engine) as s:
        rep = margin.margins(s, a.staff, a.partner_id, START, END)
    got = {r.customer: (r.mode, r.revenue, r.cost, r.margin) for r in rep.rows}
    assert got["Mail Co"] == ("partner_prepaid", D("100.00"), D("52.50"), D("47.50"))
    assert got["Pages Co"] == ("partner_on_demand", D("36.00"), D("58.00"), D("-22.00"))
    assert got["Orphan Co"] == ("agency", None, D("5.00"), None)  # unknown, never zero
    assert got["Direct Co"] == ("customer_pays", D("5.00"), D("0"), D("5.00"))
    # active clients in October (pages count, recipients do not): Pages Co, Orphan Co, Direct Co = 3 × 149
    assert got["Partner fees (rate card)"] == ("partner_fees", D("0"), D("447.00"), D("-447.00"))
    assert [r.customer for r in rep.below_cost()] == ["Pages Co"]
    assert [r.customer for r in rep.unknown()] == ["Orphan Co"]
    t = rep.total
    assert (t.revenue, t.cost, t.margin, t.unknown) == (D("141.00"), D("557.50"), D("-416.50"), 1)
    assert [x.label for x in rep.top_customers()] == ["Mail Co", "Direct Co", "Pages Co"]
    assert [(m.label, m.margin) for m in rep.monthly()] == [("2026-10", D("-416.50"))]


def test_any_date_range_splits_by_month_and_prorates_fees(world, engine):
    build(world, engine)
    a = world.a
    with Session(engine) as s:
        rep = margin.margins(s, a.staff, a.partner_id, date(2026, 9, 1), END)
        half = margin.margins(s, a.staff, a.partner_id, date(2026, 10, 16), END)
    sept = [r for r in rep.rows if r.month == date(2026, 9, 1) and r.customer == "Mail Co"]
    assert sept and sept[0].revenue == D("0.00") and sept[0].cost == D("0")  # no usage in September
    assert {r.month for r in rep.rows} == {date(2026, 9, 1), date(2026, 10, 1)}
    # the usage was on the 15th: nothing of it from the 16th on
    assert next(r for r in half.rows if r.customer == "Mail Co").revenue == D("0.00")


def test_platform_revenue_per_partner(world, engine):
    build(world, engine)
    with Session(engine) as s:
        rows = {r.partner: r for r in margin.platform_revenue(s, world.admin, START, END)}
        with pytest.raises(PermissionDenied):
            margin.platform_revenue(s, world.a.staff, START, END)
    r = rows["Partner A"]
    # usage charges 52.50 + 58.00 + 5.00, partner fees 447.00, billed Direct Co 50.00, share back 5.00
    assert (r.usage_charges, r.partner_fees, r.customer_billed, r.revenue_share) == (
        D("115.50"), D("447.00"), D("50.00"), D("5.00"))
    assert r.total == D("607.50")
    assert rows["Partner B"].total == D("0")


@pytest.mark.parametrize("role", ["manager", "user", "annotation_manager", "annotator"])
def test_customers_and_other_partners_never_see_margins(world, engine, role):
    with Session(engine) as s:
        with pytest.raises(PermissionDenied):
            margin.margins(s, world.actor(role), world.a.partner_id, START, END)
        with pytest.raises(PermissionDenied):
            margin.margins(s, world.b.staff, world.a.partner_id, START, END)


def test_bad_ranges_are_refused(world, engine):
    with Session(engine) as s:
        with pytest.raises(ValidationError):
            margin.margins(s, world.a.staff, world.a.partner_id, END, START)
        with pytest.raises(ValidationError):
            margin.margins(s, world.a.staff, world.a.partner_id, date(2020, 1, 1), END)


def test_preview_warns_below_cost(world, engine):
    build(world, engine)
    a = world.a
    with Session(engine) as s:
        low = margin.preview(s, a.staff, a.partner_id, a.other_account_id, plan_from_dict(PAGES_LOW),
                             today=date(2026, 11, 20))
        fair = margin.preview(s, a.staff, a.partner_id, a.other_account_id, plan_from_dict(
            {**PAGES_LOW, "charges": [{**PAGES_LOW["charges"][0], "unit_price": "0.06"}]}), today=date(2026, 11, 20))
    assert (low.client_price, low.platform_charge, low.margin, low.below_cost) == (
        D("36.00"), D("58.00"), D("-22.00"), True)
    assert (fair.client_price, fair.margin, fair.below_cost) == (D("72.00"), D("14.00"), False)


def test_csv_export_is_formula_safe():
    text = margin.to_csv(["customer", "margin"], [["=HYPERLINK(\"x\")", D("-22.00")], ["+1", D("5")],
                                                  ["@SUM(A1)", None], ["Plain", D("0")]])
    lines = text.splitlines()
    assert lines[1] == "\"'=HYPERLINK(\"\"x\"\")\",-22.00"
    assert lines[2] == "'+1,5" and lines[3] == "'@SUM(A1)," and lines[4] == "Plain,0"
