""""Log in as": partner staff (or a platform admin) see the app as a customer's Manager.

The resulting actor is the Manager, carrying the staff member as `impersonator_*`; every audit entry made
while impersonating names both. Starting, resuming and ending are audited too.

A reload (a new browser session) keeps "Log in as": the browser holds a short-lived token (RESUME_FOR) naming
the Manager and the customer it was started from, signed with a key derived from the staff member's
remembered-login secret (which only that browser holds; the server stores only its hash). It cannot be
forged or moved to another login, it expires, and resuming re-checks the staff member's right and is audited.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.auth import load_actor
from core.accounts.permissions import authorize
from core.errors import Conflict, NotFound
from db.models import CustomerAccount, User


def impersonation_target(session: Session, actor: Actor, partner_id: int, account_id: int) -> User:
    """The account's Manager that `actor` may log in as (the first active one)."""
    authorize(actor, "impersonate", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or acc.status == "deleted":
        raise NotFound(f"Customer account {account_id} does not exist.")
    if acc.status != "active":
        raise Conflict("The account is suspended: reactivate it before logging in as its Manager.")
    manager = session.scalar(select(User).where(User.partner_id == partner_id, User.account_id == account_id,
                                                User.role == "manager", User.active).order_by(User.id).limit(1))
    if manager is None:
        raise Conflict("This account has no active Manager to log in as: add one first.")
    return manager


def start(session: Session, actor: Actor, partner_id: int, account_id: int) -> Actor:
    """Begin impersonating; returns the impersonated actor (audited under both names)."""
    if actor.impersonator_user_id is not None:
        raise Conflict("You are already logged in as someone else: go back first.")
    manager = impersonation_target(session, actor, partner_id, account_id)
    target = impersonated_actor(session, actor, manager.partner_id, manager.id)
    if target is None:
        raise Conflict("The Manager cannot be impersonated right now.")
    audit.record(session, target, partner_id=partner_id, action="impersonate:start", entity="user",
                 entity_id=manager.id, account_id=account_id)
    return target


def impersonated_actor(session: Session, staff: Actor, partner_id: int, user_id: int) -> Actor | None:
    """Rebuild the impersonated actor on every request; None when no longer allowed (staff lost the right,
    the Manager was deactivated or the account suspended)."""
    target = load_actor(session, partner_id, user_id)
    if target is None or target.account_id is None or target.role != "manager":
        return None  # only a customer account's Manager can be logged in as
    try:
        authorize(staff, "impersonate", target.partner_id, target.account_id)
    except Exception:
        return None
    return replace(target, impersonator_user_id=staff.user_id, impersonator_email=staff.email)


def stop(session: Session, actor: Actor) -> None:
    if actor.impersonator_user_id is None:
        return
    audit.record(session, actor, partner_id=actor.partner_id, action="impersonate:stop", entity="user",
                 entity_id=actor.user_id, account_id=actor.account_id)


RESUME_FOR = timedelta(hours=1)


def _mac(remember_cookie: str, payload: str) -> str:
    key = hashlib.sha256(b"rc-impersonation:" + remember_cookie.encode()).digest()
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def resume_token(remember_cookie: str, target: Actor, came_from: tuple[int, int] | None,
                 *, now: datetime | None = None) -> str:
    """The browser's token for resuming "Log in as" after a reload: `<partner>.<user>.<from partner>.<from
    account>.<expires>.<mac>` (0.0 when not started from a customer), bound to this browser's remembered login."""
    expires = int(((now or clock.now()) + RESUME_FOR).timestamp())
    fp, fa = came_from or (0, 0)
    payload = f"{target.partner_id}.{target.user_id}.{int(fp)}.{int(fa)}.{expires}"
    return f"{payload}.{_mac(remember_cookie, payload)}"


def read_resume_token(remember_cookie: str | None, token: str | None, *, now: datetime | None = None
                      ) -> tuple[int, int, tuple[int, int] | None] | None:
    """(Manager's partner, Manager's user id, came-from customer) of a valid, unexpired token signed for this
    remembered login; None for anything else (tampered, expired, another login's, malformed)."""
    parts = (token or "").split(".")
    if not remember_cookie or len(parts) != 6 or not all(p.isdigit() for p in parts[:5]):
        return None
    payload, mac = ".".join(parts[:5]), parts[5]
    if not hmac.compare_digest(mac, _mac(remember_cookie, payload)):
        return None
    pid, uid, fp, fa, expires = (int(p) for p in parts[:5])
    if expires <= (now or clock.now()).timestamp():
        return None
    return pid, uid, ((fp, fa) if fp and fa else None)


def resume(session: Session, actor: Actor, partner_id: int, user_id: int) -> Actor | None:
    """Resume "Log in as" after a reload (the token was checked by read_resume_token): the staff member
    (`actor`) must still be allowed to; audited. None when no longer allowed."""
    if actor.impersonator_user_id is not None:
        return None
    target = impersonated_actor(session, actor, partner_id, user_id)
    if target is None:
        return None
    authorize(actor, "impersonate", target.partner_id, target.account_id)  # checked again, explicitly
    audit.record(session, target, partner_id=partner_id, action="impersonate:resume", entity="user",
                 entity_id=user_id, account_id=target.account_id, after={"reason": "reload"})
    return target
