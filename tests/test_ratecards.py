"""Rate cards (platform → partner): data, versions, overrides, validation, and who may change them.

The issue's bug: Alpen's staff cut the credit rate in their own plan from 1.05 to 0.01 and the platform drew
0.01 credits per recipient. Now the platform's prices live on the rate card, which only platform admins
write; these tests prove partner staff cannot change them through any core service."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import plans, ratecard_admin, ratecards
from core.billing.ratecards import CardSegment, card_from_dict, cost_of
from core.errors import PermissionDenied, ValidationError
from db.engine import unit_of_work
from db.models import AuditEntry
from db.models.ratecards import RateCard, RateCardVersion

D0 = date(2024, 1, 1)

STANDARD = {
    "currency": "EUR",
    "tier_basis": "client",
    "credit_rates": {"recipients": "1.05"},
    "credit_price_steps": [{"min_credits": "0", "price_per_credit": "0.01"},
                           {"min_credits": "100000", "price_per_credit": "0.008"}],
    "usage": {"charges": [{"id": "pages", "metric": "pages", "model": "graduated", "unit": "pages",
                           "tiers": [{"first": 1, "last": 1000, "unit_price": "0.05"},
                                     {"first": 1001, "last": None, "unit_price": "0.04"}]}]},
    "partner_fees": {"charges": [{"id": "access", "metric": "active_clients", "model": "per_unit",
                                  "unit_price": "149", "unit": "clients"}]},
    "revenue_share_percent": "10",
}

MAIL_PLAN = {
    "currency": "EUR",
    "charges": [{"id": "mail", "metric": "recipients", "model": "per_unit", "unit_price": "0.02",
                 "unit": "recipients"}],
}
LEGACY_WALLET_PLAN = {
    "currency": "EUR",
    "charges": [{"id": "mail", "metric": "recipients", "model": "per_unit", "unit_price": "0",
                 "credit_rate": "1.05", "settle": "wallet"}],
}


def standard(engine, admin, card=STANDARD, effective_from=D0):
    with unit_of_work(engine) as s:
        return ratecard_admin.create_standard_card(s, admin, currency="EUR", name="Standard EUR", card=card,
                                              effective_from=effective_from).id


def _writes(engine) -> tuple[int, int, int]:
    with Session(engine) as s:
        return (s.scalar(select(func.count()).select_from(RateCard)),
                s.scalar(select(func.count()).select_from(RateCardVersion)),
                s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "rate_card")))


# ---------------------------------------------------------------- the card itself (pure)


def test_card_round_trip_is_exact():
    card = card_from_dict(STANDARD)
    again = card_from_dict(ratecards.card_to_dict(card))
    assert again == card
    assert card.credit_price == D("0.01")
    assert card.credit_rates == {"recipients": D("1.05")}


@pytest.mark.parametrize("change, key", [
    ({"credit_rates": {"recipients": 1.05}}, "card.credit_rates.recipients"),
    ({"credit_rates": {"recipients": "-1"}}, "card.credit_rates.recipients"),
    ({"credit_rates": {"nope": "1"}}, "card.credit_rates.nope"),
    ({"tier_basis": "galaxy"}, "card.tier_basis"),
    ({"credit_price_steps": []}, "card.credit_price_steps"),
    ({"revenue_share_percent": "101"}, "card.revenue_share_percent"),
    ({"usage": {"charges": [{"id": "p", "metric": "pages", "model": "per_unit"}]}}, "card.usage.charges[0].unit_price"),
    ({"partner_fees": {"charges": [{"id": "x", "metric": "pages", "model": "per_unit", "unit_price": "1"}]}},
     "card.partner_fees.charges[0].metric"),
    ({"bogus": 1}, "card.bogus"),
])
def test_bad_cards_are_refused_with_the_path(change, key):
    with pytest.raises(ValidationError) as e:
        card_from_dict({**STANDARD, **change}, known_metrics={"pages", "recipients", "messages"})
    assert key in e.value.errors, e.value.errors


def test_overrides_change_only_what_they_name():
    base = card_from_dict(STANDARD)
    card = ratecards.apply_card_overrides(base, {
        "credit_rates.recipients": "0.95", "usage.charges.pages.tiers.1.unit_price": "0.035",
        "credit_price_steps": "0: 0.009", "revenue_share_percent": None, "tier_basis": "partner"})
    assert card.credit_rates["recipients"] == D("0.95")
    assert card.usage.charge("pages").tiers[1].unit_price == D("0.035")
    assert card.usage.charge("pages").tiers[0].unit_price == D("0.05")
    assert card.credit_price == D("0.009") and card.revenue_share_percent is None
    assert card.tier_basis == "partner"
    assert card.partner_fees == base.partner_fees
    with pytest.raises(ValidationError):
        ratecards.apply_card_overrides(base, {"usage.charges.nope.unit_price": "1"})
    with pytest.raises(ValidationError):
        ratecards.apply_card_overrides(base, {"what": "1"})


def test_cost_per_client_credits_and_money():
    card = card_from_dict(STANDARD)
    seg = CardSegment(card, date(2024, 3, 1), date(2024, 3, 31), {"recipients": D(5000), "pages": D(1200)})
    cost = cost_of([seg], date(2024, 3, 1), date(2024, 3, 31))
    by = {m.metric: m for m in cost.metrics}
    # recipients: 5,000 × 1.05 = 5,250 credits, worth 52.50 at 0.01
    assert by["recipients"].credits == D("5250") and by["recipients"].amount == D("52.50")
    # pages priced in money: 1000 × 0.05 + 200 × 0.04 = 58.00, drawn as 58.00 / 0.01 = 5,800 credits
    assert by["pages"].amount == D("58.00") and by["pages"].credits == D("5800")
    assert cost.credits == D("11050") and cost.amount == D("110.50")
    assert cost.value("partner_prepaid") == D("110.50") and cost.value("partner_on_demand") == D("110.50")


def test_partner_tier_basis_prices_the_partners_total_and_shares_it():
    card = card_from_dict({**STANDARD, "tier_basis": "partner"})
    start, end = date(2024, 3, 1), date(2024, 3, 31)
    total = {"pages": D(1500)}
    a = cost_of([CardSegment(card, start, end, {"pages": D(500)}, total)], start, end)
    b = cost_of([CardSegment(card, start, end, {"pages": D(1000)}, total)], start, end)
    # partner total 1,500 pages: 1000 × 0.05 + 500 × 0.04 = 70.00, shared 1/3 : 2/3
    assert a.amount == D("23.33") and b.amount == D("46.67")
    # per client the same pages would cost 25.00 + 50.00 = 75.00: the volume discount goes to the partner
    alone = cost_of([CardSegment(card_from_dict(STANDARD), start, end, {"pages": D(1000)})], start, end)
    assert alone.amount == D("50.00")


# ---------------------------------------------------------------- services and permissions


def test_partner_resolves_to_standard_then_its_own_overrides(world, engine):
    standard(engine, world.admin)
    a = world.a
    with Session(engine) as s:
        rc = ratecards.get_card(s, a.staff, a.partner_id, on=date(2024, 6, 1))
        assert rc.source == "standard" and rc.card.credit_rates["recipients"] == D("1.05")
        assert ratecards.get_card(s, a.staff, a.partner_id, on=date(2023, 12, 31)) is None
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 4, 1),
                                   overrides={"credit_rates.recipients": "0.9"})
    with Session(engine) as s:
        assert ratecards.get_card(s, a.staff, a.partner_id, on=date(2024, 3, 31)).source == "standard"
        rc = ratecards.get_card(s, a.staff, a.partner_id, on=date(2024, 4, 1))
        assert rc.source == "partner" and rc.card.credit_rates["recipients"] == D("0.9")
        # the other partner still gets the list price
        assert ratecards.get_card(s, world.admin, world.b.partner_id, on=date(2024, 4, 1)).source == "standard"
        names = {r.kind for r in ratecards.list_cards(s, a.staff)}
        assert names == {"standard", "partner"}
        assert {r.kind for r in ratecards.list_cards(s, world.b.staff)} == {"standard"}


def test_versions_take_effect_from_their_date_and_never_before_the_latest(world, engine):
    standard(engine, world.admin)
    a = world.a
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 2, 1),
                                   card={**STANDARD, "credit_rates": {"recipients": "1.00"}})
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 5, 1),
                                   card={**STANDARD, "credit_rates": {"recipients": "0.80"}})
    with Session(engine) as s:
        rates = [ratecards.card_in_force(s, a.partner_id, d).card.credit_rates["recipients"]
                 for d in (date(2024, 1, 15), date(2024, 2, 1), date(2024, 4, 30), date(2024, 5, 1))]
        assert rates == [D("1.05"), D("1.00"), D("1.00"), D("0.80")]
    before = _writes(engine)
    with pytest.raises(ValidationError) as e, unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 3, 1), card=STANDARD)
    assert "effective_from" in e.value.errors
    assert _writes(engine) == before


def test_standard_card_new_version_refused_when_partner_overrides_would_break(world, engine):
    standard(engine, world.admin)
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, world.a.partner_id, effective_from=date(2024, 2, 1),
                                   overrides={"usage.charges.pages.tiers.1.unit_price": "0.03"})
    no_pages = {**STANDARD, "usage": None}
    before = _writes(engine)
    with pytest.raises(ValidationError), unit_of_work(engine) as s:
        ratecard_admin.new_standard_version(s, world.admin, "EUR", card=no_pages, effective_from=date(2024, 6, 1))
    assert _writes(engine) == before
    with unit_of_work(engine) as s:
        ratecard_admin.new_standard_version(s, world.admin, "EUR", card={**STANDARD, "revenue_share_percent": "12"},
                                       effective_from=date(2024, 6, 1))
    with Session(engine) as s:
        assert ratecards.revenue_share_percent(s, world.a.partner_id, date(2024, 6, 1)) == D("12")


@pytest.mark.parametrize("role", ["partner_staff", "manager", "user", "annotation_manager", "annotator"])
def test_nobody_but_platform_admins_changes_a_rate_card(world, engine, role):
    standard(engine, world.admin)
    actor = world.actor(role)
    pid = world.a.partner_id
    before = _writes(engine)
    calls = [
        lambda s: ratecard_admin.create_standard_card(s, actor, currency="USD", name="Mine", card={**STANDARD,
                                                 "currency": "USD"}, effective_from=D0),
        lambda s: ratecard_admin.new_standard_version(s, actor, "EUR", card={**STANDARD, "credit_rates":
                                                 {"recipients": "0.01"}}, effective_from=date(2025, 1, 1)),
        lambda s: ratecard_admin.set_partner_card(s, actor, pid, effective_from=date(2025, 1, 1),
                                             overrides={"credit_rates.recipients": "0.01"}),
        lambda s: ratecard_admin.set_partner_card(s, actor, pid, effective_from=date(2025, 1, 1),
                                             card={**STANDARD, "credit_rates": {"recipients": "0.01"}}),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied), unit_of_work(engine) as s:
            call(s)
    assert _writes(engine) == before
    with Session(engine) as s:
        assert ratecards.card_in_force(s, pid, date(2025, 2, 1)).card.credit_rates["recipients"] == D("1.05")


@pytest.mark.parametrize("role", ["manager", "user", "annotation_manager", "annotator"])
def test_customers_never_see_a_rate_card(world, engine, role):
    standard(engine, world.admin)
    actor = world.actor(role)
    with Session(engine) as s:
        for call in (lambda: ratecards.get_card(s, actor, world.a.partner_id),
                     lambda: ratecards.list_cards(s, actor),
                     lambda: ratecards.card_history(s, actor, world.a.partner_id)):
            with pytest.raises(PermissionDenied):
                call()


def test_partner_staff_read_only_their_own_card(world, engine):
    standard(engine, world.admin)
    with Session(engine) as s:
        assert ratecards.get_card(s, world.a.staff, world.a.partner_id) is not None
        with pytest.raises(PermissionDenied):
            ratecards.get_card(s, world.a.staff, world.b.partner_id)
        with pytest.raises(PermissionDenied):
            ratecards.card_history(s, world.a.staff, world.b.partner_id)


def test_staff_can_no_longer_put_credit_rates_in_their_plans_once_a_card_prices_them(world, engine):
    a = world.a
    # before any card (legacy data): accepted, as before
    with unit_of_work(engine) as s:
        legacy = plans.create_plan(s, a.staff, name="Legacy", code="legacy", currency="EUR",
                                   spec=LEGACY_WALLET_PLAN, effective_from=D0)
        legacy_id = legacy.id
    standard(engine, world.admin)
    cut = {**LEGACY_WALLET_PLAN, "charges": [{**LEGACY_WALLET_PLAN["charges"][0], "credit_rate": "0.01"}]}
    with pytest.raises(ValidationError) as e, unit_of_work(engine) as s:
        plans.new_version(s, a.staff, a.partner_id, legacy_id, spec=cut, effective_from=date(2024, 2, 1))
    assert "spec.charges[0].credit_rate" in e.value.errors
    with pytest.raises(ValidationError), unit_of_work(engine) as s:
        plans.create_plan(s, a.staff, name="Cut", code="cut", currency="EUR", spec=cut, effective_from=D0)
    # prices in money are the partner's own business
    with unit_of_work(engine) as s:
        plans.create_plan(s, a.staff, name="Mail", code="mail", currency="EUR", spec=MAIL_PLAN, effective_from=D0)
