"""Database management commands.

    python -m db.manage migrate    # apply migrations (as the owner), then set up the app's role and grants
    python -m db.manage url        # print the URL the app connects with (its least-privilege role)
"""

from __future__ import annotations

import argparse
import sys

from sqlalchemy.engine import make_url

from db.engine import app_url, make_engine, owner_url
from db.migrate import upgrade
from db.roles import ensure_app_role


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m db.manage")
    parser.add_argument("command", choices=["migrate", "url"])
    args = parser.parse_args(argv)
    if args.command == "url":
        print(make_url(app_url()).render_as_string(hide_password=True))
        return 0
    engine = make_engine(owner_url())
    upgrade(engine)
    role = ensure_app_role(engine)
    print(f"Database migrated; the app connects as {role}.")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
