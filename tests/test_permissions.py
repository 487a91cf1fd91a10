"""The permission matrix, exhaustively: every role × every action × (own account, another account of the
same partner, another partner's account), through the real services against the real database.

A denied call must raise PermissionDenied and write nothing (no audit entry, no row). Every action of
core.accounts.permissions.ACTIONS has a service call here (a new action without one fails the test).
A few list services narrow a request to the actor's own scope instead of refusing it (a Manager asking for
another account's statements gets its own): for those the test checks that nothing outside the scope comes
back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import accounts, apikeys, audit, impersonation
from core.accounts.actor import SYSTEM
from core.accounts.permissions import ACTIONS, MATRIX, ROLES, allowed, render_markdown
from core.billing import modes, plans, wallet
from core.errors import PermissionDenied
from core.notify import webhooks
from core.statements import reading, settings
from core.usage import ingest, metrics, reports
from db.models import AuditEntry
from tests.billing_factories import PAGES_SPEC

TARGETS = ("own_account", "other_account", "foreign_partner")
PW = "a-long-enough-passphrase-42"


def _target(world, where: str) -> tuple[int, int]:
    if where == "own_account":
        return world.a.partner_id, world.a.account_id
    if where == "other_account":
        return world.a.partner_id, world.a.other_account_id
    return world.b.partner_id, world.b.account_id


def _annotator_in(s: Session, partner_id: int, account_id: int) -> int:
    return s.execute(text("select id from users where partner_id=:p and account_id=:a and role in "
                          "('annotator','manager') order by role='annotator' desc, id limit 1"),
                     {"p": partner_id, "a": account_id}).scalar_one()


def _call(s: Session, action: str, actor, pid: int, aid: int):
    n = f"{action.replace('.', '-')}-{actor.role}-{pid}-{aid}"
    if action == "account.create":
        return accounts.create_account(s, actor, partner_id=pid, name="New Co", country="NO")
    if action == "account.view":
        return accounts.get_account(s, actor, pid, aid)
    if action == "account.update":
        return accounts.update_account(s, actor, pid, aid, name="Renamed")
    if action == "account.suspend":
        return accounts.suspend_account(s, actor, pid, aid)
    if action == "account.delete":
        return accounts.delete_account(s, actor, pid, aid)
    if action == "account.restore":
        accounts.delete_account(s, SYSTEM, pid, aid)
        return accounts.restore_account(s, actor, pid, aid)
    if action == "user.list":
        return accounts.list_users(s, actor, pid, aid)
    if action == "user.create":
        return accounts.create_user(s, actor, partner_id=pid, account_id=aid, email=f"{n}@x.example",
                                    display_name="New", role="user", password=PW)
    if action in ("user.change_role", "user.deactivate"):
        uid = _annotator_in(s, pid, aid)
        accounts.create_user(s, SYSTEM, partner_id=pid, account_id=aid, email=f"{n}-m@x.example",
                             display_name="Spare manager", role="manager", password=PW)
        if action == "user.change_role":
            return accounts.change_role(s, actor, pid, uid, "user")
        return accounts.set_user_active(s, actor, pid, uid, False)
    if action == "user.reset_password":
        return accounts.reset_password(s, actor, pid, _annotator_in(s, pid, aid))
    if action == "audit.view":
        return audit.list_entries(s, actor, partner_id=pid)
    if action == "partner.create":
        return accounts.create_partner(s, actor, name=f"P {n}")
    if action == "staff.create":
        return accounts.create_staff(s, actor, partner_id=pid, email=f"{n}@x.example", display_name="S", password=PW)
    return _call_billing(s, action, actor, pid, aid, n)


TODAY = date(2026, 3, 18)


def _call_billing(s: Session, action: str, actor, pid: int, aid: int, n: str):
    """The services of the other capabilities (partners, usage, plans, billing, statements, wallet)."""
    if action == "partner.list":
        return accounts.list_partners(s, actor)
    if action == "partner.settings":
        return settings.save_settings(s, actor, pid, display_name="Renamed")
    if action == "account.list":
        return accounts.list_accounts(s, actor, partner_id=pid, statuses=())
    if action == "impersonate":
        accounts.create_user(s, SYSTEM, partner_id=pid, account_id=aid, email=f"{n}-m@x.example",
                             display_name="Manager", role="manager", password=PW)
        return impersonation.impersonation_target(s, actor, pid, aid)
    if action == "metric.manage":
        return metrics.add_metric(s, actor, key=f"m_{actor.role}_{pid}_{aid}", name="M", unit="things",
                                  aggregation="sum")
    if action == "plan.manage":
        return plans.create_plan(s, actor, partner_id=pid, name="P", code=n[:60], currency="EUR", spec=PAGES_SPEC,
                                 effective_from=TODAY)
    if action == "plan.view":
        return plans.current_assignment(s, actor, pid, aid, on=TODAY)
    if action == "usage.view":
        return reports.account_totals(s, actor, pid, aid, start=TODAY, end=TODAY)
    if action == "usage.import":
        return ingest.record_events(s, actor, pid, [{"account_id": aid, "metric": "pages", "quantity": 1,
                                                     "event_id": n, "occurred_at": "2026-03-18T10:00:00Z"}],
                                    now=datetime(2026, 3, 18, 12, tzinfo=UTC))
    if action == "billing.manage":
        return modes.set_mode(s, actor, pid, aid, "agency", TODAY, today=TODAY)
    if action == "statement.view":
        return reading.list_statements(s, actor, pid, account_id=aid)
    if action == "wallet.view":
        return wallet.wallet_view(s, actor, pid)
    if action == "wallet.manage":
        return wallet.get_or_create_wallet(s, actor, pid)
    if action == "wallet.adjust":
        wallet.get_or_create_wallet(s, SYSTEM, pid)
        return wallet.adjust(s, actor, pid, 10, "Permission test")
    if action == "apikey.manage":
        return apikeys.create_key(s, actor, pid, name="Permission test", scopes=list(apikeys.SCOPES)[:1])
    if action == "webhook.manage":
        return webhooks.list_endpoints(s, actor, pid)
    if action in RATECARD_ACTIONS:
        return _call_ratecard(s, action, actor, pid)
    raise KeyError(f"no service call for action {action!r}: add one to tests/test_permissions.py")


def _narrows(action: str, actor, pid: int) -> bool:
    """The list services that narrow a request to the actor's own scope instead of refusing it."""
    if action == "partner.list":
        return actor.is_staff and not actor.is_admin  # staff see their own partner
    if action == "account.list":
        return not actor.is_admin  # staff: their partner's accounts; customers: their own account
    if action == "statement.view":  # a Manager gets the own account's statements of its own partner
        return not actor.is_staff and pid == actor.partner_id and allowed(actor, action, pid, actor.account_id)
    return False


def _within_scope(action: str, actor, result) -> bool:
    if action == "partner.list":
        return [p.id for p in result] == [actor.partner_id]
    if action == "account.list":
        return bool(result) and all(allowed(actor, "account.view", r.partner_id, r.id) for r in result)
    return all(r.account_id == actor.account_id and r.status == "final" for r in result)


def _fingerprint(s: Session, actor) -> tuple[int]:
    """Rows written under the actor's name: audit entries (every write is audited) by this actor."""
    return (s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.actor_user_id == actor.user_id)),)


SERVICE_ACTIONS = tuple(ACTIONS)


def test_every_role_action_and_tenant_through_the_services(world, engine):
    checked = 0
    for role in ROLES:
        actor = world.actor(role)
        for action in SERVICE_ACTIONS:
            for where in TARGETS:
                pid, aid = _target(world, where)
                expected = allowed(actor, action, pid, aid)
                with Session(engine) as s:
                    if _narrows(action, actor, pid):
                        assert _within_scope(action, actor, _call(s, action, actor, pid, aid)), (role, action, where)
                    elif expected:
                        _call(s, action, actor, pid, aid)
                    else:
                        with pytest.raises(PermissionDenied):
                            _call(s, action, actor, pid, aid)
                        # the denied call wrote nothing (setup steps inside _call act as SYSTEM)
                        assert _fingerprint(s, actor) == (0,), (role, action, where)
                    s.rollback()
                checked += 1
    assert checked == len(ROLES) * len(SERVICE_ACTIONS) * len(TARGETS)


RATECARD_ACTIONS = ("ratecard.manage", "ratecard.view", "margin.view")


def _call_ratecard(s: Session, action: str, actor, pid: int):
    from datetime import date

    from core.billing import margin, ratecard_admin, ratecards
    from tests.test_ratecards import STANDARD

    if action == "ratecard.manage":
        return ratecard_admin.set_partner_card(s, actor, pid, effective_from=date(2024, 1, 1), card=STANDARD)
    if action == "ratecard.view":
        return ratecards.get_card(s, actor, pid)
    if action == "margin.view":
        return margin.margins(s, actor, pid, date(2024, 1, 1), date(2024, 1, 31))
    raise KeyError(action)


def test_rate_card_and_margin_actions_through_the_services(world, engine):
    """Rate cards are the platform's: only admins change them; partner staff read their own card and margins;
    customer roles never see either."""
    checked = 0
    for role in ROLES:
        actor = world.actor(role)
        for action in RATECARD_ACTIONS:
            for where in TARGETS:
                pid, aid = _target(world, where)
                expected = allowed(actor, action, pid, aid)
                assert expected == (role == "platform_admin" or (
                    role == "partner_staff" and action != "ratecard.manage" and pid == actor.partner_id))
                with Session(engine) as s:
                    if expected:
                        _call_ratecard(s, action, actor, pid)
                    else:
                        with pytest.raises(PermissionDenied):
                            _call_ratecard(s, action, actor, pid)
                        assert _fingerprint(s, actor) == (0,), (role, action, where)
                    s.rollback()
                checked += 1
    assert checked == len(ROLES) * len(RATECARD_ACTIONS) * len(TARGETS)


def test_expected_matrix_shape(world):
    """Spot-check the intended policy, so a careless edit of MATRIX is caught."""
    a = world.a
    staff, manager, annotator, admin = a.staff, a.users["manager"], a.users["annotator"], world.admin
    assert allowed(admin, "account.restore", world.b.partner_id, world.b.account_id)
    assert allowed(staff, "account.create", a.partner_id) and not allowed(staff, "account.create", world.b.partner_id)
    assert not allowed(staff, "account.restore", a.partner_id, a.account_id)
    assert allowed(manager, "user.create", a.partner_id, a.account_id)
    assert not allowed(manager, "user.create", a.partner_id, a.other_account_id)
    assert not allowed(manager, "account.update", a.partner_id, a.account_id)
    for role in ("user", "annotation_manager", "annotator"):
        actor = a.users[role]
        assert not any(allowed(actor, act, a.partner_id, a.account_id) for act in
                       ("user.list", "user.create", "user.change_role", "user.deactivate", "user.reset_password",
                        "plan.view", "statement.view"))
    assert allowed(annotator, "usage.view", a.partner_id, a.account_id)
    assert not allowed(annotator, "usage.view", a.partner_id, a.other_account_id)


def test_every_action_for_every_role_in_every_tenant(world):
    """The pure matrix for all actions (also those whose services come in later modules)."""
    for role in ROLES:
        actor = world.actor(role)
        for action in ACTIONS:
            scope = MATRIX[role].get(action)
            for where in TARGETS:
                pid, aid = _target(world, where)
                expected = scope == "platform" or (scope == "partner" and pid == actor.partner_id) or (
                    scope == "account" and pid == actor.partner_id and aid == actor.account_id)
                assert allowed(actor, action, pid, aid) == expected, (role, action, where)


def test_listing_never_leaks_other_tenants(world, session):
    for role in ROLES:
        actor = world.actor(role)
        rows = accounts.list_accounts(session, actor, partner_id=world.b.partner_id, statuses=())
        if role == "platform_admin":
            assert {r.partner_id for r in rows} == {world.b.partner_id}
        elif role == "partner_staff":
            assert {r.partner_id for r in rows} == {world.a.partner_id}
        else:
            assert [r.id for r in rows] == [world.a.account_id]


def test_permissions_doc_is_current():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "permissions.md").read_text(encoding="utf-8")
    assert render_markdown() in doc, "docs/permissions.md is stale: run `make docs`"
