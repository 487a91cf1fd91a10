""""Log in as": partner staff (or a platform admin) see the app as a customer's Manager.

The resulting actor is the Manager, carrying the staff member as `impersonator_*`; every audit entry made
while impersonating names both. Starting and ending are audited too.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

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
