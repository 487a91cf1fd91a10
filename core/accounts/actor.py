"""The acting user, loaded from the database on every request."""

from __future__ import annotations

from dataclasses import dataclass

ROLE_LABELS = {
    "platform_admin": "Platform admin",
    "partner_staff": "Partner staff",
    "manager": "Manager",
    "user": "User",
    "annotation_manager": "Annotation Manager",
    "annotator": "Annotator",
}
# The one list of roles (the users table's CHECK constraint, written in its migration, allows exactly these).
CUSTOMER_ROLES = ("manager", "user", "annotation_manager", "annotator")
STAFF_ROLES = ("platform_admin", "partner_staff")


@dataclass(frozen=True)
class Actor:
    user_id: int
    partner_id: int
    role: str
    email: str
    display_name: str
    account_id: int | None = None
    partner_name: str = ""
    account_name: str | None = None
    must_change_password: bool = False
    session_version: int = 1
    # Set while a partner staff member acts as a customer's Manager ("Log in as").
    impersonator_user_id: int | None = None
    impersonator_email: str | None = None
    # Set when an API key acts (issue 17): the only actions its scopes allow (None: the role decides alone).
    limited_to: frozenset[str] | None = None
    api_key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "platform_admin"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)


SYSTEM = Actor(user_id=0, partner_id=0, role="platform_admin", email="system", display_name="System")


def db_scope(actor: Actor):
    """The row-level-security scope of `actor`'s transactions: a platform admin works across tenants (the
    platform scope, logged at DEBUG; at INFO for SYSTEM, the jobs' actor), everyone else within their own
    partner."""
    from db.engine import partner_scope, platform_scope

    if actor.is_admin:
        return platform_scope(f"platform admin {actor.email}", quiet=actor.user_id != SYSTEM.user_id)
    return partner_scope(actor.partner_id)


def bind_actor(session, actor: Actor):
    """Bind `session` to `actor`'s tenant (row-level security): every transaction of it carries the scope."""
    from db.engine import bind_scope

    return bind_scope(session, db_scope(actor))
