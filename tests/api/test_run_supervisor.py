"""`make run` (seeds/run.py): the app, the API and the worker start together and stop together."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.api.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                          text=True).stdout.strip()[:1] not in ("Z", "")


def _start(database_url: str) -> tuple[subprocess.Popen, int, int]:
    port, api_port = free_port(), free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "RC_PASSWORD_PROFILE": "fast"}
    proc = subprocess.Popen([sys.executable, "-m", "seeds.run", "--port", str(port), "--api-port", str(api_port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    up = set()
    while time.monotonic() < deadline and len(up) < 2:
        for name, url in (("app", f"http://127.0.0.1:{port}/_stcore/health"),
                          ("api", f"http://127.0.0.1:{api_port}/health")):
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    up.add(name)
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    assert up == {"app", "api"}, up
    return proc, port, api_port


def _wait_gone(pids: list[int], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def test_all_three_start_and_stop_together_on_sigterm(engine, database_url):
    proc, _, api_port = _start(database_url)
    kids = _children(proc.pid)
    assert len(kids) == 3  # streamlit, uvicorn, the worker
    assert httpx.get(f"http://127.0.0.1:{api_port}/docs", timeout=5).status_code == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    _wait_gone(kids)


def test_when_one_stops_the_others_are_stopped(engine, database_url):
    proc, _, _ = _start(database_url)
    kids = _children(proc.pid)
    os.kill(kids[1], signal.SIGKILL)  # the API dies
    proc.wait(30)
    _wait_gone(kids)
