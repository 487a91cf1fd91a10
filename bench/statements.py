"""Benchmark: the statements of ONE month for all 2,000 customer accounts of the benchmark data set
(seeds/bulk.py), through the monthly command's path (`core.statements.cli.run_month`: one transaction per
statement, rated from the usage aggregates). Target: under 10 s.

Set-up (idempotent, on the benchmark database): a platform plan (graduated pages, documents allowance,
per-unit messages, base fee) assigned to every benchmark account, a partner-level client-band plan for every
benchmark partner, and billing modes spread over the accounts (10% agency, 10% prepaid, 10% on demand, the
rest customer pays). Existing statements of the benchmark partners are removed first (a dedicated database).

    python -m bench.statements [--events N]     # standalone: builds/reuses the data set, merges the figure
    measure(engine, month_start) -> {"statements_month_s": {...}, ...}   # called from bench/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from core.accounts.actor import SYSTEM
from core.statements.cli import run_month

RESULTS = Path(__file__).resolve().parent / "results.json"

ACCOUNT_SPEC = {
    "currency": "EUR", "timing": "in_arrears",
    "charges": [
        {"id": "pages", "label": "Pages", "metric": "pages", "model": "graduated", "unit": "pages",
         "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"}, {"first": 1001, "last": None, "unit_price": "0.08"}]},
        {"id": "docs", "label": "Documents", "metric": "documents", "model": "allowance", "unit": "documents",
         "included_units": "500", "overage_price": "0.02"},
        {"id": "msgs", "label": "Messages", "metric": "messages", "model": "per_unit", "unit": "messages",
         "unit_price": "0.01"},
    ],
    "fees": [{"id": "base", "label": "Monthly fee", "kind": "base", "amount": "49"}],
}
BANDS_SPEC = {
    "currency": "EUR",
    "charges": [{"id": "bands", "label": "Active clients", "metric": "active_clients", "model": "volume",
                 "unit": "clients", "tiers": [{"first": 0, "last": 99, "unit_price": "0", "flat_fee": "200"},
                                              {"first": 100, "last": None, "unit_price": "0", "flat_fee": "500"}]}],
    "fees": [],
}


def _bench_partners(c) -> list[int]:
    return [r[0] for r in c.execute(text(
        "SELECT id FROM partners WHERE slug LIKE 'bench-%' AND slug <> 'bench-ingest' ORDER BY id"))]


def setup(engine: Engine) -> list[int]:
    """Plans, assignments and modes for the benchmark accounts (re-created each time: cheap, deterministic)."""
    with engine.begin() as c:
        partners = _bench_partners(c)
        house = c.execute(text("SELECT id FROM partners WHERE is_house")).scalar_one()
        c.execute(text("TRUNCATE statement_lines, statements, statement_numbers, statement_sequences"))
        c.execute(text("DELETE FROM billing_modes WHERE partner_id = ANY(:p)"), {"p": partners})
        c.execute(text("DELETE FROM plan_assignments WHERE partner_id = ANY(:p)"), {"p": partners})
        for code, spec, subject in (("bench-stm", ACCOUNT_SPEC, "account"), ("bench-bands", BANDS_SPEC, "partner")):
            c.execute(text("DELETE FROM plan_versions WHERE partner_id = :h AND plan_id IN "
                           "(SELECT id FROM plans WHERE partner_id = :h AND code = :c)"), {"h": house, "c": code})
            c.execute(text("DELETE FROM plans WHERE partner_id = :h AND code = :c"), {"h": house, "c": code})
            pid = c.execute(text("INSERT INTO plans (partner_id, name, code, currency, subject) "
                                 "VALUES (:h, :n, :c, 'EUR', :s) RETURNING id"),
                            {"h": house, "n": f"Bench {code}", "c": code, "s": subject}).scalar_one()
            c.execute(text("INSERT INTO plan_versions (partner_id, plan_id, version, effective_from, spec) "
                           "VALUES (:h, :p, 1, '2000-01-01', CAST(:s AS jsonb))"),
                      {"h": house, "p": pid, "s": json.dumps(spec)})
            if subject == "account":
                c.execute(text("""
                    INSERT INTO plan_assignments (partner_id, subject, account_id, plan_partner_id, plan_id,
                                                  effective_from)
                    SELECT partner_id, 'account', id, :h, :p, '2000-01-01' FROM customer_accounts
                    WHERE partner_id = ANY(:ps)"""), {"h": house, "p": pid, "ps": partners})
            else:
                c.execute(text("""
                    INSERT INTO plan_assignments (partner_id, subject, account_id, plan_partner_id, plan_id,
                                                  effective_from)
                    SELECT id, 'partner', NULL, :h, :p, '2000-01-01' FROM partners WHERE id = ANY(:ps)"""),
                          {"h": house, "p": pid, "ps": partners})
        c.execute(text("""
            INSERT INTO billing_modes (partner_id, account_id, effective_from, mode, on_decline)
            SELECT partner_id, id, '2000-01-01',
                   (ARRAY['agency','partner_prepaid','partner_on_demand'])[(id % 10) + 1],
                   CASE WHEN id % 10 = 2 THEN 'block' END
            FROM customer_accounts WHERE partner_id = ANY(:ps) AND id % 10 < 3"""), {"ps": partners})
    return partners


def measure(engine: Engine, month_start: date) -> dict:
    partners = setup(engine)
    month = month_start.strftime("%Y-%m")
    t0 = time.perf_counter()
    results = [run_month(engine, month, partner_id=p, actor=SYSTEM) for p in partners]
    first_s = time.perf_counter() - t0
    errors = [e for r in results for e in r.errors]
    if errors:
        raise RuntimeError(f"{len(errors)} statements failed, e.g. {errors[0]}")
    made = sum(r.counts["created"] for r in results)
    t0 = time.perf_counter()
    again = [run_month(engine, month, partner_id=p, actor=SYSTEM) for p in partners]
    rerun_s = time.perf_counter() - t0
    assert sum(r.counts["unchanged"] for r in again) == made, "the second run must change nothing"
    with engine.connect() as c:
        accounts = c.execute(text("SELECT count(*) FROM customer_accounts WHERE partner_id = ANY(:p)"),
                             {"p": partners}).scalar_one()
    return {
        "statements_month_s": {"value": round(first_s, 2), "unit": "s", "target": "< 10"},
        "statements_month_count": {"value": made, "unit": "statements", "target": None},
        "statements_month_accounts": {"value": accounts, "unit": "accounts", "target": None},
        "statements_month_rerun_s": {"value": round(rerun_s, 2), "unit": "s", "target": None},
    }


def last_full_month(end_exclusive: date) -> date:
    first_this = end_exclusive.replace(day=1)
    return (first_this - timedelta(days=1)).replace(day=1)


def main(argv: list[str] | None = None) -> int:
    from seeds import bulk

    ap = argparse.ArgumentParser(prog="python -m bench.statements")
    ap.add_argument("--events", type=int, default=250_000)
    args = ap.parse_args(argv)
    engine = bulk.bench_engine()
    _, end, _ = bulk.ensure(engine, args.events)
    figures = measure(engine, last_full_month(end.date()))
    engine.dispose()
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(figures)
    RESULTS.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
