"""Partners, customer accounts and users: the services behind onboarding and user management.

Every function takes the SQLAlchemy session and the acting user, checks permission itself, validates
its input and raises a domain error before writing anything. The caller owns the transaction
(`db.engine.unit_of_work`): one transaction per user action.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit, links
from core.accounts.actor import CUSTOMER_ROLES, ROLE_LABELS, Actor
from core.accounts.passwords import hash_password, password_problem
from core.accounts.permissions import authorize
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.validation import Checker, normalise_email
from db.models import CustomerAccount, LoginDirectory, Partner, User

ACCOUNT_FIELDS = ("name", "contact_name", "contact_email", "billing_email", "address", "country", "vat_id", "currency")


# ---------------------------------------------------------------- helpers


def account_snapshot(acc: CustomerAccount) -> dict[str, Any]:
    return {f: getattr(acc, f) for f in (*ACCOUNT_FIELDS, "status")}


def user_snapshot(user: User) -> dict[str, Any]:
    return {"email": user.email, "display_name": user.display_name, "role": user.role,
            "active": user.active, "account_id": user.account_id}


def house_partner(session: Session) -> Partner:
    partner = session.scalar(select(Partner).where(Partner.is_house))
    if partner is None:  # created by migration 0001
        raise NotFound("The platform's house partner is missing: run the migrations.")
    return partner


def get_partner(session: Session, partner_id: int) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound(f"Partner {partner_id} does not exist.")
    return partner


def partner_settings(session: Session, actor: Actor, partner_id: int) -> Partner:
    """A partner's own record (currency, house flag) for the actor's pages: staff of that partner or an admin."""
    authorize(actor, "account.list", partner_id)
    return get_partner(session, partner_id)


CUSTOMER_ROLE_MESSAGE = "Role must be " + " or ".join(
    [", ".join(ROLE_LABELS[r] for r in CUSTOMER_ROLES[:-1]), ROLE_LABELS[CUSTOMER_ROLES[-1]]]) + "."


def check_account_fields(data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The account fields validated and normalised, or ValidationError (one message per field). No actor: used
    by the services here, self-signup (core.accounts.auth) and the scenario loader (seeds)."""
    c = Checker()
    out: dict[str, Any] = {}

    def has(f: str) -> bool:
        return not partial or f in data

    if has("name"):
        out["name"] = c.text("name", data.get("name"), "Organisation name")
    if has("contact_name"):
        out["contact_name"] = c.text("contact_name", data.get("contact_name"), "Contact name", required=False)
    if has("contact_email"):
        out["contact_email"] = c.email("contact_email", data.get("contact_email"), "Contact e-mail", required=False)
    if has("billing_email"):
        out["billing_email"] = c.email("billing_email", data.get("billing_email"), "Billing e-mail", required=False)
    if has("address"):
        out["address"] = c.text("address", data.get("address"), "Address", required=False, max_len=1000)
    if has("country"):
        out["country"] = c.country("country", data.get("country"))
    if has("vat_id"):
        vat = c.text("vat_id", data.get("vat_id"), "VAT id", required=False, max_len=40)
        if vat and not re.fullmatch(r"[A-Za-z0-9 .\-]{2,40}", vat):
            c.fail("vat_id", "VAT id may contain only letters, digits, spaces, dots and dashes.")
        out["vat_id"] = vat
    if has("currency"):
        out["currency"] = c.currency("currency", data.get("currency"))
    unknown = set(data) - set(ACCOUNT_FIELDS)
    if unknown:
        c.fail("_form", f"Unknown fields: {', '.join(sorted(unknown))}.")
    c.done()
    return out


def check_new_user(session: Session, email: str | None, display_name: str | None, password: str | None,
                    *, password_field: str = "password", check_taken: bool = True) -> tuple[str, str]:
    """(e-mail, display name) of a new user, validated (the e-mail free, the password strong enough), or
    ValidationError. No actor: the caller checks permissions."""
    c = Checker()
    email_v = c.email("email", email)
    name_v = c.text("display_name", display_name, "Name")
    if password is not None:
        problem = password_problem(password, email_v)
        if problem:
            c.fail(password_field, problem)
    if check_taken and email_v and session.get(LoginDirectory, normalise_email(email_v)) is not None:
        c.fail("email", "A user with this e-mail address already exists.")
    c.done()
    assert email_v and name_v
    return email_v, name_v


def insert_user(session: Session, *, partner_id: int, account_id: int | None, email: str, display_name: str,
                 role: str, password: str, created_by: int | None, must_change: bool = False) -> User:
    """Insert a validated user (check_new_user) with the password hashed. No actor: the caller checks
    permissions and writes the audit entry."""
    user = User(partner_id=partner_id, account_id=account_id, email=email, display_name=display_name,
                role=role, password_hash=hash_password(password), created_by=created_by,
                must_change_password=must_change)
    session.add(user)
    session.flush()
    session.add(LoginDirectory(email_norm=normalise_email(email), partner_id=partner_id, user_id=user.id))
    try:
        session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same e-mail won the race
        raise ValidationError({"email": "A user with this e-mail address already exists."}) from exc
    return user


# ---------------------------------------------------------------- partners


def create_partner(session: Session, actor: Actor, *, name: str, contact_email: str | None = None,
                   currency: str = "EUR", country: str | None = None) -> Partner:
    authorize(actor, "partner.create")
    c = Checker()
    name_v = c.text("name", name, "Partner name")
    email_v = c.email("contact_email", contact_email, "Contact e-mail", required=False)
    cur = c.currency("currency", currency)
    ctry = c.country("country", country) if country else None
    slug = re.sub(r"[^a-z0-9]+", "-", (name_v or "").lower()).strip("-")[:60] or "partner"
    if name_v and session.scalar(select(Partner.id).where(func.lower(Partner.name) == name_v.lower())):
        c.fail("name", "A partner with this name already exists.")
    c.done()
    base, n = slug, 2
    while session.scalar(select(Partner.id).where(Partner.slug == slug)):
        slug, n = f"{base}-{n}", n + 1
    partner = Partner(name=name_v, slug=slug, contact_email=email_v, currency=cur, country=ctry)
    session.add(partner)
    session.flush()
    audit.record(session, actor, partner_id=partner.id, action="create", entity="partner", entity_id=partner.id,
                 after={"name": name_v, "currency": cur, "country": ctry, "contact_email": email_v})
    return partner


def list_partners(session: Session, actor: Actor) -> list[Partner]:
    if actor.is_admin:
        return list(session.scalars(select(Partner).order_by(Partner.is_house.desc(), Partner.name)))
    if actor.is_staff:
        return [get_partner(session, actor.partner_id)]
    raise PermissionDenied("Only partner staff and platform admins see partners.")


def create_staff(session: Session, actor: Actor, *, partner_id: int, email: str, display_name: str,
                 password: str) -> User:
    authorize(actor, "staff.create", partner_id)
    get_partner(session, partner_id)
    email_v, name_v = check_new_user(session, email, display_name, password)
    user = insert_user(session, partner_id=partner_id, account_id=None, email=email_v, display_name=name_v,
                        role="partner_staff", password=password, created_by=actor.user_id)
    audit.record(session, actor, partner_id=partner_id, action="create", entity="user", entity_id=user.id,
                 after=user_snapshot(user))
    return user


def create_admin(session: Session, actor: Actor, *, email: str, display_name: str, password: str) -> User:
    authorize(actor, "partner.create")
    house = house_partner(session)
    email_v, name_v = check_new_user(session, email, display_name, password)
    user = insert_user(session, partner_id=house.id, account_id=None, email=email_v, display_name=name_v,
                        role="platform_admin", password=password, created_by=actor.user_id or None)
    audit.record(session, actor, partner_id=house.id, action="create", entity="user", entity_id=user.id,
                 after=user_snapshot(user))
    return user


# ---------------------------------------------------------------- customer accounts


def create_account(session: Session, actor: Actor, *, partner_id: int | None = None, **data: Any) -> CustomerAccount:
    """Create a customer account for `partner_id` (default: the actor's own partner)."""
    partner_id = partner_id if partner_id is not None else actor.partner_id
    authorize(actor, "account.create", partner_id)
    partner = get_partner(session, partner_id)
    data.setdefault("currency", partner.currency)
    fields = check_account_fields(data)
    acc = CustomerAccount(partner_id=partner_id, created_by=actor.user_id or None, **fields)
    session.add(acc)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="create", entity="customer_account",
                 entity_id=acc.id, account_id=acc.id, after=account_snapshot(acc))
    return acc


def get_account(session: Session, actor: Actor, partner_id: int, account_id: int) -> CustomerAccount:
    authorize(actor, "account.view", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None or (acc.status == "deleted" and not actor.is_admin and not actor.is_staff):
        raise NotFound(f"Customer account {account_id} does not exist.")
    return acc


@dataclass(frozen=True)
class AccountRow:
    partner_id: int
    partner_name: str
    id: int
    name: str
    contact_email: str | None
    country: str
    currency: str
    status: str
    users: int
    created_at: Any


def list_accounts(session: Session, actor: Actor, *, search: str = "", statuses: tuple[str, ...] = ("active", "suspended"),
                  partner_id: int | None = None, limit: int = 500, offset: int = 0) -> list[AccountRow]:
    """Customer accounts visible to the actor, searched by name, e-mail or id, filtered by status."""
    if actor.role in CUSTOMER_ROLES:
        partner_id = actor.partner_id
    elif not actor.is_admin:
        partner_id = actor.partner_id
    authorize(actor, "account.list", partner_id, actor.account_id if actor.role in CUSTOMER_ROLES else None)
    users = (select(User.partner_id, User.account_id, func.count().label("n"))
             .where(User.account_id.is_not(None), User.active).group_by(User.partner_id, User.account_id).subquery())
    q = (select(CustomerAccount, Partner.name, func.coalesce(users.c.n, 0))
         .join(Partner, Partner.id == CustomerAccount.partner_id)
         .outerjoin(users, (users.c.partner_id == CustomerAccount.partner_id) & (users.c.account_id == CustomerAccount.id)))
    if partner_id is not None:
        q = q.where(CustomerAccount.partner_id == partner_id)
    if actor.role in CUSTOMER_ROLES:
        q = q.where(CustomerAccount.id == actor.account_id)
    if statuses:
        q = q.where(CustomerAccount.status.in_(statuses))
    term = search.strip()
    if term:
        like = f"%{term.lower()}%"
        conds: list[ColumnElement[bool]] = [func.lower(CustomerAccount.name).like(like), func.lower(CustomerAccount.contact_email).like(like),
                 func.lower(CustomerAccount.billing_email).like(like)]
        if term.isdigit():
            conds.append(CustomerAccount.id == int(term))
        q = q.where(or_(*conds))
    q = q.order_by(func.lower(CustomerAccount.name), CustomerAccount.id).limit(limit).offset(offset)
    return [AccountRow(a.partner_id, pname, a.id, a.name, a.contact_email, a.country, a.currency, a.status, n,
                       a.created_at) for a, pname, n in session.execute(q)]


def update_account(session: Session, actor: Actor, partner_id: int, account_id: int, **changes_in: Any) -> CustomerAccount:
    authorize(actor, "account.update", partner_id, account_id)
    acc = get_account(session, actor, partner_id, account_id)
    if acc.status == "deleted":
        raise Conflict("A deleted account cannot be edited; restore it first.")
    fields = check_account_fields(changes_in, partial=True)
    before = account_snapshot(acc)
    for k, v in fields.items():
        setattr(acc, k, v)
    session.flush()
    b, a = audit.changes(before, account_snapshot(acc))
    if a:
        audit.record(session, actor, partner_id=partner_id, action="update", entity="customer_account",
                     entity_id=account_id, account_id=account_id, before=b, after=a)
    return acc


_STATUS_ACTIONS = {
    # target status: (permission, allowed current statuses)
    "suspended": ("account.suspend", ("active",)),
    "active": ("account.suspend", ("suspended",)),
    "deleted": ("account.delete", ("active", "suspended")),
}


def set_account_status(session: Session, actor: Actor, partner_id: int, account_id: int, status: str) -> CustomerAccount:
    """Suspend, reactivate or (soft) delete an account. Use `restore_account` to undo a deletion."""
    if status not in _STATUS_ACTIONS:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    permission, from_statuses = _STATUS_ACTIONS[status]
    authorize(actor, permission, partner_id, account_id)
    acc = get_account(session, actor, partner_id, account_id)
    if acc.status not in from_statuses:
        raise Conflict(f"The account is {acc.status}; it cannot become {status} from there.")
    before = acc.status
    acc.status = status
    acc.deleted_at = func.now() if status == "deleted" else None
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action=f"status:{status}", entity="customer_account",
                 entity_id=account_id, account_id=account_id, before={"status": before}, after={"status": status})
    return acc


def suspend_account(session: Session, actor: Actor, partner_id: int, account_id: int) -> CustomerAccount:
    return set_account_status(session, actor, partner_id, account_id, "suspended")


def reactivate_account(session: Session, actor: Actor, partner_id: int, account_id: int) -> CustomerAccount:
    return set_account_status(session, actor, partner_id, account_id, "active")


def delete_account(session: Session, actor: Actor, partner_id: int, account_id: int) -> CustomerAccount:
    return set_account_status(session, actor, partner_id, account_id, "deleted")


def restore_account(session: Session, actor: Actor, partner_id: int, account_id: int) -> CustomerAccount:
    authorize(actor, "account.restore", partner_id, account_id)
    acc = session.get(CustomerAccount, (partner_id, account_id))
    if acc is None:
        raise NotFound(f"Customer account {account_id} does not exist.")
    if acc.status != "deleted":
        raise Conflict("Only a deleted account can be restored.")
    acc.status, acc.deleted_at = "active", None
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="restore", entity="customer_account",
                 entity_id=account_id, account_id=account_id, before={"status": "deleted"}, after={"status": "active"})
    return acc


# ---------------------------------------------------------------- users


def list_users(session: Session, actor: Actor, partner_id: int, account_id: int | None = None,
               *, include_inactive: bool = True) -> list[User]:
    """Users of one customer account; for partner staff with account_id None: the partner's staff."""
    if account_id is None:
        authorize(actor, "staff.create" if not actor.is_staff else "user.list", partner_id)
        q = select(User).where(User.partner_id == partner_id, User.account_id.is_(None))
    else:
        authorize(actor, "user.list", partner_id, account_id)
        q = select(User).where(User.partner_id == partner_id, User.account_id == account_id)
    if not include_inactive:
        q = q.where(User.active)
    return list(session.scalars(q.order_by(func.lower(User.display_name), User.id)))


def _get_user(session: Session, partner_id: int, user_id: int) -> User:
    user = session.get(User, (partner_id, user_id))
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def _authorize_on_user(actor: Actor, action: str, user: User) -> None:
    if user.account_id is None:  # staff or admin: only platform admins manage those
        if not actor.is_admin:
            raise PermissionDenied("Only platform admins manage partner staff and admins.")
        return
    authorize(actor, action, user.partner_id, user.account_id)


def create_user(session: Session, actor: Actor, *, partner_id: int, account_id: int, email: str,
                display_name: str, role: str, password: str | None = None) -> User:
    """Add a user to a customer account. Without a password the user is e-mailed a link to set one
    (`user.link_sent` is True); nobody else sees a password."""
    authorize(actor, "user.create", partner_id, account_id)
    acc = get_account(session, actor, partner_id, account_id)
    if acc.status == "deleted":
        raise Conflict("Users cannot be added to a deleted account.")
    if role not in CUSTOMER_ROLES:
        raise ValidationError({"role": CUSTOMER_ROLE_MESSAGE})
    email_v, name_v = check_new_user(session, email, display_name, password)
    user = insert_user(session, partner_id=partner_id, account_id=account_id, email=email_v,
                       display_name=name_v, role=role, password=password or secrets.token_urlsafe(32),
                       created_by=actor.user_id or None)
    user.link_sent = not password  # type: ignore[attr-defined]  # transient
    if not password:
        links.send_reset_link(session, user)
    audit.record(session, actor, partner_id=partner_id, action="create", entity="user", entity_id=user.id,
                 account_id=account_id, after=user_snapshot(user))
    return user


def change_role(session: Session, actor: Actor, partner_id: int, user_id: int, role: str) -> User:
    user = _get_user(session, partner_id, user_id)
    _authorize_on_user(actor, "user.change_role", user)
    if role not in CUSTOMER_ROLES or user.account_id is None:
        raise ValidationError({"role": CUSTOMER_ROLE_MESSAGE})
    if user.id == actor.user_id and user.partner_id == actor.partner_id:
        raise Conflict("You cannot change your own role.")
    if user.role == role:
        return user
    _keep_one_manager(session, user, leaving=(user.role == "manager"))
    before = user.role
    user.role = role
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="change_role", entity="user", entity_id=user_id,
                 account_id=user.account_id, before={"role": before}, after={"role": role})
    return user


def _keep_one_manager(session: Session, user: User, *, leaving: bool) -> None:
    if not leaving or user.account_id is None:
        return
    others = session.scalar(select(func.count()).select_from(User).where(
        User.partner_id == user.partner_id, User.account_id == user.account_id, User.role == "manager",
        User.active, User.id != user.id))
    if not others:
        raise Conflict("An account needs at least one active Manager: appoint another Manager first.")


def set_user_active(session: Session, actor: Actor, partner_id: int, user_id: int, active: bool) -> User:
    """Deactivate (access ends at the user's next click) or reactivate a user."""
    user = _get_user(session, partner_id, user_id)
    _authorize_on_user(actor, "user.deactivate", user)
    if user.id == actor.user_id and user.partner_id == actor.partner_id:
        raise Conflict("You cannot deactivate yourself.")
    if user.active == active:
        return user
    if not active and user.role == "manager":
        _keep_one_manager(session, user, leaving=True)
    user.active = active
    user.session_version += 1
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="activate" if active else "deactivate",
                 entity="user", entity_id=user_id, account_id=user.account_id,
                 before={"active": not active}, after={"active": active})
    return user


def reset_password(session: Session, actor: Actor, partner_id: int, user_id: int) -> str:
    """Reset a user's password: the old one stops working, every session of the user ends, and a link to
    set a new password (single use, valid links.RESET_FOR) is e-mailed to the user through the outbox.
    Nobody else ever sees a password. Returns the address the link was sent to."""
    user = _get_user(session, partner_id, user_id)
    _authorize_on_user(actor, "user.reset_password", user)
    user.password_hash = hash_password(secrets.token_urlsafe(32))  # unusable: nobody knows it
    user.must_change_password = False
    links.end_sessions(session, user, clock.now())
    links.send_reset_link(session, user)
    audit.record(session, actor, partner_id=partner_id, action="reset_password", entity="user",
                 entity_id=user_id, account_id=user.account_id, after={"link_sent_to": user.email})
    return user.email


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role)
