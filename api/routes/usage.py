"""Usage: record events (the core's one ingestion path) and read usage per customer, metric and day."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from api import idempotency
from api.deps import api_actor
from api.encode import exact, plain
from api.problems import ApiProblem, pointer
from core.accounts.actor import Actor, db_scope
from core.usage import ingest, reports
from db.engine import unit_of_work

router = APIRouter(prefix="/v1/usage", tags=["usage"])
MAX_EVENTS = 10_000
MAX_SUMMARY_DAYS = 366

EVENTS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["events"], "additionalProperties": False,
        "properties": {"events": {"type": "array", "maxItems": MAX_EVENTS, "items": {
            "type": "object", "required": ["account_id", "metric", "quantity", "occurred_at", "event_id"],
            "properties": {
                "account_id": {"type": "integer"}, "metric": {"type": "string"},
                "quantity": {"type": ["number", "string"], "description": "non-negative, at most 6 decimals"},
                "occurred_at": {"type": "string", "format": "date-time"},
                "event_id": {"type": "string", "maxLength": 100, "description": "idempotency key per account"},
                "source": {"type": "string", "maxLength": 60}, "properties": {"type": "object"}}}}}},
        "example": {"events": [{"account_id": 42, "metric": "api_calls", "quantity": 3,
                                "occurred_at": "2026-03-01T12:00:00Z", "event_id": "evt-0001"}]}}},
}


def parse_events(raw: bytes) -> list[Any]:
    """The body's events (quantities kept exact as Decimal), or 400/422 with a pointer."""
    try:
        body = json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiProblem(400, f"The body is not valid JSON: {exc}.") from None
    if not isinstance(body, dict) or not isinstance(body.get("events"), list):
        raise ApiProblem(422, 'The body must be an object {"events": [...]}.',
                         errors=[{"pointer": pointer("events"), "detail": "a list of events is required"}])
    extra = sorted(set(body) - {"events"})
    if extra:
        raise ApiProblem(422, f"Unknown field {extra[0]!r}.", errors=[{"pointer": pointer(extra[0]),
                                                                       "detail": "unknown field"}])
    events = body["events"]
    if len(events) > MAX_EVENTS:
        raise ApiProblem(422, f"A batch has at most {MAX_EVENTS} events; this one has {len(events)}.",
                         errors=[{"pointer": pointer("events"), "detail": f"at most {MAX_EVENTS} events"}])
    return events


@router.post("/events", openapi_extra={"requestBody": EVENTS_BODY}, summary="Record usage events",
             responses={200: {"description": "accepted, duplicate and refused counts"},
                        422: {"description": "refused events with their index; nothing was recorded"}})
async def post_events(request: Request, actor: Annotated[Actor, Depends(api_actor)],
                      idempotency_key: Annotated[str | None, Header()] = None):
    """Record up to 10,000 events, all or nothing. An event id already recorded for the account is a
    duplicate (skipped, not an error). If any event is refused the answer lists each one with its index
    and nothing is recorded. Scope: `usage:write`."""
    raw = await request.body()
    events = parse_events(raw)
    request_hash = idempotency.fingerprint("POST", request.url.path, raw)

    def work(s: Session) -> tuple[int, dict]:
        r = ingest.record_events(s, actor, actor.partner_id, events, default_source="api", first_row=0)
        return 200, {"received": r.received, "accepted": r.inserted + r.corrections, "duplicates": r.duplicates,
                     "corrections": r.corrections, "refused": 0, "errors": []}

    return await run_in_threadpool(idempotency.run, request.app.state.engine, actor, idempotency_key,
                                   request_hash, work)


@router.get("/summary", summary="Usage per customer, metric and day")
def summary(request: Request, actor: Annotated[Actor, Depends(api_actor)],
            start: Annotated[date, Query(description="first day (UTC), YYYY-MM-DD")],
            end: Annotated[date, Query(description="last day (UTC), inclusive")],
            account_id: Annotated[int | None, Query()] = None) -> dict:
    """The billable quantity per customer account, metric and UTC day over the range (at most 366 days);
    the same numbers as the usage pages and billing. Values are decimal strings. Scope: `usage:read`."""
    if end - start > timedelta(days=MAX_SUMMARY_DAYS - 1):
        raise ApiProblem(422, f"Choose a range of at most {MAX_SUMMARY_DAYS} days.",
                         errors=[{"pointer": "query:end", "detail": "range too long"}])
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        rows = reports.daily_usage(s, actor, start=start, end=end, partner_id=actor.partner_id,
                                   account_id=account_id)
    return plain({"start": start, "end": end,
                  "rows": [{"account_id": a, "metric": m, "day": d, "value": exact(v)} for a, m, d, v in rows]})
