"""Statements: list them, fetch one as JSON or as its PDF."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.deps import api_actor
from api.encode import plain
from core.accounts.actor import Actor, db_scope
from core.pricing.money import round_money
from core.statements import reading
from db.engine import unit_of_work

router = APIRouter(prefix="/v1/statements", tags=["statements"])


@router.get("", summary="List statements")
def list_statements(request: Request, actor: Annotated[Actor, Depends(api_actor)], month: str | None = None,
                    status: str | None = None, account_id: int | None = None) -> dict:
    """The partner's statements, newest month first; filter by month (YYYY-MM), status (draft, final,
    void) and customer account. Amounts are decimal strings. Scope: `statements:read`."""
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        rows = reading.list_statements(s, actor, actor.partner_id, month=month, status=status,
                                         account_id=account_id)
    return plain({"statements": [
        {"id": r.id, "number": r.number, "kind": r.kind, "status": r.status, "account_id": r.account_id,
         "addressee": r.addressee, "issuer": r.issuer, "period_start": r.period_start, "period_end": r.period_end,
         "currency": r.currency, "total": round_money(r.total, r.currency), "credit_note_for": r.credit_note_for}
        for r in rows]})


@router.get("/{statement_id}", summary="One statement as JSON (or PDF with Accept: application/pdf)",
            responses={200: {"content": {"application/pdf": {}}}})
def get_statement(request: Request, statement_id: int, actor: Annotated[Actor, Depends(api_actor)]):
    if "application/pdf" in request.headers.get("accept", ""):
        return get_pdf(request, statement_id, actor)
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        return plain(reading.get_statement(s, actor, actor.partner_id, statement_id).to_json())


@router.get("/{statement_id}/pdf", summary="One statement as PDF",
            responses={200: {"content": {"application/pdf": {}}}}, response_class=Response)
def get_pdf(request: Request, statement_id: int, actor: Annotated[Actor, Depends(api_actor)]) -> Response:
    with unit_of_work(request.app.state.engine, db_scope(actor)) as s:
        pdf = reading.export_pdf(s, actor, actor.partner_id, statement_id)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="statement-{statement_id}.pdf"'})
