"""Test fixtures: a real PostgreSQL (TEST_DATABASE_URL, else a throw-away embedded server), migrated once
per run with Alembic by the owner, and emptied before each test that uses it. Never a mock.

Tests connect as the app's least-privilege role (db/roles.py), like the app: a missing grant fails a test.
`owner_engine` is for what only the owner may do (migrations, the reset between tests)."""

from __future__ import annotations

import os

os.environ.setdefault("RC_PASSWORD_PROFILE", "fast")

import pytest
from sqlalchemy.orm import Session

from core import clock
from core.bootstrap import bootstrap
from db.engine import app_url, make_engine
from db.migrate import upgrade
from db.roles import ensure_app_role
from db.testing import recreate_schema, reset_data, test_database_url
from tests.when import MID_MONTH

bootstrap()  # the usage hooks, as every entry point registers them


@pytest.fixture(scope="session")
def owner_url() -> str:
    url = test_database_url()
    os.environ["DATABASE_URL"] = url  # the owner's URL, as `make run` gets it
    return url


@pytest.fixture(scope="session")
def owner_engine(owner_url):
    eng = make_engine(owner_url)
    recreate_schema(eng)
    upgrade(eng)
    ensure_app_role(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def database_url(owner_url, owner_engine) -> str:
    """The app role's URL; the app under AppTest and browser tests uses the same (APP_DATABASE_URL)."""
    os.environ.pop("APP_DATABASE_URL", None)
    url = app_url(owner_url)
    os.environ["APP_DATABASE_URL"] = url
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    """The tests' own connections (factories, assertions) run in the platform scope explicitly, set per
    connection; the app's code paths bind their own scope per transaction (db/engine.py), which overrides it.
    `app_engine` has no default: row-level security applies in full (tests/test_rls.py)."""
    from sqlalchemy import event

    eng = make_engine(database_url)

    @event.listens_for(eng, "connect")
    def _platform(dbapi_conn, record):
        with dbapi_conn.cursor() as cur:
            cur.execute("SET app.scope = 'platform'")
        dbapi_conn.commit()

    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def app_engine(database_url):
    """The app role with no default scope, like the app: a session sees only what its bound scope allows."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine, owner_engine):
    """An empty database (reference data kept)."""
    from core.billing.purchases import wait_for_purchases

    wait_for_purchases()  # automatic purchases still settling from the previous test
    reset_data(owner_engine)  # TRUNCATE: the owner's right
    return engine


@pytest.fixture
def session(db):
    """A session; the test commits what it wants the app (or other connections) to see."""
    with Session(db, expire_on_commit=False) as s:
        yield s
        s.rollback()


@pytest.fixture
def world(db):
    from tests.factories import build_world

    return build_world(db)


@pytest.fixture
def on_day():
    """The app's clock (core.clock) moved to MID_MONTH for the test, then back: a page's defaults ("this
    month", "the last 30 days") and its "five minutes ago" no longer depend on when the test runs."""
    clock.travel_to(MID_MONTH)
    yield MID_MONTH
    clock.travel_to(None)
