"""What the engine prices: a metric's usage in one segment, as a plain quantity or with detail.

A plain Decimal is enough for most charge models. `Usage` adds what some need: the number of events and the
individual event values (percentage: fixed fee per transaction, free transactions, per-transaction minimum and
maximum) and the quantities per value of an event property (charges with a dimension, e.g. SMS by country).
Pure: stdlib only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["RatingError", "Usage", "UsageInput", "MAX_DIGITS"]

MAX_DIGITS = 100  # significant digits of a usage quantity; the engine computes exactly far beyond this


class RatingError(ValueError):
    """Bad input to rate(): segments outside the period, overlapping, mixed currencies, bad usage."""


@dataclass(frozen=True)
class Usage:
    """One metric's usage in a segment.

    quantity: the aggregate the metric defines (a sum of amounts for a percentage charge).
    count: the number of events (None = unknown; taken from `events` when those are given).
    events: the individual event values in time order, when a charge needs them (None = not supplied).
    by_value: event property -> property value -> that value's usage (Decimal or Usage), for dimensions.
    """

    quantity: Decimal
    count: int | None = None
    events: tuple[Decimal, ...] | None = None
    by_value: Mapping[str, Mapping[str, Decimal | Usage]] = field(default_factory=dict)
    event_props: Mapping[str, tuple[str | None, ...]] = field(default_factory=dict)

    @property
    def event_count(self) -> int | None:
        if self.count is not None:
            return self.count
        return None if self.events is None else len(self.events)


UsageInput = Decimal | Usage
