"""Reliability: the monthly command is idempotent, one transaction per statement; a connection killed in the
middle leaves nothing half-written and a retry finishes exactly once; numbering has no gaps or duplicates
under 8 concurrent finalisations (and a rolled-back one)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM
from core.statements import cli as statements_cli
from core.statements import content, lifecycle, planning
from db.engine import unit_of_work
from db.models.statements import Statement, StatementLine, StatementNumber
from tests.billing_factories import PAGES_SPEC
from tests.statements_helpers import MONTH, assign, generate, listed, record


def _accounts(db, t, n):
    ids = [t.account_id, t.other_account_id]
    with unit_of_work(db) as s:
        for i in range(n - 2):
            ids.append(accounts.create_account(s, SYSTEM, partner_id=t.partner_id, name=f"Extra {i}", country="NO").id)
    for i, aid in enumerate(ids):
        assign(db, t.staff, t.partner_id, aid, PAGES_SPEC, f"p{i}")
        record(db, t.staff, t.partner_id, aid, "pages", 100 + i, f"e{i}")
    return ids


def _state(db):
    with Session(db) as s:
        return s.execute(select(Statement.account_id, Statement.status, Statement.sequence, Statement.total)
                         .order_by(Statement.account_id)).all()


def test_monthly_command_is_idempotent_and_reports(world, db, capsys):
    t = world.a
    _accounts(db, t, 3)
    assert statements_cli.main(["generate", "--month", MONTH], engine=db) == 0
    assert "created 3" in capsys.readouterr().out
    first = _state(db)
    assert statements_cli.main(["generate", "--month", MONTH], engine=db) == 0
    assert "unchanged 3" in capsys.readouterr().out
    assert _state(db) == first
    assert statements_cli.main(["generate", "--month", MONTH, "--partner", str(t.partner_id), "--finalise"],
                               engine=db) == 0
    assert "finalised 3" in capsys.readouterr().out
    final = _state(db)
    assert [r.sequence for r in final] == [1, 2, 3]
    assert statements_cli.main(["generate", "--month", MONTH, "--finalise"], engine=db) == 0
    assert "final 3" in capsys.readouterr().out
    assert _state(db) == final
    assert statements_cli.main(["generate", "--month", "10/2026"], engine=db) == 2


def test_killed_connection_leaves_nothing_half_written_and_retry_finishes_once(world, db):
    t = world.a
    ids = _accounts(db, t, 4)
    victim = ids[2]
    killed = threading.Event()

    def hook(session, st):
        if st.account_id == victim and not killed.is_set():
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with db.connect() as c:  # another connection kills this one mid-statement
                assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
            killed.set()

    lifecycle.on_header_written.append(hook)
    try:
        res = statements_cli.run_month(db, MONTH, partner_id=t.partner_id, finalise=True)
    finally:
        lifecycle.on_header_written.remove(hook)
    assert killed.is_set() and len(res.errors) == 1 and res.counts["finalised"] == 3
    with Session(db) as s:
        assert s.scalar(select(func.count()).select_from(Statement).where(Statement.account_id == victim)) == 0
        # no statement anywhere without its lines, no number issued for the lost one
        assert s.scalar(select(func.count()).select_from(Statement).where(
            ~select(StatementLine).where(StatementLine.partner_id == Statement.partner_id,
                                         StatementLine.statement_id == Statement.id).exists())) == 0
        assert s.scalar(select(func.count()).select_from(StatementNumber)) == 3
    retry = statements_cli.run_month(db, MONTH, partner_id=t.partner_id, finalise=True)
    assert retry.ok and retry.counts == {"finalised": 1, "final": 3}
    rows = _state(db)
    assert sorted(r.account_id for r in rows) == sorted(ids)  # each exactly once
    assert sorted(r.sequence for r in rows) == [1, 2, 3, 4]  # no gap, no duplicate
    again = statements_cli.run_month(db, MONTH, partner_id=t.partner_id, finalise=True)
    assert again.counts == {"final": 4} and _state(db) == rows


def test_numbering_has_no_gaps_or_duplicates_under_8_concurrent_finalisations(world, db):
    t = world.a
    _accounts(db, t, 9)
    generate(db, t.staff, t.partner_id)
    drafts = [r.id for r in listed(db, t.staff, t.partner_id)]
    assert len(drafts) == 9
    barrier = threading.Barrier(9)
    errors: list[BaseException] = []

    class Boom(Exception):
        pass

    def work(sid: int, fail: bool) -> None:
        try:
            with db.connect() as conn, Session(bind=conn) as s:
                barrier.wait()
                with s.begin():
                    lifecycle.finalise(s, world.admin, t.partner_id, sid)
                    if fail:  # allocated a number, then rolled back: the number must come back
                        raise Boom()
        except Boom:
            pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(sid, i == 4)) for i, sid in enumerate(drafts)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors
    with Session(db) as s:
        finals = s.execute(select(Statement.sequence, Statement.number).where(Statement.status == "final")).all()
        register = s.scalars(select(StatementNumber.sequence).order_by(StatementNumber.sequence)).all()
    assert sorted(r.sequence for r in finals) == list(range(1, 9))
    assert len({r.number for r in finals}) == 8 and register == list(range(1, 9))
    # the rolled-back one is still a draft and gets number 9 later
    with unit_of_work(db) as s:
        st = lifecycle.finalise(s, world.admin, t.partner_id, drafts[4])
        assert st.sequence == 9


@pytest.mark.parametrize("month", ["2026-13", "x"])
def test_bad_month_is_refused_before_anything(world, db, month):
    with pytest.raises(Exception, match="YYYY-MM"):
        statements_cli.run_month(db, month)


def test_prefetched_month_computes_exactly_what_fresh_reads_compute(world, db):
    """The monthly run computes drafts from MonthData (a few queries per partner); it must agree with the
    per-account reads finalisation uses, in every mode, with split months, tiers and unique counts."""
    from datetime import UTC, date, datetime

    from tests.billing_factories import BANDS_SPEC
    from tests.statements_helpers import ALLOWANCE_SPEC, MAILING_SPEC, assign_partner, set_mode
    from tests.wallet_helpers import setup_wallet

    t = world.a
    ids = _accounts(db, t, 5)
    setup_wallet(db, t.staff, t.partner_id, buy=100_000)
    assign(db, t.staff, t.partner_id, ids[2], MAILING_SPEC, "mail-x", effective_from=date(2026, 10, 10))
    assign(db, t.staff, t.partner_id, ids[3], ALLOWANCE_SPEC, "allow-x")
    assign_partner(db, world.admin, t.partner_id, BANDS_SPEC)
    set_mode(db, t.staff, t.partner_id, ids[1], "agency")
    set_mode(db, t.staff, t.partner_id, ids[2], "partner_prepaid", date(2026, 10, 12))
    set_mode(db, t.staff, t.partner_id, ids[3], "agency", date(2026, 10, 20))
    for i, aid in enumerate(ids):
        for day in (3, 14, 25):
            record(db, t.staff, t.partner_id, aid, "documents", 300 * (i + 1), f"d{i}-{day}",
                   when=datetime(2026, 10, day, 9, tzinfo=UTC))
    with Session(db) as s:
        data = planning.MonthData(s, t.partner_id, MONTH)
        keys = planning.plan_month(s, world.admin, t.partner_id, MONTH)
        assert keys == planning.plan_month(s, world.admin, t.partner_id, MONTH, data)
        assert {k.kind for k in keys} == {"statement", "collective"}
        for key in keys:
            fresh, fast = content.compute(s, key), content.compute(s, key, data)
            assert fresh is not None and fast is not None
            assert fresh.fingerprint() == fast.fingerprint(), key
