"""`api_ingest_events_per_s`: usage events through the HTTP API (issue 17), beside the core path.

Batches of 1,000 events are POSTed to /v1/usage/events by 2 client threads into a real API process
(uvicorn, started here on the benchmark database), and the same number of events in the same batches go
through core.usage.ingest.record_events from 2 threads in this process, measured in the same run: the
ratio is what HTTP, JSON, authentication and the API layer cost (target >= 0.7).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.accounts import apikeys
from core.accounts.actor import SYSTEM, Actor
from core.usage.ingest import record_events
from db.roles import ensure_app_role
from seeds import bulk

BATCH = 1_000
CLIENTS = 2
ACCOUNTS = 50
SLUGS = ("bench-api", "bench-api-core")


def _drop_partner(engine: Engine, slug: str) -> None:
    """Remove the usage of every earlier run's partner of this kind (`slug`, `slug-2`, ...), so that the data
    set stays as generated. The audit log is append-only, so the partners its entries name (and their accounts
    and keys) stay: each run makes a partner of its own."""
    with engine.begin() as c:
        for t in [*bulk.usage_tables(c), "api_idempotency"]:
            c.execute(text(f"DELETE FROM {t} WHERE partner_id IN "
                           "(SELECT id FROM partners WHERE slug = :s OR slug LIKE :like)"),
                      {"s": slug, "like": f"{slug}-%"})


def _fresh_partner(engine: Engine, slug: str) -> tuple[int, list[int]]:
    _drop_partner(engine, slug)
    with engine.begin() as c:
        n = c.execute(text("SELECT count(*) FROM partners WHERE slug = :s OR slug LIKE :like"),
                      {"s": slug, "like": f"{slug}-%"}).scalar_one()
        pid = c.execute(text("INSERT INTO partners (name, slug, currency) VALUES (:s, :s, 'EUR') RETURNING id"),
                        {"s": f"{slug}-{n + 1}"}).scalar_one()
        accs = [r[0] for r in c.execute(text(
            "INSERT INTO customer_accounts (partner_id, name, country, currency) "
            "SELECT :p, 'Api ' || i, 'NO', 'EUR' FROM generate_series(1, :n) i RETURNING id"), {"p": pid, "n": ACCOUNTS})]
    return pid, accs


def _events(n: int, accounts: list[int], start) -> list[dict]:
    metrics = ["pages", "documents", "credits", "messages", "api_requests"]
    span = 28 * 86400
    return [{"account_id": accounts[(i * 7919) % len(accounts)], "event_id": f"api-{i}", "metric": metrics[i % 5],
             "quantity": 1 + i % 17, "occurred_at": (start + timedelta(seconds=(i * 104729) % span)).isoformat(),
             "source": "bench"} for i in range(n)]


def _threads(fn, n_batches: int) -> float:
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i in range(w, n_batches, CLIENTS):
                fn(w, i)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(CLIENTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_api(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "RC_API_RATE": "100000", "RC_API_BURST": "100000"}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
                             "--port", str(port), "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API did not start")


def measure(engine: Engine, url: str, events: int, end) -> dict:
    n = max(20_000, min(200_000, events // 50)) // BATCH * BATCH
    batches = n // BATCH
    start = end - timedelta(days=28)
    # the core path: record_events in the same batches from 2 threads
    core_pid, core_accs = _fresh_partner(engine, SLUGS[1])
    core_rows = _events(n, core_accs, start)
    for r in core_rows:
        r["quantity"] = Decimal(r["quantity"])
    actor = Actor(user_id=0, partner_id=core_pid, role="partner_staff", email="bench", display_name="Bench")

    def core_batch(_w: int, i: int) -> None:
        with Session(engine) as s, s.begin():
            record_events(s, actor, core_pid, core_rows[i * BATCH:(i + 1) * BATCH], default_source="bench")

    core_s = _threads(core_batch, batches)
    # the API: a real uvicorn process, 2 client threads with their own connections
    pid, accs = _fresh_partner(engine, SLUGS[0])
    with Session(engine) as s, s.begin():
        token = apikeys.create_key(s, SYSTEM, pid, name="bench", scopes=["usage:write"]).token
    bodies = [json.dumps({"events": chunk}).encode() for chunk in
              (_events(n, accs, start)[i * BATCH:(i + 1) * BATCH] for i in range(batches))]
    ensure_app_role(engine)  # the API connects as the app's least-privilege role
    port = _free_port()
    proc = _start_api(url, port)
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
               for _ in range(CLIENTS)]
    accepted = []

    def api_batch(w: int, i: int) -> None:
        r = clients[w].post("/v1/usage/events", content=bodies[i])
        r.raise_for_status()
        accepted.append(r.json()["accepted"])

    try:
        api_s = _threads(api_batch, batches)
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        proc.wait(20)
    assert sum(accepted) == n, (sum(accepted), n)
    for slug in SLUGS:  # leave the data set as generated
        _drop_partner(engine, slug)
    api_rate, core_rate = n / api_s, n / core_s
    return {
        "api_ingest_events_per_s": {"value": round(api_rate), "unit": "events/s", "target": None},
        "api_ingest_core_events_per_s": {"value": round(core_rate), "unit": "events/s", "target": None},
        "api_ingest_vs_core_ratio": {"value": round(api_rate / core_rate, 3), "unit": "ratio", "target": ">= 0.7"},
    }
