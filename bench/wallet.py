"""Benchmark: wallet draws per second from 8 concurrent workers, over 8 wallets and on ONE wallet (the worst
case: every draw serialises on the same wallet row lock). Each draw is its own committed transaction, exactly
as the usage path makes it (lock, idempotency check, ledger insert + balance trigger, lots, commit).

Every wallet starts with few credits and an automatic purchase, and the payment gateway takes 2 s to answer
(BENCH_GATEWAY_DELAY): the runs deplete the wallets, so automatic purchases are pending while the workers
draw (overdraft policy: the draws go on). Draws never wait for the gateway; the figure shows what they cost.

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
from core.billing import payments, wallet
from db.engine import make_engine, unit_of_work
from db.models.wallet import PartnerCreditPriceStep

WORKERS = 8
DRAWS_PER_WORKER = int(os.environ.get("BENCH_WALLET_DRAWS", "500"))
GATEWAY_DELAY = float(os.environ.get("BENCH_GATEWAY_DELAY", "2"))
RESULTS = Path(__file__).resolve().parent / "results.json"


class SlowGateway(payments.DemoGateway):
    """The demo gateway, answering charges after `delay` seconds (a real provider takes 1-2 s)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def charge(self, token: str, amount: Decimal, currency: str, idempotency_key: str) -> payments.ChargeResult:
        time.sleep(self.delay)
        return super().charge(token, amount, currency, idempotency_key)


def _setup(engine: Engine, draws: int) -> tuple[int, int]:
    """A fresh partner with one customer, a card and a wallet holding about a third of what `draws` draws
    take, with an automatic purchase of a third (so each run triggers purchases) and a deep overdraft."""
    need = Decimal(7 * draws)
    with unit_of_work(engine) as s:
        admin = SYSTEM
        p = accounts.create_partner(s, admin, name=f"Bench wallet {uuid.uuid4().hex[:10]}", currency="EUR")
        acc = accounts.create_account(s, admin, partner_id=p.id, name="Bench customer", country="NO")
        wallet.get_or_create_wallet(s, admin, p.id)
        s.add(PartnerCreditPriceStep(partner_id=p.id, currency="EUR", min_credits=Decimal(0),
                                     price_per_credit=Decimal("0.0001")))
        payments.add_card(s, admin, p.id, number="4242424242424242", exp_month=12, exp_year=2099)
    with unit_of_work(engine) as s:
        wallet.adjust(s, admin, p.id, (need / 3).quantize(Decimal(1)), "Benchmark credits")
        wallet.configure(s, admin, p.id, auto_buy_credits=(need / 3).quantize(Decimal(1)),
                         overdraft_policy="overdraft", overdraft_limit=need * 2)
    return p.id, acc.id


def _run(engine: Engine, wallets: list[tuple[int, int]]) -> tuple[float, int]:
    """WORKERS threads, each with its own connection, each making DRAWS_PER_WORKER draws; worker i draws
    from wallet i % len(wallets). Returns draws per second and the number of draws made while an automatic
    purchase was pending at the (slow) gateway."""
    run = uuid.uuid4().hex[:8]
    barrier = threading.Barrier(WORKERS + 1)
    errors: list[BaseException] = []
    pending = [0] * WORKERS

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
                        pending[i] += r.auto_purchase == "pending"
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
    wallet.wait_for_purchases()
    if errors:
        raise errors[0]
    with Session(engine) as s:
        for partner_id, _ in wallets:
            wallet.verify_ledger(s, partner_id)
    return WORKERS * DRAWS_PER_WORKER / elapsed, sum(pending)


def measure(engine: Engine) -> dict:
    """Main figure: 8 workers drawing for customers of 8 partners (one wallet each), the normal production
    shape, with automatic purchases pending at a 2 s gateway. Also: all 8 workers on ONE wallet, where every
    draw waits for the previous draw's commit (the row lock is held until its WAL flush)."""
    payments.set_gateway(SlowGateway(GATEWAY_DELAY))
    try:
        spread, spread_pending = _run(engine, [_setup(engine, DRAWS_PER_WORKER) for _ in range(WORKERS)])
        one, one_pending = _run(engine, [_setup(engine, DRAWS_PER_WORKER * WORKERS)])
    finally:
        payments.set_gateway(None)
    note = f"gateway answers in {GATEWAY_DELAY:g} s; draws made while a purchase was pending: "
    return {
        "wallet_draws_per_s": {"value": round(spread, 1), "unit": "draws/s", "target": ">= 1000",
                               "note": note + str(spread_pending)},
        "wallet_draws_per_s_one_wallet": {"value": round(one, 1), "unit": "draws/s", "target": ">= 500",
                                          "note": note + str(one_pending)},
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
