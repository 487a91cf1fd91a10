"""`make run`'s set-up step: start the database (DATABASE_URL, else the embedded server), apply the
migrations and load the default demo into an empty database.

    python -m seeds.setup
"""

from __future__ import annotations

import sys

from core.bootstrap import bootstrap
from db.engine import database_url, make_engine
from db.migrate import upgrade
from seeds.loader import load_default_demo_if_empty


def main() -> int:
    bootstrap()
    engine = make_engine(database_url())
    upgrade(engine)
    print("Database migrated.", flush=True)
    load_default_demo_if_empty(engine)
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
