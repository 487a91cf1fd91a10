"""The Billing-model lab page in AppTest: staff compare a customer's current plan with a model built on the
spot and apply it; a synthetic profile works without a customer; customer roles have no access."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import plans
from db.models.billing import Plan, PlanAssignment
from tests.apptest import app, page_alone, texts, unescape
from tests.test_lab import customer  # noqa: F401  (fixture: customer a1 on a per-document plan with usage)

PAGE = "pages/lab.py"


def test_staff_compare_and_apply(world, db, customer):  # noqa: F811
    t = customer
    at = app(t.staff, PAGE)
    assert not at.exception
    at.date_input(key="lab_range").set_value((date(2024, 1, 1), date(2024, 3, 31))).run()
    at.selectbox(key="lab_kind_0").select("per_page").run()
    at.text_input(key="lab_price_0_per_page").input("0.09").run()
    assert not at.exception, at.exception
    body = texts(at)
    # the same numbers as tests/test_lab.py computes by hand
    summary = at.dataframe[1].value
    assert summary["Total"].tolist() == ["EUR 1,607.00", "EUR 1,548.00"]
    assert summary["Saving"].tolist()[1] == "EUR 59.00"
    assert "Break-even" in body and "documents" in body
    assert [unescape(m.label) for m in at.metric][0].startswith("Current: Plan docs")
    with Session(db) as s:
        n_before = s.scalar(select(func.count()).select_from(PlanAssignment))
    # applying: a customer-specific plan, assigned from the chosen date
    at.selectbox(key="lab_apply_model").select("Model 1")
    at.date_input(key="lab_apply_date").set_value(date(2024, 4, 1))
    next(b for b in at.button if b.label == "Apply to customer").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(PlanAssignment)) == n_before + 1
        cur = plans.current_assignment(s, t.staff, t.partner_id, t.account_id, on=date(2024, 4, 1))
        assert cur.assignment.plan_name.startswith("Model 1") and cur.assignment.effective_from == date(2024, 4, 1)
        assert s.scalar(select(Plan.description).where(Plan.id == cur.assignment.plan_id)).startswith("Made in the")


def test_synthetic_profile_and_existing_plans(world, db, customer):  # noqa: F811
    at = app(customer.staff, PAGE)
    at.radio(key="lab_source").set_value("A synthetic profile").run()
    at.selectbox(key="lab_profile").select("large").run()
    at.multiselect(key="lab_plans").select("Plan docs (docs)").run()
    assert not at.exception
    assert at.dataframe[1].value["Model"].tolist() == ["Plan docs (docs) (baseline)", "Model 1"]
    assert not [b for b in at.button if b.label == "Apply to customer"]  # nothing to apply to


def test_customer_roles_have_no_access(world, db):
    for role in ("manager", "annotator"):
        at = page_alone(world.actor(role), PAGE)
        assert "You do not have access to this page." in texts(at)


def test_pages_only_customer_defaults_to_per_page_and_no_fake_saving(world, db):
    """A customer that only uses pages: the first model is per page; a per-document model shows a note, not a
    EUR 0.00 'saving'."""
    from datetime import UTC, datetime

    from core.usage.ingest import record_events
    from tests.billing_factories import PAGES_SPEC, make_plan

    t = world.a
    _, plan_id = make_plan(db, t.staff, code="pages", spec_=PAGES_SPEC)
    with Session(db) as s, s.begin():
        plans.assign_plan(s, t.staff, t.partner_id, t.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
        record_events(s, t.staff, t.partner_id, [
            {"account_id": t.account_id, "metric": "pages", "quantity": 2000, "event_id": f"p{m}",
             "occurred_at": datetime(2024, m, 10, tzinfo=UTC)} for m in (1, 2, 3)])
    at = app(t.staff, PAGE)
    at.date_input(key="lab_range").set_value((date(2024, 1, 1), date(2024, 3, 31))).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lab_kind_0").value == "per_page"
    # current: 3 × (1,000 × 0.10 + 1,000 × 0.08 + 90) = 3 × 270 = 810.00; per page at 0.06: 6,000 × 0.06 = 360.00
    summary = at.dataframe[1].value
    assert summary["Total"].tolist() == ["EUR 810.00", "EUR 360.00"] and summary["Saving"].tolist()[1] == "EUR 450.00"
    assert not at.warning
    at.selectbox(key="lab_kind_0").select("per_document").run()
    assert not at.exception, at.exception
    summary = at.dataframe[1].value
    assert summary["Total"].tolist() == ["EUR 810.00", "EUR 0.00"] and summary["Saving"].tolist()[1] == "—"
    assert any("prices documents" in w.value and "not a saving" in w.value for w in at.warning)
    assert [m.delta for m in at.metric][1] == "not comparable"
