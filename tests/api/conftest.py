"""The API under test: a real uvicorn on a free port, over the test database; keys made through core."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.orm import Session

from api.main import create_app
from core.accounts import apikeys
from tests.api.servers import serve

ALL_SCOPES = list(apikeys.SCOPES)


@pytest.fixture(autouse=True)
def local_receivers(monkeypatch):
    """The tests' webhook receivers listen on 127.0.0.1 (refused by default: see webhooks.private_allowed)."""
    monkeypatch.setenv("RC_WEBHOOKS_ALLOW_PRIVATE", "1")


@pytest.fixture
def make_key(db):
    def make(actor, scopes=ALL_SCOPES, name="test key") -> str:
        with Session(db) as s, s.begin():
            return apikeys.create_key(s, actor, actor.partner_id, name=name, scopes=scopes).token
    return make


@pytest.fixture
def api_app(db, app_engine):
    """The API on the app role's engine with no default scope: each request binds its key's tenant (RLS)."""
    return create_app(app_engine, rate=1000, burst=1000)


@pytest.fixture
def api_url(api_app):
    with serve(api_app) as url:
        yield url


@pytest.fixture
def client(api_url):
    with httpx.Client(base_url=api_url, timeout=60) as c:
        yield c


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
