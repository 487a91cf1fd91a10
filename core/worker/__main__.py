"""`python -m core.worker [--once] [--interval SECONDS]`: run the worker (see core.worker)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from core.bootstrap import bootstrap
from core.worker.jobs import run_once
from db.engine import make_engine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.worker")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds (default 5)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    bootstrap()
    engine = make_engine()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log = logging.getLogger("core.worker")
    log.info("worker started")
    while not stop.is_set():
        try:
            done = run_once(engine)
            busy = {k: v for k, v in done.items() if v}
            if busy:
                log.info("round: %s", busy)
        except Exception:  # the database may be restarting: log, wait, go on
            log.exception("worker round failed")
        if args.once:
            break
        stop.wait(args.interval)
    engine.dispose()
    log.info("worker stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
