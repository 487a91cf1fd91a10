"""Passwords and login: policy, argon2id hashing with rehash, uniform failures, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from core.accounts import auth, passwords
from core.accounts.auth import FREE_FAILURES, LOGIN_FAILED, MAX_DELAY_S, authenticate, change_password, login
from core.errors import AuthError, Throttled, ValidationError
from db.models import User
from tests.factories import PASSWORD


@pytest.mark.parametrize("pw, ok", [
    ("short", False),
    ("elevenchars", False),
    ("twelve chars", True),
    ("x" * 128, False),  # one repeated character
    ("a reasonably long passphrase " * 4, True),  # > 100 chars is fine
    ("y" * 257, False),
    ("password1234", False),  # common word + digits
    ("qwerty123456", False),
    ("123qweasdzxc", False),
    ("1234567890123", False),
    ("correct horse battery staple", True),
    ("Tr0ub4dor&3xyz", True),
])
def test_password_policy(pw, ok):
    assert (passwords.password_problem(pw) is None) == ok


def test_password_based_on_email_is_refused():
    assert passwords.password_problem("mona.manager1", "mona.manager@example.com")


def test_hash_is_argon2id_and_rehashed_when_parameters_change():
    old = passwords.context("fast").hash("some long password")
    assert old.startswith("$argon2id$")
    ok, new = passwords.context("default").verify_and_update("some long password", old)
    assert ok and new and new.startswith("$argon2id$") and "m=19456,t=2,p=1$" in new


def test_default_parameters_are_owasps_and_old_hashes_still_verify():
    """Issue 18: argon2id at OWASP's recommended m=19 MiB, t=2, p=1 (20 logins at once at the previous
    m=64 MiB, t=3, p=4 took 13 s on 2 cores). A hash stored with the previous parameters still verifies, and
    the check asks for a rehash; a wrong password never does."""
    fresh = passwords.context("default").hash("some long password")
    assert "$argon2id$v=19$m=19456,t=2,p=1$" in fresh
    assert passwords.context("default").verify_and_update("some long password", fresh) == (True, None)
    old = passwords.context("previous").hash("some long password")
    assert "$m=65536,t=3,p=4$" in old
    ok, new = passwords.context("default").verify_and_update("some long password", old)
    assert ok and new is not None and "$m=19456,t=2,p=1$" in new
    assert passwords.context("default").verify("some long password", new)
    assert passwords.context("default").verify_and_update("not the password!", old) == (False, None)


def test_login_rehashes_a_previous_parameter_hash_to_owasp_parameters(world, db, monkeypatch):
    """The app's login (default profile) keeps users with a hash from before issue 18 able to log in, and
    stores their hash again with the current parameters; the next login verifies it without a rehash."""
    real = passwords.context
    monkeypatch.setattr(passwords, "context", lambda profile=None: real(profile or "default"))
    with Session(db) as s, s.begin():
        u = s.get(User, (world.a.staff.partner_id, world.a.staff.user_id))
        u.password_hash = real("previous").hash(PASSWORD)
    login(db, "staff-a@test.example", PASSWORD)
    with Session(db) as s:
        stored = s.get(User, (world.a.staff.partner_id, world.a.staff.user_id)).password_hash
    assert "$m=19456,t=2,p=1$" in stored
    login(db, "staff-a@test.example", PASSWORD)
    with Session(db) as s:
        assert s.get(User, (world.a.staff.partner_id, world.a.staff.user_id)).password_hash == stored


def test_login_success_records_time_and_rehashes(world, db):
    with Session(db) as s, s.begin():
        u = s.get(User, (world.a.staff.partner_id, world.a.staff.user_id))
        u.password_hash = passwords.context("default").hash(PASSWORD)  # stronger than the test profile
    actor = login(db, "  STAFF-A@test.example ", PASSWORD)
    assert actor.user_id == world.a.staff.user_id
    with Session(db) as s:
        u = s.get(User, (actor.partner_id, actor.user_id))
        assert u.last_login_at is not None
        assert "m=1024" in u.password_hash  # rehashed to the current parameters


def _argon2_work(monkeypatch) -> list[str]:
    """Every argon2 computation (hash or verify) from now on, by name: the work a login spends."""
    import argon2.low_level as argon2_ll

    calls: list[str] = []
    for name in ("hash_secret", "verify_secret"):
        real = getattr(argon2_ll, name)
        monkeypatch.setattr(argon2_ll, name, lambda *a, _real=real, _name=name, **kw: calls.append(_name) or
                            _real(*a, **kw))
    return calls


def test_unknown_email_and_wrong_password_look_the_same(world, db, monkeypatch):
    """Same message and the same work: an unknown e-mail still spends one full argon2 verification, exactly
    as a wrong password does. Fails if the dummy verification is skipped (checked at the end)."""
    passwords._dummy_hash()  # computed once per process, not per login
    calls = _argon2_work(monkeypatch)
    with pytest.raises(AuthError) as e1:
        login(db, "nobody@test.example", PASSWORD)
    unknown, calls[:] = list(calls), []
    with pytest.raises(AuthError) as e2:
        login(db, "staff-a@test.example", "wrong password here")
    assert str(e1.value) == str(e2.value) == LOGIN_FAILED
    assert unknown == calls == ["verify_secret"]
    # the check can fail: without the dummy verification an unknown e-mail costs no argon2 work at all
    calls.clear()
    monkeypatch.setattr(auth, "burn_verify", lambda password: None)
    with pytest.raises(AuthError):
        login(db, "nobody@test.example", PASSWORD)
    assert calls == []


def test_throttling_after_repeated_failures_and_cap(world, db):
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    for i in range(FREE_FAILURES):
        with Session(db) as s:
            with pytest.raises(AuthError):
                authenticate(s, "staff-a@test.example", "wrong wrong wrong", now=now + timedelta(seconds=i))
            s.commit()
    # now locked: even the right password is refused until the delay passes
    with Session(db) as s, pytest.raises(Throttled) as exc:
        authenticate(s, "staff-a@test.example", PASSWORD, now=now + timedelta(seconds=10))
    assert 0 < exc.value.retry_after_s <= MAX_DELAY_S
    with Session(db) as s:
        actor = authenticate(s, "staff-a@test.example", PASSWORD, now=now + timedelta(seconds=MAX_DELAY_S + 10))
        s.commit()
    assert actor.email == "staff-a@test.example"


def test_lockout_never_exceeds_cap(world, db):
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    t = now
    for _ in range(FREE_FAILURES + 12):
        with Session(db) as s:
            try:
                authenticate(s, "victim@test.example", "guess guess guess", now=t)
            except Throttled as exc:
                assert exc.retry_after_s <= MAX_DELAY_S + 1
                t += timedelta(seconds=exc.retry_after_s)
            except AuthError:
                pass
            s.commit()
        t += timedelta(seconds=1)
    assert t - now < timedelta(hours=2)


def test_deactivated_user_cannot_log_in(world, db):
    from core.accounts import accounts

    with Session(db) as s, s.begin():
        accounts.set_user_active(s, world.a.staff, world.a.partner_id, world.a.users["annotator"].user_id, False)
    with pytest.raises(AuthError, match="deactivated"):
        login(db, "annotator-a@test.example", PASSWORD)


def test_change_password_rules(world, session):
    actor = world.a.users["user"]
    with pytest.raises(ValidationError) as exc:
        change_password(session, actor, current="wrong", new="short")
    assert set(exc.value.errors) == {"current", "new"}
    with pytest.raises(ValidationError):
        change_password(session, actor, current=PASSWORD, new=PASSWORD)
    assert change_password(session, actor, current=PASSWORD, new="a brand new passphrase")
