"""Billing modes: setting them (validation, audit, permissions) and settling new usage in every mode."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.permissions import allowed
from core.billing import modes as bm
from core.billing import payments, wallet
from core.errors import NotFound, PermissionDenied, ValidationError
from db.engine import unit_of_work
from db.models import AuditEntry
from db.models.wallet import OutboxMessage, PaymentCharge
from tests.wallet_helpers import DECLINING_CARD, balance_of, ledger_kinds, setup_wallet, wait_purchases
from tests.when import TODAY

D = Decimal

pytestmark = pytest.mark.usefixtures("on_day")  # the app runs on a fixed day (tests/when.py)


def _set(db, actor, t, mode, when=TODAY, **kw):
    with unit_of_work(db) as s:
        return bm.set_mode(s, actor, t.partner_id, t.account_id, mode, when, **kw)


def _settle(db, t, credits="0", amount="0", ref=None, day=TODAY, **kw):
    with unit_of_work(db) as s:
        return bm.settle_new_usage(s, t.partner_id, t.account_id, day, D(credits), D(amount), "EUR",
                                   ref or {"first_event_id": 1, "last_event_id": 10, "count": 10}, **kw)


def test_default_is_customer_pays_and_history_by_date(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, TODAY) == ("customer_pays", None)
    _set(db, t.staff, t, "partner_prepaid")
    _set(db, t.staff, t, "agency", TODAY + timedelta(days=10))
    _set(db, t.staff, t, "partner_on_demand", TODAY + timedelta(days=20), on_decline="flag")
    with Session(db) as s:
        assert bm.mode_at(s, t.partner_id, t.account_id, TODAY - timedelta(days=1))[0] == "customer_pays"
        assert bm.mode_at(s, t.partner_id, t.account_id, TODAY + timedelta(days=5))[0] == "partner_prepaid"
        assert bm.mode_at(s, t.partner_id, t.account_id, TODAY + timedelta(days=25)) == ("partner_on_demand", "flag")
        periods = bm.modes_in_period(s, t.partner_id, t.account_id, TODAY, TODAY + timedelta(days=30))
        rows = {r.account_id: r for r in bm.list_modes(s, t.staff, t.partner_id)}
        audits = s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "billing_mode"))
    assert [p[2] for p in periods] == ["partner_prepaid", "agency", "partner_on_demand"]
    assert periods[0][1] == TODAY + timedelta(days=9)
    assert rows[t.account_id].mode == "partner_prepaid" and rows[t.account_id].next_mode == "agency"
    assert rows[t.other_account_id].mode == "customer_pays" and rows[t.other_account_id].effective_from is None
    assert audits == 3


def test_set_mode_validation(world, db):
    t = world.a
    with pytest.raises(ValidationError) as e:  # no wallet yet
        _set(db, t.staff, t, "partner_prepaid")
    assert "wallet" in e.value.errors["mode"]
    with pytest.raises(ValidationError) as e:  # no payment method
        _set(db, t.staff, t, "partner_on_demand")
    assert "payment method" in e.value.errors["mode"]
    with pytest.raises(ValidationError) as e:
        _set(db, t.staff, t, "free_for_all", TODAY - timedelta(days=1))
    assert set(e.value.errors) == {"mode", "effective_from"}
    setup_wallet(db, t.staff, t.partner_id)
    with pytest.raises(ValidationError):
        _set(db, t.staff, t, "partner_on_demand", on_decline="shrug")
    with pytest.raises(PermissionDenied):
        _set(db, world.b.staff, t, "agency")
    with pytest.raises(PermissionDenied):
        _set(db, t.users["manager"], t, "agency")
    with pytest.raises(NotFound), unit_of_work(db) as s:
        bm.set_mode(s, t.staff, t.partner_id, world.b.account_id, "agency", TODAY)
    with Session(db) as s:
        assert not s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "billing_mode"))


def test_customer_pays_and_agency_are_left_for_statements(world, db):
    t = world.a
    for mode in ("customer_pays", "agency"):
        _set(db, t.staff, t, mode)
        r = _settle(db, t, credits="5250", amount="52.50")
        assert (r.mode, r.action, r.accepted) == (mode, "statement", True)
    with Session(db) as s:
        assert wallet.find_wallet(s, t.partner_id) is None
        assert not s.scalar(select(func.count()).select_from(PaymentCharge))


def test_prepaid_draws_at_once_and_is_idempotent(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=50000)
    _set(db, t.staff, t, "partner_prepaid")
    ref = {"first_event_id": 1, "last_event_id": 5000, "count": 5000}
    r = _settle(db, t, credits="5250", amount="52.50", ref=ref)
    assert (r.action, r.draw.balance) == ("drawn", D(44750))
    assert _settle(db, t, credits="5250", amount="52.50", ref=ref).action == "duplicate"
    assert balance_of(db, t.partner_id) == D(44750)
    with pytest.raises(bm.UsageBlocked, match="Not enough credits"):
        _settle(db, t, credits="50000", ref={"batch": 2})
    blocked = _settle(db, t, credits="50000", ref={"batch": 2}, raise_on_block=False)
    assert blocked.action == "blocked" and not blocked.accepted
    assert ledger_kinds(db, t.partner_id) == ["purchase", "usage_draw"]


def test_prepaid_with_auto_purchase_and_overdraft(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, buy=100, auto_buy_credits=1000, overdraft_policy="overdraft",
                 overdraft_limit=500)
    _set(db, t.staff, t, "partner_prepaid")
    r = _settle(db, t, credits="150", ref={"b": 1})  # overdraft while the purchase is under way
    assert (r.action, r.draw.auto_purchase, r.draw.balance) == ("drawn", "pending", D(-50))
    wait_purchases()
    assert balance_of(db, t.partner_id) == D(950)


def test_on_demand_charges_exactly_the_cost(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    _set(db, t.staff, t, "partner_on_demand")
    r = _settle(db, t, credits="5250", amount="52.5049", ref={"b": 1})
    assert (r.action, r.amount) == ("charged", D("52.50"))
    assert _settle(db, t, credits="5250", amount="52.5049", ref={"b": 1}).action == "duplicate"
    with Session(db) as s:
        charges = s.scalars(select(PaymentCharge)).all()
    assert [(c.status, c.amount, c.reason, c.account_id) for c in charges] == [
        ("approved", D("52.50"), "usage_on_demand", t.account_id)]


def test_on_demand_declined_blocks_and_reports(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=DECLINING_CARD)
    _set(db, t.staff, t, "partner_on_demand", on_decline="block")
    with pytest.raises(bm.UsageBlocked, match="declined"):
        _settle(db, t, amount="10", ref={"b": 1})
    with Session(db) as s:  # the attempt and the report survive the rolled-back usage transaction
        assert [c.status for c in s.scalars(select(PaymentCharge))] == ["declined"]
        assert [m.kind for m in s.scalars(select(OutboxMessage))] == ["charge_declined"]
    with unit_of_work(db) as s:  # the partner fixes the card; the same batch is retried and charged
        payments.add_card(s, t.staff, t.partner_id, number="4242424242424242", exp_month=1, exp_year=2099)
    assert _settle(db, t, amount="10", ref={"b": 1}).action == "charged"


def test_on_demand_declined_flags(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id, card=DECLINING_CARD)
    _set(db, t.staff, t, "partner_on_demand", on_decline="flag")
    r = _settle(db, t, amount="10", ref={"b": 1})
    assert (r.action, r.accepted) == ("flagged", True) and r.charge_id is not None
    with Session(db) as s:
        assert s.get(PaymentCharge, (t.partner_id, r.charge_id)).status == "declined"
        assert [m.kind for m in s.scalars(select(OutboxMessage))] == ["charge_declined"]


def test_on_demand_over_gateway_limit_declines(world, db):
    t = world.a
    setup_wallet(db, t.staff, t.partner_id)
    _set(db, t.staff, t, "partner_on_demand", on_decline="flag")
    payments.set_gateway(payments.DemoGateway(limit=D(5)))
    try:
        assert _settle(db, t, amount="6", ref={"b": 9}).action == "flagged"
        assert _settle(db, t, amount="4", ref={"b": 10}).action == "charged"
    finally:
        payments.set_gateway(None)


def test_wallet_permission_matrix(world, db):
    """wallet.view / wallet.manage / wallet.adjust / billing.manage for every role, own and foreign tenant."""
    a, b = world.a, world.b
    setup_wallet(db, a.staff, a.partner_id, buy=100)
    setup_wallet(db, b.staff, b.partner_id, buy=100)
    roles = ("platform_admin", "partner_staff", "manager", "user", "annotation_manager", "annotator")
    for role in roles:
        actor = world.actor(role)
        for target in (a, b):
            checks = {
                "wallet.view": lambda s, t=target, actor=actor: wallet.list_ledger(s, actor, t.partner_id),
                "wallet.manage": lambda s, t=target, actor=actor: wallet.configure(s, actor, t.partner_id, low_balance_threshold=1),
                "wallet.adjust": lambda s, t=target, actor=actor: wallet.adjust(s, actor, t.partner_id, 1, "test"),
                "billing.manage": lambda s, t=target, actor=actor: bm.set_mode(s, actor, t.partner_id, t.account_id, "agency",
                                                                  TODAY),
            }
            for action, call in checks.items():
                with Session(db) as s:
                    if allowed(actor, action, target.partner_id, target.account_id):
                        call(s)
                    else:
                        with pytest.raises(PermissionDenied):
                            call(s)
                    s.rollback()
    assert balance_of(db, a.partner_id) == D(100)
