"""Benchmark: the billing-model lab re-pricing 13 months of a large customer under four models — what the
lab page does on every rerun (load the monthly usage and current plan, re-price, break-even volumes).

    measure(engine, partner_id, account_id, start, end)
      -> {"lab_reprice_s": {"value": ..., "unit": "s", "target": "< 1"}}

bench.run calls it on the benchmark data set's biggest account (the "lab_reprice" measurement).
"""

from __future__ import annotations

import statistics
import time
from datetime import date

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts.actor import SYSTEM
from core.lab import compare as lab

RUNS = 5


def models(currency: str) -> list[lab.LabModel]:
    """Four models of the kinds the page offers (the customer's own plan is not needed for the timing)."""
    return [
        lab.LabModel("Per document", lab.model_spec(currency, "per_document", unit_price="0.30", base_fee="49"),
                     current=True),
        lab.LabModel("Per page", lab.model_spec(currency, "per_page", unit_price="0.06")),
        lab.LabModel("Tiers", lab.model_spec(currency, "tiers", tier_mode="volume", tiers=[
            {"first": 1, "last": 1000, "unit_price": "0.40"}, {"first": 1001, "last": 10000, "unit_price": "0.30"},
            {"first": 10001, "last": None, "unit_price": "0.20"}])),
        lab.LabModel("Allowance", lab.model_spec(currency, "allowance", included_units="5000",
                                                 overage_price="0.25", base_fee="900")),
    ]


def once(engine: Engine, partner_id: int, account_id: int, start: date, end: date) -> lab.LabResult:
    with Session(engine) as s:
        acc = lab.lab_for_account(s, SYSTEM, partner_id, account_id, start, end)
    return lab.reprice(acc.usage, models(acc.currency))


def measure(engine: Engine, partner_id: int, account_id: int, start: date, end: date) -> dict[str, dict]:
    once(engine, partner_id, account_id, start, end)  # warm up
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        result = once(engine, partner_id, account_id, start, end)
        times.append(time.perf_counter() - t0)
    assert len(result.months) >= 13 and len(result.models) == 4
    return {"lab_reprice_s": {"value": round(statistics.median(times), 3), "unit": "s", "target": "< 1",
                              "months": len(result.months), "models": len(result.models)}}
