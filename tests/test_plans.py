"""Plan catalogue and assignment services against the real database: permissions per role, tenancy,
validation (nothing written on bad input), versions, overrides, currency."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import SYSTEM
from core.billing import plans
from core.billing.describe import describe_spec
from core.errors import Conflict, PermissionDenied, ValidationError
from db.models import AuditEntry
from db.models.billing import Plan, PlanAssignment, PlanVersion
from tests.billing_factories import BANDS_SPEC, PAGES_SPEC, make_plan, spec


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_create_plan_writes_version_1_and_audit(world, session):
    staff = world.a.staff
    p = plans.create_plan(session, staff, name="Standard", code="std", currency="EUR", spec=PAGES_SPEC,
                          effective_from=date(2024, 1, 1), description="Pages and a base fee")
    session.flush()
    assert p.partner_id == world.a.partner_id
    detail = plans.get_plan(session, staff, p.partner_id, p.id)
    assert [v.version for v in detail.versions] == [1]
    assert detail.latest.spec["charges"][0]["tiers"][0]["unit_price"] == "0.10"  # exact, as strings
    assert detail.spec().charge("pages").tiers[1].unit_price == D("0.08")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.entity == "plan"))
    assert entry.action == "create" and entry.after["code"] == "std"


@pytest.mark.parametrize("bad, key, message", [
    ({"charges": [{"id": "pages", "metric": "pages", "model": "graduated",
                   "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"},
                             {"first": 900, "last": None, "unit_price": "0.08"}]}]},
     "spec.charges[0].tiers[1]", "overlap"),
    ({"charges": [{"id": "pages", "metric": "pages", "model": "graduated",
                   "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"},
                             {"first": 1002, "last": None, "unit_price": "0.08"}]}]},
     "spec.charges[0].tiers[1]", "gap"),
    ({"charges": [{"id": "p", "metric": "pages", "model": "per_unit", "unit_price": "-0.10"}]},
     "spec.charges[0].unit_price", "must not be negative"),
    ({"charges": [{"id": "p", "metric": "pagez", "model": "per_unit", "unit_price": "0.10"}]},
     "spec.charges[0].metric", "unknown metric 'pagez'"),
    ({"currency": "NOK"}, "spec.currency", "plan currency is NOK but EUR is expected"),
    ({"charges": [{"id": "p", "metric": "pages", "model": "package", "unit_price": "5", "package_size": "0"}]},
     "spec.charges[0].package_size", "must be"),
])
def test_bad_plan_refused_with_path_and_nothing_written(world, session, bad, key, message):
    with pytest.raises(ValidationError) as exc:
        plans.create_plan(session, world.a.staff, name="Bad", code="bad", currency="EUR", spec=spec(PAGES_SPEC, **bad))
    assert message in exc.value.errors[key]
    assert count(session, Plan) == 0 and count(session, PlanVersion) == 0
    assert session.scalar(select(func.count()).where(AuditEntry.entity == "plan")) == 0


def test_plan_fields_checked(world, session):
    with pytest.raises(ValidationError) as exc:
        plans.create_plan(session, world.a.staff, name=" ", code="no spaces", currency="XXX", spec=PAGES_SPEC)
    assert set(exc.value.errors) >= {"name", "code", "currency"}
    make_plan(session.get_bind(), world.a.staff, code="dup")
    with pytest.raises(ValidationError) as exc:
        plans.create_plan(session, world.a.staff, name="Again", code="DUP", currency="EUR", spec=PAGES_SPEC)
    assert "already exists" in exc.value.errors["code"]


@pytest.mark.parametrize("role", ["manager", "user", "annotation_manager", "annotator"])
def test_customer_roles_cannot_manage_or_list_plans(world, session, role):
    actor = world.actor(role)
    with pytest.raises(PermissionDenied):
        plans.create_plan(session, actor, name="X", code="x", currency="EUR", spec=PAGES_SPEC)
    with pytest.raises(PermissionDenied):
        plans.list_plans(session, actor)
    assert count(session, Plan) == 0


def test_cross_tenant_denied_and_nothing_written(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff)
    staff_b = world.b.staff
    with pytest.raises(PermissionDenied):
        plans.create_plan(session, staff_b, partner_id=world.a.partner_id, name="X", code="x", currency="EUR",
                          spec=PAGES_SPEC)
    with pytest.raises(PermissionDenied):
        plans.new_version(session, staff_b, pid, plan_id, spec=PAGES_SPEC, effective_from=date(2024, 2, 1))
    with pytest.raises(PermissionDenied):
        plans.archive_plan(session, staff_b, pid, plan_id)
    with pytest.raises(PermissionDenied):
        plans.get_plan(session, staff_b, pid, plan_id)
    with pytest.raises(PermissionDenied):  # B's staff may not put A's customer on a plan
        plans.assign_plan(session, staff_b, world.a.partner_id, world.a.account_id, plan_id=plan_id,
                          effective_from=date(2024, 1, 1))
    with pytest.raises(ValidationError, match="not available"):  # nor use A's plan for their own customer
        plans.assign_plan(session, staff_b, world.b.partner_id, world.b.account_id, plan_id=plan_id,
                          plan_partner_id=world.a.partner_id, effective_from=date(2024, 1, 1))
    with pytest.raises(PermissionDenied):
        plans.assignment_history(session, staff_b, world.a.partner_id, world.a.account_id)
    assert [r.code for r in plans.list_plans(session, staff_b)] == []
    assert count(session, PlanVersion) == 1 and count(session, PlanAssignment) == 0


def test_new_version_effective_dates(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff, effective_from=date(2024, 3, 1))
    cheaper = spec(PAGES_SPEC)
    cheaper["charges"][0]["tiers"][0]["unit_price"] = "0.09"
    with pytest.raises(ValidationError) as exc:
        plans.new_version(session, world.a.staff, pid, plan_id, spec=cheaper, effective_from=date(2024, 2, 1))
    assert "before the latest" in exc.value.errors["effective_from"]
    v = plans.new_version(session, world.a.staff, pid, plan_id, spec=cheaper, effective_from=date(2024, 4, 11))
    assert v.version == 2
    detail = plans.get_plan(session, world.a.staff, pid, plan_id)
    assert [x.version for x in detail.versions] == [1, 2]
    assert detail.versions[0].spec["charges"][0]["tiers"][0]["unit_price"] == "0.10"  # v1 untouched
    assert plans.version_on(detail.versions, date(2024, 4, 10)).version == 1
    assert plans.version_on(detail.versions, date(2024, 4, 11)).version == 2
    assert plans.version_on(detail.versions, date(2023, 1, 1)).version == 1  # first version covers the past
    with pytest.raises(ValidationError) as exc:  # bad version refused, nothing written
        plans.new_version(session, world.a.staff, pid, plan_id, effective_from=date(2024, 5, 1),
                          spec=spec(PAGES_SPEC, fees=[{"id": "base", "kind": "base", "amount": "-1"}]))
    assert "spec.fees[0].amount" in exc.value.errors
    assert len(plans.versions_of(session, pid, plan_id)) == 2


def test_archive_and_catalogue_visibility(world, db, session):
    pid, own = make_plan(db, world.a.staff, code="own")
    house = house_partner(session).id
    _, offered = make_plan(db, world.admin, code="platform-std", partner_id=house)
    _, bands = make_plan(db, world.admin, code="bands", partner_id=house, spec_=BANDS_SPEC, subject="partner")
    make_plan(db, world.b.staff, code="b-only")
    codes = [r.code for r in plans.list_plans(session, world.a.staff)]
    assert sorted(codes) == ["own", "platform-std"]  # not B's plan, not the partner-level plan
    assert {r.code for r in plans.list_plans(session, world.admin)} == {"own", "platform-std", "bands", "b-only"}
    assert plans.get_plan(session, world.a.staff, house, offered).plan.code == "platform-std"
    with pytest.raises(PermissionDenied):  # staff cannot change the platform's plan
        plans.archive_plan(session, world.a.staff, house, offered)
    plans.archive_plan(session, world.a.staff, pid, own)
    assert [r.code for r in plans.list_plans(session, world.a.staff)] == ["platform-std"]
    assert "own" in [r.code for r in plans.list_plans(session, world.a.staff, include_archived=True)]
    with pytest.raises(Conflict):
        plans.new_version(session, world.a.staff, pid, own, spec=PAGES_SPEC, effective_from=date(2025, 1, 1))
    with pytest.raises(ValidationError) as exc:
        plans.assign_plan(session, world.a.staff, world.a.partner_id, world.a.account_id, plan_id=own,
                          effective_from=date(2024, 1, 1))
    assert "archived" in exc.value.errors["plan"]
    plans.unarchive_plan(session, world.a.staff, pid, own)
    assert "own" in [r.code for r in plans.list_plans(session, world.a.staff)]


def test_assign_with_overrides_and_history(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff)
    a = plans.assign_plan(session, world.a.staff, pid, world.a.account_id, plan_id=plan_id,
                          effective_from=date(2024, 1, 1), overrides={"charges.pages.tiers.0.unit_price": "0.095"})
    assert a.plan_partner_id == pid
    plans.assign_plan(session, world.a.staff, pid, world.a.account_id, plan_id=plan_id,
                      effective_from=date(2024, 6, 1), overrides=plans.parse_overrides_text("fees.base.amount = 80"))
    hist = plans.assignment_history(session, world.a.staff, pid, world.a.account_id)
    assert [h.effective_from for h in hist] == [date(2024, 6, 1), date(2024, 1, 1)]
    cur = plans.current_assignment(session, world.a.staff, pid, world.a.account_id, on=date(2024, 3, 1))
    assert cur.spec.charge("pages").tiers[0].unit_price == D("0.095") and cur.version == 1
    cur = plans.current_assignment(session, world.a.staff, pid, world.a.account_id, on=date(2024, 7, 1))
    assert cur.spec.fee("base").amount == D("80") and cur.spec.charge("pages").tiers[0].unit_price == D("0.10")
    assert plans.current_assignment(session, world.a.staff, pid, world.a.other_account_id) is None
    # the account's Manager sees their own plan, not the other account's; Users do not see prices
    mgr = world.actor("manager")
    assert plans.current_assignment(session, mgr, pid, world.a.account_id, on=date(2024, 7, 1)) is not None
    with pytest.raises(PermissionDenied):
        plans.current_assignment(session, mgr, pid, world.a.other_account_id)
    for role in ("user", "annotation_manager", "annotator"):
        with pytest.raises(PermissionDenied):
            plans.current_assignment(session, world.actor(role), pid, world.a.account_id)
    with pytest.raises(PermissionDenied):
        plans.assign_plan(session, mgr, pid, world.a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))


def test_bad_overrides_refused(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff)
    for overrides, needle in [
        ({"charges.nope.unit_price": "1"}, "no charge with id 'nope'"),
        ({"fees.base.amount": "-5"}, "must not be negative"),
        ({"charges.pages.tiers.1.first": "900"}, "overlap"),
    ]:
        with pytest.raises(ValidationError) as exc:
            plans.assign_plan(session, world.a.staff, pid, world.a.account_id, plan_id=plan_id,
                              effective_from=date(2024, 1, 1), overrides=overrides)
        assert needle in exc.value.errors["overrides"]
    with pytest.raises(ValidationError) as exc:
        plans.parse_overrides_text("charges.pages.unit_price 0.09")
    assert "line 1" in exc.value.errors["overrides"]
    assert count(session, PlanAssignment) == 0


def test_new_version_refused_when_assignment_overrides_would_break(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff)
    with Session(db) as s, s.begin():
        plans.assign_plan(s, world.a.staff, pid, world.a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1),
                          overrides={"fees.base.amount": "80"})
    with pytest.raises(ValidationError) as exc:
        plans.new_version(session, world.a.staff, pid, plan_id, spec=spec(PAGES_SPEC, fees=[]),
                          effective_from=date(2024, 2, 1))
    assert "no longer apply" in exc.value.errors["spec"] and "no fee with id 'base'" in exc.value.errors["spec"]


def test_currency_mismatch_refused(world, db, session):
    with Session(db, expire_on_commit=False) as s, s.begin():
        nok = accounts.create_account(s, SYSTEM, partner_id=world.a.partner_id, name="Norsk AS", country="NO",
                                      currency="NOK")
    pid, plan_id = make_plan(db, world.a.staff)
    with pytest.raises(ValidationError) as exc:
        plans.assign_plan(session, world.a.staff, pid, nok.id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    assert exc.value.errors["plan"] == ("Plan Plan std is in EUR but customer Norsk AS is billed in NOK: "
                                        "pick a plan in NOK.")
    assert count(session, PlanAssignment) == 0


def test_platform_plan_offered_and_partner_plans_admin_only(world, db, session):
    house = house_partner(session).id
    _, offered = make_plan(db, world.admin, code="platform-std", partner_id=house)
    _, bands = make_plan(db, world.admin, code="bands", partner_id=house, spec_=BANDS_SPEC, subject="partner")
    a = plans.assign_plan(session, world.a.staff, world.a.partner_id, world.a.account_id, plan_id=offered,
                          plan_partner_id=house, effective_from=date(2024, 1, 1))
    assert (a.partner_id, a.plan_partner_id) == (world.a.partner_id, house)
    with pytest.raises(ValidationError) as exc:  # a partner-level plan cannot price a customer
        plans.assign_plan(session, world.a.staff, world.a.partner_id, world.a.account_id, plan_id=bands,
                          plan_partner_id=house, effective_from=date(2024, 1, 1))
    assert "prices partners" in exc.value.errors["plan"]
    with pytest.raises(PermissionDenied):
        plans.assign_partner_plan(session, world.a.staff, world.a.partner_id, plan_id=bands,
                                  effective_from=date(2024, 1, 1))
    pa = plans.assign_partner_plan(session, world.admin, world.a.partner_id, plan_id=bands,
                                   effective_from=date(2024, 1, 1))
    assert pa.subject == "partner" and pa.account_id is None
    # staff see the partner-level plan they are on (read-only)
    assert plans.current_assignment(session, world.a.staff, world.a.partner_id, None).assignment.plan_code == "bands"
    with pytest.raises(ValidationError) as exc:
        plans.create_plan(session, world.a.staff, name="Mine", code="mine", currency="EUR", spec=BANDS_SPEC,
                          subject="partner")
    assert "platform" in exc.value.errors["subject"]


def test_versions_are_immutable_rows(world, db, session):
    pid, plan_id = make_plan(db, world.a.staff)
    with db.connect() as c:
        n = c.execute(text("select count(*) from plan_versions where plan_id = :p"), {"p": plan_id}).scalar()
    assert n == 1
    assert not hasattr(plans, "update_version")  # prices change only through new versions


def test_describe_spec_plain_language(world):
    rows = describe_spec(plans.plan_from_dict(PAGES_SPEC))
    assert rows[0]["price"] == "graduated: 1–1,000: 0.10; 1,001+: 0.08"  # grouped like statements
    assert rows[1]["price"] == "90.00 per month, billed in arrears"
