"""A month to bill (October 2026) for the worker tests: two partners' customers with a plan and usage."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM
from core.worker import cycle
from db.engine import unit_of_work
from tests.billing_factories import PAGES_SPEC
from tests.statements_helpers import assign, record

NOV_1 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def month_to_bill(world, db, review_days: int = 2) -> None:
    for t, code in ((world.a, "std-a"), (world.b, "std-b")):
        assign(db, t.staff, t.partner_id, t.account_id, PAGES_SPEC, code)
        record(db, t.staff, t.partner_id, t.account_id, "pages", 1200, f"e-{code}")
        with unit_of_work(db) as s:
            accounts.update_account(s, SYSTEM, t.partner_id, t.account_id, billing_email=f"billing-{code}@example.com")
    with Session(db) as s, s.begin():
        house = accounts.house_partner(s).id
        cycle.save_settings(s, SYSTEM, house, enabled=True, review_days=review_days)
