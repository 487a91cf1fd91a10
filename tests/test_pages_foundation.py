"""AppTest for the foundation pages: logged out, per role, the happy path and a bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import ROLES
from db.models import CustomerAccount, User
from pages.common import visible_pages
from tests.apptest import app, page_alone, texts, unescape

FOUNDATION_PAGES = ["pages/overview.py", "pages/customers.py", "pages/users.py", "pages/partners.py",
                    "pages/audit.py", "pages/profile.py"]
ACCESS = {  # page -> roles that may open it
    "pages/overview.py": set(ROLES),
    "pages/profile.py": set(ROLES),
    "pages/customers.py": {"platform_admin", "partner_staff"},
    "pages/users.py": {"platform_admin", "partner_staff", "manager"},
    "pages/partners.py": {"platform_admin"},
    "pages/audit.py": {"platform_admin", "partner_staff"},
}


@pytest.mark.parametrize("page", FOUNDATION_PAGES)
def test_logged_out_no_page_is_reachable_and_each_asks_to_log_in(db, page):
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app(page=page)  # not in the navigation: cannot be opened
    at = page_alone(None, page)  # and the page itself refuses too
    assert not at.exception
    assert "Please log in." in texts(at)


def test_navigation_per_role(world):
    for role in ROLES:
        paths = {p[1] for p in visible_pages(world.actor(role))}
        for page, roles in ACCESS.items():
            assert (page in paths) == (role in roles), (role, page)


@pytest.mark.parametrize("role", ROLES)
def test_every_page_per_role_renders_or_refuses(world, role):
    actor = world.actor(role)
    for page, roles in ACCESS.items():
        if role in roles:
            at = app(actor, page)
            assert not at.exception, (role, page, at.exception)
            assert "You do not have access" not in texts(at)
        else:
            with pytest.raises(ValueError):
                app(actor, page)
            at = page_alone(actor, page)
            assert "You do not have access to this page." in texts(at), (role, page)


def test_home_shows_welcome(world):
    at = app(world.a.staff)
    assert "Welcome, Staff a" in texts(at)
    assert at.sidebar.button(key="logout")  # logging out is exercised in the real-browser test


def test_login_wrong_password_shows_error(world):
    at = app()
    at.text_input(key="login_email").input("staff-a@test.example")
    at.text_input(key="login_password").input("not the password")
    at.button[0].click().run()
    assert "E-mail or password is not correct." in texts(at)
    assert "auth_user_id" not in at.session_state


def test_signup_happy_path_and_bad_input(db):
    at = app(page="pages/signup.py")
    at.text_input(key="su_name").input("Sofie Signup")
    at.text_input(key="su_email").input("not-an-email")
    at.text_input(key="su_password").input("short")
    at.text_input(key="su_org").input("")
    at.button[0].click().run()
    page = texts(at)
    assert "not a valid e-mail address" in page and "at least 12 characters" in page and "Organisation name is required" in page
    with Session(db) as s:
        assert s.scalar(select(User).where(User.email == "not-an-email")) is None
    at.text_input(key="su_email").input("sofie@signup.example")
    at.text_input(key="su_password").input("a perfectly fine passphrase")
    at.text_input(key="su_org").input("Sofie's Shop")
    at.button[0].click().run()
    assert not at.exception
    with Session(db) as s:
        user = s.scalar(select(User).where(User.email == "sofie@signup.example"))
        assert user.role == "manager" and not user.email_confirmed
        assert s.get(CustomerAccount, (user.partner_id, user.account_id)).name == "Sofie's Shop"
    assert "We sent a message to sofie@signup.example" in texts(at)
    assert "auth_user_id" not in at.session_state  # logs in only after confirming the address


def test_customers_create_happy_path_and_bad_input(world, engine):
    at = app(world.a.staff, "pages/customers.py")
    assert "Customer a1" in at.dataframe[0].value["Customer"].tolist()
    at.text_input(key="new_name").input("")
    at.text_input(key="new_cemail").input("broken@")
    at.button(key="FormSubmitter:new_form-Create customer").click().run()
    page = texts(at)
    assert "Organisation name is required." in page and "Contact e-mail is not a valid e-mail address." in page
    at.text_input(key="new_name").input("Lofoten Lager")
    at.text_input(key="new_cemail").input("post@lofoten.example")
    at.button(key="FormSubmitter:new_form-Create customer").click().run()
    assert not at.exception
    at.run()
    assert "Lofoten Lager" in at.dataframe[0].value["Customer"].tolist()
    with Session(engine) as s:
        acc = s.scalar(select(CustomerAccount).where(CustomerAccount.name == "Lofoten Lager"))
        assert acc.partner_id == world.a.partner_id and acc.contact_email == "post@lofoten.example"


def test_customers_search_filter_and_suspend_delete(world, engine):
    at = app(world.a.staff, "pages/customers.py")
    at.text_input(key="cust_search").input("a2").run()
    assert at.dataframe[0].value["Customer"].tolist() == ["Customer a2"]
    at.text_input(key="cust_search").input("").run()
    at.selectbox(key="cust_pick").select((world.a.partner_id, world.a.other_account_id)).run()
    at.button(key="cust_suspend").click().run()
    assert not at.exception
    with Session(engine) as s:
        assert s.get(CustomerAccount, (world.a.partner_id, world.a.other_account_id)).status == "suspended"
    at.selectbox(key="cust_pick").select((world.a.partner_id, world.a.other_account_id)).run()
    at.button(key="cust_delete_open").click().run()
    assert at.button(key="cust_delete").disabled  # deletion needs the name typed
    at.text_input(key="cust_del_confirm").input("Customer a2").run()
    at.button(key="cust_delete").click().run()
    with Session(engine) as s:
        assert s.get(CustomerAccount, (world.a.partner_id, world.a.other_account_id)).status == "deleted"


def test_customers_detail_lists_users_and_edit(world, engine):
    at = app(world.a.staff, "pages/customers.py")
    at.selectbox(key="cust_pick").select((world.a.partner_id, world.a.account_id)).run()
    emails = at.dataframe[1].value["E-mail"].tolist()
    assert "annotator-a@test.example" in emails
    at.button(key="cust_edit").click().run()
    key = f"edit{world.a.account_id}"
    at.text_input(key=f"{key}_name").input("")
    at.button(key=f"FormSubmitter:{key}_form-Save changes").click().run()
    assert "Organisation name is required." in texts(at)  # shown in the dialog, nothing written
    at.text_input(key=f"{key}_name").input("Customer a1 Renamed")
    at.button(key=f"FormSubmitter:{key}_form-Save changes").click().run()
    with Session(engine) as s:
        assert s.get(CustomerAccount, (world.a.partner_id, world.a.account_id)).name == "Customer a1 Renamed"


def test_admin_restores_a_deleted_customer(world, engine):
    from core.accounts import accounts

    with Session(engine) as s, s.begin():
        accounts.delete_account(s, world.a.staff, world.a.partner_id, world.a.other_account_id)
    at = app(world.admin, "pages/customers.py")
    at.selectbox(key="cust_partner").select(world.a.partner_id).run()
    at.multiselect(key="cust_status").select("deleted").run()
    at.selectbox(key="cust_pick").select((world.a.partner_id, world.a.other_account_id)).run()
    at.button(key="cust_restore").click().run()
    with Session(engine) as s:
        assert s.get(CustomerAccount, (world.a.partner_id, world.a.other_account_id)).status == "active"


def test_users_page_manager_adds_user_and_bad_email(world, engine):
    at = app(world.a.users["manager"], "pages/users.py")
    assert "annotator-a@test.example" in at.dataframe[0].value["E-mail"].tolist()
    at.text_input(key="own_new_name").input("Nina New")
    at.text_input(key="own_new_email").input("nina@")
    at.button(key="FormSubmitter:own_add-Add user").click().run()
    assert "E-mail is not a valid e-mail address." in texts(at)
    at.text_input(key="own_new_email").input("nina@test.example")
    at.button(key="FormSubmitter:own_add-Add user").click().run()
    assert not at.exception
    assert "A link to set the password was e-mailed to nina@test.example" in texts(at)
    with Session(engine) as s:
        assert s.scalar(select(User).where(User.email == "nina@test.example")) is not None


def test_users_page_staff_reset_password_and_deactivate(world, engine):
    a = world.a
    at = app(a.staff, "pages/users.py")
    at.selectbox(key="users_account").select(a.account_id).run()
    prefix = f"ua{a.account_id}"
    at.selectbox(key=f"{prefix}_pick").select(a.users["annotator"].user_id).run()
    at.button(key=f"{prefix}_reset").click().run()
    assert "A link to set the password was e-mailed to annotator-a@test.example" in texts(at)
    assert "One-time password" not in texts(at)
    at.button(key=f"{prefix}_active").click().run()
    with Session(engine) as s:
        u = s.get(User, (a.partner_id, a.users["annotator"].user_id))
        assert not u.active


def test_password_reset_link_sets_a_new_password(world, engine):
    from core.accounts import accounts
    from core.accounts.auth import login
    from tests.test_security_auth import last_link

    a = world.a
    with Session(engine) as s, s.begin():
        accounts.reset_password(s, a.staff, a.partner_id, a.users["user"].user_id)
    token = last_link(engine, "user-a@test.example", "reset")
    at = app(state={})
    at.query_params["reset"] = token
    at.run()
    assert "Set a new password" in texts(at)
    at.text_input(key="reset_new").input("password1234")
    at.button(key="FormSubmitter:reset_password-Save password").click().run()
    assert "most common passwords" in texts(at)
    at.text_input(key="reset_new").input("my own new passphrase")
    at.button(key="FormSubmitter:reset_password-Save password").click().run()
    assert "Your new password is set" in texts(at)
    assert login(engine, "user-a@test.example", "my own new passphrase").user_id == a.users["user"].user_id


def test_partners_page_admin_creates_partner_and_staff(world, engine):
    at = app(world.admin, "pages/partners.py")
    at.text_input(key="np_name").input("")
    at.button(key="FormSubmitter:new_partner-Create partner").click().run()
    assert "Partner name is required." in texts(at)
    at.text_input(key="np_name").input("Delta Docs")
    at.button(key="FormSubmitter:new_partner-Create partner").click().run()
    at.run()
    assert "Delta Docs" in at.dataframe[0].value["Partner"].tolist()


def test_audit_page_shows_tenant_entries_only(world):
    at = app(world.a.staff, "pages/audit.py")
    df = at.dataframe[0].value
    assert len(df) > 0
    assert not any("staff-b@" in str(w) for w in df["Who"])


# ---------------------------------------------------------------- issue 15: feedback that gets lost


def _new_customer_expander(at):
    return next(e for e in at.expander if e.label == "New customer account")


def test_customer_form_errors_stay_open_next_to_fields_and_success_once(world, engine):
    at = app(world.a.staff, "pages/customers.py")
    assert not _new_customer_expander(at).proto.expanded  # rows exist: collapsed at first
    at.text_input(key="new_name").input("")
    at.button(key="FormSubmitter:new_form-Create customer").click().run()
    assert _new_customer_expander(at).proto.expanded  # the form stays open with its messages
    assert "Organisation name is required." in [unescape(e.value) for e in _new_customer_expander(at).error]
    at.text_input(key="new_name").input("Nordkapp Frakt")
    at.button(key="FormSubmitter:new_form-Create customer").click().run()
    assert not at.exception
    # once: a banner (shown by the router after the rerun; AppTest reruns the page alone), not a toast too
    assert at.session_state["flash"] == ("success", "Customer account “Nordkapp Frakt” created.")
    assert not at.toast
    assert at.text_input(key="new_name").value == ""  # the form is empty: no second account by accident


def test_duplicate_customer_name_warns_and_asks(world, engine):
    at = app(world.a.staff, "pages/customers.py")
    at.text_input(key="new_name").input("customer A1")
    at.button(key="FormSubmitter:new_form-Create customer").click().run()
    assert "already exists" in texts(at)
    with Session(engine) as s:
        assert s.query(CustomerAccount).filter(CustomerAccount.name.ilike("customer a1")).count() == 1
    at.button(key="cust_dup_yes").click().run()
    assert not at.exception
    with Session(engine) as s:
        assert s.query(CustomerAccount).filter(CustomerAccount.name.ilike("customer a1")).count() == 2


def test_add_user_errors_stay_open(world):
    at = app(world.a.users["manager"], "pages/users.py")
    at.text_input(key="own_new_email").input("nina@")
    at.button(key="FormSubmitter:own_add-Add user").click().run()
    exp = next(e for e in at.expander if e.label == "Add a user")
    assert exp.proto.expanded and "E-mail is not a valid e-mail address." in [unescape(e.value) for e in exp.error]
    at.text_input(key="own_new_name").input("Nina New")
    at.text_input(key="own_new_email").input("nina@test.example")
    at.button(key="FormSubmitter:own_add-Add user").click().run()
    assert at.text_input(key="own_new_email").value == ""


def test_customers_list_shows_plan_mode_usage_and_spend(world, engine):
    from tests.test_overview import _usage_and_plan

    _usage_and_plan(world, engine)
    at = app(world.a.staff, "pages/customers.py")
    df = at.dataframe[0].value
    row = df[df["Customer"] == "Customer a1"].iloc[0]
    assert row["Plan"] != "—" and row["Billing mode"] == "Customer pays"
    assert row["Pages"] == 1200 and row["Spend this month"] == 206
    other = df[df["Customer"] == "Customer a2"].iloc[0]
    assert other["Plan"] == "—"


def test_admin_pages_default_to_all_partners(world):
    at = app(world.admin, "pages/customers.py")
    assert at.selectbox(key="cust_partner").value is None
    assert {"Customer a1", "Customer b1"} <= set(at.dataframe[0].value["Customer"])
    at = app(world.admin, "pages/audit.py")
    assert at.selectbox(key="audit_partner").value == 0


def test_back_from_log_in_as_returns_to_the_customer(world):
    at = app(world.a.staff, "pages/customers.py")
    at.selectbox(key="cust_pick").select((world.a.partner_id, world.a.other_account_id)).run()
    at.button(key="cust_impersonate").click().run()
    assert at.session_state["impersonation_from"] == (world.a.partner_id, world.a.other_account_id)


def test_audit_log_reads_as_words(world, engine):
    from core.accounts import accounts

    with Session(engine) as s, s.begin():
        accounts.change_role(s, world.a.staff, world.a.partner_id, world.a.users["user"].user_id, "annotator")
    at = app(world.a.staff, "pages/audit.py")
    df = at.dataframe[0].value
    row = df[df["What"] == "Changed the role"].iloc[0]
    assert row["Record"] == "User" and "Role: User → Annotator" in row["Change"]
    assert "{" not in " ".join(df["Change"]) and "platform_admin" not in " ".join(df["Change"])

