"""Shared set-up for the statement tests: a past month (October 2026), plans, modes, usage, and reading
the text of a generated PDF (core fonts or embedded TrueType with its ToUnicode map)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core import billing_modes, plans, statements, usage
from core.actor import Actor
from db.engine import unit_of_work
from tests.billing_factories import make_plan

MONTH = "2026-10"
START, END = date(2026, 10, 1), date(2026, 10, 31)
MID = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)
D = Decimal

MAILING_SPEC = {
    "currency": "EUR",
    "charges": [{"id": "mail", "label": "Mailings", "metric": "documents", "model": "per_unit", "unit_price": "0",
                 "unit": "recipients", "credit_rate": "1.05", "settle": "wallet"}],
    "fees": [{"id": "base", "label": "Base fee", "kind": "base", "amount": "10"}],
}
PER_PAGE_SPEC = {
    "currency": "EUR",
    "charges": [{"id": "pages", "label": "Pages", "metric": "pages", "model": "per_unit", "unit_price": "0.05",
                 "unit": "pages"}],
    "fees": [],
}
ALLOWANCE_SPEC = {
    "currency": "EUR",
    "charges": [{"id": "docs", "label": "Documents", "metric": "documents", "model": "allowance", "unit": "documents",
                 "included_units": "1000", "overage_price": "0.02"}],
    "fees": [{"id": "base", "label": "Monthly fee", "kind": "base", "amount": "31"}],
}


def assign(engine, staff: Actor, pid: int, aid: int, spec: dict, code: str, effective_from: date = date(2024, 1, 1)):
    _, plan_id = make_plan(engine, staff, code=code, spec_=spec, effective_from=effective_from)
    with unit_of_work(engine) as s:
        plans.assign_plan(s, staff, pid, aid, plan_id=plan_id, effective_from=effective_from)
    return plan_id


def assign_partner(engine, admin: Actor, pid: int, spec: dict, code: str = "bands"):
    _, plan_id = make_plan(engine, admin, code=code, spec_={**spec}, subject="partner")
    with unit_of_work(engine) as s:
        plans.assign_partner_plan(s, admin, pid, plan_id=plan_id, effective_from=date(2024, 1, 1))
    return plan_id


def set_mode(engine, actor: Actor, pid: int, aid: int, mode: str, effective_from: date = START, on_decline=None):
    with unit_of_work(engine) as s:
        billing_modes.set_mode(s, actor, pid, aid, mode, effective_from, on_decline, today=effective_from)


def record(engine, actor: Actor, pid: int, aid: int, metric: str, qty, event_id: str, when: datetime = MID):
    with unit_of_work(engine) as s:
        return usage.record_events(s, actor, pid, [{"account_id": aid, "metric": metric, "quantity": str(qty),
                                                    "event_id": event_id, "occurred_at": when.isoformat()}])


def generate(engine, actor: Actor, pid: int, month: str = MONTH, finalise: bool = False):
    with unit_of_work(engine) as s:
        return statements.generate_month(s, actor, pid, month, finalise=finalise)


def listed(engine, actor: Actor, pid: int, **kw):
    with Session(engine) as s:
        return statements.list_statements(s, actor, pid, **kw)


def doc(engine, actor: Actor, pid: int, sid: int) -> dict:
    with Session(engine) as s:
        return statements.get_statement(s, actor, pid, sid)


# ---------------------------------------------------------------- PDF text


def _streams(pdf: bytes) -> list[bytes]:
    out = []
    for m in re.finditer(rb"<<(.*?)>>\s*stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        data = m.group(2)
        if b"FlateDecode" in m.group(1):
            try:
                data = zlib.decompress(data)
            except zlib.error:
                continue
        out.append(data)
    return out


def pdf_text(pdf: bytes) -> str:
    """The text shown by the PDF's content streams (enough for assertions, not a general PDF parser)."""
    streams = _streams(pdf)
    cmap: dict[int, str] = {}
    for s in streams:
        if b"beginbfchar" in s or b"beginbfrange" in s:
            for a, b in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", s):
                try:
                    cmap[int(a, 16)] = bytes.fromhex(b.decode()).decode("utf-16-be")
                except (ValueError, UnicodeDecodeError):
                    pass
    parts = []
    for s in streams:
        if b"BT" not in s:
            continue
        for hexs in re.findall(rb"<([0-9A-Fa-f]+)>\s*Tj", s):
            h = hexs.decode()
            parts.append("".join(cmap.get(int(h[i:i + 4], 16), "?") for i in range(0, len(h), 4)))
        for lit in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", s):
            parts.append(re.sub(rb"\\(.)", rb"\1", lit).decode("latin-1"))
    return "\n".join(parts)
