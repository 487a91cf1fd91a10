"""Sign-up (confirmed by an e-mailed link), login (throttled per client address, audited), loading the acting
user on every request, password changes and reset links, log-out (here or everywhere)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit, links
from core.accounts.accounts import (
    account_snapshot,
    check_account_fields,
    check_new_user,
    house_partner,
    insert_user,
)
from core.accounts.actor import Actor
from core.accounts.passwords import burn_verify, hash_password, password_problem, verify_and_update
from core.errors import AuthError, PermissionDenied, Throttled, ValidationError
from core.validation import normalise_email
from db.engine import bind_scope, partner_scope, platform_scope
from db.models import CustomerAccount, LoginDirectory, LoginThrottle, Partner, User
from db.models.sessions import LoginSession

# Throttling (password guessing), counted per client address, so that nobody can lock another person out:
# - per (e-mail address, client address): after FREE_FAILURES failures, each further attempt from that
#   client must wait BASE_DELAY_S x 2^(extra failures), capped at MAX_DELAY_S. The owner logging in from
#   another address is never stopped by someone else's failures.
# - per client address, across all e-mail addresses: CLIENT_MAX_FAILURES failures lock that address out
#   for CLIENT_LOCK (guessing many accounts from one place).
# Failures are forgotten FORGET_AFTER after the last one. The client address comes from the page
# (Streamlit's st.context.ip_address, or the trusted reverse proxy's X-Forwarded-For: docs/deployment.md).
FREE_FAILURES = 5
BASE_DELAY_S = 15
MAX_DELAY_S = 300
FORGET_AFTER = timedelta(minutes=15)
CLIENT_MAX_FAILURES = 50
CLIENT_LOCK = timedelta(minutes=15)

LOGIN_FAILED = "E-mail or password is not correct."
NOT_CONFIRMED = "Confirm your e-mail address first: follow the link in the message we sent you."
SIGNUP_SENT = ("Thank you. We sent a message to {email}: follow its link to confirm your address, then log in. "
               "The link is valid for {hours} hours.")



def _account_key(email_norm: str, client: str) -> str:
    return f"account:{email_norm}|{client}"[:400]


def _client_key(client: str) -> str:
    return f"client:{client}"[:400]


def _client(client: str | None) -> str:
    return (client or "local").strip()[:64] or "local"


def signup(session: Session, *, email: str, display_name: str, password: str, org_name: str,
           country: str, currency: str, now: datetime | None = None, **account_fields) -> str:
    """Sign up: a customer account (under the platform's house partner) and its Manager, who can log in
    once they follow the confirmation link sent to the address. Returns the message to show.

    The answer is the same whether the address is already registered or not (no e-mail enumeration):
    for a registered address nothing is created and its owner is told by e-mail instead. Bad input
    (password, organisation) raises ValidationError before anything is written.
    """
    now = now or clock.now()
    bind_scope(session, platform_scope("sign-up (e-mail directory, house partner)", quiet=True))
    errors: dict[str, str] = {}
    try:
        fields = check_account_fields({"name": org_name, "country": country, "currency": currency, **account_fields})
    except ValidationError as exc:
        errors.update({("org_name" if k == "name" else k): v for k, v in exc.errors.items()})
        fields = {}
    try:
        email_v, name_v = check_new_user(session, email, display_name, password, check_taken=False)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    answer = SIGNUP_SENT.format(email=email_v, hours=int(links.CONFIRM_FOR.total_seconds() // 3600))
    existing = session.get(LoginDirectory, normalise_email(email_v))
    if existing is not None:
        hash_password(password)  # the same work as a real sign-up: the timing tells nothing either
        links.send(session, existing.partner_id, email_v, "signup_existing", "Someone tried to sign up with your address",
              "Someone (perhaps you) tried to create a new account with this e-mail address, which already has "
              f"an account. To use it, log in at {links.public_url()}; if you forgot your password, ask your "
              "administrator to send you a reset link. If it was not you, you can ignore this message.")
        return answer
    house = house_partner(session)
    fields.setdefault("contact_email", email_v)
    fields.setdefault("contact_name", name_v)
    acc = CustomerAccount(partner_id=house.id, **fields)
    session.add(acc)
    session.flush()
    user = insert_user(session, partner_id=house.id, account_id=acc.id, email=email_v, display_name=name_v,
                        role="manager", password=password, created_by=None)
    user.email_confirmed = False
    acc.created_by = user.id
    actor = Actor(user_id=user.id, partner_id=house.id, role="manager", email=email_v, display_name=name_v,
                  account_id=acc.id)
    audit.record(session, actor, partner_id=house.id, action="signup", entity="customer_account", entity_id=acc.id,
                 account_id=acc.id, after={**account_snapshot(acc), "manager": email_v})
    token = links.issue_token(session, user, "confirm", now=now)
    links.send(session, house.id, email_v, "confirm_email", "Confirm your e-mail address",
          f"Welcome to Reseller Console. Confirm your address to activate your account: {links.public_url()}/?confirm={token}\n"
          f"The link is valid for {int(links.CONFIRM_FOR.total_seconds() // 3600)} hours. If you did not sign up, ignore "
          "this message.")
    return answer


def _throttle_row(session: Session, key: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
                          .execution_options(populate_existing=True))


def _bump(session: Session, key: str, now: datetime) -> LoginThrottle:
    stmt = insert(LoginThrottle).values(key=key, failures=1, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
    )
    session.execute(stmt)
    row = _throttle_row(session, key)
    assert row is not None
    return row


def _record_failure(session: Session, email_norm: str, client: str, now: datetime) -> None:
    if email_norm:
        row = _bump(session, _account_key(email_norm, client), now)
        extra = row.failures - FREE_FAILURES
        if extra >= 0:
            row.locked_until = now + timedelta(seconds=min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(extra, 10)))
    row = _bump(session, _client_key(client), now)
    if row.failures >= CLIENT_MAX_FAILURES:
        row.locked_until = now + CLIENT_LOCK
    if secrets.randbelow(100) == 0:  # now and then, forget counters nobody has touched for a day
        session.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < now - timedelta(days=1),
                                                    (LoginThrottle.locked_until.is_(None))
                                                    | (LoginThrottle.locked_until < now)))


def _check_throttle(session: Session, key: str, now: datetime) -> LoginThrottle | None:
    row = _throttle_row(session, key)
    if row is None:
        return None
    if row.last_failure_at and now - row.last_failure_at > FORGET_AFTER and not (
            row.locked_until and row.locked_until > now):
        row.failures, row.locked_until = 0, None
    elif row.locked_until and row.locked_until > now:
        raise Throttled(int((row.locked_until - now).total_seconds()) + 1)
    return row


def authenticate(session: Session, email: str, password: str, *, client: str | None = None,
                 now: datetime | None = None) -> Actor:
    """Check e-mail and password from one client address. Raises AuthError (same message for unknown
    e-mail and wrong password) or Throttled. On success records the login (audited), rehashes an outdated
    hash, and returns the actor.

    The caller commits even when this raises AuthError, so the failure counters are kept: use
    `login()` which does that.
    """
    now = now or clock.now()
    client = _client(client)
    email_norm = normalise_email(email or "")[:320]
    _check_throttle(session, _client_key(client), now)
    row = _check_throttle(session, _account_key(email_norm, client), now) if email_norm else None
    bind_scope(session, platform_scope("log in: e-mail directory", quiet=True))  # row-level security
    entry = session.get(LoginDirectory, email_norm) if email_norm else None
    if entry is not None:
        bind_scope(session, partner_scope(entry.partner_id))
    user = session.get(User, (entry.partner_id, entry.user_id)) if entry else None
    if user is None:
        burn_verify(password or "")
        _record_failure(session, email_norm, client, now)
        raise AuthError(LOGIN_FAILED)
    ok, new_hash = verify_and_update(password or "", user.password_hash)
    if not ok:
        _record_failure(session, email_norm, client, now)
        audit.record(session, None, partner_id=user.partner_id, action="login:failed", entity="user",
                     entity_id=user.id, account_id=user.account_id, after={"client": client})
        raise AuthError(LOGIN_FAILED)
    if row is not None:
        row.failures, row.locked_until = 0, None
    if not user.email_confirmed:
        raise AuthError(NOT_CONFIRMED)
    actor = _actor_for(session, user)  # raises for inactive user / suspended account
    if new_hash:
        user.password_hash = new_hash
    user.last_login_at = now
    audit.record(session, actor, partner_id=user.partner_id, action="login", entity="user", entity_id=user.id,
                 account_id=user.account_id, after={"client": client})
    return actor


def _actor_for(session: Session, user: User) -> Actor:
    if not user.active:
        raise AuthError("This user has been deactivated. Ask your administrator.")
    partner = session.get(Partner, user.partner_id)
    if partner is None or not partner.active:
        raise AuthError("This partner's access is disabled.")
    account_name = None
    if user.account_id is not None:
        acc = session.get(CustomerAccount, (user.partner_id, user.account_id))
        if acc is None or acc.status != "active":
            raise AuthError(f"The customer account is {acc.status if acc else 'missing'}; access is disabled.")
        account_name = acc.name
    return Actor(user_id=user.id, partner_id=user.partner_id, role=user.role, email=user.email,
                 display_name=user.display_name, account_id=user.account_id, partner_name=partner.name,
                 account_name=account_name, must_change_password=user.must_change_password,
                 session_version=user.session_version)


def load_actor(session: Session, partner_id: int, user_id: int, session_version: int | None = None) -> Actor | None:
    """The actor for a logged-in session, re-read on every click: None once the user is deactivated,
    their account suspended, or their password reset (session_version changed)."""
    user = session.get(User, (partner_id, user_id))
    if user is None:
        return None
    if session_version is not None and user.session_version != session_version:
        return None
    try:
        return _actor_for(session, user)
    except AuthError:
        return None


def change_password(session: Session, actor: Actor, *, current: str, new: str,
                    now: datetime | None = None) -> Actor:
    """Change one's own password. Every other session and remembered login of the user ends; returns the
    actor for the session that made the change (the page keeps it logged in with the new session version)."""
    now = now or clock.now()
    if actor.impersonator_user_id is not None:
        raise PermissionDenied("You cannot change the password of a user you are logged in as.")
    user = session.get(User, (actor.partner_id, actor.user_id))
    if user is None:
        raise PermissionDenied("Unknown user.")
    ok, _ = verify_and_update(current or "", user.password_hash)
    errors: dict[str, str] = {}
    if not ok:
        errors["current"] = "The current password is not correct."
    problem = password_problem(new or "", user.email)
    if problem:
        errors["new"] = problem
    elif new == current:
        errors["new"] = "Choose a password different from the current one."
    if errors:
        raise ValidationError(errors)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    links.end_sessions(session, user, now)
    audit.record(session, actor, partner_id=user.partner_id, action="change_password", entity="user",
                 entity_id=user.id, account_id=user.account_id)
    fresh = load_actor(session, user.partner_id, user.id)
    assert fresh is not None
    return fresh


def log_out_everywhere(session: Session, actor: Actor, *, now: datetime | None = None) -> bool:
    """End every session and remembered login of the acting user, on every device (this one too)."""
    now = now or clock.now()
    if actor.impersonator_user_id is not None:
        raise PermissionDenied("Go back to your own account first.")
    user = session.get(User, (actor.partner_id, actor.user_id))
    if user is None:
        raise PermissionDenied("Unknown user.")
    links.end_sessions(session, user, now)
    audit.record(session, actor, partner_id=user.partner_id, action="logout:everywhere", entity="user",
                 entity_id=user.id, account_id=user.account_id)
    return True


def logout(session: Session, actor: Actor | None, cookie: str | None = None, *, now: datetime | None = None) -> None:
    """Log-out of this session: its remembered login (cookie) is revoked; audited (with the end of a
    "log in as" when one was running)."""
    forget(session, cookie, now=now)
    if actor is None:
        return
    if actor.impersonator_user_id is not None:
        audit.record(session, actor, partner_id=actor.partner_id, action="impersonate:stop", entity="user",
                     entity_id=actor.user_id, account_id=actor.account_id, after={"reason": "log out"})
    audit.record(session, actor, partner_id=actor.partner_id, action="logout", entity="user",
                 entity_id=actor.user_id, account_id=actor.account_id)


def login(engine, email: str, password: str, *, client: str | None = None) -> Actor:
    """One login attempt in its own transaction. A failed attempt is still committed (it counts
    towards throttling and is audited); a successful one records the login time and any rehash."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            actor = authenticate(session, email, password, client=client)
        except AuthError:
            session.commit()
            raise
        session.commit()
        return actor


# ---------------------------------------------------------------- links e-mailed to users


def confirm_email(session: Session, token: str | None, *, now: datetime | None = None) -> str:
    """Follow a sign-up's confirmation link: the account may log in from now on. Returns the message."""
    now = now or clock.now()
    user = links.use_token(session, token, "confirm", now)
    user.email_confirmed = True
    audit.record(session, None, partner_id=user.partner_id, action="confirm_email", entity="user",
                 entity_id=user.id, account_id=user.account_id)
    return "Your e-mail address is confirmed. You can log in now."


def reset_with_token(session: Session, token: str | None, new: str, *, now: datetime | None = None) -> str:
    """Set a new password from a reset link. Every session of the user ends. Returns the message."""
    now = now or clock.now()
    user = links.use_token(session, token, "reset", now)
    problem = password_problem(new or "", user.email)
    if problem:
        raise ValidationError({"new": problem})
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.email_confirmed = True  # the link reached the mailbox
    links.end_sessions(session, user, now)
    audit.record(session, None, partner_id=user.partner_id, action="reset_password:done", entity="user",
                 entity_id=user.id, account_id=user.account_id)
    return "Your new password is set. You can log in now."


# ---------------------------------------------------------------- "Keep me logged in"

REMEMBER_FOR = timedelta(days=14)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def remember(session: Session, actor: Actor, *, now: datetime | None = None) -> str:
    """Start a remembered login for `actor`; returns the cookie value `<partner_id>.<id>.<secret>`.
    Only the secret's SHA-256 is stored."""
    now = now or clock.now()
    secret = secrets.token_urlsafe(32)
    row = LoginSession(partner_id=actor.partner_id, user_id=actor.user_id, token_hash=_token_hash(secret),
                       session_version=actor.session_version, expires_at=now + REMEMBER_FOR)
    session.add(row)
    session.flush()
    return f"{row.partner_id}.{row.id}.{secret}"


def _remembered(session: Session, cookie: str | None) -> tuple[LoginSession, str] | None:
    parts = (cookie or "").split(".", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[2]) < 20:
        return None
    bind_scope(session, partner_scope(int(parts[0])))  # row-level security: the cookie's tenant
    row = session.get(LoginSession, (int(parts[0]), int(parts[1])), with_for_update=True)
    if row is None or not hmac.compare_digest(row.token_hash, _token_hash(parts[2])):
        return None
    return row, parts[2]


def resume(session: Session, cookie: str | None, *, now: datetime | None = None) -> Actor | None:
    """The actor of a remembered login, or None when the cookie is unknown, tampered with, expired,
    logged out, or the user's access changed since (deactivated, suspended, password reset)."""
    now = now or clock.now()
    found = _remembered(session, cookie)
    if found is None:
        return None
    row, _ = found
    if row.revoked_at is not None or row.expires_at <= now:
        return None
    actor = load_actor(session, row.partner_id, row.user_id, row.session_version)
    if actor is None:
        row.revoked_at = now
        return None
    row.last_used_at = now
    return actor


def forget(session: Session, cookie: str | None, *, now: datetime | None = None) -> None:
    """Log-out: the remembered login in this cookie can never be used again."""
    found = _remembered(session, cookie)
    if found is not None and found[0].revoked_at is None:
        found[0].revoked_at = now or clock.now()
