"""Test data built through the core services: two partners (tenants), each with staff and a customer
account holding one user per customer role, plus a platform admin."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM, Actor
from core.accounts.auth import load_actor

PASSWORD = "correct-horse-battery-staple"


@dataclass
class Tenant:
    partner_id: int
    account_id: int
    other_account_id: int
    staff: Actor
    users: dict[str, Actor] = field(default_factory=dict)  # role -> actor in account_id


@dataclass
class World:
    admin: Actor
    a: Tenant
    b: Tenant

    def actor(self, role: str, tenant: str = "a") -> Actor:
        if role == "platform_admin":
            return self.admin
        t = getattr(self, tenant)
        return t.staff if role == "partner_staff" else t.users[role]


def _actor(s: Session, user) -> Actor:
    actor = load_actor(s, user.partner_id, user.id)
    assert actor is not None
    return actor


def build_world(engine: Engine) -> World:
    with Session(engine, expire_on_commit=False) as s, s.begin():
        admin = accounts.create_admin(s, SYSTEM, email="root@test.example", display_name="Root", password=PASSWORD)
        tenants = {}
        for key in ("a", "b"):
            p = accounts.create_partner(s, SYSTEM, name=f"Partner {key.upper()}", currency="EUR", country="NO")
            staff = accounts.create_staff(s, SYSTEM, partner_id=p.id, email=f"staff-{key}@test.example",
                                          display_name=f"Staff {key}", password=PASSWORD)
            acc = accounts.create_account(s, SYSTEM, partner_id=p.id, name=f"Customer {key}1", country="NO")
            other = accounts.create_account(s, SYSTEM, partner_id=p.id, name=f"Customer {key}2", country="DE")
            t = Tenant(partner_id=p.id, account_id=acc.id, other_account_id=other.id, staff=_actor(s, staff))
            for role in ("manager", "user", "annotation_manager", "annotator"):
                u = accounts.create_user(s, SYSTEM, partner_id=p.id, account_id=acc.id,
                                         email=f"{role}-{key}@test.example", display_name=f"{role} {key}",
                                         role=role, password=PASSWORD)
                t.users[role] = _actor(s, u)
            # a second manager in the other account, so "other account" has a manager too
            accounts.create_user(s, SYSTEM, partner_id=p.id, account_id=other.id, email=f"m2-{key}@test.example",
                                 display_name=f"Other manager {key}", role="manager", password=PASSWORD)
            tenants[key] = t
        return World(admin=_actor(s, admin), a=tenants["a"], b=tenants["b"])
