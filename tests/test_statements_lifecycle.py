"""Statements: drafts recomputed freely, finalisation (number, snapshot, period lock), immutability of
finals (service and database), void, credit notes, permissions."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.statements import lifecycle, planning
from core.usage import periods
from db.engine import unit_of_work
from db.models import AuditEntry
from db.models.statements import Statement, StatementLine
from tests.billing_factories import PAGES_SPEC
from tests.statements_helpers import END, MONTH, START, D, assign, doc, generate, listed, record

ISSUED = date(2026, 11, 3)  # an injected clock: the issue date (and the number's year) never depend on the run day


def _setup(world, db):
    a = world.a
    assign(db, a.staff, a.partner_id, a.account_id, PAGES_SPEC, "std")
    record(db, a.staff, a.partner_id, a.account_id, "pages", 1200, "e1")
    return a


def _audits(db, action):
    with Session(db) as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "statement", AuditEntry.action == action))


def test_customer_pays_draft_is_recomputed_freely_and_idempotent(world, db):
    a = _setup(world, db)
    out = generate(db, a.staff, a.partner_id)
    assert [o.action for o in out] == ["created"]
    st = listed(db, a.staff, a.partner_id, month=MONTH)[0]
    assert (st.kind, st.status, st.account_id, st.issuer, st.number) == \
        ("statement", "draft", a.account_id, "Platform direct", None)
    assert st.total == D("206.00")  # 1000 × 0.10 + 200 × 0.08 + base fee 90
    d = doc(db, a.staff, a.partner_id, st.id)
    assert [ln.label for ln in d.lines] == ["pages", "base"]
    assert "1,000 × 0.10 + 200 × 0.08" in d.lines[0].explanation
    assert (d.period_start, d.period_end) == (START, END)
    # running again changes nothing (no write, no audit)
    assert [o.action for o in generate(db, a.staff, a.partner_id)] == ["unchanged"]
    assert _audits(db, "generate") == 1 and _audits(db, "regenerate") == 0
    # more usage: the draft is recomputed in place
    record(db, a.staff, a.partner_id, a.account_id, "pages", 100, "e2")
    assert [o.action for o in generate(db, a.staff, a.partner_id)] == ["updated"]
    assert listed(db, a.staff, a.partner_id)[0].total == D("214.00")
    assert _audits(db, "regenerate") == 1


def test_finalise_numbers_snapshots_locks_and_is_immutable(world, db):
    a = _setup(world, db)
    generate(db, a.staff, a.partner_id)
    sid = listed(db, a.staff, a.partner_id)[0].id
    # the platform issued it: the partner cannot finalise it
    with pytest.raises(PermissionDenied), unit_of_work(db) as s:
        lifecycle.finalise(s, a.staff, a.partner_id, sid)
    with unit_of_work(db) as s:
        st = lifecycle.finalise(s, world.admin, a.partner_id, sid, today=ISSUED)
        assert st.number == "PLATFORM-2026-000001" and st.sequence == 1
        assert (st.issued_on, st.due_on) == (ISSUED, date(2026, 11, 17))  # 14 days' terms
    with Session(db) as s:
        assert periods.is_locked(s, a.partner_id, a.account_id, START.replace(day=15))
    # late usage is a correction: regenerating leaves the final statement alone
    res = record(db, a.staff, a.partner_id, a.account_id, "pages", 500, "late")
    assert res.corrections == 1
    assert [o.action for o in generate(db, a.staff, a.partner_id)] == ["final"]
    d = doc(db, a.staff, a.partner_id, sid)
    assert d.total == D("206.0000") and d.issuer.name == "Platform direct"
    with pytest.raises(Conflict), unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, sid)
    # the database refuses any change to a final statement or its lines, and its deletion
    for sql in ("UPDATE statements SET total = 1 WHERE id = :i",
                "UPDATE statements SET status = 'draft' WHERE id = :i",
                "DELETE FROM statements WHERE id = :i",
                "UPDATE statement_lines SET amount = 0 WHERE statement_id = :i",
                "DELETE FROM statement_lines WHERE statement_id = :i"):
        with pytest.raises(DBAPIError, match="final"), db.begin() as c:
            c.execute(text(sql), {"i": sid})
    with pytest.raises(DBAPIError), Session(db) as s, s.begin():
        s.execute(update(Statement).where(Statement.id == sid).values(snapshot={}))
    with pytest.raises(DBAPIError), Session(db) as s, s.begin():
        s.add(StatementLine(partner_id=a.partner_id, statement_id=sid, line_no=99, kind="fee", label="x",
                            amount=D(1)))
    assert doc(db, a.staff, a.partner_id, sid).total == D("206.0000")


def test_void_draft_and_void_final_issues_full_credit_note(world, db):
    a = _setup(world, db)
    generate(db, a.staff, a.partner_id)
    sid = listed(db, a.staff, a.partner_id)[0].id
    with unit_of_work(db) as s:
        lifecycle.void(s, world.admin, a.partner_id, sid)
    # a voided draft frees the month: generating again makes a new draft
    assert [o.action for o in generate(db, a.staff, a.partner_id)] == ["created"]
    sid2 = next(r.id for r in listed(db, a.staff, a.partner_id) if r.status == "draft")
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, sid2)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        lifecycle.void(s, world.admin, a.partner_id, sid2)
    assert "reason" in e.value.errors
    with unit_of_work(db) as s:
        lifecycle.void(s, world.admin, a.partner_id, sid2, "Wrong plan")
    rows = {r.kind + ":" + r.status: r for r in listed(db, a.staff, a.partner_id)}
    cn = rows["credit_note:final"]
    assert rows["statement:void"].id == sid2 and cn.credit_note_for == sid2
    assert cn.total == D("-206.00") and cn.number.startswith("PLATFORM-CN-")
    d = doc(db, a.staff, a.partner_id, cn.id)
    assert d.reason == "Wrong plan" and d.credit_note_for == rows["statement:void"].number
    with pytest.raises(Conflict), unit_of_work(db) as s:
        lifecycle.void(s, world.admin, a.partner_id, sid2, "again")
    with pytest.raises(Conflict), unit_of_work(db) as s:
        lifecycle.void(s, world.admin, a.partner_id, cn.id, "no")


def test_partial_credit_notes_by_line_never_exceed_the_original(world, db):
    a = _setup(world, db)
    generate(db, a.staff, a.partner_id, finalise=False)
    sid = listed(db, a.staff, a.partner_id)[0].id
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, sid)
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        lifecycle.create_credit_note(s, world.admin, a.partner_id, sid, "", [2])
    assert set(e.value.errors) == {"reason"}
    with unit_of_work(db) as s:
        cn = lifecycle.create_credit_note(s, world.admin, a.partner_id, sid, "Goodwill: base fee", [2],
                                          today=date(2027, 1, 4))
        assert (cn.total, cn.number) == (D("-90.00"), "PLATFORM-CN-2027-000001")
    with pytest.raises(ValidationError) as e, unit_of_work(db) as s:
        lifecycle.create_credit_note(s, world.admin, a.partner_id, sid, "again", [2])
    assert "already credited" in e.value.errors["lines"]
    with unit_of_work(db) as s:  # the rest
        cn2 = lifecycle.create_credit_note(s, world.admin, a.partner_id, sid, "Pages disputed")
        assert cn2.total == D("-116.00") and cn2.sequence == 2
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        lifecycle.create_credit_note(s, world.admin, a.partner_id, sid, "nothing left")
    with pytest.raises(Conflict), unit_of_work(db) as s:  # drafts are not credited
        generate_draft = planning.plan_month(s, world.admin, a.partner_id, "2026-09")
        out = lifecycle.generate(s, world.admin, generate_draft[0])
        lifecycle.create_credit_note(s, world.admin, a.partner_id, out.statement_id, "x")


def test_permissions_and_visibility(world, db):
    a, b = world.a, world.b
    _setup(world, db)
    generate(db, a.staff, a.partner_id)
    sid = listed(db, a.staff, a.partner_id)[0].id
    manager, annotator = a.users["manager"], a.users["annotator"]
    assert listed(db, manager, a.partner_id) == []  # drafts are not shown to customers
    with pytest.raises(NotFound):
        doc(db, manager, a.partner_id, sid)
    for actor in (annotator, a.users["user"], b.staff):
        with pytest.raises(PermissionDenied):
            listed(db, actor, a.partner_id)
        with pytest.raises(PermissionDenied):
            doc(db, actor, a.partner_id, sid)
    for actor in (manager, b.staff):
        with pytest.raises(PermissionDenied), unit_of_work(db) as s:
            lifecycle.generate_month(s, actor, a.partner_id, MONTH)
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, sid)
    assert [r.id for r in listed(db, manager, a.partner_id)] == [sid]
    assert doc(db, manager, a.partner_id, sid).status == "final"
    with pytest.raises(PermissionDenied), unit_of_work(db) as s:
        lifecycle.void(s, manager, a.partner_id, sid, "mine")
    other_manager_sees = listed(db, a.users["manager"], a.partner_id, account_id=a.other_account_id)
    assert [r.account_id for r in other_manager_sees] == [a.account_id]  # always their own account only
    with pytest.raises(ValidationError), unit_of_work(db) as s:
        planning.plan_month(s, a.staff, a.partner_id, "2026-13")


def test_document_is_typed_and_its_snapshot_round_trips(world, db):
    """get_statement gives Decimals and dates (no strings for the page to parse back); a final statement's
    snapshot is exactly StatementDocument.to_json, and from_json gives the same document back."""
    from core.statements.documents import StatementDocument

    a = _setup(world, db)
    generate(db, a.staff, a.partner_id)
    [row] = listed(db, a.staff, a.partner_id)
    draft = doc(db, a.staff, a.partner_id, row.id)
    assert draft.total == D("206.0000") and isinstance(draft.lines[0].amount, D)
    assert draft.lines[0].quantity == 1200 and draft.period_start == START and draft.issued_on is None
    with unit_of_work(db) as s:
        lifecycle.finalise(s, world.admin, a.partner_id, row.id)
    final = doc(db, a.staff, a.partner_id, row.id)
    assert final.status == "final" and final.issued_on is not None and final.number
    assert final.lines[0].explanation_parts  # the engine's parts are kept for other languages
    with Session(db) as s:
        snap = s.get(Statement, (a.partner_id, row.id)).snapshot
    assert StatementDocument.from_json(snap) == final
    assert StatementDocument.from_json(final.to_json()) == final
