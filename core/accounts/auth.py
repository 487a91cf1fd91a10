"""Sign-up, login (with throttling), loading the acting user on every request, and password changes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.accounts import audit
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
from db.models import CustomerAccount, LoginDirectory, LoginThrottle, Partner, User
from db.models.sessions import LoginSession

# Throttling: after FREE_FAILURES failed logins for one e-mail address, each further attempt must wait
# BASE_DELAY_S × 2^(extra failures), capped at MAX_DELAY_S; failures are forgotten after FORGET_AFTER.
# The cap keeps anyone from locking another person out for long.
FREE_FAILURES = 5
BASE_DELAY_S = 15
MAX_DELAY_S = 300
FORGET_AFTER = timedelta(minutes=15)

LOGIN_FAILED = "E-mail or password is not correct."


def signup(session: Session, *, email: str, display_name: str, password: str, org_name: str,
           country: str, currency: str, **account_fields) -> tuple[User, CustomerAccount]:
    """Create a user and their customer account (under the platform's house partner) in one step.

    The new user is the account's Manager. All or nothing: any problem raises before anything is written.
    """
    errors: dict[str, str] = {}
    try:
        fields = check_account_fields({"name": org_name, "country": country, "currency": currency, **account_fields})
    except ValidationError as exc:
        errors.update({("org_name" if k == "name" else k): v for k, v in exc.errors.items()})
        fields = {}
    try:
        email_v, name_v = check_new_user(session, email, display_name, password)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    house = house_partner(session)
    fields.setdefault("contact_email", email_v)
    fields.setdefault("contact_name", name_v)
    acc = CustomerAccount(partner_id=house.id, **fields)
    session.add(acc)
    session.flush()
    user = insert_user(session, partner_id=house.id, account_id=acc.id, email=email_v, display_name=name_v,
                        role="manager", password=password, created_by=None)
    acc.created_by = user.id
    actor = Actor(user_id=user.id, partner_id=house.id, role="manager", email=email_v, display_name=name_v,
                  account_id=acc.id)
    audit.record(session, actor, partner_id=house.id, action="signup", entity="customer_account", entity_id=acc.id,
                 account_id=acc.id, after={**account_snapshot(acc), "manager": email_v})
    return user, acc


def _throttle_row(session: Session, email_norm: str) -> LoginThrottle | None:
    return session.scalar(select(LoginThrottle).where(LoginThrottle.email_norm == email_norm).with_for_update()
                          .execution_options(populate_existing=True))


def _record_failure(session: Session, email_norm: str, now: datetime) -> None:
    stmt = insert(LoginThrottle).values(email_norm=email_norm, failures=1, last_failure_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginThrottle.email_norm],
        set_={"failures": LoginThrottle.failures + 1, "last_failure_at": now},
    )
    session.execute(stmt)
    row = _throttle_row(session, email_norm)
    assert row is not None
    extra = row.failures - FREE_FAILURES
    if extra >= 0:
        row.locked_until = now + timedelta(seconds=min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(extra, 10)))


def authenticate(session: Session, email: str, password: str, *, now: datetime | None = None) -> Actor:
    """Check e-mail and password. Raises AuthError (same message for unknown e-mail and wrong password)
    or Throttled. On success records the login, rehashes an outdated hash, and returns the actor.

    The caller commits even when this raises AuthError, so the failure counter is kept: use
    `login()` which does that.
    """
    now = now or datetime.now(UTC)
    email_norm = normalise_email(email or "")[:320]
    row = _throttle_row(session, email_norm) if email_norm else None
    if row is not None:
        if row.last_failure_at and now - row.last_failure_at > FORGET_AFTER:
            row.failures, row.locked_until = 0, None
        elif row.locked_until and row.locked_until > now:
            raise Throttled(int((row.locked_until - now).total_seconds()) + 1)
    entry = session.get(LoginDirectory, email_norm) if email_norm else None
    user = session.get(User, (entry.partner_id, entry.user_id)) if entry else None
    if user is None:
        burn_verify(password or "")
        if email_norm:
            _record_failure(session, email_norm, now)
        raise AuthError(LOGIN_FAILED)
    ok, new_hash = verify_and_update(password or "", user.password_hash)
    if not ok:
        _record_failure(session, email_norm, now)
        raise AuthError(LOGIN_FAILED)
    if row is not None:
        row.failures, row.locked_until = 0, None
    actor = _actor_for(session, user)  # raises for inactive user / suspended account
    if new_hash:
        user.password_hash = new_hash
    user.last_login_at = now
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


def change_password(session: Session, actor: Actor, *, current: str, new: str) -> bool:
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
    session.flush()
    audit.record(session, actor, partner_id=user.partner_id, action="change_password", entity="user",
                 entity_id=user.id, account_id=user.account_id)
    return True


def login(engine, email: str, password: str) -> Actor:
    """One login attempt in its own transaction. A failed attempt is still committed (it counts
    towards throttling); a successful one records the login time and any rehash."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            actor = authenticate(session, email, password)
        except AuthError:
            session.commit()
            raise
        session.commit()
        return actor


# ---------------------------------------------------------------- "Keep me logged in"

REMEMBER_FOR = timedelta(days=14)


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def remember(session: Session, actor: Actor, *, now: datetime | None = None) -> str:
    """Start a remembered login for `actor`; returns the cookie value `<partner_id>.<id>.<secret>`.
    Only the secret's SHA-256 is stored."""
    now = now or datetime.now(UTC)
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
    row = session.get(LoginSession, (int(parts[0]), int(parts[1])), with_for_update=True)
    if row is None or not hmac.compare_digest(row.token_hash, _token_hash(parts[2])):
        return None
    return row, parts[2]


def resume(session: Session, cookie: str | None, *, now: datetime | None = None) -> Actor | None:
    """The actor of a remembered login, or None when the cookie is unknown, tampered with, expired,
    logged out, or the user's access changed since (deactivated, suspended, password reset)."""
    now = now or datetime.now(UTC)
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
        found[0].revoked_at = now or datetime.now(UTC)
