"""Hostile input becomes a clear message, never a traceback or a database error: over-long CSV fields, deeply
nested or NUL-carrying properties, oversized uploads, refused reads; other tenants' ids answer like missing ids."""

from __future__ import annotations

import json

import pytest

from core.errors import ValidationError
from core.usage import csv_import
from core.usage.csv_import import parse_csv
from core.usage.ingest import preview_events, record_events
from core.usage.validation import BatchValidationError

HEADER = "account_id,metric,quantity,occurred_at,event_id,properties\n"


def test_a_csv_field_over_128_kib_is_a_clear_message():
    data = HEADER + f'1,pages,1,2026-05-01T10:00:00Z,e1,"{"x" * (200 * 1024)}"\n'
    with pytest.raises(ValidationError) as exc:
        parse_csv(data.encode())
    assert "Line 2" in exc.value.errors["file"] and "128 KiB" in exc.value.errors["file"]


def test_uploads_are_capped():
    with pytest.raises(ValidationError, match="larger than 20 MB"):
        parse_csv(b"x" * (csv_import.MAX_BYTES + 1))
    assert parse_csv((HEADER + "1,pages,1,2026-05-01T10:00:00Z,e1,\n").encode(), max_bytes=None)  # the CLI


def test_deeply_nested_or_nul_properties_are_row_errors(world, session):
    a = world.a
    deep = "[" * 5000 + "]" * 5000
    rows = [{"account_id": a.account_id, "metric": "pages", "quantity": "1", "occurred_at": "2026-05-01T10:00:00Z",
             "event_id": f"e{i}", "properties": props}
            for i, props in enumerate([json.dumps({"a": json.loads("[" * 50 + "]" * 50)}),
                                       '{"a": ' + deep + "}", {"k": "nul\x00byte"}])]
    with pytest.raises(BatchValidationError) as exc:
        preview_events(session, a.staff, a.partner_id, rows)
    problems = " ".join("; ".join(m) for m in exc.value.rows.values())
    assert "nested more than 8 levels" in problems and "NUL" in problems
    assert len(exc.value.rows) == 3
    with pytest.raises(BatchValidationError):
        record_events(session, a.staff, a.partner_id, rows)


def test_other_tenants_ids_answer_like_missing_ids(world, session):
    """A staff member of A asks for B's customer account, and for an id that does not exist: the app shows
    the same answer for both (pages.common.user_message, used by run_action and by the router)."""
    from core.accounts import accounts
    from core.errors import DomainError
    from pages.common import user_message

    a, b = world.a, world.b
    answers = []
    for partner_id, account_id in ((b.partner_id, b.account_id), (a.partner_id, 999999)):
        with pytest.raises(DomainError) as exc:
            accounts.get_account(session, a.staff, partner_id, account_id)
        answers.append(user_message(exc.value))
    assert answers[0] == answers[1]
    assert "does not exist, or you do not have access" in answers[0].replace("\\", "")
