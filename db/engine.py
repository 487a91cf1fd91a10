"""Engine and session setup.

The database is PostgreSQL, chosen by `DATABASE_URL`; when it is unset an embedded PostgreSQL 16 server
from the `pgserver` wheel is started with its data in `.data/pgdata` (kept between runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / ".data"

_servers: dict[str, object] = {}  # data directory -> the pgserver started for it (see server_for)


def normalise_url(url: str) -> str:
    """A PostgreSQL URL for SQLAlchemy with psycopg 3 (postgres:// and postgresql:// are rewritten)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def embedded_url(data_dir: Path | None = None, cleanup_mode: str | None = "stop") -> str:
    """Start (or attach to) an embedded PostgreSQL server and return its SQLAlchemy URL."""
    if not os.environ.get("XDG_RUNTIME_DIR"):
        run_dir = DATA_DIR / "run"
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    import pgserver  # imported lazily: only needed without DATABASE_URL

    pgdata = (data_dir or DATA_DIR / "pgdata").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    key = str(pgdata)
    if key not in _servers:
        _servers[key] = pgserver.get_server(str(pgdata), cleanup_mode=cleanup_mode)
    return normalise_url(_servers[key].get_uri())  # type: ignore[attr-defined]


def server_for(data_dir: Path) -> object | None:
    """The embedded server this process started for `data_dir` (embedded_url), if any."""
    return _servers.get(str(data_dir))


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    return normalise_url(url) if url else embedded_url()


def make_engine(url: str | None = None, **kwargs) -> Engine:
    kwargs.setdefault("pool_pre_ping", True)
    if "poolclass" not in kwargs:
        kwargs.setdefault("pool_size", 5)
        kwargs.setdefault("max_overflow", 10)
    return create_engine(url or database_url(), **kwargs)


@lru_cache(maxsize=8)
def shared_engine(url: str | None = None) -> Engine:
    return make_engine(url)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction per user action: commit when the block succeeds, roll back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        with session.begin():
            yield session
