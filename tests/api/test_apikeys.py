"""API keys in core: shown once and stored hashed, scopes limit the actor in every core service, audit."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from core.accounts import accounts, apikeys
from core.accounts.permissions import allowed
from core.errors import AuthError, Conflict, PermissionDenied, ValidationError
from core.usage.ingest import record_events
from db.models import AuditEntry


def test_key_is_hashed_scoped_and_authenticates_as_limited_staff(world, db):
    a = world.a
    with Session(db, expire_on_commit=False) as s, s.begin():
        new = apikeys.create_key(s, a.staff, a.partner_id, name="  ERP  export ", scopes="usage:write, usage:read")
    secret = new.token.split("_", 3)[3]
    assert len(secret) >= 43  # 256 bits
    with db.connect() as c:
        row = c.execute(text("SELECT name, secret_hash, scopes, hint FROM api_keys")).one()
    assert row.name == "ERP export" and row.scopes == ["usage:write", "usage:read"]
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in row.hint
    with Session(db) as s, s.begin():
        actor = apikeys.authenticate(s, new.token)
    assert (actor.partner_id, actor.role, actor.api_key_id) == (a.partner_id, "partner_staff", new.key.id)
    assert allowed(actor, "usage.import", a.partner_id) and allowed(actor, "usage.view", a.partner_id)
    assert not allowed(actor, "account.create", a.partner_id)
    assert not allowed(actor, "usage.import", world.b.partner_id)  # its partner only
    with Session(db) as s, s.begin():  # the core itself refuses what the scopes do not allow
        with pytest.raises(PermissionDenied):
            accounts.create_account(s, actor, name="Nope", country="NO")
        with pytest.raises(PermissionDenied):
            apikeys.create_key(s, actor, a.partner_id, name="escalate", scopes=["accounts:write"])
        record_events(s, actor, a.partner_id, [{"account_id": a.account_id, "metric": "documents", "quantity": 1,
                                                "occurred_at": "2026-01-05T10:00:00Z", "event_id": "k1"}])


@pytest.mark.parametrize("token", [None, "", "rck_1_2", "Bearer x", "rck_x_1_" + "a" * 43, "rck_1_1_short"])
def test_malformed_tokens_are_refused(db, token):
    with Session(db) as s, pytest.raises(AuthError):
        apikeys.authenticate(s, token)


def test_rules_and_audit(world, db):
    a = world.a
    with Session(db, expire_on_commit=False) as s, s.begin():
        with pytest.raises(ValidationError) as e:
            apikeys.create_key(s, a.staff, a.partner_id, name=" ", scopes=["usage:write"])
        assert "name" in e.value.errors
        with pytest.raises(ValidationError) as e:
            apikeys.create_key(s, a.staff, a.partner_id, name="x", scopes=["usage:admin"])
        assert "scopes" in e.value.errors
        with pytest.raises(PermissionDenied):
            apikeys.create_key(s, a.users["manager"], a.partner_id, name="x", scopes=["usage:write"])
        with pytest.raises(PermissionDenied):
            apikeys.list_keys(s, a.staff, world.b.partner_id)
        k = apikeys.create_key(s, a.staff, a.partner_id, name="x", scopes=["usage:write"]).key
        rotated = apikeys.rotate_key(s, a.staff, a.partner_id, k.id)
        with pytest.raises(Conflict):
            apikeys.revoke_key(s, a.staff, a.partner_id, k.id)
        assert rotated.key.rotated_from == k.id and rotated.key.scopes == ["usage:write"]
    with Session(db) as s:
        rows = s.execute(select(AuditEntry.action, AuditEntry.entity_id, AuditEntry.after)
                         .where(AuditEntry.entity == "api_key").order_by(AuditEntry.id)).all()
    assert [(r.action, r.entity_id) for r in rows] == [("create", str(k.id)), ("revoke", str(k.id)),
                                                       ("rotate", str(rotated.key.id))]
    assert all("secret" not in str(r.after) and rotated.token not in str(r.after) for r in rows)


def test_a_key_of_a_deactivated_partner_stops_working(world, db):
    a = world.a
    with Session(db) as s, s.begin():
        token = apikeys.create_key(s, a.staff, a.partner_id, name="x", scopes=["usage:write"]).token
    with db.begin() as c:
        c.execute(text("UPDATE partners SET active = false WHERE id = :p"), {"p": a.partner_id})
    with Session(db) as s, pytest.raises(AuthError):
        apikeys.authenticate(s, token)
