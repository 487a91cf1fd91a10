"""Loads demo data files into the database through the core services (so every rule applies).

The default demo is a scenario (seeds/scenario.py, seeds/scenarios/default.toml); `load_foundation` keeps
loading the small foundation file (seeds/foundation.toml) for whoever still wants only that.
"""

from __future__ import annotations

import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core import clock
from core.accounts import accounts
from core.accounts.actor import SYSTEM
from db.models import User

SEEDS_DIR = Path(__file__).resolve().parent
FOUNDATION = SEEDS_DIR / "foundation.toml"


def database_is_empty(session: Session) -> bool:
    return not session.scalar(select(func.count()).select_from(User))


def load_foundation(session: Session, path: Path = FOUNDATION) -> dict[str, int]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    password = data["password"]
    counts = {"admins": 0, "partners": 0, "staff": 0, "customers": 0, "users": 0}
    for admin in data.get("admins", []):
        accounts.create_admin(session, SYSTEM, email=admin["email"], display_name=admin["name"], password=password)
        counts["admins"] += 1
    for p in data.get("partners", []):
        partner = accounts.create_partner(session, SYSTEM, name=p["name"], contact_email=p.get("contact_email"),
                                          currency=p.get("currency", "EUR"), country=p.get("country"))
        counts["partners"] += 1
        for s in p.get("staff", []):
            accounts.create_staff(session, SYSTEM, partner_id=partner.id, email=s["email"], display_name=s["name"],
                                  password=password)
            counts["staff"] += 1
        for c in p.get("customers", []):
            fields = {k: c[k] for k in accounts.ACCOUNT_FIELDS if k in c}
            acc = accounts.create_account(session, SYSTEM, partner_id=partner.id, **fields)
            counts["customers"] += 1
            for u in c.get("users", []):
                accounts.create_user(session, SYSTEM, partner_id=partner.id, account_id=acc.id, email=u["email"],
                                     display_name=u["name"], role=u["role"], password=password)
                counts["users"] += 1
    return counts


def demo_logins(path: Path = FOUNDATION) -> tuple[str, list[tuple[str, str]]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    rows = [(a["email"], "platform admin") for a in data.get("admins", [])]
    for p in data.get("partners", []):
        rows += [(s["email"], f"partner staff, {p['name']}") for s in p.get("staff", [])]
        for c in p.get("customers", []):
            rows += [(u["email"], f"{accounts.role_label(u['role'])}, {c['name']}") for u in c.get("users", [])]
    return data["password"], rows


def load_default_demo_if_empty(engine: Engine) -> bool:
    """`make run`: load the default demo (seeds/scenarios/default.toml: the four reseller worlds with 13 months
    of usage ending today, and the demo logins) into an empty database, in one transaction."""
    from seeds.scenario import DEFAULT_SCENARIO, RefusedNonEmpty, load_file

    print("Loading the demo (13 months of usage for four reseller worlds; a few minutes on the first run)...",
          flush=True)
    try:
        summary = load_file(engine, DEFAULT_SCENARIO, progress=ProgressLine())
    except RefusedNonEmpty:
        print("Database already has data: demo not loaded.")
        return False
    print("Demo data loaded.", summary.text())
    demo_statements(engine)
    return True


class ProgressLine:
    """Prints the demo load's progress: one line rewritten in place on a terminal, else a line per partner
    and per quarter of its usage (logs)."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stdout
        self.tty = self.out.isatty()
        self.last: tuple[int, int] = (0, -1)

    def __call__(self, partner: str, n: int, total: int, done: int, events: int) -> None:
        pct = 100 * done // events if events else 100
        text = f"  partner {n}/{total} {partner}: {done:,}/{events:,} usage events ({pct} %)"
        if self.tty:
            self.out.write("\r" + text.ljust(100) + ("\n" if done >= events else ""))
        elif (n, pct // 25) != self.last:
            self.out.write(text + "\n")
        self.last = (n, pct // 25)
        self.out.flush()


def demo_statements(engine: Engine, today: date | None = None) -> None:
    """Give the demo a billing history: final (numbered) statements for the month before last and drafts
    for the last full month, for every partner, as the monthly run would have made them."""
    from core.accounts.actor import SYSTEM
    from core.statements import lifecycle
    from db.engine import unit_of_work
    from db.models import Partner

    first = (today or clock.today()).replace(day=1)
    last_month = (first - timedelta(days=1)).replace(day=1)
    month_before = (last_month - timedelta(days=1)).replace(day=1)
    with Session(engine) as s:
        partner_ids = list(s.scalars(select(Partner.id).where(~Partner.is_house).order_by(Partner.id)))
    made = 0
    for month, finalise in ((month_before, True), (last_month, False)):
        print(f"  statements for {month:%Y-%m} ({'final' if finalise else 'drafts'}), {len(partner_ids)} partners...",
              flush=True)
        for pid in partner_ids:
            with unit_of_work(engine) as s:
                made += len(lifecycle.generate_month(s, SYSTEM, pid, month, finalise=finalise))
    print(f"Statements: {month_before:%Y-%m} final, {last_month:%Y-%m} drafts ({made} in all).")
