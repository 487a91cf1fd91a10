"""The tests' fixed "now" (see the `on_day` fixture in conftest.py): the middle of a month, away from midnight, so
that "this month", "last month" and "five minutes ago" mean the same whatever minute the suite runs."""

from __future__ import annotations

from datetime import UTC, datetime

MID_MONTH = datetime(2026, 3, 18, 12, 0, tzinfo=UTC)
TODAY = MID_MONTH.date()
