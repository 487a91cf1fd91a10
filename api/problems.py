"""RFC 9457 problem details: every error the API answers, with a JSON pointer for each refused value."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import AuthError, Conflict, DomainError, NotFound, PermissionDenied, ValidationError
from core.usage.validation import EVENT_KEYS, BatchValidationError

MEDIA_TYPE = "application/problem+json"
TITLES = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found", 409: "Conflict",
          413: "Request too large", 415: "Unsupported media type", 422: "Validation failed",
          429: "Too many requests", 500: "Internal error"}
SLUGS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found", 409: "conflict",
         413: "too-large", 415: "unsupported-media-type", 422: "validation", 429: "rate-limited", 500: "internal"}


class ApiProblem(Exception):
    """An error raised by the API layer itself (size, rate, idempotency, bad JSON)."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        self.status, self.detail, self.headers, self.extra = status, detail, headers or {}, extra
        super().__init__(detail)


def problem(status: int, detail: str, *, instance: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body = {"type": f"/problems/{SLUGS.get(status, 'error')}", "title": TITLES.get(status, "Error"),
            "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def pointer(*parts: Any) -> str:
    """A JSON pointer (RFC 6901) to a value of the request body, e.g. #/events/3/quantity."""
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


_KEY_RE = re.compile(r"^(" + "|".join(EVENT_KEYS) + r")\b")


def _event_field(message: str) -> str | None:
    """Which field of an event a core message is about (messages start with the field's name)."""
    m = _KEY_RE.match(message)
    if m:
        return m.group(1)
    if message.startswith(("unknown metric", "metric ")):
        return "properties" if "distinct values of property" in message else "metric"
    if "customer account" in message:
        return "account_id"
    return None


def batch_errors(exc: BatchValidationError, collection: str = "events") -> list[dict[str, Any]]:
    out = []
    for index, messages in sorted(exc.rows.items()):
        for msg in messages:
            field = _event_field(msg)
            ptr = pointer(collection, index, field) if field else pointer(collection, index)
            out.append({"index": index, "pointer": ptr, "detail": msg})
    return out


def field_errors(exc: ValidationError, prefix: tuple = ()) -> list[dict[str, Any]]:
    return [{"pointer": pointer(*prefix, field) if field != "_form" else pointer(*prefix) if prefix else "#",
             "detail": msg} for field, msg in exc.errors.items()]


async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    path = request.url.path
    if isinstance(exc, BatchValidationError):
        refused = batch_errors(exc)
        return problem(422, exc.errors.get("_form", "Some events were refused; nothing was recorded."),
                       instance=path, accepted=0, duplicates=0, refused=exc.total_bad, errors=refused)
    if isinstance(exc, ValidationError):
        prefix = getattr(exc, "api_prefix", ())
        return problem(422, str(exc), instance=path, errors=field_errors(exc, prefix))
    if isinstance(exc, AuthError):
        return problem(401, str(exc), instance=path, headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDenied):
        return problem(403, str(exc), instance=path)
    if isinstance(exc, NotFound):
        return problem(404, str(exc), instance=path)
    if isinstance(exc, Conflict):
        return problem(409, str(exc), instance=path)
    assert isinstance(exc, DomainError)
    return problem(400, str(exc), instance=path)


async def on_api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem(exc.status, exc.detail, instance=request.url.path, headers=exc.headers, **exc.extra)


async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method, a body that could not be read) as problems; a body
    cut off by the size limit while FastAPI read it keeps its 413."""
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if isinstance(cause, ApiProblem):
        return await on_api_problem(request, cause)
    return problem(exc.status_code, str(exc.detail), instance=request.url.path, headers=exc.headers)


async def on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for e in exc.errors():
        loc = list(e.get("loc", ()))
        where = loc[0] if loc else "body"
        parts = loc[1:] if where == "body" else loc
        errors.append({"pointer": pointer(*parts) if where == "body" else f"{where}:{'.'.join(map(str, parts))}",
                       "detail": e.get("msg", "invalid")})
    return problem(422, "The request has invalid values.", instance=request.url.path, errors=errors)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return problem(500, "Something went wrong on our side; nothing was recorded.", instance=request.url.path)
