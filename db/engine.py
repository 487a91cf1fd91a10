"""Engine and session setup.

The database is PostgreSQL, chosen by `DATABASE_URL` (the owner's URL: migrations); when it is unset an
embedded PostgreSQL 16 server from the `pgserver` wheel is started with its data in `.data/pgdata` (kept
between runs). The app, the CLIs and the benchmarks connect as the app's login role (`app_url()`, db/roles.py).

Tenant scope (row-level security, migration 0019): every transaction of a session carries the scope recorded on
the session (`bind_scope`, `scoped_session`, `unit_of_work(engine, scope)`): the partner whose rows it may see
and write, or the explicit platform scope. The one place that turns it into the database settings
`app.partner_id` / `app.scope` (transaction-local) is the `after_begin` listener below, for every Session. A
session without a scope sees and writes no tenant row.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

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


def owner_url() -> str:
    """The owner's URL (migrations, role set-up, bulk maintenance): DATABASE_URL, else the embedded server."""
    url = os.environ.get("DATABASE_URL")
    return normalise_url(url) if url else embedded_url()


def app_url(owner: str | None = None) -> str:
    """The URL the app, the CLIs and the benchmarks connect with: the app's login role, which owns nothing
    (db/roles.py). APP_DATABASE_URL when set; otherwise the owner's URL with the user RC_APP_ROLE (default
    rc_app) and the password RC_APP_PASSWORD (none: the embedded server trusts its socket)."""
    explicit = os.environ.get("APP_DATABASE_URL")
    if explicit:
        return normalise_url(explicit)
    from sqlalchemy.engine import make_url

    from db.roles import app_role

    url = make_url(owner or owner_url()).set(username=app_role(), password=os.environ.get("RC_APP_PASSWORD"))
    return url.render_as_string(hide_password=False)


def database_url() -> str:
    """The app's connection (the least-privilege role). Use owner_url() for migrations."""
    return app_url()


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
def unit_of_work(engine: Engine, scope: Scope | None = None) -> Iterator[Session]:
    """One transaction per user action: commit when the block succeeds, roll back on any error. `scope` binds
    the session to a tenant (or the platform); the caller may also bind it later (`bind_scope`)."""
    with Session(engine, expire_on_commit=False) as session:
        if scope is not None:
            bind_scope(session, scope)
        with session.begin():
            yield session


# --- Tenant scope for row-level security --------------------------------------------------------------------

log = logging.getLogger("rc.tenancy")
SCOPE_KEY = "rc_scope"
_SET_SCOPE = text("SELECT set_config('app.partner_id', :p, true), set_config('app.scope', :s, true)")


@dataclass(frozen=True)
class Scope:
    """A partner's rows only (partner_id), or every tenant's (platform, with the reason that is logged)."""
    partner_id: int | None = None
    platform: str | None = None

    def settings(self) -> dict[str, str]:
        if self.platform is not None:
            return {"p": "", "s": "platform"}
        return {"p": str(int(self.partner_id)) if self.partner_id is not None else "", "s": ""}


def partner_scope(partner_id: int) -> Scope:
    return Scope(partner_id=int(partner_id))


def platform_scope(reason: str, *, quiet: bool = False) -> Scope:
    """The explicit platform scope (every tenant's rows). Entering it is logged on `rc.tenancy` (INFO; DEBUG
    when `quiet`, for per-request cases such as a platform admin's page or a login look-up)."""
    if not reason:
        raise ValueError("The platform scope needs a reason")
    log.log(logging.DEBUG if quiet else logging.INFO, "platform scope entered: %s", reason)
    return Scope(platform=reason)


def bind_scope(session: Session, scope: Scope) -> Session:
    """Record the scope on the session; applied to the current transaction now (if any) and to every later one."""
    session.info[SCOPE_KEY] = scope
    if session.in_transaction():
        session.execute(_SET_SCOPE, scope.settings())
    return session


def scoped_session(engine: Engine, scope: Scope, **kwargs) -> Session:
    """A new Session bound to `scope`."""
    return bind_scope(Session(engine, **kwargs), scope)


def scope_of(session: Session) -> Scope | None:
    return session.info.get(SCOPE_KEY)


@event.listens_for(Session, "after_begin")
def _apply_scope(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    scope = session.info.get(SCOPE_KEY)
    if scope is not None:
        connection.execute(_SET_SCOPE, scope.settings())


def tenant_session(engine: Engine, partner_id: int, **kwargs) -> Session:
    """A new Session bound to one partner's rows (internal steps that already know their tenant)."""
    return scoped_session(engine, partner_scope(partner_id), **kwargs)


@contextmanager
def scoped_begin(engine: Engine, scope: Scope) -> Iterator[Connection]:
    """`engine.begin()` with the transaction bound to `scope` (Core connections outside a Session)."""
    with engine.begin() as conn:
        conn.execute(_SET_SCOPE, scope.settings())
        yield conn
