"""Forged statement keys: the issuer and kind of a statement follow the customer's billing mode on the server;
a hand-built key naming another issuer (another partner's branding), another kind or a partial month is refused
and writes nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.errors import DomainError
from core.statements import lifecycle
from core.statements.planning import Key, month_period, plan_month
from db.engine import unit_of_work
from db.models.statements import Statement
from tests.billing_factories import PAGES_SPEC
from tests.statements_helpers import END, MONTH, START, assign


def _count(engine) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(Statement))


def test_forged_keys_are_refused_and_write_nothing(world, db):
    a, b = world.a, world.b
    assign(db, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "std")
    with Session(db) as s:
        planned = plan_month(s, a.staff, a.partner_id, MONTH)
    assert planned and month_period(MONTH) == (START, END)
    real = next(k for k in planned if k.account_id == a.account_id)
    forged = [
        replace(real, issuer_partner_id=b.partner_id),  # another partner's branding
        replace(real, issuer_partner_id=a.partner_id) if real.issuer_partner_id != a.partner_id
        else replace(real, issuer_partner_id=b.partner_id),  # not the issuer the billing mode gives
        replace(real, kind="collective"),
        Key(a.partner_id, "collective", b.partner_id, None, START, END),
        replace(real, period_start=START.replace(day=2)),  # not a whole month
        replace(real, account_id=a.other_account_id),  # an account without a plan: nothing to bill
    ]
    for key in forged:
        with pytest.raises(DomainError), unit_of_work(db) as s:
            lifecycle.generate(s, a.staff, key)
    assert _count(db) == 0
    with unit_of_work(db) as s:  # the key the server derives works
        assert lifecycle.generate(s, a.staff, real).action == "created"
    assert _count(db) == 1
