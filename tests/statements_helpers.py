"""Shared set-up for the statement tests: a past month (October 2026), plans, modes, usage, and reading
the text of a generated PDF (core fonts or embedded TrueType with its ToUnicode map)."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.billing import modes as billing_modes
from core.billing import plans
from core.statements import lifecycle, reading
from core.statements.documents import StatementDocument
from core.usage import ingest as usage
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
        return lifecycle.generate_month(s, actor, pid, month, finalise=finalise)


def listed(engine, actor: Actor, pid: int, **kw):
    with Session(engine) as s:
        return reading.list_statements(s, actor, pid, **kw)


def doc(engine, actor: Actor, pid: int, sid: int) -> StatementDocument:
    with Session(engine) as s:
        return reading.get_statement(s, actor, pid, sid)


# ---------------------------------------------------------------- PDF text


def _objects(pdf: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    """object number -> (dictionary text, decoded stream or None)."""
    out: dict[int, tuple[bytes, bytes | None]] = {}
    for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", pdf, re.S):
        body = m.group(2)
        sm = re.search(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S)
        data = None
        if sm:
            data = sm.group(1)
            if b"FlateDecode" in body[:sm.start()]:
                try:
                    data = zlib.decompress(data)
                except zlib.error:
                    data = None
        out[int(m.group(1))] = (body if sm is None else body[:sm.start()], data)
    return out


def _cmap(data: bytes) -> dict[int, str]:
    out = {}
    for a, b in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", data):
        try:
            out[int(a, 16)] = bytes.fromhex(b.decode()).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            pass
    return out


def pdf_text(pdf: bytes) -> str:
    """The text shown by the PDF's pages (enough for assertions, not a general PDF parser): literal strings
    of the core fonts, or two-byte glyph ids of embedded TrueType fonts decoded with each font's ToUnicode."""
    objs = _objects(pdf)
    fonts: dict[bytes, dict[int, str] | None] = {}
    for head, _ in objs.values():
        for fm in re.finditer(rb"/Font\s*<<(.*?)>>", head, re.S):
            for name, num in re.findall(rb"/(\w+)\s+(\d+) 0 R", fm.group(1)):
                fhead = objs.get(int(num), (b"", None))[0]
                tu = re.search(rb"/ToUnicode\s+(\d+) 0 R", fhead)
                fonts[name] = _cmap(objs[int(tu.group(1))][1] or b"") if tu else None
    parts = []
    for _head, data in objs.values():
        if not data or b"BT" not in data or b"Tj" not in data:
            continue
        cmap = None
        for tok in re.finditer(rb"/(\w+)\s+[\d.]+\s+Tf|\(((?:\\.|[^\\)])*)\)\s*Tj", data, re.S):
            if tok.group(1) is not None:
                cmap = fonts.get(tok.group(1))
                continue
            raw = re.sub(rb"\\(.)", lambda m: b"\r" if m.group(1) == b"r" else m.group(1), tok.group(2))
            if cmap is not None:
                parts.append("".join(cmap.get(int.from_bytes(raw[i:i + 2], "big"), "?")
                                     for i in range(0, len(raw) - 1, 2)))
            else:
                parts.append(raw.decode("latin-1"))
    return "\n".join(parts)
