"""Benchmark: wallet draws per second from 8 concurrent workers on ONE partner wallet (the worst case:
every draw serialises on the same wallet row lock). Each draw is its own committed transaction, exactly
as the usage path makes it (lock, idempotency check, ledger insert + balance trigger, commit).

    python -m bench.wallet            # throw-away embedded PostgreSQL unless BENCH_DATABASE_URL is set
    measure(engine) -> {"wallet_draws_per_s": {"value": ..., "unit": "draws/s", "target": ">= 1000"}}

Standalone runs merge their figure into bench/results.json.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts import accounts
from core.accounts.actor import SYSTEM
from core.billing import wallet
from db.engine import make_engine, unit_of_work

WORKERS = 8
DRAWS_PER_WORKER = int(os.environ.get("BENCH_WALLET_DRAWS", "500"))
RESULTS = Path(__file__).resolve().parent / "results.json"


def _setup(engine: Engine) -> tuple[int, int]:
    """A fresh partner with one customer and a wallet holding plenty of credits."""
    with unit_of_work(engine) as s:
        admin = SYSTEM
        p = accounts.create_partner(s, admin, name=f"Bench wallet {uuid.uuid4().hex[:10]}", currency="EUR")
        acc = accounts.create_account(s, admin, partner_id=p.id, name="Bench customer", country="NO")
        wallet.get_or_create_wallet(s, admin, p.id)
        wallet.adjust(s, admin, p.id, Decimal(10_000_000), "Benchmark credits")
        return p.id, acc.id


def _run(engine: Engine, wallets: list[tuple[int, int]]) -> float:
    """WORKERS threads, each with its own connection, each making DRAWS_PER_WORKER draws; worker i draws
    from wallet i % len(wallets). Returns draws per second."""
    run = uuid.uuid4().hex[:8]
    barrier = threading.Barrier(WORKERS + 1)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            with engine.connect() as conn:
                barrier.wait()
                for j in range(DRAWS_PER_WORKER):
                    partner_id, account_id = wallets[i % len(wallets)]
                    with Session(bind=conn) as s, s.begin():
                        r = wallet.draw(s, partner_id, account_id, Decimal(7), f"bench-{run}-{i}-{j}",
                                        {"count": 1})
                        assert r.status == "applied"
                    conn.commit()
        except BaseException as exc:  # noqa: BLE001 - reported after the run
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for th in threads:
        th.start()
    barrier.wait()
    start = time.perf_counter()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    with Session(engine) as s:
        for partner_id, _ in wallets:
            wallet.verify_ledger(s, partner_id)
    return WORKERS * DRAWS_PER_WORKER / elapsed


def measure(engine: Engine) -> dict:
    """Main figure: 8 workers drawing for customers of 8 partners (one wallet each), the normal production
    shape. Also reported: all 8 workers on ONE wallet, where every draw waits for the previous draw's
    commit (the row lock is held until its WAL flush), so that figure is bounded by the disk's fsync rate."""
    spread = _run(engine, [_setup(engine) for _ in range(WORKERS)])
    one = _run(engine, [_setup(engine)])
    return {
        "wallet_draws_per_s": {"value": round(spread, 1), "unit": "draws/s", "target": ">= 1000"},
        "wallet_draws_per_s_one_wallet": {"value": round(one, 1), "unit": "draws/s", "target": "info"},
    }


def _merge(figures: dict) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data.update(figures)
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")  # keep the order other figures were written in


def main() -> int:
    from db.migrate import upgrade
    from db.testing import throwaway_url

    url = os.environ.get("BENCH_DATABASE_URL") or throwaway_url()
    engine = make_engine(url, pool_size=WORKERS + 2)
    upgrade(engine)
    figures = measure(engine)
    engine.dispose()
    _merge(figures)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
