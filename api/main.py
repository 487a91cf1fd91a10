"""The FastAPI application: `create_app()` (uvicorn --factory api.main:create_app), `python -m api`.

Settings (environment): RC_API_RATE (requests per second per key, default 20), RC_API_BURST (40),
RC_API_MAX_BODY (bytes, default 8 MiB: 10,000 events of ~800 bytes).
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.problems import (
    ApiProblem,
    on_api_problem,
    on_domain_error,
    on_http_exception,
    on_request_validation,
    on_unexpected,
)
from api.routes import accounts, statements, usage
from api.security import BodyLimit, RateLimiter
from core.bootstrap import bootstrap
from core.errors import DomainError
from db.engine import make_engine

DESCRIPTION = """The Reseller Console for machines: record usage, provision customer accounts, fetch
statements. Authenticate with an API key (`Authorization: Bearer rck_...`) made on the "API keys" page;
its scopes decide what it may do. Errors are RFC 9457 problem details. See docs/api.md."""


def create_app(engine: Engine | None = None, *, rate: float | None = None, burst: int | None = None,
               max_body: int | None = None) -> FastAPI:
    bootstrap()  # the usage and audit hooks, as in every entry point
    app = FastAPI(title="Reseller Console API", version="1.0", description=DESCRIPTION)
    app.state.engine = engine or make_engine()
    app.state.limiter = RateLimiter(rate=rate or float(os.environ.get("RC_API_RATE", "20")),
                                    burst=burst or int(os.environ.get("RC_API_BURST", "40")))
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(ApiProblem, on_api_problem)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
    app.add_exception_handler(Exception, on_unexpected)
    for router in (usage.router, accounts.router, statements.router):
        app.include_router(router)

    @app.get("/health", tags=["health"], summary="Liveness")
    def health() -> dict:
        return {"status": "ok"}

    app.add_middleware(BodyLimit, max_bytes=max_body or int(os.environ.get("RC_API_MAX_BODY", str(8 << 20))))
    return app


def main() -> None:  # pragma: no cover - operational entry point
    import uvicorn

    port = int(os.environ.get("RC_API_PORT", "8000"))
    uvicorn.run("api.main:create_app", factory=True, host=os.environ.get("RC_API_HOST", "127.0.0.1"), port=port,
                log_level=os.environ.get("RC_API_LOG", "info"))
