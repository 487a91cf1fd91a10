"""Provisioning: customer accounts with their first Manager, their users, suspension."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from api import idempotency
from api.deps import api_actor
from api.encode import plain
from core.accounts import accounts
from core.accounts.actor import Actor, db_scope
from core.errors import ValidationError
from db.engine import unit_of_work

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(max_length=320)
    display_name: str = Field(max_length=200)


class NewUserIn(UserIn):
    role: Literal["manager", "user", "annotation_manager", "annotator"] = "user"


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=200)
    country: str = Field(description="ISO 3166 alpha-2, e.g. NO")
    currency: str | None = Field(None, description="ISO 4217; default: the partner's currency")
    contact_name: str | None = None
    contact_email: str | None = None
    billing_email: str | None = Field(None, description="where statements are e-mailed")
    address: str | None = None
    vat_id: str | None = None
    manager: UserIn | None = Field(None, description="the account's first Manager (e-mailed a link to set a password)")


def account_out(acc: Any) -> dict:
    return plain({"id": acc.id, "name": acc.name, "status": acc.status, "country": acc.country,
                  "currency": acc.currency, "contact_name": acc.contact_name, "contact_email": acc.contact_email,
                  "billing_email": acc.billing_email, "vat_id": acc.vat_id, "created_at": acc.created_at})


def user_out(u: Any) -> dict:
    out = {"id": u.id, "email": u.email, "display_name": u.display_name, "role": u.role, "active": u.active}
    if getattr(u, "link_sent", False):
        out["password_link_sent"] = True  # a link to set the password was e-mailed to the user (no password shown)
    return out


def _create_user(s: Session, actor: Actor, account_id: int, body: UserIn, role: str, prefix: tuple) -> Any:
    try:
        return accounts.create_user(s, actor, partner_id=actor.partner_id, account_id=account_id,
                                    email=body.email, display_name=body.display_name, role=role)
    except ValidationError as exc:
        exc.api_prefix = prefix  # type: ignore[attr-defined]  # pointers into the nested object
        raise


@router.post("", status_code=201, summary="Create a customer account with its first Manager")
async def create_account(request: Request, body: AccountIn, actor: Annotated[Actor, Depends(api_actor)],
                         idempotency_key: Annotated[str | None, Header()] = None):
    """One transaction: the account and (optionally) its first Manager, who gets a one-time password in the
    answer (shown once). Scope: `accounts:write`."""
    raw = await request.body()
    data = body.model_dump(exclude_none=True, exclude={"manager"})

    def work(s: Session) -> tuple[int, dict]:
        acc = accounts.create_account(s, actor, partner_id=actor.partner_id, **data)
        out: dict[str, Any] = {"account": account_out(acc)}
        if body.manager is not None:
            out["manager"] = user_out(_create_user(s, actor, acc.id, body.manager, "manager", ("manager",)))
        return 201, out

    return await run_in_threadpool(idempotency.run, request.app.state.engine, actor, idempotency_key,
                                   idempotency.fingerprint("POST", request.url.path, raw), work)


@router.get("", summary="List customer accounts")
def list_accounts(request: Request, actor: Annotated[Actor, Depends(api_actor)], search: str = "",
                  limit: int = 100, offset: int = 0) -> dict:
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        rows = accounts.list_accounts(s, actor, search=search, partner_id=actor.partner_id,
                                      limit=max(1, min(limit, 500)), offset=max(offset, 0))
    return plain({"accounts": [{"id": r.id, "name": r.name, "status": r.status, "country": r.country,
                                "currency": r.currency, "users": r.users} for r in rows]})


@router.get("/{account_id}", summary="One customer account")
def get_account(request: Request, account_id: int, actor: Annotated[Actor, Depends(api_actor)]) -> dict:
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        return account_out(accounts.get_account(s, actor, actor.partner_id, account_id))


@router.post("/{account_id}/users", status_code=201, summary="Add a user to a customer account")
async def add_user(request: Request, account_id: int, body: NewUserIn, actor: Annotated[Actor, Depends(api_actor)],
                   idempotency_key: Annotated[str | None, Header()] = None):
    raw = await request.body()

    def work(s: Session) -> tuple[int, dict]:
        return 201, user_out(_create_user(s, actor, account_id, body, body.role, ()))

    return await run_in_threadpool(idempotency.run, request.app.state.engine, actor, idempotency_key,
                                   idempotency.fingerprint("POST", request.url.path, raw), work)


def _status_route(action: str):
    async def change(request: Request, account_id: int, actor: Annotated[Actor, Depends(api_actor)],
                     idempotency_key: Annotated[str | None, Header()] = None):
        def work(s: Session) -> tuple[int, dict]:
            fn = accounts.suspend_account if action == "suspend" else accounts.reactivate_account
            return 200, account_out(fn(s, actor, actor.partner_id, account_id))

        return await run_in_threadpool(idempotency.run, request.app.state.engine, actor, idempotency_key,
                                       idempotency.fingerprint("POST", request.url.path, b""), work)
    return change


router.add_api_route("/{account_id}/suspend", _status_route("suspend"), methods=["POST"],
                     summary="Suspend a customer account")
router.add_api_route("/{account_id}/reactivate", _status_route("reactivate"), methods=["POST"],
                     summary="Reactivate a suspended customer account")
