"""The Money page's margins read a partner's range in a fixed number of queries (issue 10, task 5), with
exactly the answers of the per-client queries: more clients, the same number of queries."""

from __future__ import annotations

from datetime import date

from sqlalchemy import event
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM
from core.billing import margin, ratecard_admin, ratecards
from core.billing.rating import segments_for
from core.pricing import rate
from db.engine import unit_of_work
from tests.statements_helpers import END, START, assign, record, set_mode
from tests.test_margin import PAGES_LOW, build
from tests.test_ratecards import STANDARD


def _queries(engine, partner_id: int, start: date, end: date) -> tuple[int, margin.MarginReport]:
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with Session(engine) as s:
            rep = margin.compute_margins(s, partner_id, start, end)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen), rep


def _more_clients(world, engine, n: int) -> None:
    a = world.a
    for i in range(n):
        with unit_of_work(engine) as s:
            aid = accounts.create_account(s, SYSTEM, partner_id=a.partner_id, name=f"More {i:02d}", country="NO").id
        assign(engine, a.staff, a.partner_id, aid, PAGES_LOW, f"more{i}")
        set_mode(engine, a.staff, a.partner_id, aid, "agency" if i % 2 else "partner_prepaid")
        record(engine, a.staff, a.partner_id, aid, "pages", 100 + 10 * i, f"more-{i}")


def test_more_clients_same_number_of_queries(world, engine):
    build(world, engine)
    a = world.a
    before, rep = _queries(engine, a.partner_id, date(2026, 8, 1), END)
    first = {(r.customer, r.month): (r.revenue, r.cost) for r in rep.rows if r.account_id is not None}
    _more_clients(world, engine, 8)
    after, rep = _queries(engine, a.partner_id, date(2026, 8, 1), END)
    # 8 more clients over 3 months used to be about 8 × 3 × 5 more queries; now none more
    assert after == before, (before, after)
    again = {(r.customer, r.month): (r.revenue, r.cost) for r in rep.rows}
    assert {k: v for k, v in again.items() if k in first} == first
    assert sum(1 for r in rep.rows if r.customer.startswith("More")) == 8 * 3


def test_batched_answers_equal_the_per_client_queries_on_a_partner_basis_card(world, engine):
    """Each client's revenue and platform charge equal what the per-client services compute (the card's share
    of the partner's total pages included)."""
    build(world, engine)
    a = world.a
    _more_clients(world, engine, 4)
    with unit_of_work(engine) as s:
        ratecard_admin.set_partner_card(s, world.admin, a.partner_id, effective_from=date(2024, 1, 1),
                                        card={**STANDARD, "tier_basis": "partner"})
    _, rep = _queries(engine, a.partner_id, START, END)
    with Session(engine) as s:
        for r in rep.rows:
            if r.account_id is None:
                continue
            cost = ratecards.platform_cost(s, a.partner_id, r.account_id, START, END)
            if r.mode != "customer_pays":
                assert r.cost == (cost.value(r.mode) if cost else None), r
            segs = segments_for(s, a.partner_id, r.account_id, START, END)
            if r.revenue is not None and r.mode != "customer_pays":
                assert r.revenue == rate(segs, START, END).total, r
        assert len([r for r in rep.rows if r.cost]) >= 6
