"""API keys: a partner's machines act through the HTTP API (issue 17) with a key instead of a password.

A key is ``rck_<partner_id>_<key id>_<secret>``; the secret has 256 random bits and only its SHA-256 is
stored, so the key is shown once, when it is created (or rotated). Each key has a name and scopes; a
request made with it acts as the partner's staff, limited to the actions its scopes allow
(:func:`actor_for_key`): the core services check permissions exactly as they do for a person.

Creating, rotating and revoking a key is audited; every use updates "last used".
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import AuthError, Conflict, NotFound, ValidationError
from db.engine import bind_scope, partner_scope
from db.models import Partner
from db.models.integration import ApiKey

PREFIX = "rck"
# scope -> the actions it allows (the role, partner staff, must allow them too)
SCOPES: dict[str, tuple[str, ...]] = {
    "usage:write": ("usage.import",),
    "usage:read": ("usage.view", "account.list", "account.view"),
    "accounts:write": ("account.create", "account.list", "account.view", "account.suspend", "user.create",
                       "user.list"),
    "statements:read": ("statement.view",),
}
SCOPE_LABELS = {
    "usage:write": "Record usage events",
    "usage:read": "Read usage summaries",
    "accounts:write": "Create customer accounts, add users, suspend accounts",
    "statements:read": "List and download statements",
}
MAX_NAME = 100
MAX_KEYS = 50  # live keys per partner
_TOKEN = re.compile(rf"{PREFIX}_(\d{{1,18}})_(\d{{1,18}})_([A-Za-z0-9_-]{{20,100}})")


@dataclass(frozen=True)
class NewKey:
    """A key just created: `token` is the only time the full key exists outside the client."""

    key: ApiKey
    token: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _snapshot(k: ApiKey) -> dict[str, Any]:
    return {"name": k.name, "hint": k.hint, "scopes": list(k.scopes), "rotated_from": k.rotated_from}


def check_scopes(scopes: Any) -> list[str]:
    if isinstance(scopes, str):
        scopes = [s for s in re.split(r"[\s,]+", scopes) if s]
    if not isinstance(scopes, list | tuple | set | frozenset) or not scopes:
        raise ValidationError({"scopes": "Choose at least one scope."})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}."})
    return [s for s in SCOPES if s in set(scopes)]  # canonical order, no repeats


def _check_name(name: Any) -> str:
    value = " ".join(str(name or "").split())
    if not value:
        raise ValidationError({"name": "Give the key a name (what uses it)."})
    if len(value) > MAX_NAME:
        raise ValidationError({"name": f"At most {MAX_NAME} characters."})
    return value


def create_key(session: Session, actor: Actor, partner_id: int, *, name: str, scopes: Any,
               rotated_from: int | None = None) -> NewKey:
    """Create a key; the returned token is shown once and never stored."""
    authorize(actor, "apikey.manage", partner_id)
    name_v, scopes_v = _check_name(name), check_scopes(scopes)
    live = session.scalar(select(func.count()).select_from(ApiKey).where(
        ApiKey.partner_id == partner_id, ApiKey.revoked_at.is_(None)))
    if (live or 0) >= MAX_KEYS:
        raise Conflict(f"A partner has at most {MAX_KEYS} live keys; revoke one first.")
    secret = secrets.token_urlsafe(32)
    key = ApiKey(partner_id=partner_id, name=name_v, hint="", secret_hash=_hash(secret), scopes=scopes_v,
                 created_by=actor.user_id or None, rotated_from=rotated_from)
    session.add(key)
    session.flush()
    key.hint = f"{PREFIX}_{partner_id}_{key.id}_{secret[:4]}…"
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="rotate" if rotated_from else "create",
                 entity="api_key", entity_id=key.id, after=_snapshot(key))
    return NewKey(key, f"{PREFIX}_{partner_id}_{key.id}_{secret}")


def list_keys(session: Session, actor: Actor, partner_id: int, *, include_revoked: bool = True) -> list[ApiKey]:
    authorize(actor, "apikey.manage", partner_id)
    q = select(ApiKey).where(ApiKey.partner_id == partner_id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    return list(session.scalars(q.order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())))


def _live_key(session: Session, partner_id: int, key_id: int) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.partner_id == partner_id, ApiKey.id == key_id)
                         .with_for_update())
    if key is None:
        raise NotFound(f"API key {key_id} does not exist.")
    if key.revoked_at is not None:
        raise Conflict(f"API key {key.name!r} is already revoked.")
    return key


def revoke_key(session: Session, actor: Actor, partner_id: int, key_id: int) -> ApiKey:
    """Revoke a key: its next request is refused."""
    authorize(actor, "apikey.manage", partner_id)
    key = _live_key(session, partner_id, key_id)
    key.revoked_at, key.revoked_by = func.now(), actor.user_id or None
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="revoke", entity="api_key", entity_id=key.id,
                 before={"revoked": False}, after={"revoked": True, "name": key.name})
    return key


def rotate_key(session: Session, actor: Actor, partner_id: int, key_id: int) -> NewKey:
    """Replace a key by a new one with the same name and scopes; the old one is revoked at once."""
    authorize(actor, "apikey.manage", partner_id)
    old = _live_key(session, partner_id, key_id)
    revoke_key(session, actor, partner_id, key_id)
    return create_key(session, actor, partner_id, name=old.name, scopes=list(old.scopes), rotated_from=old.id)


def actions_for(scopes: list[str]) -> frozenset[str]:
    return frozenset(a for s in scopes for a in SCOPES.get(s, ()))


def authenticate(session: Session, token: str | None, *, now: datetime | None = None) -> Actor:
    """The actor a request with this key acts as (and "last used" is updated). Raises AuthError for a
    missing, malformed, unknown or revoked key, or a deactivated partner (one message for all)."""
    m = _TOKEN.fullmatch((token or "").strip())
    if not m:
        raise AuthError("A valid API key is required (Authorization: Bearer rck_...).")
    partner_id, key_id, secret = int(m.group(1)), int(m.group(2)), m.group(3)
    bind_scope(session, partner_scope(partner_id))  # row-level security: the key's tenant
    row = session.execute(
        update(ApiKey).where(ApiKey.partner_id == partner_id, ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(last_used_at=now or func.now())
        .returning(ApiKey.secret_hash, ApiKey.name, ApiKey.scopes, ApiKey.created_by)).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
        raise AuthError("This API key is not valid (unknown or revoked).")
    partner = session.get(Partner, partner_id)
    if partner is None or not partner.active:
        raise AuthError("This API key is not valid (unknown or revoked).")
    return actor_for_key(partner, key_id, row.name, list(row.scopes), row.created_by)


def actor_for_key(partner: Partner, key_id: int, name: str, scopes: list[str], created_by: int | None) -> Actor:
    """Partner staff limited to the key's scopes; the audit log names the key."""
    return Actor(user_id=created_by or 0, partner_id=partner.id, role="partner_staff",
                 email=f"api-key:{key_id}", display_name=f"API key {name}", partner_name=partner.name,
                 limited_to=actions_for(scopes), api_key_id=key_id)
