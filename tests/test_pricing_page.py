"""The Pricing page in AppTest: staff create a plan (and a bad one is refused with its message), assign it
with the live preview; a Manager sees their own plan read-only; Users and Annotators have no access."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan, PlanAssignment
from tests.apptest import app, texts
from tests.billing_factories import PAGES_SPEC, make_plan

PAGE = "pages/pricing.py"


def button(at, label):
    return next(b for b in at.button if b.label == label)


def n_plans(db) -> int:
    with Session(db) as s:
        return s.scalar(select(func.count()).select_from(Plan))


def form_gen(at) -> int:
    try:
        return at.session_state["pr_c_gen"]
    except KeyError:
        return 0


def add_charge(at, cid, metric, model, **fields):
    """The builder shows the chosen model's fields only: pick the model first."""
    at.selectbox(key="pr_c_model").select(model).run()
    gen = form_gen(at)
    box = at.selectbox(key="pr_c_metric")
    if box.format_func(metric) not in box.options:  # not one of the partner's metrics: show the whole catalogue
        at.toggle(key="pr_all_metrics").set_value(True).run()
    at.selectbox(key="pr_c_metric").select(metric)
    at.text_input(key=f"pr_c_id_{gen}").input(cid)
    for f, v in fields.items():
        at.text_input(key=f"pr_c_{f}_{gen}").input(v)
    button(at, "Add charge").click().run()
    assert not at.exception


def test_staff_creates_plan_from_the_form_builder(world, db):
    at = app(world.a.staff, PAGE)
    assert not at.exception
    assert "No plans yet" in texts(at)
    at.text_input(key="pr_name").input("Standard")
    at.text_input(key="pr_code").input("std")
    add_charge(at, "pages", "pages", "per_unit", unit_price="0.10", unit="pages")
    at.text_input(key="pr_f_id").input("base")
    at.text_input(key="pr_f_amount").input("99")
    button(at, "Add fee").click().run()
    button(at, "Create plan").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    with Session(db) as s:
        plan = s.scalar(select(Plan))
        detail = plans.get_plan(s, world.a.staff, plan.partner_id, plan.id)
    assert (plan.name, plan.code, plan.currency, plan.partner_id) == ("Standard", "std", "EUR", world.a.partner_id)
    spec = detail.spec()
    assert str(spec.charge("pages").unit_price) == "0.10" and str(spec.fee("base").amount) == "99"
    assert "Standard" in at.dataframe[0].value["Plan"].tolist()


def test_bad_plan_refused_with_message_and_nothing_written(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("Broken")
    at.text_input(key="pr_code").input("broken")
    add_charge(at, "pages", "pages", "per_unit", unit_price="-0.10")
    # the charge is refused as soon as it is added: its problem is shown and the draft stays empty
    assert "charge.unit_price: unit price must not be negative, got -0.10" in [e.value for e in at.error]
    assert at.session_state["pr_draft"]["charges"] == []
    at.text_input(key="pr_f_id").input("base")
    at.text_input(key="pr_f_amount").input("-5")
    button(at, "Add fee").click().run()
    button(at, "Create plan").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert "fees[0].amount: fee amount must not be negative, got -5" in errors
    assert n_plans(db) == 0


def test_overlapping_tiers_refused_via_json(world, db):
    at = app(world.a.staff, PAGE)
    at.text_input(key="pr_name").input("Tiers")
    at.text_input(key="pr_code").input("tiers")
    bad = {"charges": [{"id": "pages", "metric": "pages", "model": "graduated",
                        "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"},
                                  {"first": 900, "last": None, "unit_price": "0.08"}]}], "fees": []}
    at.text_area(key="pr_json").input(json.dumps(bad))
    button(at, "Use this JSON").click().run()
    button(at, "Create plan").click().run()
    errors = [e.value for e in at.error]
    assert "charges[0].tiers[1]: tier starts at 900 but the previous tier ends at 1000: overlap" in errors
    assert n_plans(db) == 0


def test_staff_assigns_plan_and_sees_preview(world, db):
    a = world.a
    make_plan(db, a.staff, code="std")
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_customer").select(a.account_id)
    at.run()
    at.text_area(key="pr_assign_overrides").input("fees.base.amount = 80")
    button(at, "Assign plan").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        row = s.scalar(select(PlanAssignment))
    assert row.overrides == {"fees.base.amount": "80"} and row.account_id == a.account_id
    at.run()
    text = texts(at)
    assert "Current plan: Plan std" in text
    assert "At this month's usage so far, this customer would pay EUR 80.00." in text


def test_bad_override_refused_on_page(world, db):
    a = world.a
    make_plan(db, a.staff, code="std")
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_customer").select(a.account_id)
    at.run()
    at.text_area(key="pr_assign_overrides").input("charges.nope.unit_price = 1")
    button(at, "Assign plan").click().run()
    assert any("no charge with id 'nope'" in e.value for e in at.error)
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(PlanAssignment)) == 0


def test_manager_sees_own_plan_read_only(world, db):
    a = world.a
    pid, plan_id = make_plan(db, a.staff, code="std", spec_=PAGES_SPEC)
    with Session(db) as s, s.begin():
        plans.assign_plan(s, a.staff, pid, a.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    at = app(world.actor("manager"), PAGE)
    assert not at.exception
    text = texts(at)
    assert "Plan std" in text and "At this month's usage so far, you would pay EUR 90.00." in text
    assert not [b for b in at.button if b.label in ("Create plan", "Assign plan", "Save as new version")]
    assert not at.text_input  # nothing to edit


def test_user_and_annotator_have_no_pricing_page(world):
    from pages.common import visible_pages

    for role in ("user", "annotation_manager", "annotator"):
        actor = world.actor(role)
        assert PAGE not in [p[1] for p in visible_pages(actor)]
        at = app(actor)
        assert not at.exception
        with pytest.raises(ValueError, match="Could not find a navigation page"):  # not even by URL
            at.switch_page(PAGE)
    assert PAGE in [p[1] for p in visible_pages(world.actor("manager"))]


def test_staff_saves_new_version_and_archives(world, db):
    a = world.a
    pid, plan_id = make_plan(db, a.staff, code="std", effective_from=date(2024, 1, 1))
    at = app(a.staff, PAGE)
    at.selectbox(key="pr_edit").select((pid, plan_id))
    at.run()
    add_charge(at, "api", "api_requests", "threshold", threshold="500000", threshold_price="0.017")
    at.date_input(key="pr_eff_version").set_value(date(2024, 5, 1))
    button(at, "Save as new version").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        versions = plans.versions_of(s, pid, plan_id)
    assert [(v.version, v.effective_from) for v in versions] == [(1, date(2024, 1, 1)), (2, date(2024, 5, 1))]
    assert [c["id"] for c in versions[1].spec["charges"]] == ["pages", "api"]
    at.selectbox(key="pr_edit").select((pid, plan_id))
    at.run()
    button(at, "Archive plan").click().run()
    with Session(db) as s:
        assert s.get(Plan, (pid, plan_id)).archived


def test_admin_opens_pricing_for_platform_plans(world):
    at = app(world.admin, PAGE)
    assert not at.exception
    assert at.radio(key="pr_subject").options == ["customer accounts",
                                                 "partners (partner-level fees, e.g. client-count bands)"]
