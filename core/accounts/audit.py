"""The audit log: every change records who, what, which record, before and after, when."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from db.models import AuditEntry

# Called with (session, the entry's values) for every change recorded, in the same transaction. Wired by
# core.bootstrap (webhook events: account created, statement finalised); importing adds nothing.
on_recorded: list[Callable[[Session, dict[str, Any]], None]] = []


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def record(
    session: Session,
    actor: Actor | None,
    *,
    partner_id: int,
    action: str,
    entity: str,
    entity_id: Any = None,
    account_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    values = dict(
        partner_id=partner_id,
        actor_user_id=actor.user_id if actor else None,
        actor_email=actor.email if actor else "anonymous",
        impersonator_user_id=actor.impersonator_user_id if actor else None,
        impersonator_email=actor.impersonator_email if actor else None,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        account_id=account_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
    )
    session.add(AuditEntry(**values))
    for hook in list(on_recorded):
        hook(session, values)


def changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the fields that changed, as (before, after)."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}


def list_entries(
    session: Session, actor: Actor, *, partner_id: int | None = None, limit: int = 200, offset: int = 0,
    entity: str | None = None, account_id: int | None = None,
) -> list[AuditEntry]:
    """Audit entries visible to the actor: their own tenant for partner staff, any for admins."""
    if partner_id is None and not actor.is_admin:
        partner_id = actor.partner_id
    authorize(actor, "audit.view", partner_id)
    q = select(AuditEntry)
    if partner_id is not None:
        q = q.where(AuditEntry.partner_id == partner_id)
    if entity:
        q = q.where(AuditEntry.entity == entity)
    if account_id is not None:
        q = q.where(AuditEntry.account_id == account_id)
    q = q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(min(limit, 1000)).offset(offset)
    return list(session.scalars(q))
