"""Who is calling and how much: API-key authentication, a per-key rate limit and request size limits."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api.problems import ApiProblem, problem
from core.accounts import apikeys
from core.accounts.actor import Actor
from core.errors import AuthError


@dataclass
class RateLimiter:
    """A token bucket per API key: `rate` requests per second on average, bursts of up to `burst`.
    Kept in the API process (one uvicorn process serves the API; each process limits on its own)."""

    rate: float = 20.0
    burst: int = 40
    clock: object = time.monotonic
    _buckets: dict[int, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, key_id: int) -> float:
        """0 when the request may go ahead, else the seconds to wait before the next one may."""
        now = self.clock()  # type: ignore[operator]
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("x-api-key")


def authenticate(engine: Engine, limiter: RateLimiter, request: Request) -> Actor:
    """The key's actor ("last used" updated in its own short transaction), or 401; then the rate limit."""
    with Session(engine) as s:
        try:
            actor = apikeys.authenticate(s, bearer(request))
        except AuthError:
            s.rollback()
            raise
        s.commit()
    wait = limiter.take(actor.api_key_id or 0)
    if wait > 0:
        raise ApiProblem(429, f"Too many requests for this API key; retry after {math.ceil(wait)} s.",
                         headers={"Retry-After": str(max(1, math.ceil(wait)))})
    return actor


class BodyLimit:
    """ASGI middleware: refuse request bodies over `max_bytes` (by Content-Length, or while streaming) with
    413 before the application reads them."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        too_big = problem(413, f"The request body is larger than {self.max_bytes} bytes.", instance=scope.get("path"))
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await too_big(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiProblem(413, f"The request body is larger than {self.max_bytes} bytes.")
            return message

        return await self.app(scope, limited_receive, send)
