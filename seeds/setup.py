"""`make run`'s set-up step: start the database (DATABASE_URL, else the embedded server), apply the
migrations and load the default demo into an empty database.

    python -m seeds.setup
"""

from __future__ import annotations

import sys

from core import clock
from core.bootstrap import bootstrap
from core.usage.partitions import ensure_partitions
from db.engine import make_engine, owner_url
from db.migrate import upgrade
from db.roles import ensure_app_role
from seeds.loader import load_default_demo_if_empty


def main() -> int:
    bootstrap()
    owner = make_engine(owner_url())
    upgrade(owner)
    role = ensure_app_role(owner)
    print(f"Database migrated; the app connects as {role}.", flush=True)
    # The demo is loaded by the owner: a scenario stamps its history at the dates it happened, re-dating rows
    # of its own load transaction in append-only tables, which the app's role may never change.
    load_default_demo_if_empty(owner)
    ensure_partitions(owner, clock.today())  # usage_events' months ahead, and the demo's months (0020)
    owner.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
