"""The billing-model lab (core/lab/compare.py): its numbers are the billing engine's, break-even volumes, applying a
model goes through plan assignment and the audit log, and nothing else is saved."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.billing import plans
from core.billing.rating import rate_account
from core.errors import PermissionDenied, ValidationError
from core.lab import compare as lab
from core.usage.ingest import record_events
from db.models.accounts import AuditEntry as AuditLog
from tests.billing_factories import PAGES_SPEC, make_plan

DOCS_SPEC = {"currency": "EUR", "charges": [
    {"id": "docs", "metric": "documents", "model": "volume",
     "tiers": [{"first": 1, "last": 1000, "unit_price": "0.40"}, {"first": 1001, "last": None, "unit_price": "0.30"}]}],
    "fees": [{"id": "base", "kind": "base", "amount": "49"}]}


def _usage(engine, actor, partner_id, account_id, rows):
    with Session(engine) as s, s.begin():
        record_events(s, actor, partner_id, [
            {"account_id": account_id, "metric": metric, "quantity": q,
             "occurred_at": datetime(d.year, d.month, d.day, 12, tzinfo=UTC), "event_id": f"e{i}"}
            for i, (d, metric, q) in enumerate(rows)])


@pytest.fixture
def customer(world, db):
    """Customer a1 on a per-document plan since January 2024, with three months of usage."""
    t = world.a
    _, plan_id = make_plan(db, t.staff, code="docs", spec_=DOCS_SPEC)
    with Session(db) as s, s.begin():
        plans.assign_plan(s, t.staff, t.partner_id, t.account_id, plan_id=plan_id, effective_from=date(2024, 1, 1))
    _usage(db, t.staff, t.partner_id, t.account_id, [
        (date(2024, 1, 5), "documents", 800), (date(2024, 1, 20), "pages", 3000),
        (date(2024, 2, 3), "documents", 700), (date(2024, 2, 17), "documents", 600), (date(2024, 2, 17), "pages", 5200),
        (date(2024, 3, 9), "documents", 2500), (date(2024, 3, 9), "pages", 9000)])
    return t


def test_lab_numbers_equal_the_billing_engine(db, customer):
    t = customer
    with Session(db) as s:
        acc = lab.lab_for_account(s, t.staff, t.partner_id, t.account_id, date(2024, 1, 1), date(2024, 3, 31))
        assert acc.usage[date(2024, 2, 1)] == {"documents": D(1300), "pages": D(5200)}
        pages = lab.LabModel("Per page", lab.model_spec("EUR", "per_page", unit_price="0.09"))
        result = lab.reprice(acc.usage, [acc.current, pages])
        engine_totals = {m: rate_account(s, t.staff, t.partner_id, t.account_id, m, lab.month_end(m)).total
                         for m in acc.usage}
    cur, per_page = result.models
    assert cur.current and cur.per_month == engine_totals
    # by hand: Jan 800 × 0.40 + 49 = 369.00; Feb 1,300 × 0.30 + 49 = 439.00; Mar 2,500 × 0.30 + 49 = 799.00
    assert cur.per_month == {date(2024, 1, 1): D("369.00"), date(2024, 2, 1): D("439.00"), date(2024, 3, 1): D("799.00")}
    assert cur.total == D("1607.00")
    # per page: (3,000 + 5,200 + 9,000) × 0.09 = 17,200 × 0.09 = 1,548.00, saving 59.00
    assert per_page.total == D("1548.00") and per_page.saving == D("59.00") and per_page.difference == D("-59.00")
    assert per_page.saving_pct == D("3.7")
    # effective prices: 1,607.00 / 4,600 documents and / 17,200 pages
    assert cur.per_document == D("0.3493") and cur.per_page == D("0.0934")
    assert result.table()[0] == {"month": "2024-01", "Current: Plan docs": D("369.00"), "Per page": D("270.00")}


def test_break_even_between_two_models():
    usage = {date(2024, 1, 1): {"documents": D(400)}, date(2024, 2, 1): {"documents": D(600)}}
    per_doc = lab.LabModel("Per document", lab.model_spec("EUR", "per_document", unit_price="0.10"), current=True)
    with_fee = lab.LabModel("Fee + cheaper documents", lab.model_spec("EUR", "per_document", unit_price="0.05",
                                                                      base_fee="50"))
    result = lab.reprice(usage, [per_doc, with_fee])
    (be,) = result.break_even
    # 0.10 q = 50 + 0.05 q at q = 1,000 documents a month; below it the plain per-document price is cheaper
    assert be.metric == "documents" and be.volume == 1000 and be.cheaper_below == "Per document"
    assert result.models[1].total == D("150.00") and result.models[0].total == D("100.00")


def test_models_built_on_the_spot_are_validated():
    allowance = lab.model_spec("EUR", "allowance", metric="pages", included_units="1000", overage_price="0.05")
    assert lab.reprice({date(2024, 1, 1): {"pages": D(1200)}}, [lab.LabModel("A", allowance)]).models[0].total == D("10.00")
    pkg = lab.model_spec("EUR", "package", metric="pages", package_size="500", unit_price="20")
    assert lab.reprice({date(2024, 1, 1): {"pages": D(1001)}}, [lab.LabModel("P", pkg)]).models[0].total == D("60.00")
    tiers = lab.model_spec("EUR", "tiers", tier_mode="graduated", tiers=[
        {"first": 1, "last": 1000, "unit_price": "0.10"}, {"first": 1001, "last": None, "unit_price": "0.08"}])
    assert lab.reprice({date(2024, 1, 1): {"documents": D(1200)}}, [lab.LabModel("T", tiers)]).models[0].total == D("116.00")
    with pytest.raises(ValidationError) as exc:
        lab.model_spec("EUR", "tiers", tiers=[{"first": 1, "last": 1000, "unit_price": "0.10"},
                                             {"first": 900, "last": None, "unit_price": "0.08"}])
    assert "overlap" in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        lab.model_spec("EUR", "per_page", unit_price="abc")
    assert "unit_price" in exc.value.errors
    with pytest.raises(ValidationError):
        lab.reprice({date(2024, 1, 1): {}}, [lab.LabModel("A", allowance),
                                             lab.LabModel("N", lab.model_spec("NOK", "per_page", unit_price="1"))])


def test_synthetic_profiles():
    u = lab.synthetic_usage("medium", date(2024, 1, 15), date(2024, 3, 2))
    assert list(u) == [date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]
    assert u[date(2024, 1, 1)] == {"documents": D(2500), "pages": D(10000)}
    assert u[date(2024, 2, 1)] == {"documents": D(2575), "pages": D(10300)}  # 3 % growth


def test_nothing_saved_until_applied_then_assignment_and_audit(db, customer):
    t = customer
    with Session(db) as s:
        before = s.scalar(select(func.count()).select_from(AuditLog))
        acc = lab.lab_for_account(s, t.staff, t.partner_id, t.account_id, date(2024, 1, 1), date(2024, 3, 31))
        lab.reprice(acc.usage, [acc.current, lab.LabModel("X", lab.model_spec("EUR", "per_page", unit_price="0.09"))])
        options = lab.comparable_plans(s, t.staff, t.partner_id, "EUR")
        assert [o.name for o in options] == ["Plan docs (docs)"]
        s.rollback()
        assert s.scalar(select(func.count()).select_from(AuditLog)) == before
    with Session(db) as s, s.begin():
        spec = lab.model_spec("EUR", "per_page", unit_price="0.09", base_fee="10")
        lab.apply_model(s, t.staff, t.partner_id, t.account_id, spec=spec, name="Pages at 0.09",
                        effective_from=date(2024, 4, 1))
    with Session(db) as s:
        cur = plans.current_assignment(s, t.staff, t.partner_id, t.account_id, on=date(2024, 4, 1))
        assert cur.assignment.plan_name == "Pages at 0.09" and cur.assignment.effective_from == date(2024, 4, 1)
        actions = [a for (a,) in s.execute(select(AuditLog.action).where(AuditLog.id > 0).order_by(AuditLog.id))]
        assert actions[-2:] == ["create", "assign_plan"]
        # an existing plan can be applied the same way
    _, other = make_plan(db, t.staff, code="pages", spec_=PAGES_SPEC)
    with Session(db) as s, s.begin():
        lab.apply_model(s, t.staff, t.partner_id, t.account_id, plan_id=other, effective_from=date(2024, 5, 1))
    with Session(db) as s:
        assert plans.current_assignment(s, t.staff, t.partner_id, t.account_id,
                                        on=date(2024, 5, 1)).assignment.plan_id == other


def test_lab_permissions(world, db, customer):
    t = customer
    with Session(db) as s:
        for actor in (world.b.staff, t.users["manager"], t.users["annotator"]):
            with pytest.raises(PermissionDenied):
                lab.lab_for_account(s, actor, t.partner_id, t.account_id, date(2024, 1, 1), date(2024, 3, 31))
        with pytest.raises(PermissionDenied):
            lab.apply_model(s, world.b.staff, t.partner_id, t.account_id, plan_id=1, effective_from=date(2024, 5, 1))
        assert lab.lab_for_account(s, world.admin, t.partner_id, t.account_id, date(2024, 1, 1), date(2024, 1, 31))


def test_default_model_follows_the_dominant_billable_metric():
    pages_only = {date(2024, 1, 1): {"pages": D(12000)}, date(2024, 2, 1): {"pages": D(11000)}}
    assert lab.default_model(pages_only) == ("per_page", "pages")
    assert lab.default_model({date(2024, 1, 1): {"credits": D(30000)}}) == ("credits", "credits")
    assert lab.default_model({date(2024, 1, 1): {"messages": D(3000), "keywords": D(4)}}) == ("per_unit", "messages")
    assert lab.default_model({date(2024, 1, 1): {}}) == ("per_document", "documents")
    # more pages than documents, but the current plan bills documents: documents are what is billed
    both = {date(2024, 1, 1): {"documents": D(900), "pages": D(3600)}}
    assert lab.default_model(both) == ("per_page", "pages")
    docs_plan = lab.LabModel("Current", lab.model_spec("EUR", "per_document", unit_price="0.30"), current=True)
    assert lab.default_model(both, docs_plan) == ("per_document", "documents")
    # per unit of any metric
    sms = lab.model_spec("USD", "per_unit", metric="messages", unit_price="0.02")
    assert lab.reprice({date(2024, 1, 1): {"messages": D(3000)}}, [lab.LabModel("S", sms)]).models[0].total == D("60.00")


def test_a_model_on_a_metric_never_used_is_not_comparable():
    pages_only = {date(2024, 1, 1): {"pages": D(12000)}}
    per_page = lab.LabModel("Current", lab.model_spec("EUR", "per_page", unit_price="0.05"), current=True)
    per_doc = lab.LabModel("Per document", lab.model_spec("EUR", "per_document", unit_price="0.30"))
    cur, docs = lab.reprice(pages_only, [per_page, per_doc]).models
    # 0.00 against 600.00 would look like a saving of 600.00: flagged instead, with the metric it lacks
    assert docs.total == D("0.00") and docs.comparable is False and docs.unused_metrics == ("documents",)
    assert cur.comparable is True and cur.unused_metrics == ()
