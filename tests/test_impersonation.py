"""'Log in as': partner staff act as a customer's Manager, audited under both names."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import accounts, impersonation
from core.errors import Conflict, PermissionDenied
from db.models import AuditEntry
from tests.apptest import app, texts


def test_staff_logs_in_as_manager_and_actions_are_audited_under_both(world, session):
    a = world.a
    target = impersonation.start(session, a.staff, a.partner_id, a.account_id)
    assert target.role == "manager" and target.account_id == a.account_id
    assert target.impersonator_email == a.staff.email
    accounts.create_user(session, target, partner_id=a.partner_id, account_id=a.account_id,
                         email="via-imp@test.example", display_name="Via", role="user")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "user", AuditEntry.action == "create")
                           .order_by(AuditEntry.id.desc()))
    assert entry.actor_email == "manager-a@test.example" and entry.impersonator_email == a.staff.email
    starts = session.scalars(select(AuditEntry).where(AuditEntry.action == "impersonate:start")).all()
    assert len(starts) == 1


def test_cannot_impersonate_across_tenants_or_without_role(world, session):
    with pytest.raises(PermissionDenied):
        impersonation.start(session, world.a.staff, world.b.partner_id, world.b.account_id)
    with pytest.raises(PermissionDenied):
        impersonation.start(session, world.a.users["manager"], world.a.partner_id, world.a.account_id)
    accounts.suspend_account(session, world.a.staff, world.a.partner_id, world.a.other_account_id)
    with pytest.raises(Conflict):
        impersonation.start(session, world.a.staff, world.a.partner_id, world.a.other_account_id)


def test_banner_and_back_in_app(world, engine):
    a = world.a
    with Session(engine) as s:
        target = impersonation.start(s, a.staff, a.partner_id, a.account_id)
    at = app(a.staff, state={"auth_impersonating": (target.partner_id, target.user_id)})
    assert "You are logged in as" in texts(at) and "Customer a1" in texts(at)
    assert at.button(key="imp_back")


def test_a_reload_resumes_log_in_as_only_with_a_valid_unexpired_token_of_this_login(world, session):
    """Issue 15: the browser keeps a signed, short-lived token; tampered, expired or another login's tokens
    are refused; resuming re-checks the staff member's right and is audited."""
    from datetime import UTC, datetime, timedelta

    a = world.a
    target = impersonation.start(session, a.staff, a.partner_id, a.account_id)
    cookie, now = "7.42." + "s" * 43, datetime(2026, 11, 20, 12, tzinfo=UTC)
    token = impersonation.resume_token(cookie, target, (a.partner_id, a.account_id), now=now)
    assert impersonation.read_resume_token(cookie, token, now=now) == (
        target.partner_id, target.user_id, (a.partner_id, a.account_id))
    assert impersonation.read_resume_token(cookie, token, now=now + impersonation.RESUME_FOR) is None  # expired
    assert impersonation.read_resume_token("7.43." + "s" * 43, token, now=now) is None  # another login's
    assert impersonation.read_resume_token(None, token, now=now) is None
    pid, uid, *rest = token.split(".")
    forged = ".".join([pid, str(a.users["user"].user_id), *rest])  # another user, same signature
    assert impersonation.read_resume_token(cookie, forged, now=now) is None
    longer = token.rsplit(".", 2)[0] + f".{int((now + timedelta(days=30)).timestamp())}." + token.rsplit(".", 1)[1]
    assert impersonation.read_resume_token(cookie, longer, now=now) is None  # expiry cannot be pushed out
    assert impersonation.read_resume_token(cookie, "garbage", now=now) is None
    resumed = impersonation.resume(session, a.staff, target.partner_id, target.user_id)
    assert resumed is not None and resumed.impersonator_user_id == a.staff.user_id
    assert session.scalars(select(AuditEntry).where(AuditEntry.action == "impersonate:resume")).all()
    # another partner's staff cannot resume someone else's token target
    assert impersonation.resume(session, world.b.staff, target.partner_id, target.user_id) is None
