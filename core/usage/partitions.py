"""Monthly partitions of usage_events (migration 0020).

`usage_events` is partitioned by month on `day`: one partition per calendar month in the schema
`usage_parts` (named usage_events_YYYY_MM) plus `usage_parts.usage_events_default`, which catches any event
of a month whose partition does not exist yet, so ingestion never fails for want of a partition. Creating
partitions is DDL, which the app role may not run: the SECURITY DEFINER function usage_ensure_partitions
(owned by the migration owner, EXECUTE granted to the app role) creates the missing months and moves the
rows of those months out of the default partition. `make run`'s set-up and the worker (daily) keep
MONTHS_AHEAD months ready.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, text

MONTHS_AHEAD = 3
PARTS_SCHEMA = "usage_parts"
ARCHIVE_SCHEMA = "usage_archive"
DEFAULT_PARTITION = "usage_events_default"
PARTITION_NAME = re.compile(r"^usage_events_(\d{4})_(\d{2})$")


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, n: int) -> date:
    """The first day of the month n months after d's month (n may be negative)."""
    k = d.year * 12 + d.month - 1 + n
    return date(k // 12, k % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"usage_events_{month.year:04d}_{month.month:02d}"


def ensure_partitions(engine: Engine, today: date, months_ahead: int = MONTHS_AHEAD) -> int:
    """Make sure this month's partition and the next `months_ahead` exist; returns how many were created.
    Safe to run as the app role (through the SECURITY DEFINER function) and concurrently with ingestion."""
    first = month_start(today)
    with engine.begin() as conn:
        return int(conn.execute(text("SELECT usage_ensure_partitions(:a, :b)"),
                                {"a": first, "b": add_months(first, months_ahead)}).scalar_one())


@dataclass(frozen=True)
class Partition:
    name: str
    month: date  # first day of the month it holds
