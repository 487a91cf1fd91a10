"""Login that attackers cannot abuse: throttling per account and client address, a per-address limit, a cap
on concurrent password checks; password changes end other sessions; sign-up reveals nothing and is confirmed
by an e-mailed link; reset links instead of one-time passwords; e-mail look-alikes and control characters
refused; log in / failed log in / log out audited."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts import accounts, auth, impersonation, links, passwords
from core.accounts.auth import (
    authenticate,
    change_password,
    confirm_email,
    load_actor,
    login,
    remember,
    reset_with_token,
    resume,
    signup,
)
from core.errors import AuthError, Throttled, ValidationError
from core.notify.outbox import list_outbox
from db.engine import unit_of_work
from db.models import AuditEntry, LoginDirectory, User
from db.models.wallet import OutboxMessage
from tests.apptest import app, texts
from tests.factories import PASSWORD

NEW_PW = "a perfectly fine passphrase"
T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def last_link(engine, recipient: str, purpose: str) -> str:
    """The token of the last link e-mailed to `recipient` (purpose 'confirm' or 'reset')."""
    with Session(engine) as s:
        body = s.scalar(select(OutboxMessage.body).where(OutboxMessage.recipient == recipient)
                        .order_by(OutboxMessage.id.desc()).limit(1))
    m = re.search(rf"\?{purpose}=([\w.-]+)", body or "")
    assert m, body
    return m.group(1)


def _attempt(engine, email, password, client, now):
    with Session(engine) as s:
        try:
            return authenticate(s, email, password, client=client, now=now)
        finally:
            s.commit()


# ---------------------------------------------------------------- throttling


def test_attackers_failures_never_stop_the_owner_from_another_address(world, db):
    victim = "staff-a@test.example"
    blocked = 0
    for minute in range(120):  # one wrong guess a minute for two hours, from the attacker's address
        now = T0 + timedelta(minutes=minute)
        try:
            _attempt(db, victim, "wrong wrong wrong", "203.0.113.66", now)
        except Throttled:
            blocked += 1
        except AuthError:
            pass
        if minute % 10 == 5:  # the owner, from home, with the right password: always in
            assert _attempt(db, victim, PASSWORD, "198.51.100.7", now).email == victim
    assert blocked > 0  # the attacker is slowed down...
    with pytest.raises(Throttled):  # ...and after a burst, even the right password from that address waits
        for i in range(10):
            try:
                _attempt(db, victim, "wrong again!!", "203.0.113.66", T0 + timedelta(hours=5, seconds=i))
            except Throttled:
                raise
            except AuthError:
                pass
    assert _attempt(db, victim, PASSWORD, "198.51.100.7", T0 + timedelta(hours=5, seconds=11)).email == victim


def test_one_address_guessing_many_accounts_is_locked_out(world, db):
    for i in range(auth.CLIENT_MAX_FAILURES):
        with pytest.raises(AuthError):
            _attempt(db, f"someone{i}@test.example", "guess guess guess", "203.0.113.9", T0 + timedelta(seconds=i))
    with pytest.raises(Throttled):
        _attempt(db, "staff-b@test.example", PASSWORD, "203.0.113.9", T0 + timedelta(seconds=60))
    assert _attempt(db, "staff-b@test.example", PASSWORD, "198.51.100.8", T0 + timedelta(seconds=61))
    # the lock ends
    assert _attempt(db, "staff-b@test.example", PASSWORD, "203.0.113.9", T0 + auth.CLIENT_LOCK + timedelta(minutes=2))


def test_password_checks_are_capped_and_refused_when_busy(world, db, monkeypatch):
    running, peak, lock = 0, 0, threading.Lock()
    real = passwords.context()

    class Counting:
        def verify_and_update(self, *a):
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            try:
                return real.verify_and_update(*a)
            finally:
                with lock:
                    running -= 1

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(passwords, "context", lambda profile=None: Counting())
    passwords.limit_concurrency(2, 10)
    try:
        errors: list[Exception] = []

        def one(i):
            try:
                login(db, "staff-a@test.example", PASSWORD, client=f"198.51.100.{i}")
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and peak == 2
        passwords.limit_concurrency(1, 0.1)
        assert passwords._slots.acquire()  # another check holds the only slot
        try:
            with pytest.raises(passwords.Busy, match="busy"):
                login(db, "staff-a@test.example", PASSWORD, client="198.51.100.1")
        finally:
            passwords._slots.release()
    finally:
        passwords.limit_concurrency(2, 10)


# ---------------------------------------------------------------- sessions


def test_changing_the_password_ends_every_other_session_and_remembered_login(world, db):
    me = world.a.users["user"]
    with unit_of_work(db) as s:
        other_device = remember(s, me)
    with unit_of_work(db) as s:
        fresh = change_password(s, me, current=PASSWORD, new=NEW_PW)
    with unit_of_work(db) as s:
        assert resume(s, other_device) is None
        assert load_actor(s, me.partner_id, me.user_id, me.session_version) is None  # the other tab
        assert load_actor(s, me.partner_id, me.user_id, fresh.session_version) is not None  # this one


def test_log_out_everywhere(world, db):
    me = world.a.users["manager"]
    with unit_of_work(db) as s:
        token = remember(s, me)
    at = app(me, "pages/profile.py")
    at.button(key="logout_everywhere").click().run()
    assert "auth_user_id" not in at.session_state
    with unit_of_work(db) as s:
        assert resume(s, token) is None
        assert load_actor(s, me.partner_id, me.user_id, me.session_version) is None
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "logout:everywhere"))


def test_profile_password_change_keeps_this_session(world, db):
    me = world.a.users["annotator"]
    at = app(me, "pages/profile.py")
    at.text_input(key="pw_current").input(PASSWORD)
    at.text_input(key="pw_new").input(NEW_PW)
    at.button(key="FormSubmitter:change_password-Save password").click().run()
    assert not at.exception
    assert at.session_state["auth_version"] == me.session_version + 1


# ---------------------------------------------------------------- sign-up and links


def _signup(s, email, password=NEW_PW):
    return signup(s, email=email, display_name="Sam", password=password, org_name="Sam's Shop", country="NO",
                  currency="NOK")


def test_signup_answers_the_same_for_known_and_unknown_addresses(world, db):
    with unit_of_work(db) as s:
        known = _signup(s, "manager-a@test.example")
    with unit_of_work(db) as s:
        unknown = _signup(s, "brand-new@test.example")
    assert known.replace("manager-a", "X") == unknown.replace("brand-new", "X")
    with Session(db) as s:  # nothing created for the known address; its owner is told by e-mail
        assert s.scalar(select(User).where(User.display_name == "Sam", User.email == "manager-a@test.example")) is None
        kinds = s.scalars(select(OutboxMessage.kind).where(OutboxMessage.recipient == "manager-a@test.example")).all()
        assert kinds == ["signup_existing"]
    # a refused password says nothing about the address either
    for email in ("manager-a@test.example", "other-new@test.example"):
        with Session(db) as s, pytest.raises(ValidationError) as exc:
            _signup(s, email, password="short")
        assert set(exc.value.errors) == {"password"}


def test_signup_logs_in_only_after_the_confirmation_link(world, db):
    with unit_of_work(db) as s:
        _signup(s, "Sam@Test.Example")
    with pytest.raises(AuthError, match="Confirm your e-mail"):
        login(db, "sam@test.example", NEW_PW)
    token = last_link(db, "Sam@Test.Example", "confirm")
    with unit_of_work(db) as s:
        assert "confirmed" in confirm_email(s, token)
    assert login(db, "sam@test.example", NEW_PW).role == "manager"
    with unit_of_work(db) as s, pytest.raises(ValidationError, match="not valid or has expired"):
        confirm_email(s, token)  # single use


def test_confirmation_link_in_the_app_and_expiry(world, db):
    with unit_of_work(db) as s:
        _signup(s, "late@test.example")
    token = last_link(db, "late@test.example", "confirm")
    with unit_of_work(db) as s, pytest.raises(ValidationError):
        confirm_email(s, token, now=datetime.now(UTC) + links.CONFIRM_FOR + timedelta(minutes=1))
    at = app()
    at.query_params["confirm"] = token
    at.run()
    assert not at.exception
    assert "Your e-mail address is confirmed" in texts(at)


def test_demo_and_staff_created_users_are_confirmed(world, db):
    assert login(db, "annotator-a@test.example", PASSWORD).role == "annotator"


def test_reset_sends_a_time_limited_link_that_nobody_else_sees(world, db):
    a = world.a
    target = a.users["user"]
    with unit_of_work(db) as s:
        accounts.reset_password(s, a.staff, a.partner_id, target.user_id)
    with pytest.raises(AuthError):  # the old password no longer works
        login(db, "user-a@test.example", PASSWORD)
    token = last_link(db, "user-a@test.example", "reset")
    with Session(db) as s:  # the partner's staff do not see the link in the app's messages
        assert all("reset=" not in m.body for m in list_outbox(s, a.staff, a.partner_id))
    with unit_of_work(db) as s, pytest.raises(ValidationError):
        reset_with_token(s, token, NEW_PW, now=datetime.now(UTC) + links.RESET_FOR + timedelta(seconds=1))
    with unit_of_work(db) as s:
        reset_with_token(s, token, NEW_PW)
    assert login(db, "user-a@test.example", NEW_PW).user_id == target.user_id
    with unit_of_work(db) as s, pytest.raises(ValidationError):
        reset_with_token(s, token, "another fine passphrase")  # single use


# ---------------------------------------------------------------- e-mail look-alikes, control characters


@pytest.mark.parametrize("email", ["\u0430dmin@example.com",  # Cyrillic а
                                   "ad\u200bmin@example.com",  # zero-width space
                                   "ad\u202emin@example.com"])  # right-to-left override
def test_lookalike_and_invisible_addresses_are_refused(db, email):
    with Session(db) as s, pytest.raises(ValidationError) as exc:
        _signup(s, email)
    assert "email" in exc.value.errors


def test_addresses_are_normalised(db):
    with unit_of_work(db) as s:
        _signup(s, "\uff21\uff24\uff2d\uff29\uff2e@Example.com")  # full-width ＡＤＭＩＮ
    with Session(db) as s:
        assert s.get(LoginDirectory, "admin@example.com") is not None


def test_control_and_bidi_characters_are_refused_with_a_clear_message(world, session):
    a = world.a
    with pytest.raises(ValidationError) as exc:
        accounts.create_account(session, a.staff, name="Nul\x00Org", country="NO")
    assert exc.value.errors["name"] == "Organisation name must not contain control characters."
    with pytest.raises(ValidationError) as exc:
        accounts.create_user(session, a.staff, partner_id=a.partner_id, account_id=a.account_id,
                             email="rlo@test.example", display_name="gnp.\u202eexe", role="user", password=NEW_PW)
    assert "override" in exc.value.errors["display_name"]


# ---------------------------------------------------------------- audit, impersonation


def test_login_failed_login_and_logout_are_audited(world, db):
    with pytest.raises(AuthError):
        login(db, "staff-a@test.example", "wrong wrong wrong", client="198.51.100.3")
    actor = login(db, "staff-a@test.example", PASSWORD, client="198.51.100.3")
    with unit_of_work(db) as s:
        auth.logout(s, actor)
    with Session(db) as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.after).where(
            AuditEntry.entity == "user", AuditEntry.entity_id == str(actor.user_id),
            AuditEntry.action.like("log%")).order_by(AuditEntry.id)).all()
    assert [r.action for r in rows] == ["login:failed", "login", "logout"]
    assert rows[0].after == {"client": "198.51.100.3"}


def test_impersonation_refuses_a_target_that_is_not_a_manager(world, session):
    a = world.a
    assert impersonation.impersonated_actor(session, a.staff, a.partner_id, a.users["annotator"].user_id) is None
    assert impersonation.impersonated_actor(session, a.staff, a.partner_id, a.staff.user_id) is None
    assert impersonation.impersonated_actor(session, a.staff, a.partner_id, a.users["manager"].user_id) is not None


def test_stale_throttle_counters_are_forgotten(world, db, monkeypatch):
    from db.models import LoginThrottle

    with unit_of_work(db) as s:
        s.add(LoginThrottle(key="client:192.0.2.1", failures=3, last_failure_at=T0 - timedelta(days=2)))
    monkeypatch.setattr(auth.secrets, "randbelow", lambda n: 0)
    with pytest.raises(AuthError):
        _attempt(db, "nobody@test.example", "guess guess guess", "192.0.2.2", T0)
    with Session(db) as s:
        assert s.get(LoginThrottle, "client:192.0.2.1") is None
        assert s.get(LoginThrottle, "client:192.0.2.2").failures == 1
