"""The monthly run's batched path (core.statements.batch, issue 18) makes exactly the statements the one-account
path makes: the same keys, documents (issuer, addressee, every line, amounts, totals), audit entries and an
idempotent re-run, for a mixed month: every billing mode (customer pays, agency, prepaid, on demand, a mode
changing mid-month), plans with every charge model, an account without a plan, a partner on a rate card
(two layers, commission) and one without (legacy, partner-level plan). A batch that fails is redone one
statement per transaction, so one bad statement costs only itself."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.accounts import house_partner
from core.accounts.actor import SYSTEM
from core.billing import plans
from core.errors import Conflict
from core.statements import batch, lifecycle, planning
from core.statements import cli as statements_cli
from core.statements.documents import document
from db.engine import unit_of_work
from db.models import AuditEntry, Partner
from db.models.statements import Statement
from tests.billing_factories import API_SPEC, BANDS_SPEC, PAGES_SPEC, make_plan
from tests.statements_helpers import (
    ALLOWANCE_SPEC,
    MAILING_SPEC,
    MONTH,
    PER_PAGE_SPEC,
    assign,
    assign_partner,
    record,
    set_mode,
)
from tests.test_margin import PLATFORM_PAGES
from tests.test_ratecards import MAIL_PLAN, standard
from tests.wallet_helpers import setup_wallet

ALL_OPTIONS = {  # package, graduated with credits, per-unit settled from the wallet, threshold, discount
    "currency": "EUR", "timing": "in_advance", "minimum_spend": "300", "fees": [],
    "charges": [
        {"id": "sms", "metric": "messages", "model": "package", "package_size": "1000", "unit_price": "9.50",
         "free_units": "200", "min_amount": "20"},
        {"id": "pages", "metric": "pages", "model": "graduated", "credit_rate": "1.5",
         "tiers": [{"first": 0, "last": 1000, "unit_price": "0.05", "flat_fee": "3"},
                   {"first": 1001, "last": None, "unit_price": "0.04"}]},
        {"id": "docs", "metric": "documents", "model": "per_unit", "settle": "wallet", "credit_rate": "2",
         "unit_price": "0.1"},
        {"id": "api", "metric": "api_requests", "model": "threshold", "threshold": "1000",
         "threshold_price": "0.002"},
    ],
    "discounts": [{"id": "loyal", "percent": "12.5", "applies_to": "usage"}],
}
VOLUME_PCT = {
    "currency": "EUR",
    "charges": [{"id": "vol", "metric": "pages", "model": "volume", "unit": "pages",
                 "tiers": [{"first": 0, "last": 500, "unit_price": "0.09"},
                           {"first": 501, "last": None, "unit_price": "0.07", "flat_fee": "5"}]},
                {"id": "pay", "metric": "documents", "model": "percentage", "rate": "1.2", "fixed_fee": "0.30"}],
    "fees": [{"id": "base", "kind": "base", "amount": "15"}],
}


def _money_only(spec: dict) -> dict:
    """Under a rate card a client's plan is priced in money only (credit rates live on the card)."""
    return {**spec, "charges": [{k: v for k, v in c.items() if k not in ("credit_rate", "settle")}
                                for c in spec["charges"]]}


def _account(db, pid: int, name: str) -> int:
    with unit_of_work(db) as s:
        return accounts.create_account(s, SYSTEM, partner_id=pid, name=name, country="NO").id


def _mixed_month(world, db, card: bool = True) -> None:
    """Two partners with many shapes each, priced by the standard rate card (two layers) or, without a card,
    by the clients' plans alone (legacy)."""
    a, b = world.a, world.b
    mailing, all_options = MAILING_SPEC, ALL_OPTIONS
    if card:
        standard(db, world.admin)
        mailing, all_options = _money_only(MAILING_SPEC), _money_only(ALL_OPTIONS)
    setup_wallet(db, a.staff, a.partner_id, buy=500_000)
    setup_wallet(db, b.staff, b.partner_id, buy=500_000)
    with unit_of_work(db) as s:
        house = house_partner(s).id
    # partner A: prepaid, agency, customer pays on the platform's plan, on demand, no plan, a mid-month switch
    direct, orphan, demand, switch = (_account(db, a.partner_id, n) for n in ("Direct", "Orphan", "Demand", "Switch"))
    assign(db, a.staff, a.partner_id, a.account_id, MAIL_PLAN, "mail")
    assign(db, a.staff, a.partner_id, a.other_account_id, PER_PAGE_SPEC, "pages-a")
    _, platform_plan = make_plan(db, world.admin, code="direct", spec_=PLATFORM_PAGES, partner_id=house)
    with unit_of_work(db) as s:
        plans.assign_plan(s, a.staff, a.partner_id, direct, plan_id=platform_plan, plan_partner_id=house,
                          effective_from=date(2024, 1, 1))
    assign(db, a.staff, a.partner_id, demand, ALLOWANCE_SPEC, "allow-a")
    assign(db, a.staff, a.partner_id, switch, VOLUME_PCT, "vol-a")
    set_mode(db, a.staff, a.partner_id, a.account_id, "partner_prepaid")
    set_mode(db, a.staff, a.partner_id, a.other_account_id, "agency")
    set_mode(db, a.staff, a.partner_id, orphan, "partner_prepaid")
    set_mode(db, a.staff, a.partner_id, demand, "partner_on_demand")
    set_mode(db, a.staff, a.partner_id, switch, "agency", date(2026, 10, 11))
    set_mode(db, a.staff, a.partner_id, switch, "partner_prepaid", date(2026, 10, 21))
    # partner B: every charge model, a partner-level plan, modes split mid-month, an account without a plan
    allopt, api, noplan = (_account(db, b.partner_id, n) for n in ("All options", "API", "No plan"))
    assign(db, b.staff, b.partner_id, b.account_id, PAGES_SPEC, "pages-b")
    assign(db, b.staff, b.partner_id, b.other_account_id, mailing, "mail-b")
    assign(db, b.staff, b.partner_id, b.other_account_id, VOLUME_PCT, "vol-b", effective_from=date(2026, 10, 16))
    assign(db, b.staff, b.partner_id, allopt, all_options, "all-b")
    assign(db, b.staff, b.partner_id, api, API_SPEC, "api-b")
    assign_partner(db, world.admin, b.partner_id, BANDS_SPEC)
    set_mode(db, b.staff, b.partner_id, b.account_id, "agency")
    set_mode(db, b.staff, b.partner_id, b.other_account_id, "partner_prepaid", date(2026, 10, 9))
    set_mode(db, b.staff, b.partner_id, allopt, "partner_on_demand", date(2026, 10, 20))
    set_mode(db, b.staff, b.partner_id, noplan, "partner_prepaid")
    usage = {a.account_id: [("recipients", 5000)], a.other_account_id: [("pages", 130)], direct: [("pages", 700)],
             orphan: [("recipients", 300)], demand: [("documents", 1700)], switch: [("pages", 900), ("documents", 40)],
             b.account_id: [("pages", 1500)], b.other_account_id: [("documents", 2400), ("pages", 60)],
             allopt: [("messages", 4321), ("pages", 2500), ("documents", 77), ("api_requests", 1800)],
             api: [("api_requests", 600_000)], noplan: [("pages", 10)]}
    owner = {aid: (a if aid in (a.account_id, a.other_account_id, direct, orphan, demand, switch) else b)
             for aid in usage}
    for aid, rows in usage.items():
        t = owner[aid]
        for i, (metric, qty) in enumerate(rows):
            for day in (4, 15, 26):  # across the mode changes
                record(db, t.staff, t.partner_id, aid, metric, qty, f"{aid}-{metric}-{i}-{day}",
                       when=datetime(2026, 10, day, 9, tzinfo=UTC))


def _documents(db) -> dict[planning.Key, dict]:
    """Every live statement's document (ids left out), by its key."""
    with Session(db) as s:
        out = {}
        for st in s.scalars(select(Statement).where(Statement.status != "void")):
            d = document(s, st).to_json()
            del d["id"]
            out[lifecycle.key_of(st)] = d
        return out


def _void_drafts(db, world) -> None:
    with unit_of_work(db) as s:
        for st in s.scalars(select(Statement).where(Statement.status == "draft")).all():
            lifecycle.void(s, world.admin, st.partner_id, st.id)


def _audited(db) -> int:
    with Session(db) as s:
        return s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.entity == "statement", AuditEntry.action == "generate"))


@pytest.mark.parametrize("card", [True, False], ids=["rate-card", "legacy"])
def test_batched_drafts_equal_the_one_account_path_for_a_mixed_month(world, db, card):
    _mixed_month(world, db, card)
    first = statements_cli.run_month(db, MONTH, batch_size=4)  # several batches per partner
    assert first.ok, first.errors
    batched = _documents(db)
    assert first.counts["created"] == len(batched) >= 12
    assert {k.kind for k in batched} == ({"statement", "collective", "commission"} if card
                                         else {"statement", "collective"})
    assert _audited(db) == len(batched)  # one audit entry per new draft, as one by one
    again = statements_cli.run_month(db, MONTH)
    assert again.ok and again.counts == {"unchanged": len(batched)}
    assert _documents(db) == batched

    # the one-account path, from fresh reads (what finalisation uses), one transaction per statement
    _void_drafts(db, world)
    keys = []
    with Session(db) as s:
        for pid in s.scalars(select(Partner.id).order_by(Partner.id)):
            keys += planning.plan_month(s, world.admin, pid, MONTH)
    for key in keys:
        with unit_of_work(db) as s:
            assert lifecycle.generate(s, world.admin, key).action in ("created", "nothing")
    single = _documents(db)
    assert single.keys() == batched.keys()
    for key in single:
        assert single[key] == batched[key], key

    # and the per-statement path of the monthly command (prefetched month, batch size 1)
    _void_drafts(db, world)
    one_by_one = statements_cli.run_month(db, MONTH, batch_size=1)
    assert one_by_one.ok and one_by_one.counts == first.counts
    assert _documents(db) == batched


def test_finalising_after_a_batched_run_numbers_like_before(world, db):
    _mixed_month(world, db)
    assert statements_cli.run_month(db, MONTH).ok
    final = statements_cli.run_month(db, MONTH, finalise=True)
    assert final.ok and set(final.counts) == {"finalised"}
    with Session(db) as s:
        rows = s.execute(select(Statement.issuer_partner_id, Statement.series, Statement.sequence)
                         .where(Statement.status == "final")).all()
    by_series: dict[tuple, list[int]] = {}
    for issuer, series, seq in rows:
        by_series.setdefault((issuer, series), []).append(seq)
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in by_series.values())  # no gaps, no duplicates
    assert statements_cli.run_month(db, MONTH).counts == {"final": len(rows)}


def test_a_failing_batch_is_redone_one_statement_at_a_time(world, db):
    """One statement of a batch fails (here: refused while its header is written): the batch rolls back whole,
    its statements are redone one transaction each, and only the bad one is missing, named in the errors."""
    b = world.b
    ids = [b.account_id, b.other_account_id, *(_account(db, b.partner_id, f"Extra {i}") for i in range(3))]
    for i, aid in enumerate(ids):
        assign(db, b.staff, b.partner_id, aid, PER_PAGE_SPEC, f"p{i}")
        record(db, b.staff, b.partner_id, aid, "pages", 100 + i, f"e{i}")
    victim = ids[3]

    def refuse(session, st):
        if st.account_id == victim:
            raise Conflict("refused for the test")

    lifecycle.on_header_written.append(refuse)
    try:
        res = statements_cli.run_month(db, MONTH, partner_id=b.partner_id)
    finally:
        lifecycle.on_header_written.remove(refuse)
    assert res.counts == {"created": 4, "error": 1}
    assert len(res.errors) == 1 and f"account {victim}: refused for the test" in res.errors[0]
    with Session(db) as s:
        assert sorted(s.scalars(select(Statement.account_id))) == sorted(set(ids) - {victim})
    retry = statements_cli.run_month(db, MONTH, partner_id=b.partner_id)
    assert retry.ok and retry.counts == {"created": 1, "unchanged": 4}


def test_a_batch_is_one_partner_month(world, db):
    keys = [planning.Key(world.a.partner_id, "statement", world.a.partner_id, world.a.account_id,
                         date(2026, 10, 1), date(2026, 10, 31)),
            planning.Key(world.b.partner_id, "statement", world.b.partner_id, world.b.account_id,
                         date(2026, 10, 1), date(2026, 10, 31))]
    with Session(db) as s, pytest.raises(ValueError, match="one partner"):
        batch.generate_drafts(s, world.admin, keys)
    assert batch.batches(list(range(5)), 2) == [[0, 1], [2, 3], [4]]


def test_statement_lock_numbers_are_the_same_in_every_process():
    """Concurrent monthly runs in different processes must take the same advisory lock for the same statement;
    the old number was Python's hash() of a tuple with the kind, a string, whose hash is salted per process."""
    import os
    import subprocess
    import sys

    code = ("from datetime import date; from core.statements import lifecycle, planning; "
            "print(lifecycle._key_lock_id(planning.Key(7, 'statement', 1, 42, date(2026, 10, 1), date(2026, 10, 31))))")
    got = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2", "3")}
    assert len(got) == 1 and -2**31 <= int(got.pop()) < 2**31


def _idle_in_transaction(engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND state = 'idle in transaction' AND pid <> pg_backend_pid()")).scalar_one()


def test_the_monthly_run_leaves_no_connection_in_a_transaction(world, db):
    """The prefetched month outlives the session that read it: a lazy read through that closed session used to
    open a connection of its own and leave it idle in a transaction (the next test's clean-up then waited on
    its locks for ever). Every transaction of the run now rebinds the month to its own session."""
    _mixed_month(world, db, True)
    assert statements_cli.run_month(db, MONTH, batch_size=4).ok
    assert statements_cli.run_month(db, MONTH, batch_size=1).ok
    assert _idle_in_transaction(db) == 0
