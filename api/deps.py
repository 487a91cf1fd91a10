"""FastAPI dependencies shared by the routers."""

from __future__ import annotations

from fastapi import Request
from sqlalchemy import Engine

from api.security import authenticate
from core.accounts.actor import Actor


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def api_actor(request: Request) -> Actor:
    """The API key's actor (401 without a valid key, 429 over its rate)."""
    return authenticate(request.app.state.engine, request.app.state.limiter, request)
