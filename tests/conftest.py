"""Test fixtures: a real PostgreSQL (TEST_DATABASE_URL, else a throw-away embedded server), migrated once
per run with Alembic, and emptied before each test that uses it. Never a mock."""

from __future__ import annotations

import os

os.environ.setdefault("RC_PASSWORD_PROFILE", "fast")

import pytest
from sqlalchemy.orm import Session

from core.bootstrap import bootstrap
from db.engine import make_engine
from db.migrate import upgrade
from db.testing import recreate_schema, reset_data, test_database_url

bootstrap()  # the usage hooks, as every entry point registers them


@pytest.fixture(scope="session")
def database_url() -> str:
    url = test_database_url()
    os.environ["DATABASE_URL"] = url  # the app under AppTest and browser tests uses the same database
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    recreate_schema(eng)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine):
    """An empty database (reference data kept)."""
    from core.billing.purchases import wait_for_purchases

    wait_for_purchases()  # automatic purchases still settling from the previous test
    reset_data(engine)
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
