"""Webhooks: partners register endpoints (URL, secret, event types) and hear about events, signed.

- An event is written as one delivery row per subscribed endpoint, in the transaction that caused it (the
  intent is recorded before any call is made; a rolled-back action sends nothing). Sources: outbox
  notifications (:func:`core.notify.outbox.notify`: low balance, declined automatic purchase, threshold
  crossed) and audited changes (:func:`on_audit`, wired by core.bootstrap: account created, statement
  finalised).
- The worker (:func:`deliver_due`) claims due deliveries with ``FOR UPDATE SKIP LOCKED``, POSTs the JSON
  body and records the outcome: delivered on a 2xx answer, otherwise retried with exponential back-off
  (1 minute, doubling, at most 2 hours apart) until a day after the event, then failed. Replaying a
  delivery queues a copy (same event id: receivers deduplicate on it).
- Signing, the way Stripe does it: header ``Reseller-Signature: t=<unix time>,v1=<hex>`` where
  ``v1 = HMAC-SHA256(secret, f"{t}.{body}")``. :func:`verify` is the receiver's side (docs/api.md).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.orm import Session

from core import clock
from core.accounts import audit
from core.accounts.actor import Actor
from core.accounts.permissions import authorize
from core.errors import Conflict, NotFound, ValidationError
from db.engine import Scope, scoped_session
from db.models.integration import WebhookDelivery, WebhookEndpoint

_DELIVERY = Scope(platform="webhook delivery (every partner's endpoints)")  # row-level security

EVENT_TYPES = {
    "wallet.balance_low": "The credit balance fell below the reminder threshold",
    "wallet.autobuy_declined": "An automatic credit purchase was declined",
    "usage.threshold_crossed": "A customer's usage crossed a threshold of their plan",
    "statement.finalised": "A statement was finalised (numbered, final)",
    "account.created": "A customer account was created",
}
# outbox notification kind -> event type
KIND_EVENTS = {"low_balance": "wallet.balance_low", "auto_buy_failed": "wallet.autobuy_declined",
               "threshold_crossed": "usage.threshold_crossed"}
# audited (entity, action) -> event type
AUDIT_EVENTS = {("customer_account", "create"): "account.created", ("statement", "finalise"): "statement.finalised"}
SIGNATURE_HEADER = "Reseller-Signature"
TOLERANCE_S = 300
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=2)
GIVE_UP_AFTER = timedelta(days=1)
TIMEOUT_S = 10.0
MAX_ENDPOINTS = 20
USER_AGENT = "ResellerConsole-Webhooks/1"

D = WebhookDelivery.__table__
E = WebhookEndpoint.__table__


# ---------------------------------------------------------------- signing


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for this body at this time."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str | None, body: bytes, *, tolerance_s: int = TOLERANCE_S,
           now: float | None = None) -> bool:
    """The receiver's check: a v1 signature matches and the timestamp is recent (replays are refused)."""
    try:
        parts = [p.split("=", 1) for p in (header or "").split(",")]
        ts = int(next(v for k, v in parts if k.strip() == "t"))
        sigs = [v for k, v in parts if k.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((now if now is not None else time.time()) - ts) > tolerance_s:
        return False
    expected = sign(secret, ts, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, s) for s in sigs)


# ---------------------------------------------------------------- endpoints


@dataclass(frozen=True)
class NewEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown to the partner; kept to sign deliveries


def _check_url(url: Any) -> str:
    value = str(url or "").strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": "Enter an http:// or https:// address, e.g. https://example.com/hooks."})
    if len(value) > 2000:
        raise ValidationError({"url": "At most 2000 characters."})
    try:
        literal = ipaddress.ip_address(parts.hostname.strip("[]"))
    except ValueError:
        literal = None
    if (literal is not None and not literal.is_global or parts.hostname == "localhost") and not private_allowed():
        raise ValidationError({"url": "Enter a public address: loopback and private networks are not called."})
    return value


def _check_types(types: Any) -> list[str]:
    if isinstance(types, str):
        types = [t for t in types.replace(",", " ").split() if t]
    if not types:
        raise ValidationError({"event_types": "Choose at least one event type."})
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValidationError({"event_types": f"Unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}."})
    return [t for t in EVENT_TYPES if t in set(types)]


def create_endpoint(session: Session, actor: Actor, partner_id: int, *, url: str, event_types: Any,
                    description: str | None = None) -> NewEndpoint:
    authorize(actor, "webhook.manage", partner_id)
    url_v, types_v = _check_url(url), _check_types(event_types)
    count = session.scalar(select(func.count()).select_from(E).where(E.c.partner_id == partner_id, E.c.active))
    if (count or 0) >= MAX_ENDPOINTS:
        raise Conflict(f"At most {MAX_ENDPOINTS} active endpoints per partner.")
    secret = "whsec_" + secrets.token_urlsafe(24)
    ep = WebhookEndpoint(partner_id=partner_id, url=url_v, secret=secret, event_types=types_v,
                         description=(" ".join(str(description or "").split())[:200] or None),
                         created_by=actor.user_id or None)
    session.add(ep)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="create", entity="webhook_endpoint",
                 entity_id=ep.id, after={"url": url_v, "event_types": types_v})
    return NewEndpoint(ep, secret)


def list_endpoints(session: Session, actor: Actor, partner_id: int) -> list[WebhookEndpoint]:
    authorize(actor, "webhook.manage", partner_id)
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner_id)
                                .order_by(WebhookEndpoint.active.desc(), WebhookEndpoint.id)))


def _endpoint(session: Session, partner_id: int, endpoint_id: int) -> WebhookEndpoint:
    ep = session.get(WebhookEndpoint, (partner_id, endpoint_id))
    if ep is None:
        raise NotFound(f"Webhook endpoint {endpoint_id} does not exist.")
    return ep


def set_endpoint_active(session: Session, actor: Actor, partner_id: int, endpoint_id: int, active: bool) -> None:
    """Disable (pending deliveries then fail at their next attempt) or re-enable an endpoint."""
    authorize(actor, "webhook.manage", partner_id)
    ep = _endpoint(session, partner_id, endpoint_id)
    if ep.active == active:
        return
    ep.active = active
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="enable" if active else "disable",
                 entity="webhook_endpoint", entity_id=endpoint_id, before={"active": not active},
                 after={"active": active})


def rotate_secret(session: Session, actor: Actor, partner_id: int, endpoint_id: int) -> str:
    authorize(actor, "webhook.manage", partner_id)
    ep = _endpoint(session, partner_id, endpoint_id)
    ep.secret = "whsec_" + secrets.token_urlsafe(24)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="rotate_secret", entity="webhook_endpoint",
                 entity_id=endpoint_id)
    return ep.secret


# ---------------------------------------------------------------- events -> deliveries


def emit(conn: Session | Connection, partner_id: int, event_type: str, data: dict[str, Any]) -> int:
    """Queue the event for every active endpoint of the partner subscribed to it (same transaction as the
    caller). Returns the number of deliveries queued."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    endpoints = conn.execute(select(E.c.id).where(
        E.c.partner_id == partner_id, E.c.active, E.c.event_types.contains([event_type]))).scalars().all()
    if not endpoints:
        return 0
    event_id = "evt_" + uuid.uuid4().hex
    payload = {"id": event_id, "type": event_type, "created": clock.now().isoformat(timespec="seconds"),
               "partner_id": partner_id, "data": json.loads(json.dumps(data, default=str))}
    conn.execute(insert(WebhookDelivery), [
        {"partner_id": partner_id, "endpoint_id": ep, "event_id": event_id, "event_type": event_type,
         "payload": payload} for ep in endpoints])
    return len(endpoints)


def on_audit(session: Session, values: dict[str, Any]) -> None:
    """core.accounts.audit hook (wired by core.bootstrap): audited changes that are webhook events."""
    event_type = AUDIT_EVENTS.get((values.get("entity") or "", values.get("action") or ""))
    if event_type is None:
        return
    data = {"id": values.get("entity_id"), "account_id": values.get("account_id"), **(values.get("after") or {})}
    emit(session, values["partner_id"], event_type, data)


# ---------------------------------------------------------------- delivery (the worker)


def backoff(attempts: int) -> timedelta:
    """Wait after the n-th failed attempt: 1 min, 2, 4, ... at most 2 hours."""
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY)


def private_allowed() -> bool:
    """RC_WEBHOOKS_ALLOW_PRIVATE=1 lets endpoints on loopback and private networks be called (tests, a
    receiver on the same machine); by default they are refused, so a partner cannot make the worker call
    internal services."""
    return os.environ.get("RC_WEBHOOKS_ALLOW_PRIVATE") == "1"


def _address_refused(url: str) -> str | None:
    """Why the URL's host may not be called (it resolves to a non-public address), or None."""
    if private_allowed():
        return None
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        return f"cannot resolve {host}: {exc}"
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not ip.is_global:
            return f"refused: {host} resolves to a non-public address ({ip})"
    return None


def _post(url: str, secret: str, payload: dict, now: datetime) -> tuple[int | None, str | None]:
    refused = _address_refused(url)
    if refused:
        return None, refused
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
               "Reseller-Event-Id": payload["id"], "Reseller-Event-Type": payload["type"]}
    try:
        r = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S, follow_redirects=False)
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    if 200 <= r.status_code < 300:
        return r.status_code, None
    return r.status_code, f"HTTP {r.status_code}: {r.text[:200]}"


def deliver_one(engine: Engine, now: datetime | None = None) -> bool:
    """Claim one due delivery (FOR UPDATE SKIP LOCKED, so workers never send the same one twice at once),
    attempt it and record the outcome in the same transaction. Returns False when none was due."""
    at = now or clock.now()
    with scoped_session(engine, _DELIVERY) as s, s.begin():
        row = s.execute(select(D).where(D.c.status == "pending", D.c.next_attempt_at <= at)
                        .order_by(D.c.next_attempt_at, D.c.id).limit(1)
                        .with_for_update(skip_locked=True)).first()
        if row is None:
            return False
        ep = s.execute(select(E.c.url, E.c.secret, E.c.active).where(
            E.c.partner_id == row.partner_id, E.c.id == row.endpoint_id)).first()
        attempts = row.attempts + 1
        error: str | None
        if ep is None or not ep.active:
            code, error = None, "endpoint disabled"
        else:
            code, error = _post(ep.url, ep.secret, row.payload, at)
        values: dict[str, Any] = {"attempts": attempts, "last_attempt_at": at, "response_code": code,
                                  "last_error": error}
        if error is None:
            values.update(status="delivered", delivered_at=at)
        else:
            retry_at = at + backoff(attempts)
            if ep is None or not ep.active or retry_at > row.created_at + GIVE_UP_AFTER:
                values["status"] = "failed"
            else:
                values["next_attempt_at"] = retry_at
        s.execute(update(D).where(D.c.partner_id == row.partner_id, D.c.id == row.id).values(**values))
    return True


def deliver_due(engine: Engine, now: datetime | None = None, limit: int = 100) -> int:
    """Attempt up to `limit` due deliveries, one transaction each. Returns how many were attempted."""
    n = 0
    while n < limit and deliver_one(engine, now):
        n += 1
    return n


# ---------------------------------------------------------------- the delivery log


def list_deliveries(session: Session, actor: Actor, partner_id: int, *, endpoint_id: int | None = None,
                    status: str | None = None, limit: int = 200) -> list[WebhookDelivery]:
    authorize(actor, "webhook.manage", partner_id)
    q = select(WebhookDelivery).where(WebhookDelivery.partner_id == partner_id)
    if endpoint_id is not None:
        q = q.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        q = q.where(WebhookDelivery.status == status)
    return list(session.scalars(q.order_by(WebhookDelivery.id.desc()).limit(min(limit, 1000))))


def replay(session: Session, actor: Actor, partner_id: int, delivery_id: int) -> WebhookDelivery:
    """Queue the delivery again now (a copy with the same event id and body)."""
    authorize(actor, "webhook.manage", partner_id)
    old = session.get(WebhookDelivery, (partner_id, delivery_id))
    if old is None:
        raise NotFound(f"Delivery {delivery_id} does not exist.")
    new = WebhookDelivery(partner_id=partner_id, endpoint_id=old.endpoint_id, event_id=old.event_id,
                          event_type=old.event_type, payload=old.payload, replay_of=old.id)
    session.add(new)
    session.flush()
    audit.record(session, actor, partner_id=partner_id, action="replay", entity="webhook_delivery",
                 entity_id=new.id, after={"replay_of": old.id, "event_id": old.event_id})
    return new
