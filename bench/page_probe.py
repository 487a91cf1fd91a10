"""Run the usage dashboard page once in AppTest against the bench database and print JSON with the
page's server-side run time and this process's peak memory (bench.run calls this in a subprocess)."""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from datetime import date, timedelta

os.environ.setdefault("RC_PASSWORD_PROFILE", "fast")


def _staff(url: str, partner_id: int):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from core.accounts import accounts
    from core.accounts.actor import SYSTEM
    from core.accounts.auth import load_actor
    from db.engine import make_engine
    from db.models import User
    from db.roles import ensure_app_role

    eng = make_engine(url)
    ensure_app_role(eng)  # the app connects as its least-privilege role (db/roles.py), as `make run` sets up
    email = f"bench-staff-{partner_id}@bench.example"
    with Session(eng) as s, s.begin():
        user = s.scalar(select(User).where(User.email == email))
        if user is None:
            user = accounts.create_staff(s, SYSTEM, partner_id=partner_id, email=email, display_name="Bench staff",
                                         password="bench-password-not-secret-123")
        actor = load_actor(s, user.partner_id, user.id)
    eng.dispose()
    return actor


def _peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space created by exec; ru_maxrss
    would also report the parent's peak (Linux keeps it across fork + exec: bench.run holds the ingestion
    rows in memory when it starts this probe)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--partner", type=int, required=True)
    ap.add_argument("--start", required=True)
    ap.add_argument("--end", required=True)
    args = ap.parse_args()
    os.environ["DATABASE_URL"] = args.url
    actor = _staff(args.url, args.partner)
    from streamlit.testing.v1 import AppTest

    def session(start: str, end: str) -> tuple[float, AppTest]:
        """A new browser session: log in (the router), then open the dashboard for the range; the page's
        run time."""
        at = AppTest.from_file("../Home.py", default_timeout=120)
        at.session_state["auth_partner_id"] = actor.partner_id
        at.session_state["auth_user_id"] = actor.user_id
        at.session_state["auth_version"] = actor.session_version
        at.run()  # the router and the landing page
        at.query_params.update({"preset": "custom", "from": start, "to": end})
        t0 = time.perf_counter()
        at.switch_page("pages/usage_dashboard.py").run()
        took = time.perf_counter() - t0
        assert not at.exception, [getattr(e, "stack_trace", e) for e in at.exception]
        assert at.get("plotly_chart"), "no chart drawn"
        return took, at

    # The first session of a fresh process also imports pandas and plotly and warms the libraries (about a
    # second on this machine); a running server has done that for an earlier session. That first session
    # looks at a different range (nothing of the measured one is cached), then a new session is measured.
    start = date.fromisoformat(args.start)
    cold_s, _ = session(str(start + timedelta(days=31)), args.end)
    page_s, at = session(args.start, args.end)
    t0 = time.perf_counter()
    at.run()
    rerun_s = time.perf_counter() - t0
    peak_mb = _peak_rss_mb()
    print(json.dumps({"page_s": round(page_s, 3), "rerun_s": round(rerun_s, 3), "peak_mb": round(peak_mb, 1),
                      "cold_s": round(cold_s, 3),
                      "range": [args.start, args.end]}))


if __name__ == "__main__":
    main()
