"""Accounts services against the real database: onboarding, validation, status changes, users, audit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts import accounts, audit
from core.accounts.auth import load_actor, signup
from core.errors import Conflict, PermissionDenied, ValidationError
from db.models import AuditEntry, CustomerAccount, LoginDirectory, User

PW = "a-long-enough-passphrase-42"


def count(s: Session, model) -> int:
    return s.scalar(select(func.count()).select_from(model))


def test_create_account_with_defaults_and_audit(world, session):
    staff = world.a.staff
    acc = accounts.create_account(session, staff, name="  Oslo Opp  ", country="no", contact_email="a@b.example")
    assert acc.name == "Oslo Opp" and acc.country == "NO" and acc.currency == "EUR" and acc.status == "active"
    assert acc.partner_id == staff.partner_id and acc.created_by == staff.user_id
    entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "customer_account",
                                                    AuditEntry.entity_id == str(acc.id)))
    assert entry.actor_email == staff.email and entry.after["name"] == "Oslo Opp" and entry.before is None


@pytest.mark.parametrize("fields, field, fragment", [
    ({"name": "   "}, "name", "required"),
    ({"country": "XX"}, "country", "Unknown country"),
    ({"currency": "EURO"}, "currency", "Unknown currency"),
    ({"contact_email": "not-an-email"}, "contact_email", "not a valid e-mail"),
    ({"billing_email": "a@b"}, "billing_email", "not a valid e-mail"),
    ({"vat_id": "<script>"}, "vat_id", "VAT id"),
])
def test_bad_account_input_is_refused_and_nothing_written(world, session, fields, field, fragment):
    before = count(session, CustomerAccount), count(session, AuditEntry)
    data = {"name": "Valid", "country": "NO", **fields}
    with pytest.raises(ValidationError) as exc:
        accounts.create_account(session, world.a.staff, **data)
    assert fragment in exc.value.errors[field]
    assert (count(session, CustomerAccount), count(session, AuditEntry)) == before


def test_update_records_only_changed_fields(world, session):
    staff, aid = world.a.staff, world.a.account_id
    accounts.update_account(session, staff, staff.partner_id, aid, name="Renamed AS", country="NO")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "update").order_by(AuditEntry.id.desc()))
    assert entry.before == {"name": "Customer a1"} and entry.after == {"name": "Renamed AS"}


def test_suspend_reactivate_delete_restore(world, session):
    staff, admin, pid, aid = world.a.staff, world.admin, world.a.partner_id, world.a.account_id
    manager = world.a.users["manager"]
    accounts.suspend_account(session, staff, pid, aid)
    assert load_actor(session, manager.partner_id, manager.user_id) is None  # suspended: no access
    with pytest.raises(Conflict):
        accounts.suspend_account(session, staff, pid, aid)
    accounts.reactivate_account(session, staff, pid, aid)
    assert load_actor(session, manager.partner_id, manager.user_id) is not None
    accounts.delete_account(session, staff, pid, aid)
    assert [r.id for r in accounts.list_accounts(session, staff)] == [world.a.other_account_id]
    assert aid in [r.id for r in accounts.list_accounts(session, staff, statuses=("deleted",))]
    with pytest.raises(PermissionDenied):
        accounts.restore_account(session, staff, pid, aid)
    with pytest.raises(Conflict):
        accounts.update_account(session, staff, pid, aid, name="x")
    accounts.restore_account(session, admin, pid, aid)
    assert session.get(CustomerAccount, (pid, aid)).status == "active"


def test_search_by_name_email_and_id(world, session):
    staff = world.a.staff
    accounts.create_account(session, staff, name="Fjord Fisk", country="NO", billing_email="faktura@fisk.example")
    assert [r.name for r in accounts.list_accounts(session, staff, search="fjord")] == ["Fjord Fisk"]
    assert [r.name for r in accounts.list_accounts(session, staff, search="FAKTURA@")] == ["Fjord Fisk"]
    assert [r.id for r in accounts.list_accounts(session, staff, search=str(world.a.account_id))] == [world.a.account_id]


def test_signup_creates_user_and_account_as_manager(db):
    with Session(db, expire_on_commit=False) as s, s.begin():
        signup(s, email="New.Person@Example.com", display_name="New Person", password=PW,
               org_name="New Org", country="SE", currency="SEK")
    with Session(db) as s:
        entry = s.get(LoginDirectory, "new.person@example.com")
        user = s.get(User, (entry.partner_id, entry.user_id))
        acc = s.get(CustomerAccount, (user.partner_id, user.account_id))
        assert user.role == "manager" and acc.name == "New Org"
        assert acc.created_by == user.id and not user.email_confirmed


def test_signup_is_all_or_nothing(db):
    with Session(db) as s:
        before = count(s, CustomerAccount), count(s, User)
    with Session(db) as s, pytest.raises(ValidationError) as exc:
        with s.begin():
            signup(s, email="x@example.com", display_name="X", password="short", org_name="Org",
                   country="NO", currency="NOK")
    assert "password" in exc.value.errors
    with Session(db) as s, pytest.raises(ValidationError) as exc:
        with s.begin():
            signup(s, email="bad", display_name="", password=PW, org_name=" ", country="ZZ", currency="XYZ")
    assert set(exc.value.errors) >= {"email", "display_name", "org_name", "country", "currency"}
    with Session(db) as s:
        assert (count(s, CustomerAccount), count(s, User)) == before


def test_duplicate_email_case_insensitive_across_tenants(world, session):
    with pytest.raises(ValidationError) as exc:
        accounts.create_user(session, world.b.staff, partner_id=world.b.partner_id, account_id=world.b.account_id,
                             email="STAFF-A@test.example", display_name="Dup", role="user", password=PW)
    assert "already exists" in exc.value.errors["email"]
    before = count(session, User)
    # sign-up does not reveal the address: the same answer, nothing created (tests/test_security_auth.py)
    signup(session, email="Manager-A@Test.Example", display_name="Dup", password=PW, org_name="Org",
           country="NO", currency="NOK")
    assert count(session, User) == before


def test_user_management_rules(world, session):
    a = world.a
    manager = a.users["manager"]
    # a manager adds a user without a password: the user is e-mailed a link to set one
    u = accounts.create_user(session, manager, partner_id=a.partner_id, account_id=a.account_id,
                             email="fresh@test.example", display_name="Fresh", role="annotator")
    assert u.link_sent
    with pytest.raises(ValidationError):
        accounts.create_user(session, manager, partner_id=a.partner_id, account_id=a.account_id,
                             email="boss@test.example", display_name="Boss", role="partner_staff", password=PW)
    with pytest.raises(Conflict):
        accounts.change_role(session, manager, a.partner_id, manager.user_id, "user")
    with pytest.raises(Conflict):
        accounts.set_user_active(session, manager, a.partner_id, manager.user_id, False)
    # the last manager cannot be demoted or deactivated by staff either
    with pytest.raises(Conflict):
        accounts.change_role(session, a.staff, a.partner_id, manager.user_id, "user")
    accounts.change_role(session, manager, a.partner_id, u.id, "annotation_manager")
    assert session.get(User, (a.partner_id, u.id)).role == "annotation_manager"


def test_deactivation_and_reset_end_sessions(world, session):
    a = world.a
    target = a.users["annotator"]
    accounts.set_user_active(session, a.staff, a.partner_id, target.user_id, False)
    assert load_actor(session, a.partner_id, target.user_id, target.session_version) is None
    accounts.set_user_active(session, a.staff, a.partner_id, target.user_id, True)
    # reactivated, but the old session (old version) stays ended
    assert load_actor(session, a.partner_id, target.user_id, target.session_version) is None
    fresh = load_actor(session, a.partner_id, target.user_id)
    sent_to = accounts.reset_password(session, a.staff, a.partner_id, target.user_id)
    assert sent_to == "annotator-a@test.example"  # a link was e-mailed; nobody sees a password
    assert load_actor(session, a.partner_id, target.user_id, fresh.session_version) is None


def test_only_admins_manage_staff(world, session):
    staff_b = world.b.staff
    with pytest.raises(PermissionDenied):
        accounts.set_user_active(session, world.a.staff, staff_b.partner_id, staff_b.user_id, False)
    accounts.set_user_active(session, world.admin, staff_b.partner_id, staff_b.user_id, False)


def test_audit_visibility(world, session):
    accounts.create_account(session, world.b.staff, name="B only", country="NO")
    session.flush()
    seen_a = audit.list_entries(session, world.a.staff)
    assert seen_a and all(e.partner_id == world.a.partner_id for e in seen_a)
    assert {e.partner_id for e in audit.list_entries(session, world.admin)} >= {world.a.partner_id, world.b.partner_id}
    with pytest.raises(PermissionDenied):
        audit.list_entries(session, world.a.staff, partner_id=world.b.partner_id)
    with pytest.raises(PermissionDenied):
        audit.list_entries(session, world.a.users["manager"])


def test_partner_creation_validation(world, session):
    p = accounts.create_partner(session, world.admin, name="Gamma Resell", currency="usd", country="us")
    assert p.slug == "gamma-resell" and p.currency == "USD"
    with pytest.raises(ValidationError) as exc:
        accounts.create_partner(session, world.admin, name="gamma resell")
    assert "already exists" in exc.value.errors["name"]
