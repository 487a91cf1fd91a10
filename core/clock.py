"""The app's one clock: every "now" and "today" that is not passed in explicitly comes from here, in UTC (usage
days, billing months and statements are UTC days; `date.today()` would be the machine's local day).

The clock can be moved, never frozen: `travel_to(moment)` makes "now" that moment and lets it run on from there.
Tests use it to run the pages on a fixed day (a test must not depend on the day it runs: CI once ran a test in the
first minutes after midnight, when "five minutes ago" was yesterday); a demo server can be started on a chosen
day with RC_CLOCK_START=2026-03-18T12:00:00Z. Pure pricing code never reads a clock: it is given the day.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

_offset = timedelta(0)


def _parse(value: str) -> datetime:
    return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))


def now() -> datetime:
    """The current moment, timezone-aware UTC."""
    return datetime.now(UTC) + _offset


def today() -> date:
    """The current UTC day."""
    return now().date()


def travel_to(moment: datetime | None) -> None:
    """Make "now" `moment` (it runs on from there); None: back to the real clock."""
    global _offset
    _offset = timedelta(0) if moment is None else _aware(moment) - datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if os.environ.get("RC_CLOCK_START"):
    travel_to(_parse(os.environ["RC_CLOCK_START"]))
