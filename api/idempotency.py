"""Idempotency-Key: a request sent again with the same key gets the first answer, without doing it twice.

The key is stored per partner with a hash of the request (method, path, body) and, once the work has
committed, its answer: both in the transaction of the work itself, so an answer is stored exactly when the
work happened. A concurrent request with the same key waits for the first one's transaction (the primary
key), then answers what it stored. A refused request (4xx) writes nothing and stores nothing: sending it
again is refused again. The same key with a different request is refused (422). Keys are kept for a day
(the worker removes older ones).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import Engine, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from api.encode import plain
from api.problems import ApiProblem, pointer
from core.accounts.actor import Actor, db_scope
from db.engine import scoped_session
from db.models.integration import ApiIdempotency

_KEY = re.compile(r"[\x21-\x7e]{1,200}")
IDEM = ApiIdempotency.__table__


def fingerprint(method: str, path: str, body: bytes) -> str:
    h = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n")
    h.update(body)
    return h.hexdigest()


def run(engine: Engine, actor: Actor, key: str | None, request_hash: str,
        work: Callable[[Session], tuple[int, Any]]) -> JSONResponse:
    """Do `work(session)` -> (status, body) in one transaction, once per Idempotency-Key."""
    if key is not None and not _KEY.fullmatch(key):
        raise ApiProblem(422, "The Idempotency-Key header must be 1 to 200 visible ASCII characters.",
                         errors=[{"pointer": "header:Idempotency-Key", "detail": "invalid key"}])
    with scoped_session(engine, db_scope(actor), expire_on_commit=False) as s, s.begin():
        if key is not None:
            fresh = s.execute(insert(IDEM).values(partner_id=actor.partner_id, idem_key=key, request_hash=request_hash)
                              .on_conflict_do_nothing().returning(IDEM.c.idem_key)).first()
            if fresh is None:
                row = s.get(ApiIdempotency, (actor.partner_id, key))
                assert row is not None
                if row.request_hash != request_hash:
                    raise ApiProblem(422, "This Idempotency-Key was used for a different request.",
                                     errors=[{"pointer": "header:Idempotency-Key",
                                              "detail": "reused with a different body or path"}])
                return JSONResponse(row.response, status_code=row.status_code or 200,
                                    headers={"Idempotent-Replayed": "true"})
        status, body = work(s)
        body = plain(body)
        if key is not None:
            s.execute(update(IDEM).where(IDEM.c.partner_id == actor.partner_id, IDEM.c.idem_key == key)
                      .values(status_code=status, response=body))
    return JSONResponse(body, status_code=status)


__all__ = ["fingerprint", "pointer", "run"]
