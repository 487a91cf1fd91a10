"""Plan specs and helpers shared by the billing tests (plans, rating, alerts, pricing page)."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.billing import plans

PAGES_SPEC: dict[str, Any] = {
    "currency": "EUR",
    "timing": "in_arrears",
    "charges": [{"id": "pages", "metric": "pages", "model": "graduated", "unit": "pages",
                 "tiers": [{"first": 1, "last": 1000, "unit_price": "0.10"},
                           {"first": 1001, "last": None, "unit_price": "0.08"}]}],
    "fees": [{"id": "base", "kind": "base", "amount": "90"}],
}

API_SPEC: dict[str, Any] = {
    "currency": "EUR",
    "charges": [{"id": "api", "metric": "api_requests", "model": "threshold", "unit": "requests",
                 "threshold": "500000", "threshold_price": "0.017"}],
    "fees": [],
}

BANDS_SPEC: dict[str, Any] = {
    "currency": "EUR",
    "charges": [{"id": "bands", "metric": "active_clients", "model": "volume", "unit": "clients",
                 "tiers": [{"first": 0, "last": 99, "unit_price": "0", "flat_fee": "200"},
                           {"first": 100, "last": 250, "unit_price": "0", "flat_fee": "500"},
                           {"first": 251, "last": None, "unit_price": "0", "flat_fee": "1000"}]}],
    "fees": [],
}


def spec(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def make_plan(engine: Engine, actor: Actor, *, code: str = "std", spec_: dict | None = None,
              effective_from: date = date(2024, 1, 1), **kw: Any) -> tuple[int, int]:
    """Create a plan in its own transaction; returns (partner_id, plan_id)."""
    with Session(engine) as s, s.begin():
        p = plans.create_plan(s, actor, name=kw.pop("name", f"Plan {code}"), code=code,
                              currency=kw.pop("currency", "EUR"), spec=spec_ or PAGES_SPEC,
                              effective_from=effective_from, **kw)
        return p.partner_id, p.id
