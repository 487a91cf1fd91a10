"""`make run`: the app (Streamlit, :8501), the HTTP API (uvicorn, :8000, OpenAPI page at /docs) and the
worker, side by side; when one stops (or on Ctrl-C / SIGTERM) the others are stopped too.

    python -m seeds.run [--port 8501] [--api-port 8000]

The database is started here once (DATABASE_URL, else the embedded server) and its URL handed to the three
processes, so they share it and it stops with them.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from db.engine import database_url

GRACE_S = 10.0


def commands(port: int, api_port: int) -> list[tuple[str, list[str]]]:
    py = sys.executable
    return [
        ("app", [py, "-m", "streamlit", "run", "Home.py", "--server.port", str(port), "--server.headless", "true",
                 "--browser.gatherUsageStats", "false"]),
        ("api", [py, "-m", "uvicorn", "api.main:create_app", "--factory", "--host", "127.0.0.1",
                 "--port", str(api_port)]),
        ("worker", [py, "-m", "core.worker"]),
    ]


def stop_all(procs: dict[str, subprocess.Popen]) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for p in procs.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seeds.run")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8501")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("API_PORT", "8000")))
    args = parser.parse_args(argv)
    env = {**os.environ, "DATABASE_URL": database_url()}  # starts (or attaches to) the database once
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    procs = {name: subprocess.Popen(cmd, env=env) for name, cmd in commands(args.port, args.api_port)}
    print(f"App on http://localhost:{args.port}, API on http://localhost:{args.api_port} "
          f"(OpenAPI page: http://localhost:{args.api_port}/docs), worker running. Ctrl-C stops all three.",
          flush=True)
    code = 0
    while not stopping:
        ended = [(n, p.returncode) for n, p in procs.items() if p.poll() is not None]
        if ended:
            name, code = ended[0]
            print(f"{name} stopped (exit code {code}); stopping the others.", flush=True)
            break
        time.sleep(0.5)
    stop_all(procs)
    return code


if __name__ == "__main__":
    sys.exit(main())
