"""The demo's billing history: final statements for the month before last, drafts for the last month."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.billing import plans
from db.engine import unit_of_work
from db.models.statements import Statement
from seeds.loader import demo_statements
from tests.billing_factories import PAGES_SPEC, make_plan


def test_demo_statements_final_then_draft(world, engine):
    a = world.a
    _, plan_id = make_plan(engine, a.staff, code="pp", spec_=PAGES_SPEC, effective_from=date(2026, 1, 1))
    with unit_of_work(engine) as s:
        plans.assign_plan(s, a.staff, a.partner_id, a.account_id, plan_id=plan_id, effective_from=date(2026, 1, 1))
    demo_statements(engine, today=date(2026, 11, 22))
    with Session(engine) as s:
        rows = s.execute(select(Statement.period_start, Statement.status, Statement.number)
                         .where(Statement.partner_id == a.partner_id).order_by(Statement.period_start)).all()
    assert [(r.period_start, r.status) for r in rows] == [(date(2026, 9, 1), "final"), (date(2026, 10, 1), "draft")]
    assert rows[0].number and rows[1].number is None
