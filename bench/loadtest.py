"""Load test: N concurrent users driving the real app over Streamlit's own websocket protocol.

    python -m bench.loadtest [--sessions 20] [--duration 180] [--steps 5,10,20]   (make loadtest)

A browser per simulated user would saturate two cores by itself and measure the browsers, so one asyncio
process speaks the protocol instead (BackMsg rerun requests, ForwardMsg deltas): the server does all of its
real work (script runs, database, rendering to protobuf). Each session logs in as a demo user, then opens the
pages of its navigation one after another with 2–4 s of think time, for `--duration` seconds.

It starts its own Streamlit server on a free port against the app's database (DATABASE_URL, else the
embedded server with the demo loaded by `make run`/`python -m seeds.setup`), runs each step of
`--steps` (number of sessions at once), and records:

- load_sessions: the sessions of the last step; load_p95_s / load_p50_s: page reruns; load_login_p95_s;
- load_errors: exceptions shown by a page, failed logins, timeouts and dropped connections;
- load_saturation_sessions: the most sessions at which page reruns kept p95 ≤ 2 s.

Figures go to bench/results-load.json (and into bench/results.json when a full `make bench` runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results-load.json"
PAGE_TIMEOUT_S = 60.0

# Demo logins spread over every kind of role (README.md): (e-mail, role).
USERS = [
    ("partner@example.com", "partner staff"),
    ("staff2@nordicdocs.example", "partner staff"),
    ("partner2@example.com", "partner staff"),
    ("staff@textwave.example", "partner staff"),
    ("staff@regnskapnord.example", "partner staff"),
    ("admin@example.com", "platform admin"),
    ("manager@example.com", "manager"),
    ("manager2@example.com", "manager"),
    ("user@example.com", "user"),
    ("annotator@example.com", "annotator"),
]
PASSWORD = "demo-pass-2026"


@dataclass
class Stats:
    pages: list[float] = field(default_factory=list)
    logins: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    by_page: dict[str, list[float]] = field(default_factory=dict)  # page name -> its rerun times

    def page(self, name: str, took: float) -> None:
        self.pages.append(took)
        self.by_page.setdefault(name, []).append(took)

    def slowest_pages(self, n: int = 5) -> list[dict]:
        """The pages with the highest p95 (where to look next)."""
        rows = [{"page": k, "runs": len(v), "p50_s": _p(v, 0.5), "p95_s": _p(v, 0.95)} for k, v in self.by_page.items()]
        return sorted(rows, key=lambda r: -(r["p95_s"] or 0))[:n]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _p(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))], 3)


class Client:
    """One browser tab, at the protocol level."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ws = None
        self.widgets: dict[str, str] = {}  # label -> widget id, from the last run
        self.pages: list[tuple[str, str]] = []  # (page name, script hash), from the navigation message
        self.exceptions: list[str] = []
        self.alerts: list[str] = []  # st.error/warning/info texts of the last run (why a log-in failed)
        self.elements = 0  # elements the last run drew: a page that draws nothing did not really run

    async def connect(self) -> None:
        import websockets

        self.ws = await websockets.connect(
            f"ws://127.0.0.1:{self.port}/_stcore/stream", subprotocols=["streamlit"],
            origin=f"http://127.0.0.1:{self.port}", max_size=None, open_timeout=PAGE_TIMEOUT_S)

    async def run(self, page_hash: str = "", states: list | None = None) -> float:
        """Ask for a rerun and wait for its end; the seconds it took."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = page_hash
        if states:
            msg.rerun_script.widget_states.widgets.extend(states)
        self.widgets, self.exceptions, self.alerts, self.elements = {}, [], [], 0
        t0 = time.perf_counter()
        assert self.ws is not None
        await self.ws.send(msg.SerializeToString())
        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout=PAGE_TIMEOUT_S)
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            if kind == "script_finished":
                if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    continue  # st.rerun(): the run goes on
                return time.perf_counter() - t0
            if kind == "navigation":
                self.pages = [(p.page_name, p.page_script_hash) for p in fm.navigation.app_pages]
            elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                self._element(fm.delta.new_element)

    def _element(self, el) -> None:
        self.elements += 1
        kind = el.WhichOneof("type")
        if kind == "exception":
            self.exceptions.append(f"{el.exception.type}: {el.exception.message[:200]}")
        elif kind == "alert":
            self.alerts.append(el.alert.body[:200])
        elif kind in ("text_input", "button", "checkbox"):
            w = getattr(el, kind)
            self.widgets[w.label] = w.id

    async def log_in(self, email: str) -> float:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        await self.run()
        ids = self.widgets
        if not {"E-mail", "Password", "Log in"} <= ids.keys():
            raise RuntimeError(f"no log-in form (widgets {sorted(ids)})")
        states = [WidgetState(id=ids["E-mail"], string_value=email),
                  WidgetState(id=ids["Password"], string_value=PASSWORD),
                  WidgetState(id=ids["Log in"], trigger_value=True)]
        took = await self.run(states=states)
        # The log-in run reruns the script itself (st.rerun) into the new navigation.
        if not any(name for name, _ in self.pages if name.lower() not in ("log in", "sign up")):
            raise RuntimeError(f"log-in as {email} did not open the app: {'; '.join(self.alerts) or 'no message'}")
        return took

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def _tour(client: Client, skip: frozenset[str]) -> list[tuple[str, str]]:
    """The pages of this session's navigation, in order, minus the public ones and those in `skip`."""
    return [(name, h) for name, h in client.pages if name.lower() not in ("log in", "sign up") and name not in skip]


async def _warm_up(port: int, skip: frozenset[str]) -> dict:
    """Before measuring: one session per kind of role logs in and opens every page of its navigation once, so
    the measured steps see a running server (modules imported, pools filled), as users of a deployed app do.
    What this cold tour took is recorded too."""
    out: dict = {"pages": 0, "max_s": 0.0, "errors": []}
    t0 = time.perf_counter()
    for email in dict((role, email) for email, role in USERS).values():
        client = Client(port)
        try:
            await client.connect()
            took = await client.log_in(email)
            out["login_s"] = max(out.get("login_s", 0.0), round(took, 3))
            for name, page_hash in _tour(client, skip):
                took = await client.run(page_hash=page_hash)
                out["pages"] += 1
                out["max_s"] = max(out["max_s"], round(took, 3))
                out["errors"] += [f"{email} on {name}: {e}" for e in client.exceptions]
        except Exception as exc:  # noqa: BLE001 - recorded; the measured steps count their own errors
            out["errors"].append(f"{email}: {type(exc).__name__}: {exc}"[:300])
        finally:
            await client.close()
    out["total_s"] = round(time.perf_counter() - t0, 3)
    return out


async def _session(port: int, n: int, deadline: float, stats: Stats, rng: random.Random,
                   skip: frozenset[str] = frozenset()) -> None:
    email, _role = USERS[n % len(USERS)]
    client = Client(port)
    where = "log-in"
    try:
        await asyncio.sleep(rng.uniform(0, 3))  # users do not all arrive in the same millisecond
        await client.connect()
        stats.logins.append(await client.log_in(email))
        pages = _tour(client, skip)
        i = 0
        while time.perf_counter() < deadline:
            await asyncio.sleep(rng.uniform(2.0, 4.0))
            name, page_hash = pages[i % len(pages)]
            where = name
            took = await client.run(page_hash=page_hash)
            stats.page(name, took)
            stats.errors += [f"{email} on {name}: {e}" for e in client.exceptions]
            if client.elements == 0:
                stats.errors.append(f"{email} on {name}: a page drew nothing")
            i += 1
    except Exception as exc:  # noqa: BLE001 - every failure counts as an error of the run
        stats.errors.append(f"{email} on {where}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await client.close()


async def _step(port: int, sessions: int, duration: float, seed: int, skip: frozenset[str] = frozenset()) -> Stats:
    stats = Stats()
    deadline = time.perf_counter() + duration
    rng = random.Random(seed)
    await asyncio.gather(*(_session(port, n, deadline, stats, random.Random(rng.random()), skip)
                           for n in range(sessions)))
    return stats


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on Linux
        return None


def start_app(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.headless", "true", "--server.port", str(port),
         "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    for _ in range(300):
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the app did not start")


def measure(steps: list[int], duration: float, seed: int = 2026, *, skip: frozenset[str] = frozenset(),
            warm_up: bool = True) -> dict:
    """Run every step against a fresh app server (after a warm-up tour); the figures (bench.run's format) and
    the per-step detail. `skip` leaves pages out of the tours (diagnosis only: the figures say so)."""
    port = _free_port()
    proc = start_app(port)
    detail = []
    warm = None
    try:
        if warm_up:
            warm = asyncio.run(_warm_up(port, skip))
            print(f"  warm-up: {warm}", flush=True)
        for n in steps:
            load_before = _load()
            stats = asyncio.run(_step(port, n, duration, seed, skip))
            detail.append({"sessions": n, "load_avg_before": load_before, "load_avg_after": _load(),
                           "page_runs": len(stats.pages), "p50_s": _p(stats.pages, 0.5),
                           "p95_s": _p(stats.pages, 0.95), "login_p50_s": _p(stats.logins, 0.5),
                           "login_p95_s": _p(stats.logins, 0.95), "errors": len(stats.errors),
                           "error_samples": stats.errors[:5], "slowest_pages": stats.slowest_pages(),
                           "mean_s": round(statistics.fmean(stats.pages), 3) if stats.pages else None})
            print(f"  {n} sessions: {detail[-1]}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    last = detail[-1]
    # The saturation point: the most sessions at which page reruns AND logins kept p95 <= 2 s, with no errors.
    ok = [d["sessions"] for d in detail if d["p95_s"] is not None and d["p95_s"] <= 2.0 and d["errors"] == 0
          and (d["login_p95_s"] or 0) <= 2.0]
    return {
        "figures": {
            "load_sessions": {"value": last["sessions"], "unit": "sessions", "target": "20"},
            "load_p95_s": {"value": last["p95_s"], "unit": "s", "target": "<= 2"},
            "load_p50_s": {"value": last["p50_s"], "unit": "s", "target": None},
            "load_login_p95_s": {"value": last["login_p95_s"], "unit": "s", "target": "<= 2"},
            "load_errors": {"value": last["errors"], "unit": "errors", "target": "0"},
            "load_saturation_sessions": {"value": max(ok) if ok else 0, "unit": "sessions", "target": ">= 20"},
        },
        "detail": detail,
        "warm_up": warm,
        "skipped_pages": sorted(skip),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.loadtest")
    ap.add_argument("--sessions", type=int, default=20, help="sessions at once in the last step")
    ap.add_argument("--steps", default="5,10", help="smaller steps run first, for the saturation point")
    ap.add_argument("--duration", type=float, default=180.0, help="seconds per step")
    ap.add_argument("--skip", default="", help="page names left out of the tours, comma-separated (diagnosis)")
    ap.add_argument("--no-warm-up", action="store_true", help="measure from a cold server")
    args = ap.parse_args(argv)
    skip = frozenset(x.strip() for x in args.skip.split(",") if x.strip())
    steps = sorted({int(x) for x in args.steps.split(",") if x.strip()} | {args.sessions})
    print(f"Load test: steps {steps}, {args.duration:.0f} s each", flush=True)
    res = measure(steps, args.duration, skip=skip, warm_up=not args.no_warm_up)
    from bench.run import run_stamp
    from db.engine import make_engine

    engine = make_engine()
    stamp = run_stamp(engine)
    engine.dispose()
    if skip:  # not the whole tour: say so on every figure, and keep the real results file untouched
        stamp = {**stamp, "skipped_pages": sorted(skip)}
    out = {k: {**v, **stamp} for k, v in res["figures"].items()}
    out["_run"] = {"steps": res["detail"], "duration_s": args.duration, "stamp": stamp, "warm_up": res["warm_up"]}
    path = RESULTS.with_name("results-load-partial.json") if skip else RESULTS
    path.write_text(json.dumps(out, indent=2, default=str) + "\n")
    for k, v in res["figures"].items():
        print(f"    {k}: {v['value']} {v['unit']} (target {v['target']})")
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
