"""The permission matrix, exhaustively: every role × every action × (own account, another account of the
same partner, another partner's account), through the real services against the real database.

A denied call must raise PermissionDenied and write nothing (no audit entry, no row)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import accounts, audit
from core.accounts.actor import SYSTEM
from core.accounts.permissions import ACTIONS, MATRIX, ROLES, allowed, render_markdown
from core.errors import PermissionDenied
from db.models import AuditEntry

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
    raise KeyError(action)


def _fingerprint(s: Session, actor) -> tuple[int]:
    """Rows written under the actor's name: audit entries (every write is audited) by this actor."""
    return (s.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.actor_user_id == actor.user_id)),)


SERVICE_ACTIONS = ("account.create", "account.view", "account.update", "account.suspend", "account.delete",
                   "account.restore", "user.list", "user.create", "user.change_role", "user.deactivate",
                   "user.reset_password", "audit.view", "partner.create", "staff.create")


def test_every_role_action_and_tenant_through_the_services(world, engine):
    checked = 0
    for role in ROLES:
        actor = world.actor(role)
        for action in SERVICE_ACTIONS:
            for where in TARGETS:
                pid, aid = _target(world, where)
                expected = allowed(actor, action, pid, aid)
                with Session(engine) as s:
                    if expected:
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
