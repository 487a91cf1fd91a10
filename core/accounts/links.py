"""Links e-mailed to users (confirm a sign-up's address, set a new password) and ending a user's sessions.

A link carries `<partner_id>.<id>.<secret>`; only the secret's SHA-256 is stored, it works once and expires.
The message goes through the outbox (core.notify delivers it after the transaction commits); the kinds that
carry a link are never listed in the app, so only the mailbox's owner sees the link.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import func, select, update
from sqlalchemy import insert as sa_insert
from sqlalchemy.orm import Session

from core import clock
from core.errors import ValidationError
from db.engine import bind_scope, partner_scope
from db.models import Partner, User
from db.models.sessions import LoginSession, UserToken
from db.models.statements import StatementSettings
from db.models.wallet import OutboxMessage

CONFIRM_FOR = timedelta(hours=48)
RESET_FOR = timedelta(hours=2)
LINK_KINDS = ("confirm_email", "password_reset")  # outbox kinds that carry a secret link


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def public_url() -> str:
    """The address users open the app at (links in e-mails): RC_PUBLIC_URL, by default the local one."""
    return os.environ.get("RC_PUBLIC_URL", "http://localhost:8501").rstrip("/")


PLATFORM_NAME = "Reseller Console"


def client_brand(session: Session, partner_id: int) -> tuple[str, str] | None:
    """(name, slug) of the brand a reseller partner's clients see (white label: its statement branding's
    name, else its own), or None for the platform's own (house) partner."""
    partner = session.get(Partner, partner_id)
    if partner is None or partner.is_house:
        return None
    row = session.get(StatementSettings, partner_id)
    return ((row.display_name if row and row.display_name else None) or partner.name), partner.slug


def sender_name(session: Session, partner_id: int, recipient: str | None) -> str:
    """The display name an e-mail comes from: the partner's brand when it goes to a user of one of the
    partner's customer accounts (they never see the platform's name), else the platform's."""
    brand = client_brand(session, partner_id)
    if brand is None or not recipient:
        return PLATFORM_NAME
    user = session.scalar(select(User).where(User.partner_id == partner_id,
                                             func.lower(User.email) == recipient.strip().lower()).limit(1))
    return brand[0] if user is not None and user.account_id is not None else PLATFORM_NAME


def send(session: Session, partner_id: int, recipient: str, kind: str, subject: str, body: str) -> None:
    """Queue an e-mail in the outbox (core.notify delivers it after commit). Written here directly because
    accounts sit below notify; the kinds carrying links are never listed in the app (core.notify)."""
    session.execute(sa_insert(OutboxMessage).values(partner_id=partner_id, kind=kind, subject=subject, body=body,
                                                    recipient=recipient))


def end_sessions(session: Session, user: User, now: datetime) -> None:
    """Every open session of the user ends at its next click, and every remembered login is revoked."""
    user.session_version += 1
    session.execute(update(LoginSession).where(LoginSession.partner_id == user.partner_id,
                                               LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.flush()


def issue_token(session: Session, user: User, purpose: str, *, now: datetime | None = None) -> str:
    """A single-use link token `<partner_id>.<id>.<secret>` for `purpose` ('confirm' or 'reset'); earlier
    unused tokens of the same purpose stop working. Only the secret's SHA-256 is stored."""
    now = now or clock.now()
    session.execute(update(UserToken).where(UserToken.partner_id == user.partner_id, UserToken.user_id == user.id,
                                            UserToken.purpose == purpose, UserToken.used_at.is_(None))
                    .values(used_at=now))
    secret = secrets.token_urlsafe(32)
    row = UserToken(partner_id=user.partner_id, user_id=user.id, purpose=purpose, token_hash=_token_hash(secret),
                    expires_at=now + (CONFIRM_FOR if purpose == "confirm" else RESET_FOR))
    session.add(row)
    session.flush()
    return f"{row.partner_id}.{row.id}.{secret}"


def use_token(session: Session, token: str | None, purpose: str, now: datetime) -> User:
    parts = (token or "").strip().split(".", 2)
    bad = ValidationError("This link is not valid or has expired. Ask for a new one.")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or len(parts[2]) < 20:
        raise bad
    bind_scope(session, partner_scope(int(parts[0])))  # row-level security: the link's tenant
    row = session.get(UserToken, (int(parts[0]), int(parts[1])), with_for_update=True)
    if (row is None or row.purpose != purpose or row.used_at is not None or row.expires_at <= now
            or not hmac.compare_digest(row.token_hash, _token_hash(parts[2]))):
        raise bad
    user = session.get(User, (row.partner_id, row.user_id))
    if user is None:
        raise bad
    row.used_at = now
    return user


def send_reset_link(session: Session, user: User, *, now: datetime | None = None) -> None:
    """E-mail `user` a link to set a new password (valid RESET_FOR), through the outbox."""
    token = issue_token(session, user, "reset", now=now)
    hours = int(RESET_FOR.total_seconds() // 3600)
    # a partner's client gets the partner's brand (name, and its login page through ?brand=), never the platform's
    brand = client_brand(session, user.partner_id) if user.account_id is not None else None
    name, query = (brand[0], f"&brand={quote(brand[1])}") if brand else (PLATFORM_NAME, "")
    send(session, user.partner_id, user.email, "password_reset", f"Set your {name} password",
          f"Hello {user.display_name},\n\nfollow this link to set your password: {public_url()}/?reset={token}{query}\n"
          f"It works once and is valid for {hours} hours. If you did not expect this message, tell your "
          "administrator.")


