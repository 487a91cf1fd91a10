"""The landing page per role: staff see customers, usage and alerts; a Manager sees the month's cost so
far; Users and Annotators see usage without prices."""

from __future__ import annotations

from datetime import timedelta

from core import clock, overview
from core.usage import ingest as usage
from db.engine import unit_of_work
from pages.common import visible_pages
from tests.apptest import app, texts
from tests.billing_factories import PAGES_SPEC, make_plan
from tests.when import TODAY


def _usage_and_plan(world, engine):
    a = world.a
    _, plan_id = make_plan(engine, a.staff, code="pp", spec_=PAGES_SPEC, effective_from=TODAY.replace(day=1))
    from core.billing import plans

    with unit_of_work(engine) as s:
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=TODAY.replace(day=1))
        usage.record_events(s, a.staff, a.partner_id, [{
            "account_id": a.account_id, "metric": "pages", "quantity": "1200", "event_id": "ov-1",
            "occurred_at": (clock.now() - timedelta(minutes=1)).isoformat()}])


def test_overview_service_per_role(world, engine, session, on_day):
    _usage_and_plan(world, engine)
    staff = overview.overview(session, world.a.staff)
    assert staff.customers_active == 2 and staff.usage[0].key == "pages" and staff.usage[0].value == 1200
    assert staff.month_to_date is None
    mgr = overview.overview(session, world.a.users["manager"])
    # 1,000 × 0.10 + 200 × 0.08 = 116.00, plus the 90.00 base fee
    assert mgr.month_to_date.total == 206 and mgr.plan_name
    annot = overview.overview(session, world.a.users["annotator"])
    assert annot.month_to_date is None and annot.usage[0].value == 1200 and not annot.open_alerts
    other = overview.overview(session, world.b.staff)
    assert other.usage == []


def test_overview_page_shows_prices_only_to_those_allowed(world, engine, on_day):
    _usage_and_plan(world, engine)
    at = app(world.a.users["manager"])
    assert "EUR 206.00" in [m.value for m in at.metric]
    at = app(world.a.users["annotator"])
    values = [m.value for m in at.metric]
    assert "1,200" in values and not any("EUR" in v for v in values) and "EUR" not in texts(at)
    assert "Active customer accounts" in [m.label for m in app(world.a.staff).metric]


def test_customers_see_one_usage_page():
    from core.accounts.actor import Actor

    manager = Actor(user_id=1, partner_id=1, role="manager", email="m@x", display_name="M", account_id=5)
    titles = {p[1]: p[2] for p in visible_pages(manager)}
    assert "pages/usage_dashboard.py" not in titles and titles["pages/usage_account.py"] == "Usage"


# ---------------------------------------------------------------- issue 15


def test_counts_come_from_counting_queries_not_a_capped_list(world, engine, on_day):
    """The admin Overview counted a list capped at 500 accounts."""
    from core.accounts import accounts
    from core.accounts.actor import SYSTEM

    with unit_of_work(engine) as s:
        for i in range(503):
            accounts.create_account(s, SYSTEM, partner_id=world.a.partner_id, name=f"Bulk {i:03}", country="NO")
    with unit_of_work(engine) as s:
        admin = overview.overview(s, world.admin, TODAY)
        staff = overview.overview(s, world.a.staff, TODAY)
    # a: 2 + 503, b: 2 accounts; users: 4 in each tenant's first account, 1 in its second
    assert (admin.customers_active, admin.customers_suspended, admin.active_users) == (507, 0, 10)
    assert (staff.customers_active, staff.active_users) == (505, 5)
    at = app(world.admin)
    assert "507" in [m.value for m in at.metric]
    at = app(world.a.staff, "pages/customers.py")
    assert "first 500" in texts(at)


def test_partner_overview_leads_with_money(world, engine, on_day):
    from decimal import Decimal

    from core.statements import lifecycle

    _usage_and_plan(world, engine)
    with unit_of_work(engine) as s:
        ov = overview.overview(s, world.a.staff, TODAY)
    assert ov.money is not None and ov.money.unbilled == {"EUR": 206}
    assert ov.money.open_statements == 0 and ov.money.billed_this_month == {}
    with unit_of_work(engine) as s:
        lifecycle.generate_month(s, world.a.staff, world.a.partner_id, TODAY.replace(day=1))
    with unit_of_work(engine) as s:
        ov = overview.overview(s, world.a.staff, TODAY)
    assert ov.money.open_statements == 1 and ov.money.open_amount == {"EUR": 206}
    at = app(world.a.staff)
    labels = [m.label for m in at.metric]
    assert labels[:4] == ["Billed this month so far", "Billed last month", "Unbilled usage", "Open statements"]
    from core.pricing.money import format_money

    assert at.metric[2].value == format_money(Decimal(206), "EUR")
    # customers never see partner money; admins have no wallet
    with unit_of_work(engine) as s:
        assert overview.overview(s, world.a.users["manager"], TODAY).money is None


def test_days_of_credit_left_at_the_burn_rate(world, engine):
    """On the real clock: the draws carry the database's time."""
    today = clock.today()
    from decimal import Decimal

    from core.billing import wallet
    from tests.wallet_helpers import setup_wallet

    a = world.a
    setup_wallet(engine, a.staff, a.partner_id, buy=3000)
    with unit_of_work(engine) as s:
        for i in range(3):  # 3 x 100 credits drawn in the last 30 days: 10 a day
            wallet.draw(s, a.partner_id, a.account_id, Decimal(100), f"burn-{i}")
    with unit_of_work(engine) as s:
        fig = overview.wallet_figures(s, a.staff, a.partner_id, today)
    assert fig.balance == 2700 and fig.burn_per_day == 10 and fig.days_left == 270
    with unit_of_work(engine) as s:
        assert overview.wallet_figures(s, a.staff, a.partner_id, today + timedelta(days=60)).days_left is None


def test_a_partners_clients_see_the_partners_brand_not_the_platforms(world, engine):
    from core.overview import PLATFORM_NAME, brand_for
    from db.models import Partner
    from db.models.statements import StatementSettings

    with unit_of_work(engine) as s:
        s.add(StatementSettings(partner_id=world.a.partner_id, display_name="Nordlys Docs", logo_text="NORDLYS"))
    for role in ("manager", "user", "annotation_manager", "annotator"):
        at = app(world.a.users[role])
        sidebar = " ".join(str(t.value) for t in at.sidebar.text)
        assert "NORDLYS" in sidebar and PLATFORM_NAME not in sidebar and PLATFORM_NAME not in texts(at), role
    staff = " ".join(str(t.value) for t in app(world.a.staff).sidebar.text)
    assert PLATFORM_NAME in staff
    with unit_of_work(engine) as s:
        assert brand_for(s, None, "no-such-partner").name == PLATFORM_NAME
        slug = s.get(Partner, world.a.partner_id).slug
        assert brand_for(s, None, slug).name == "Nordlys Docs"  # the partner's login link
