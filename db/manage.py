"""Database management commands.

    python -m db.manage migrate    # apply migrations only
    python -m db.manage url        # print the database URL in use
"""

from __future__ import annotations

import argparse
import sys

from db.engine import database_url, make_engine
from db.migrate import upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.manage")
    parser.add_argument("command", choices=["migrate", "url"])
    args = parser.parse_args(argv)
    url = database_url()
    if args.command == "url":
        print(url)
        return 0
    engine = make_engine(url)
    upgrade(engine)
    print("Database migrated.")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
